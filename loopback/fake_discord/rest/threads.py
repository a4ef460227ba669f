"""REST: starting threads (from a message or not) and listing archived ones.

``POST /channels/{id}/messages/{id}/threads``, ``POST /channels/{id}/threads``, ``GET
.../threads/archived/public``.  Starting a thread from a message not in that channel -> 404/10008,
twice -> 400/160004; without Create Public/Private Threads -> 403/50013.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from loopback.fake_discord.server import RecordedRequest
from loopback.fake_discord.wire import (
    FLAG_EPHEMERAL,
    FLAG_HAS_THREAD,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    ApiError,
    Permissions,
    form_error,
    now_iso,
    unknown,
)


class ThreadRoutes:
    """Thread routes of :class:`~loopback.fake_discord.FakeDiscord`."""

    def _make_thread(
        self,
        parent: dict[str, Any],
        thread_id: int,
        name: str,
        owner_id: int,
        body: Mapping[str, Any],
        ttype: int,
    ) -> dict[str, Any]:
        now = now_iso()
        duration = body.get("auto_archive_duration") or parent.get("default_auto_archive_duration", 1440)
        metadata: dict[str, Any] = {
            "archived": False,
            "auto_archive_duration": duration,
            "archive_timestamp": now,
            "locked": False,
            "create_timestamp": now,
        }
        if ttype == PRIVATE_THREAD:
            metadata["invitable"] = bool(body.get("invitable", True))
        thread: dict[str, Any] = {
            "id": str(thread_id),
            "type": ttype,
            "guild_id": parent["guild_id"],
            "parent_id": parent["id"],
            "owner_id": str(owner_id),
            "name": name,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "rate_limit_per_user": body.get("rate_limit_per_user") or 0,
            "flags": 0,
            "applied_tags": [],
            "thread_metadata": metadata,
        }
        self._join_thread(thread, owner_id)
        return thread

    async def _start_thread_from_message(
        self,
        parent: dict[str, Any],
        message: dict[str, Any],
        name: str,
        owner_id: int,
        body: Mapping[str, Any],
    ) -> dict[str, Any]:
        if message.get("thread") is not None or int(message["id"]) in self.channels:
            raise ApiError(400, 160004, "A thread has already been created for this message")
        thread = self._make_thread(parent, int(message["id"]), name, owner_id, body, PUBLIC_THREAD)
        self.channels[int(thread["id"])] = thread
        message["thread"] = thread
        message["flags"] = int(message.get("flags", 0)) | FLAG_HAS_THREAD
        await self._broadcast("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True})
        return thread

    async def _post_thread_from_message(
        self, req: RecordedRequest, channel_id: str, message_id: str
    ) -> web.Response:
        parent = self._channel_or_404(channel_id)
        name = self._validate_thread_request(parent, req.json)
        message = self.messages.get(int(message_id))
        if (
            message is None
            or message["channel_id"] != parent["id"]
            or int(message.get("flags", 0)) & FLAG_EPHEMERAL
        ):
            raise unknown("Message", 10008)
        self._require_bot_perms(Permissions.VIEW_CHANNEL | Permissions.CREATE_PUBLIC_THREADS)
        thread = await self._start_thread_from_message(parent, message, name, self._bot_id(), req.json)
        return self._json(thread, status=201)

    async def _post_thread(self, req: RecordedRequest, channel_id: str) -> web.Response:
        parent = self._channel_or_404(channel_id)
        name = self._validate_thread_request(parent, req.json)
        ttype = int(req.json.get("type") or PRIVATE_THREAD)
        if ttype not in (PUBLIC_THREAD, PRIVATE_THREAD):
            raise form_error("type", "BASE_TYPE_CHOICES", "Value must be one of {11, 12}.")
        needed = (
            Permissions.CREATE_PUBLIC_THREADS
            if ttype == PUBLIC_THREAD
            else Permissions.CREATE_PRIVATE_THREADS
        )
        self._require_bot_perms(Permissions.VIEW_CHANNEL | needed)
        thread = self._make_thread(parent, self._ids.next(), name, self._bot_id(), req.json, ttype)
        self.channels[int(thread["id"])] = thread
        await self._broadcast("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True})
        return self._json(thread, status=201)

    async def _get_archived_threads(self, req: RecordedRequest, channel_id: str) -> web.Response:
        self._channel_or_404(channel_id)
        threads = [
            c
            for c in self.channels.values()
            if c["type"] == PUBLIC_THREAD
            and c["parent_id"] == channel_id
            and c["thread_metadata"]["archived"]
        ]
        return self._json({"threads": threads, "members": [], "has_more": False})
