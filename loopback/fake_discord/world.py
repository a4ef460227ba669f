"""The world the fake keeps: identity, the guilds and their members, roles and channels, the places
beyond them, permissions, ids, and the stored messages, commands and interactions.

Identity
    ``application_id``, ``bot_user`` (dict), ``owner_user`` (the application owner, also the owner
    and a member of every guild), ``guild_id``, ``channel_id`` (its text channel "general") and
    ``guild_name`` of the first guild; ``guilds`` (id -> :class:`FakeGuild`, every server the bot is in).
World building
    ``add_member(name, *, permissions=None, bot=False, guild_id=None) -> user dict``;
    ``add_text_channel(name, *, guild_id=None) -> channel dict``; ``set_bot_permissions(bits, *,
    guild_id=None)``, ``set_everyone_permissions(bits, *, guild_id=None)`` (a member's guild
    permissions are the union of their roles; channel overwrites and private threads: ``access.py``); ``add_guild(name, *, shard=None, shard_count=None) ->
    FakeGuild`` (another server the bot is in, with its own "general", roles and the owner and the
    bot as members; ``shard``/``shard_count`` pick an id that Discord routes to that shard);
    ``guild_id=None`` always means the first guild;
    places beyond the bot's server: ``open_dm(user)`` (the DM with the bot, type 1),
    ``add_group_dm(*users)`` (type 3, the bot not in it), ``add_foreign_channel(name)`` (a text
    channel in ``foreign_guild_id``, a server the bot is not a member of).
Observation
    ``messages`` (id -> payload, bot/webhook/user messages incl. ephemeral ones),
    ``channels`` (id -> payload incl. threads), ``messages_in(channel_id)`` (ordered by id),
    ``registered_commands`` (``[None]`` global, ``[guild_id]`` guild bulk-overwrite lists, with ids),
    ``interactions`` (list of :class:`~loopback.fake_discord.FakeInteraction`),
    ``attachment_bytes(url_or_id)``; ``await wait_for(predicate, timeout=10, message=None)``.

The world changes through the world-building helpers here, the member actions of ``driver.py``
and the bot's REST calls (``rest/``); each change wakes :meth:`World.wait_for`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loopback.fake_discord.interaction import FakeInteraction
from loopback.fake_discord.server import REQUEST_CHANNEL, REQUEST_GUILD, REQUEST_PLACE
from loopback.fake_discord.wire import (
    DISCORD_EPOCH_MS,
    DM,
    FLAG_EPHEMERAL,
    GROUP_DM,
    GUILD_TEXT,
    THREAD_TYPES,
    Permissions,
    as_int,
    member_object,
    missing_permissions,
    now_iso,
    shard_of,
    unknown,
)

T = TypeVar("T")


class _Snowflakes:
    """Monotonic snowflake-like ids, so ordering by id is ordering by creation like on Discord."""

    def __init__(self) -> None:
        self._last = 0
        self._increment = itertools.count()

    def next(self) -> int:
        candidate = ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._increment) & 0xFFF)
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate

    def next_on_shard(self, shard_id: int, shard_count: int) -> int:
        """The next id that Discord routes to ``shard_id``: ``(id >> 22) % shard_count == shard_id``
        (a timestamp up to ``shard_count - 1`` ms ahead, then the ids carry on from it)."""
        candidate = self.next()
        timestamp = candidate >> 22
        ahead = (shard_id - timestamp) % shard_count
        if ahead:
            candidate = (timestamp + ahead) << 22
            self._last = candidate
        return candidate


@dataclass(eq=False)
class FakeGuild:
    """A server the bot is in: its members and roles by id (its channels live in ``channels``)."""

    id: int
    name: str
    channel_id: int  # its first text channel, "general" (also the system channel)
    bot_role_id: int
    joined_at: str
    members: dict[int, dict[str, Any]] = field(default_factory=dict)
    roles: dict[int, dict[str, Any]] = field(default_factory=dict)


class World:
    """The state of :class:`~loopback.fake_discord.FakeDiscord` and the helpers that build it."""

    def _init_world(
        self, *, bot_permissions: int | None, everyone_permissions: int | None, guild_name: str
    ) -> None:
        self._ids = _Snowflakes()
        self.application_id: int = self._ids.next()
        self.bot_user: dict[str, Any] = self._make_user("Mural", bot=True, user_id=self.application_id)
        self.owner_user: dict[str, Any] = self._make_user("owner")

        self.users: dict[int, dict[str, Any]] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.registered_commands: dict[int | None, list[dict[str, Any]]] = {}
        self.interactions: list[FakeInteraction] = []

        self._attachments: dict[int, tuple[str, bytes]] = {}
        self._all_attachments: dict[int, list[dict[str, Any]]] = {}  # message id -> incl. referenced
        self._thread_members: dict[int, set[int]] = {}
        self._interactions_by_id: dict[int, FakeInteraction] = {}
        self._interactions_by_token: dict[str, FakeInteraction] = {}
        self._opened_modals: list[tuple[FakeInteraction, dict[str, Any]]] = []
        self._changed = asyncio.Event()
        self.foreign_guild_id: int | None = None

        first = self._new_guild(
            guild_name,
            self._ids.next(),
            bot_permissions=bot_permissions,
            everyone_permissions=everyone_permissions,
        )
        self.guild_id: int = first.id
        self.channel_id: int = first.channel_id
        self.bot_role_id: int = first.bot_role_id
        # The first guild's members and roles (the same dicts as `guilds[guild_id]`'s).
        self.members: dict[int, dict[str, Any]] = first.members
        self.roles: dict[int, dict[str, Any]] = first.roles
        self._joined_at = first.joined_at

    @property
    def guild_name(self) -> str:
        return self.guilds[self.guild_id].name

    @guild_name.setter
    def guild_name(self, name: str) -> None:
        self.guilds[self.guild_id].name = name

    @property
    def attachment_size_limit(self) -> int:
        """Discord's upload limit: the package's ``ATTACHMENT_SIZE_LIMIT``, read at each use so that a
        test may patch ``loopback.fake_discord.ATTACHMENT_SIZE_LIMIT``."""
        from loopback import fake_discord

        return fake_discord.ATTACHMENT_SIZE_LIMIT

    # ------------------------------------------------------------------ waiting

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 10,  # noqa: ASYNC109 - part of the agreed test API
        *,
        message: str | None = None,
    ) -> T:
        """Wait until ``predicate()`` is truthy and return its value.

        Re-checks on every fake state change and every 20 ms (so predicates about the bot's own
        cache work too).  Raises ``TimeoutError`` describing the wait and the last requests.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                what = message or getattr(predicate, "__qualname__", repr(predicate))
                recent = "\n".join(f"  {r.method} {r.path} -> {r.status}" for r in self.requests[-8:])
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for {what}; last requests:\n{recent or '  (none)'}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.02))

    # ------------------------------------------------------------------ world building

    def _make_user(self, name: str, *, bot: bool = False, user_id: int | None = None) -> dict[str, Any]:
        uid = user_id if user_id is not None else self._ids.next()
        return {
            "id": str(uid),
            "username": name,
            "discriminator": "0" if not bot else "0001",
            "global_name": None if bot else name.title(),
            "avatar": None,
            "bot": bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }

    def _make_role(
        self,
        name: str,
        permissions: int,
        *,
        role_id: int,
        position: int,
        managed: bool = False,
        tags: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        role: dict[str, Any] = {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": managed,
            "mentionable": False,
            "flags": 0,
        }
        if tags:
            role["tags"] = tags
        return role

    def _make_text_channel(
        self, name: str, channel_id: int, *, position: int, guild_id: int | None = None
    ) -> dict[str, Any]:
        return {
            "id": str(channel_id),
            "type": GUILD_TEXT,
            "guild_id": str(guild_id or self.guild_id),
            "name": name,
            "position": position,
            "permission_overwrites": [],
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "last_pin_timestamp": None,
            "default_auto_archive_duration": 1440,
            "default_thread_rate_limit_per_user": 0,
            "flags": 0,
        }

    def _new_guild(
        self,
        name: str,
        guild_id: int,
        *,
        bot_permissions: int | None = None,
        everyone_permissions: int | None = None,
    ) -> FakeGuild:
        """A server with the bot and the owner as members, @everyone, the bot's managed role and "general"."""
        guild = FakeGuild(
            id=guild_id,
            name=name,
            channel_id=self._ids.next(),
            bot_role_id=self._ids.next(),
            joined_at=now_iso(),
        )
        self.guilds[guild_id] = guild
        everyone = everyone_permissions if everyone_permissions is not None else Permissions.EVERYONE_DEFAULT
        guild.roles[guild_id] = self._make_role("@everyone", everyone, role_id=guild_id, position=0)
        guild.roles[guild.bot_role_id] = self._make_role(
            "Mural",
            bot_permissions if bot_permissions is not None else Permissions.BOT_DEFAULT,
            role_id=guild.bot_role_id,
            position=1,
            managed=True,
            tags={"bot_id": str(self.application_id)},
        )
        self._add_member_record(self.bot_user, [guild.bot_role_id], guild_id)
        self._add_member_record(self.owner_user, [], guild_id)
        self.channels[guild.channel_id] = self._make_text_channel(
            "general", guild.channel_id, position=0, guild_id=guild_id
        )
        return guild

    def add_guild(
        self, name: str = "Another Guild", *, shard: int | None = None, shard_count: int | None = None
    ) -> FakeGuild:
        """The bot joins another server (GUILD_CREATE reaches the sessions of its shard).

        With ``shard`` and ``shard_count`` its id is one Discord routes to that shard,
        ``(guild_id >> 22) % shard_count == shard``; else wherever its id falls (see :meth:`shard_of`).
        """
        if (shard is None) != (shard_count is None):
            raise TypeError("add_guild() takes shard and shard_count together")
        if shard is not None and shard_count is not None and not 0 <= shard < shard_count:
            raise ValueError(f"shard {shard} is not one of {shard_count} shards")
        guild_id = (
            self._ids.next()
            if shard is None or shard_count is None
            else self._ids.next_on_shard(shard, shard_count)
        )
        guild = self._new_guild(name, guild_id)
        self._broadcast_soon("GUILD_CREATE", self._guild_create_payload(guild_id))
        self._notify()
        return guild

    @staticmethod
    def shard_of(guild_id: int | str, shard_count: int) -> int:
        """The shard Discord sends a guild's events and interactions to."""
        return shard_of(int(guild_id), shard_count)

    def _add_member_record(
        self, user: dict[str, Any], roles: list[int], guild_id: int | None = None
    ) -> dict[str, Any]:
        uid = int(user["id"])
        self.users[uid] = user
        member = member_object(user, roles, now_iso())
        self._guild(guild_id).members[uid] = member
        return member

    def add_member(
        self, name: str, *, permissions: int | None = None, bot: bool = False, guild_id: int | None = None
    ) -> dict[str, Any]:
        """Create a user and make them a member of the guild (the first by default); returns the user payload.

        ``permissions`` are granted through a personal role on top of @everyone (Discord
        permissions are additive), so ``member.permissions`` in interactions is their union.
        """
        guild = self._guild(guild_id)
        user = self._make_user(name, bot=bot)
        roles: list[int] = []
        if permissions is not None:
            role_id = self._ids.next()
            guild.roles[role_id] = self._make_role(f"{name}-role", permissions, role_id=role_id, position=1)
            roles.append(role_id)
            self._broadcast_soon(
                "GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": guild.roles[role_id]}
            )
        member = self._add_member_record(user, roles, guild.id)
        self._broadcast_soon("GUILD_MEMBER_ADD", {**member, "guild_id": str(guild.id)})
        self._notify()
        return user

    def add_text_channel(self, name: str, *, guild_id: int | None = None) -> dict[str, Any]:
        """Add another text channel to the guild (dispatches CHANNEL_CREATE to live sessions)."""
        guild = self._guild(guild_id)
        cid = self._ids.next()
        position = sum(
            1 for c in self.channels.values() if c["type"] == GUILD_TEXT and self._guild_id_of(c) == guild.id
        )
        channel = self._make_text_channel(name, cid, position=position, guild_id=guild.id)
        self.channels[cid] = channel
        self._broadcast_soon("CHANNEL_CREATE", channel)
        self._notify()
        return channel

    def open_dm(self, user: Mapping[str, Any]) -> dict[str, Any]:
        """The DM channel between ``user`` and the bot (type 1), created on first use like Discord's."""
        uid = int(user["id"])
        self.users.setdefault(uid, dict(user))
        for channel in self.channels.values():
            if channel["type"] == DM and int(channel["recipients"][0]["id"]) == uid:
                return channel
        cid = self._ids.next()
        channel = {
            "id": str(cid),
            "type": DM,
            "last_message_id": None,
            "recipients": [copy.deepcopy(self.users[uid])],
            "flags": 0,
        }
        self.channels[cid] = channel
        self._notify()
        return channel

    def add_group_dm(self, *users: Mapping[str, Any]) -> dict[str, Any]:
        """A group DM (type 3) of ``users``, the first its owner; the bot is not in it, so only a
        user-installed app reaches it, through interactions."""
        if len(users) < 2:
            raise ValueError("a group DM has at least two people")
        for user in users:
            self.users.setdefault(int(user["id"]), dict(user))
        cid = self._ids.next()
        channel = {
            "id": str(cid),
            "type": GROUP_DM,
            "name": None,
            "icon": None,
            "owner_id": str(users[0]["id"]),
            "last_message_id": None,
            "recipients": [copy.deepcopy(dict(u)) for u in users],
            "flags": 0,
        }
        self.channels[cid] = channel
        self._notify()
        return channel

    def add_foreign_channel(self, name: str) -> dict[str, Any]:
        """A text channel in another server, one the bot is not a member of: members reach Mural
        there as a user-installed app; the bot's own REST calls to it get 403 Missing Access."""
        if self.foreign_guild_id is None:
            self.foreign_guild_id = self._ids.next()
        cid = self._ids.next()
        channel = self._make_text_channel(name, cid, position=0)
        channel["guild_id"] = str(self.foreign_guild_id)
        self.channels[cid] = channel
        self._notify()
        return channel

    # ------------------------------------------------------------------ places and permissions

    def _place(self, channel: Mapping[str, Any]) -> str:
        """``guild`` (the bot's server), ``dm`` (with the bot), ``group`` (a group DM) or ``foreign``
        (a server without the bot)."""
        if channel["type"] == DM:
            return "dm"
        if channel["type"] == GROUP_DM:
            return "group"
        if as_int(channel.get("guild_id")) not in self.guilds:
            return "foreign"
        return "guild"

    def _guild(self, guild_id: int | str | None = None) -> FakeGuild:
        """A guild the bot is in (the first for None)."""
        return self.guilds[int(guild_id) if guild_id is not None else self.guild_id]

    def _guild_of_channel(self, channel_id: Any) -> FakeGuild:
        """The bot's guild a channel is in (the first guild for DMs, other places and unknown channels)."""
        return self._guild(self._guild_id_of(self.channels.get(int(channel_id), {})))

    def _guild_id_of(self, channel: Mapping[str, Any]) -> int | None:
        """The id of the bot's guild a channel or thread is in (None in DMs and servers without the bot)."""
        guild_id = as_int(channel.get("guild_id"))
        return guild_id if guild_id in self.guilds else None

    def _channel_place(self, channel_id: Any) -> str:
        channel = self.channels.get(int(channel_id))
        return "guild" if channel is None else self._place(channel)

    def _channel_or_404(self, channel_id: str | int) -> dict[str, Any]:
        channel = self.channels.get(int(channel_id))
        if channel is None:
            raise unknown("Channel", 10003)
        return channel

    @staticmethod
    def _is_thread(channel: Mapping[str, Any]) -> bool:
        return channel["type"] in THREAD_TYPES

    def set_bot_permissions(self, permissions: int, *, guild_id: int | None = None) -> None:
        """Change the bot's managed role (dispatches GUILD_ROLE_UPDATE).

        Permissions are the union of @everyone and the bot role, so to take away something
        @everyone has (e.g. ATTACH_FILES) use :meth:`set_everyone_permissions` as well.
        """
        guild = self._guild(guild_id)
        self._set_role_permissions(guild, guild.bot_role_id, permissions)

    def set_everyone_permissions(self, permissions: int, *, guild_id: int | None = None) -> None:
        """Change the @everyone role (dispatches GUILD_ROLE_UPDATE)."""
        guild = self._guild(guild_id)
        self._set_role_permissions(guild, guild.id, permissions)

    def _set_role_permissions(self, guild: FakeGuild, role_id: int, permissions: int) -> None:
        role = guild.roles[role_id]
        role["permissions"] = str(permissions)
        self._broadcast_soon("GUILD_ROLE_UPDATE", {"guild_id": str(guild.id), "role": role})
        self._notify()

    def permissions_for(
        self, user_id: int, guild_id: int | None = None, *, channel_id: int | None = None
    ) -> int:
        """A member's permissions: in the guild (@everyone and their roles), or with ``channel_id`` in that
        channel or thread, its overwrites applied as Discord does (see ``access.py``)."""
        if channel_id is not None:
            channel = self.channels.get(int(channel_id))
            if channel is not None and guild_id is None:
                guild_id = self._guild_id_of(channel)
        if user_id == int(self.owner_user["id"]):
            return Permissions.ALL
        guild = self._guild(guild_id)
        member = guild.members.get(user_id)
        if member is None:
            return 0
        perms = int(guild.roles[guild.id]["permissions"])
        for rid in member["roles"]:
            role = guild.roles.get(int(rid))
            if role is not None:
                perms |= int(role["permissions"])
        if perms & Permissions.ADMINISTRATOR:
            return Permissions.ALL
        channel = self.channels.get(int(channel_id)) if channel_id is not None else None
        if channel is not None and self._guild_id_of(channel) == guild.id:
            return self._channel_permissions(user_id, perms, channel)
        return perms

    def _bot_id(self) -> int:
        return int(self.bot_user["id"])

    def _require_bot_perms(self, bits: int) -> None:
        if REQUEST_PLACE.get() == "dm":
            return  # no server permissions apply in a DM with the bot
        if (
            self.permissions_for(self._bot_id(), REQUEST_GUILD.get(), channel_id=REQUEST_CHANNEL.get()) & bits
            != bits
        ):
            raise missing_permissions()

    def _require_member(self, user: Mapping[str, Any], guild_id: int | None = None) -> int:
        uid = int(user["id"])
        guild = self._guild(guild_id)
        if uid not in guild.members:
            raise LookupError(
                f"user {user.get('username')!r} ({uid}) is not a member of guild {guild.name!r}; use add_member()"
            )
        return uid

    def _member_payload(
        self,
        uid: int,
        *,
        guild_id: int | None = None,
        with_user: bool = True,
        permissions: bool = False,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        """A member object; with ``permissions``, theirs in ``channel_id`` (overwrites included), as
        interactions carry them."""
        member = dict(self._guild(guild_id).members[uid])
        if not with_user:
            member.pop("user", None)
        if permissions:
            member["permissions"] = str(self.permissions_for(uid, guild_id, channel_id=channel_id))
        return member

    def _join_thread(self, thread: dict[str, Any], user_id: int) -> None:
        members = self._thread_members.setdefault(int(thread["id"]), set())
        if user_id in members:
            return
        members.add(user_id)
        thread["member_count"] = len(members)
        if user_id == self._bot_id():
            thread["member"] = self._thread_member(int(thread["id"]), user_id)

    @staticmethod
    def _thread_member(thread_id: int, user_id: int) -> dict[str, Any]:
        return {"id": str(thread_id), "user_id": str(user_id), "join_timestamp": now_iso(), "flags": 0}

    # ------------------------------------------------------------------ observation

    def messages_in(self, channel_id: int, *, include_ephemeral: bool = True) -> list[dict[str, Any]]:
        """Messages of a channel or thread, oldest first."""
        result = [
            m
            for m in self.messages.values()
            if int(m["channel_id"]) == int(channel_id)
            and (include_ephemeral or not int(m.get("flags", 0)) & FLAG_EPHEMERAL)
        ]
        return sorted(result, key=lambda m: int(m["id"]))

    def attachment_bytes(self, url_or_id: str | int) -> bytes:
        """The bytes of an uploaded attachment, by attachment id or its URL."""
        if isinstance(url_or_id, str) and not url_or_id.isdigit():
            match = re.search(r"/attachments/\d+/(\d+)/", url_or_id)
            if match is None:
                raise KeyError(url_or_id)
            url_or_id = match.group(1)
        return self._attachments[int(url_or_id)][1]
