"""REST: a guild the bot is in, its channels, a member, its active threads.

``GET /guilds/{id}``, ``.../channels``, ``.../members/{id}``, ``.../threads/active``.
"""

from __future__ import annotations

from aiohttp import web

from loopback.fake_discord.server import RecordedRequest
from loopback.fake_discord.wire import THREAD_TYPES, unknown
from loopback.fake_discord.world import FakeGuild


class GuildRoutes:
    """Guild routes of :class:`~loopback.fake_discord.FakeDiscord`."""

    def _guild_or_404(self, guild_id: str) -> FakeGuild:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            raise unknown("Guild", 10004)
        return guild

    async def _get_guild(self, req: RecordedRequest, guild_id: str) -> web.Response:
        guild = self._guild_or_404(guild_id)
        payload = self._guild_create_payload(guild.id)
        for key in (
            "members",
            "channels",
            "threads",
            "voice_states",
            "presences",
            "joined_at",
            "large",
            "lazy",
        ):
            payload.pop(key, None)
        return self._json(payload)

    async def _get_guild_channels(self, req: RecordedRequest, guild_id: str) -> web.Response:
        guild = self._guild_or_404(guild_id)
        return self._json(
            [
                c
                for c in self.channels.values()
                if c["type"] not in THREAD_TYPES and self._guild_id_of(c) == guild.id
            ]
        )

    async def _get_guild_member(self, req: RecordedRequest, guild_id: str, user_id: str) -> web.Response:
        guild = self._guild_or_404(guild_id)
        if int(user_id) not in guild.members:
            raise unknown("Member", 10007)
        return self._json(self._member_payload(int(user_id), guild_id=guild.id))

    async def _get_active_threads(self, req: RecordedRequest, guild_id: str) -> web.Response:
        guild = self._guild_or_404(guild_id)
        threads = [
            c
            for c in self.channels.values()
            if c["type"] in THREAD_TYPES
            and not c["thread_metadata"]["archived"]
            and self._guild_id_of(c) == guild.id
        ]
        return self._json({"threads": threads, "members": [], "has_more": False})
