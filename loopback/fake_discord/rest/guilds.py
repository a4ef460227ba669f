"""REST: the guild, its channels, a member, its active threads.

``GET /guilds/{id}``, ``.../channels``, ``.../members/{id}``, ``.../threads/active``.
"""

from __future__ import annotations

from aiohttp import web

from loopback.fake_discord.server import RecordedRequest
from loopback.fake_discord.wire import THREAD_TYPES, unknown


class GuildRoutes:
    """Guild routes of :class:`~loopback.fake_discord.FakeDiscord`."""

    async def _get_guild(self, req: RecordedRequest, guild_id: str) -> web.Response:
        if int(guild_id) != self.guild_id:
            raise unknown("Guild", 10004)
        payload = self._guild_create_payload()
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
        if int(guild_id) != self.guild_id:
            raise unknown("Guild", 10004)
        return self._json([c for c in self.channels.values() if c["type"] not in THREAD_TYPES])

    async def _get_guild_member(self, req: RecordedRequest, guild_id: str, user_id: str) -> web.Response:
        if int(guild_id) != self.guild_id:
            raise unknown("Guild", 10004)
        if int(user_id) not in self.members:
            raise unknown("Member", 10007)
        return self._json(self._member_payload(int(user_id)))

    async def _get_active_threads(self, req: RecordedRequest, guild_id: str) -> web.Response:
        threads = [
            c
            for c in self.channels.values()
            if c["type"] in THREAD_TYPES
            and not c["thread_metadata"]["archived"]
            and self._place(c) == "guild"
        ]
        return self._json({"threads": threads, "members": [], "has_more": False})
