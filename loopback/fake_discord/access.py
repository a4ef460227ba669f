"""Who may see and do what in a channel: permission overwrites, private channels and private threads.

Permissions in a channel are computed as Discord computes them (its "Permission Overwrites" algorithm):
the member's guild permissions (@everyone, then every role of theirs; the owner and Administrator have
everything), then the channel's overwrite for @everyone, then the overwrites of all their roles together
(every role's deny, then every role's allow), then their own member overwrite. A thread takes its
channel's. Then the implicit rules: without View Channel none of the channel permissions (the server-wide
ones, such as Change Nickname, stay); without Send Messages no Send TTS, Mention Everyone, Embed Links or
Attach Files either.

A private thread is seen by its members and by whoever has Manage Threads in its channel; a public one by
whoever sees its channel.

World building
    ``set_channel_overwrite(channel_id, target, *, allow=0, deny=0)`` (``target``: a member's user
    payload, or a role id -- the guild's id is @everyone) and ``clear_channel_overwrite(channel_id,
    target)``, each dispatching CHANNEL_UPDATE; ``add_private_channel(name, *members, guild_id=None)``
    (a text channel hidden from @everyone, open to the bot and to ``members``).
Reading
    ``permissions_for(user_id, guild_id=None, channel_id=None)`` (in ``world.py``; with ``channel_id``
    the permissions there); ``can_view(user_id, channel_id)``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from loopback.fake_discord.wire import PRIVATE_THREAD, Permissions, as_int

MEMBER_OVERWRITE, ROLE_OVERWRITE = 1, 0
# The permissions that apply to channels (Discord's table marks them T, V or S; discord.py's
# `Permissions.all_channel()`): what a member who cannot view a channel has none of there.
CHANNEL_PERMISSIONS = 0x1E64FDB3F7FF51
# What Send Messages takes with it when it is missing (Discord's and discord.py's implicit denials).
_NEEDS_SEND = (1 << 12) | Permissions.MENTION_EVERYONE | Permissions.EMBED_LINKS | Permissions.ATTACH_FILES


def overwritten(
    base: int, overwrites: list[Mapping[str, Any]], *, guild_id: int, role_ids: set[int], user_id: int
) -> int:
    """`base` (guild-level) permissions after a channel's overwrites, in Discord's order, and its implicit
    denials."""
    if base & Permissions.ADMINISTRATOR:
        return Permissions.ALL
    by_target = {(int(o["id"]), int(o["type"])): o for o in overwrites}
    perms = base
    everyone = by_target.get((guild_id, ROLE_OVERWRITE))
    if everyone is not None:
        perms = (perms & ~int(everyone["deny"])) | int(everyone["allow"])
    allow = deny = 0
    for role_id in role_ids:
        role = by_target.get((role_id, ROLE_OVERWRITE))
        if role is not None:
            allow |= int(role["allow"])
            deny |= int(role["deny"])
    perms = (perms & ~deny) | allow
    member = by_target.get((user_id, MEMBER_OVERWRITE))
    if member is not None:
        perms = (perms & ~int(member["deny"])) | int(member["allow"])
    if not perms & Permissions.VIEW_CHANNEL:
        return perms & ~CHANNEL_PERMISSIONS
    if not perms & Permissions.SEND_MESSAGES:
        perms &= ~_NEEDS_SEND
    return perms


class ChannelAccess:
    """Overwrites, private channels and private threads, as methods of :class:`FakeDiscord`."""

    def _channel_permissions(self, user_id: int, base: int, channel: Mapping[str, Any]) -> int:
        """A member's permissions in `channel` (a thread: in its parent), from their guild permissions."""
        if user_id == int(self.owner_user["id"]):
            return Permissions.ALL
        source = channel
        if self._is_thread(channel):
            source = self.channels.get(int(channel["parent_id"]), channel)
        guild_id = self._guild_id_of(source)
        if guild_id is None:
            return base
        member = self.guilds[guild_id].members.get(user_id)
        roles = {int(role) for role in member["roles"]} if member else set()
        return overwritten(
            base,
            source.get("permission_overwrites") or [],
            guild_id=guild_id,
            role_ids=roles,
            user_id=user_id,
        )

    def can_view(self, user_id: int, channel_id: int) -> bool:
        """Whether a member sees a channel or thread (a private thread: as a member of it, or with Manage
        Threads in its channel)."""
        channel = self._channel_or_404(channel_id)
        guild_id = self._guild_id_of(channel)
        perms = self.permissions_for(user_id, guild_id, channel_id=channel_id)
        if not perms & Permissions.VIEW_CHANNEL:
            return False
        if channel["type"] == PRIVATE_THREAD:
            return user_id in self._thread_members.get(int(channel_id), set()) or bool(
                perms & Permissions.MANAGE_THREADS
            )
        return True

    # ------------------------------------------------------------------ world building

    def _overwrite_target(self, channel: Mapping[str, Any], target: Any) -> tuple[int, int]:
        """(id, type) of an overwrite's target: a member (a user payload) or a role id of the channel's guild."""
        if isinstance(target, Mapping):
            return int(target["id"]), MEMBER_OVERWRITE
        role_id = int(target)
        guild_id = self._guild_id_of(channel)
        if guild_id is None or role_id not in self.guilds[guild_id].roles:
            raise LookupError(f"{role_id} is no role of the channel's server; pass a member's user payload")
        return role_id, ROLE_OVERWRITE

    def set_channel_overwrite(
        self, channel_id: int, target: Any, *, allow: int = 0, deny: int = 0
    ) -> dict[str, Any]:
        """Allow and deny permissions in a channel for a role (an id; the guild's own id is @everyone) or a
        member (a user payload), replacing that target's overwrite; dispatches CHANNEL_UPDATE."""
        channel = self._channel_or_404(channel_id)
        if self._is_thread(channel):
            raise ValueError("threads have no overwrites of their own; set them on the thread's channel")
        target_id, kind = self._overwrite_target(channel, target)
        overwrites = [
            o
            for o in channel.get("permission_overwrites") or []
            if (int(o["id"]), int(o["type"])) != (target_id, kind)
        ]
        overwrites.append({"id": str(target_id), "type": kind, "allow": str(allow), "deny": str(deny)})
        channel["permission_overwrites"] = overwrites
        self._broadcast_soon("CHANNEL_UPDATE", copy.deepcopy(channel))
        self._notify()
        return channel

    def clear_channel_overwrite(self, channel_id: int, target: Any) -> None:
        """Remove a role's or member's overwrite from a channel; dispatches CHANNEL_UPDATE."""
        channel = self._channel_or_404(channel_id)
        target_id, kind = self._overwrite_target(channel, target)
        channel["permission_overwrites"] = [
            o
            for o in channel.get("permission_overwrites") or []
            if (int(o["id"]), int(o["type"])) != (target_id, kind)
        ]
        self._broadcast_soon("CHANNEL_UPDATE", copy.deepcopy(channel))
        self._notify()

    def add_private_channel(
        self, name: str, *members: Mapping[str, Any], guild_id: int | None = None
    ) -> dict[str, Any]:
        """A text channel @everyone cannot view, open to the bot's role and to `members` (each a member
        overwrite allowing View Channel)."""
        channel = self.add_text_channel(name, guild_id=guild_id)
        channel_id = int(channel["id"])
        guild = self._guild(as_int(channel["guild_id"]))
        self.set_channel_overwrite(channel_id, guild.id, deny=Permissions.VIEW_CHANNEL)
        self.set_channel_overwrite(channel_id, guild.bot_role_id, allow=Permissions.VIEW_CHANNEL)
        for member in members:
            self.set_channel_overwrite(channel_id, member, allow=Permissions.VIEW_CHANNEL)
        return channel
