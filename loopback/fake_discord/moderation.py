"""What members do beyond writing: deleting messages (one, or a moderator's purge) and thread membership.

Acting as members (each dispatches what Discord would and returns once it is sent)
    ``await delete_message(user, message_id)`` -- their own message, or anyone's with Manage Messages in
    that channel; MESSAGE_DELETE. In a DM only one's own.
    ``await delete_messages(moderator, channel_id, message_ids)`` -- a moderator's purge (through a
    moderation bot, or a ban that removes recent messages): 2 to 100 messages of a server channel, none
    older than 14 days, with Manage Messages; one MESSAGE_DELETE_BULK. Ids that are no message there
    count, as on Discord, but are not reported.
    ``await add_thread_member(thread_id, user)`` / ``await remove_thread_member(thread_id, user)`` --
    THREAD_MEMBERS_UPDATE, which the bot receives about others only with the Server Members intent.
Private threads are started with ``create_thread(..., private=True)`` (``driver.py``).

What Discord would refuse raises before anything is sent: LookupError for what the member cannot see
(an unknown message, a channel hidden from them), ValueError with Discord's error for the rest.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from loopback.fake_discord.wire import (
    DISCORD_EPOCH_MS,
    FLAG_EPHEMERAL,
    ApiError,
    Permissions,
    form_error,
    missing_permissions,
)

# Discord bulk-deletes only messages younger than this.
BULK_DELETE_MAX_AGE_MS = 14 * 24 * 3600 * 1000


def _refused(error: ApiError) -> ValueError:
    return ValueError(f"Discord would refuse this: {error.body()}")


class Moderation:
    """Deleting messages and thread membership, as methods of :class:`FakeDiscord`."""

    def _visible_to(self, user: Mapping[str, Any], channel: Mapping[str, Any]) -> int:
        """The member's id, once they may see `channel` (in a server: its member who can view it)."""
        uid = int(user["id"])
        place = self._place(channel)
        if place == "guild":
            self._require_member(user, self._guild_id_of(channel))
            if not self.can_view(uid, int(channel["id"])):
                raise LookupError(f"user {uid} cannot view channel {channel['id']}")
        elif place in ("dm", "group") and all(int(r["id"]) != uid for r in channel["recipients"]):
            raise LookupError(f"user {uid} is not in channel {channel['id']}")
        return uid

    def _message_of(self, message_id: int) -> dict[str, Any]:
        message = self.messages.get(int(message_id))
        if message is None or int(message.get("flags", 0)) & FLAG_EPHEMERAL:
            raise LookupError(f"no message {message_id} that members can see")
        return message

    async def delete_message(self, user: Mapping[str, Any], message_id: int) -> None:
        """A member deletes a message: their own, or (with Manage Messages there) anyone's."""
        message = self._message_of(message_id)
        channel = self._channel_or_404(message["channel_id"])
        uid = self._visible_to(user, channel)
        if int(message["author"]["id"]) != uid:
            if self._place(channel) != "guild":
                raise _refused(ApiError(403, 50003, "Cannot execute action on a DM channel"))
            if not self.permissions_for(uid, channel_id=int(channel["id"])) & Permissions.MANAGE_MESSAGES:
                raise _refused(missing_permissions())
        await self._remove_message(message)

    async def delete_messages(
        self, moderator: Mapping[str, Any], channel_id: int, message_ids: Iterable[int]
    ) -> list[int]:
        """A moderator deletes many messages of one server channel at once (one MESSAGE_DELETE_BULK); the
        ids that were messages there."""
        channel = self._channel_or_404(channel_id)
        if self._place(channel) != "guild":
            raise _refused(ApiError(403, 50003, "Cannot execute action on a DM channel"))
        uid = self._visible_to(moderator, channel)
        needed = Permissions.MANAGE_MESSAGES | Permissions.READ_MESSAGE_HISTORY
        if self.permissions_for(uid, channel_id=int(channel_id)) & needed != needed:
            raise _refused(missing_permissions())
        ids = list(dict.fromkeys(int(message_id) for message_id in message_ids))
        if not 2 <= len(ids) <= 100:
            raise _refused(
                form_error("messages", "BASE_TYPE_BAD_LENGTH", "Must be between 2 and 100 in length.")
            )
        oldest = time.time() * 1000 - BULK_DELETE_MAX_AGE_MS
        if any((message_id >> 22) + DISCORD_EPOCH_MS < oldest for message_id in ids):
            raise _refused(
                ApiError(400, 50034, "You can only bulk delete messages that are under 14 days old.")
            )
        found = [
            message
            for message_id in ids
            if (message := self.messages.get(message_id)) is not None
            and message["channel_id"] == str(channel_id)
            and not int(message.get("flags", 0)) & FLAG_EPHEMERAL
        ]
        for message in found:
            await self._remove_message(message, announce=False)
        if found:
            guild = self._guild_of_channel(channel_id)
            await self._broadcast(
                "MESSAGE_DELETE_BULK",
                {"ids": [m["id"] for m in found], "channel_id": str(channel_id), "guild_id": str(guild.id)},
            )
        return [int(m["id"]) for m in found]

    # ------------------------------------------------------------------ thread membership

    async def add_thread_member(self, thread_id: int, user: Mapping[str, Any]) -> None:
        """Someone is added to a thread (a private thread's invitation); they must see its channel."""
        thread = self._channel_or_404(thread_id)
        if not self._is_thread(thread):
            raise _refused(ApiError(400, 50024, "Cannot execute action on this channel type"))
        uid = int(user["id"])
        guild_id = self._guild_id_of(thread)
        self._require_member(user, guild_id)
        if not self.permissions_for(uid, guild_id, channel_id=int(thread_id)) & Permissions.VIEW_CHANNEL:
            raise _refused(missing_permissions())
        if uid in self._thread_members.get(int(thread_id), set()):
            return
        self._join_thread(thread, uid)
        added = {
            **self._thread_member(int(thread_id), uid),
            "member": self._member_payload(uid, guild_id=guild_id),
        }
        await self._thread_members_update(thread, added=[added], removed=[])

    async def remove_thread_member(self, thread_id: int, user: Mapping[str, Any]) -> None:
        """Someone leaves a thread, or is removed from it."""
        thread = self._channel_or_404(thread_id)
        uid = int(user["id"])
        members = self._thread_members.get(int(thread_id), set())
        if uid not in members:
            return
        members.discard(uid)
        thread["member_count"] = len(members)
        if uid == self._bot_id():
            thread.pop("member", None)
        await self._thread_members_update(thread, added=[], removed=[str(uid)])

    async def _thread_members_update(
        self, thread: Mapping[str, Any], *, added: list[dict[str, Any]], removed: list[str]
    ) -> None:
        await self._broadcast(
            "THREAD_MEMBERS_UPDATE",
            {
                "id": thread["id"],
                "guild_id": thread["guild_id"],
                "member_count": thread["member_count"],
                "added_members": added,
                "removed_member_ids": removed,
            },
        )
