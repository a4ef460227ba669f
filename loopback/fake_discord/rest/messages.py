"""REST: messages of a channel or thread, and reactions.

``GET|POST /channels/{id}/messages``; ``GET|PATCH|DELETE /channels/{id}/messages/{id}``; ``PUT
.../reactions/{emoji}/@me`` (only recorded on the message).  Missing bot permissions (send, attach
files, read history, manage messages) -> 403/50013; editing someone else's message -> 403/50005;
ephemeral messages can't be fetched through channel routes.
"""

from __future__ import annotations

from aiohttp import web

from loopback.fake_discord.server import RecordedRequest
from loopback.fake_discord.wire import FLAG_EPHEMERAL, FLAG_LOADING, ApiError, Permissions, as_int, form_error


class MessageRoutes:
    """Channel message routes of :class:`~loopback.fake_discord.FakeDiscord`."""

    async def _get_messages(self, req: RecordedRequest, channel_id: str) -> web.Response:
        self._channel_or_404(channel_id)
        self._require_bot_perms(Permissions.VIEW_CHANNEL | Permissions.READ_MESSAGE_HISTORY)
        limit = max(1, min(100, int(req.query.get("limit", 50))))
        messages = self.messages_in(int(channel_id), include_ephemeral=False)
        before = as_int(req.query.get("before"))
        after = as_int(req.query.get("after"))
        if before is not None:
            messages = [m for m in messages if int(m["id"]) < before]
        if after is not None:
            messages = [m for m in messages if int(m["id"]) > after]
            messages = messages[:limit]
        else:
            messages = messages[-limit:]
        return self._json(list(reversed(messages)))

    async def _get_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> web.Response:
        self._channel_or_404(channel_id)
        self._require_bot_perms(Permissions.VIEW_CHANNEL | Permissions.READ_MESSAGE_HISTORY)
        return self._json(self._visible_message(channel_id, message_id))

    async def _post_message(self, req: RecordedRequest, channel_id: str) -> web.Response:
        channel = self._channel_or_404(channel_id)
        body = req.json or {}
        if not isinstance(body, dict):
            raise form_error("_", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        send_bit = (
            Permissions.SEND_MESSAGES_IN_THREADS if self._is_thread(channel) else Permissions.SEND_MESSAGES
        )
        self._require_bot_perms(Permissions.VIEW_CHANNEL | send_bit)
        if req.files:
            self._require_bot_perms(Permissions.ATTACH_FILES)
        if body.get("message_reference"):
            self._require_bot_perms(Permissions.READ_MESSAGE_HISTORY)
        self._validate_message_body(body, req.files, "", new=True)
        await self._admit_new_message(channel, self._bot_id())
        flags = int(body.get("flags") or 0) & ~(FLAG_EPHEMERAL | FLAG_LOADING)
        message = self._new_message(channel, self.bot_user, body, req.files, flags=flags)
        await self._dispatch_message("MESSAGE_CREATE", message)
        return self._json(message)

    async def _patch_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> web.Response:
        self._channel_or_404(channel_id)
        message = self._visible_message(channel_id, message_id)
        body = req.json or {}
        if int(message["author"]["id"]) != self._bot_id():
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        if req.files:
            # Uploading with an edit needs the same permission as uploading with a new message.
            self._require_bot_perms(Permissions.ATTACH_FILES)
        self._validate_message_body(body, req.files, "", new=False, existing=message)
        self._check_editable_in(channel_id)
        self._apply_edit(message, body, req.files)
        await self._dispatch_message("MESSAGE_UPDATE", message)
        return self._json(message)

    async def _delete_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> web.Response:
        self._channel_or_404(channel_id)
        message = self._visible_message(channel_id, message_id)
        if int(message["author"]["id"]) != self._bot_id():
            self._require_bot_perms(Permissions.MANAGE_MESSAGES)
        await self._remove_message(message)
        return self._no_content()

    async def _put_reaction(
        self, req: RecordedRequest, channel_id: str, message_id: str, emoji: str
    ) -> web.Response:
        self._channel_or_404(channel_id)
        message = self._visible_message(channel_id, message_id)
        self._require_bot_perms(Permissions.ADD_REACTIONS | Permissions.READ_MESSAGE_HISTORY)
        reactions = message.setdefault("reactions", [])
        for reaction in reactions:
            if reaction["emoji"].get("name") == emoji:
                if not reaction["me"]:
                    reaction["count"] += 1
                    reaction["me"] = True
                break
        else:
            reactions.append(
                {
                    "count": 1,
                    "me": True,
                    "emoji": {"id": None, "name": emoji},
                    "burst_colors": [],
                    "me_burst": False,
                }
            )
        return self._no_content()
