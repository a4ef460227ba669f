"""REST: a channel or thread itself: read, edit (archive, lock, rename), typing, joining a thread.

``GET|PATCH /channels/{id}``; ``POST /channels/{id}/typing`` (204); ``GET|PUT .../thread-members/
{@me|id}`` (a thread member, or 404/10007 for someone not in the thread; 403/50001 where the bot cannot
see the thread).  Editing a thread someone else started, locking or unlocking, and reopening a locked
thread need Manage Threads (403/50013).
"""

from __future__ import annotations

import copy

from aiohttp import web

from loopback.fake_discord.server import RecordedRequest
from loopback.fake_discord.wire import (
    MAX_THREAD_NAME,
    ApiError,
    Permissions,
    form_error,
    missing_permissions,
    now_iso,
    unknown,
)


class ChannelRoutes:
    """Channel routes of :class:`~loopback.fake_discord.FakeDiscord`."""

    async def _get_channel(self, req: RecordedRequest, channel_id: str) -> web.Response:
        channel = self._channel_or_404(channel_id)
        self._require_bot_perms(Permissions.VIEW_CHANNEL)
        return self._json(channel)

    async def _patch_channel(self, req: RecordedRequest, channel_id: str) -> web.Response:
        channel = self._channel_or_404(channel_id)
        body = req.json or {}
        if not isinstance(body, dict):
            raise form_error("_", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        if "name" in body:
            name = str(body["name"] or "")
            limit = MAX_THREAD_NAME if self._is_thread(channel) else 100
            if not 1 <= len(name) <= limit:
                raise form_error("name", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {limit} in length.")
        if self._is_thread(channel):
            perms = self.permissions_for(
                self._bot_id(), self._guild_id_of(channel), channel_id=int(channel_id)
            )
            if int(channel["owner_id"]) != self._bot_id() and not perms & Permissions.MANAGE_THREADS:
                raise missing_permissions()
            if "locked" in body and not perms & Permissions.MANAGE_THREADS:
                raise missing_permissions()
            metadata = channel["thread_metadata"]
            # Only moderators may reopen a locked thread, even the bot that started it.
            if (
                metadata.get("locked")
                and body.get("archived") is False
                and not perms & Permissions.MANAGE_THREADS
            ):
                raise missing_permissions()
            if "name" in body:
                channel["name"] = body["name"]
            for key in ("archived", "locked", "auto_archive_duration", "invitable"):
                if key in body and body[key] is not None:
                    metadata[key] = body[key]
            if "archived" in body:
                metadata["archive_timestamp"] = now_iso()
            for key in ("rate_limit_per_user", "flags", "applied_tags"):
                if key in body and body[key] is not None:
                    channel[key] = body[key]
            await self._broadcast("THREAD_UPDATE", copy.deepcopy(channel))
        else:
            if not self.permissions_for(
                self._bot_id(), self._guild_id_of(channel), channel_id=int(channel_id)
            ) & (1 << 4):  # MANAGE_CHANNELS
                raise missing_permissions()
            for key in (
                "name",
                "topic",
                "nsfw",
                "rate_limit_per_user",
                "position",
                "default_auto_archive_duration",
            ):
                if key in body:
                    channel[key] = body[key]
            await self._broadcast("CHANNEL_UPDATE", copy.deepcopy(channel))
        return self._json(channel)

    async def _post_typing(self, req: RecordedRequest, channel_id: str) -> web.Response:
        self._channel_or_404(channel_id)
        return self._no_content()

    async def _get_thread_member(self, req: RecordedRequest, channel_id: str, user_id: str) -> web.Response:
        channel = self._channel_or_404(channel_id)
        if not self._is_thread(channel):
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        if not self.can_view(self._bot_id(), int(channel_id)):
            raise ApiError(403, 50001, "Missing Access")
        uid = self._bot_id() if user_id == "@me" else int(user_id)
        if uid not in self._thread_members.get(int(channel_id), set()):
            raise unknown("Member", 10007)
        return self._json(self._thread_member(int(channel_id), uid))

    async def _put_thread_member(self, req: RecordedRequest, channel_id: str, user_id: str) -> web.Response:
        channel = self._channel_or_404(channel_id)
        if not self._is_thread(channel):
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        uid = self._bot_id() if user_id == "@me" else int(user_id)
        if uid not in self._guild_of_channel(channel_id).members:
            raise unknown("Member", 10007)
        self._join_thread(channel, uid)
        return self._no_content()
