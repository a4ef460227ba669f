"""What tests call to act as members, and to read what a member sees.

Driving the bot (each dispatches on the gateway and returns immediately)
    ``await slash_command(user, "name [group] [sub]", {option: value}, channel_id=None)``;
    ``await autocomplete(user, "name [group] [sub]", {option: value}, focused="option",
    channel_id=None)`` (type 4: the user is typing ``options[focused]``, a str, default ``""``;
    read the bot's answer with ``await inter.wait_response()`` then ``inter.choices``);
    ``await click(user, message_id, custom_id=None, *, label=None, values=None)`` (by custom_id,
    or by the label a member reads on a button; buttons and selects anywhere in the message,
    containers and sections included);
    ``await submit_modal(user, custom_id, {field_custom_id: value}, *, files=None, channel_id=None,
    message_id=None)`` (``files={upload_custom_id: [(filename, bytes), ...]}`` fills File Upload
    components);
    ``await message_command(user, "Context Menu Name", message_id, *, channel_id=None)`` and
    ``await user_command(user, "Context Menu Name", target_user_or_id, *, channel_id=None)``
    (context menu commands, types 3 and 2; ``inter.target_id`` is the target);
    ``await user_message(user, channel_id, content, *, files=None, reply_to=None, mention_author=True)
    -> message dict`` (a reply pings its author unless ``mention_author=False``, as the client's "@ on");
    ``await create_thread(user, channel_id, name, *, message_id=None, private=False) -> thread dict``.
    Deleting messages and thread membership: ``moderation.py``.
    All but the last two return a :class:`~loopback.fake_discord.FakeInteraction`.  ``slash_command``,
    ``message_command`` take ``install="guild"|"user"`` (default: ``"user"`` where only a user install
    reaches, else ``"guild"``); clicks and modal submits run under the install of the interaction
    that made their message.  Interactions carry ``context`` (0 server, 1 DM with the bot, 2 group
    DM), ``authorizing_integration_owners`` (``{"0": guild id or "0" in a DM}`` or ``{"1": user
    id}``) and ``app_permissions`` (the bot's in its server; in a DM with it ``Permissions.BOT_DM``;
    where only the interaction reaches, ``Permissions.USER_INSTALL``); DM interactions carry
    ``user``, not ``member``.
Reading a message the way a member does (each takes an id, a payload or a discord.py ``Message``)
    ``text_of(message) -> str`` (content, embed texts, then every text display in document order,
    one per line), ``buttons_of(message) -> [{"label", "custom_id", "disabled", "style", "url",
    "id"}]`` (document order), ``attachments_of(message)`` (every attachment, including those its
    components display and Discord leaves out of ``attachments``).

What a member cannot do is refused before anything is sent (LookupError, ValueError, TypeError):
    * commands are offered only where their ``contexts`` and ``integration_types`` allow (unset
      means every context unless ``dm_permission`` is false, and a guild install only);
    * slash commands must be synced first (``require_synced_commands``) and their options are
      validated against the synced definition; clicks need an existing enabled component; modal
      submits need a modal the bot actually opened, with required fields filled;
    * autocomplete needs a synced option marked ``autocomplete: true``; the focused value is sent
      unvalidated as a string, other options are validated, required ones may be missing, and
      ``resolved`` is never sent (entity options arrive as bare ids, as on Discord);
    * context menu interactions carry ``target_id`` and ``resolved`` (``messages`` or
      ``users``/``members``);
    * submitted modal uploads are ephemeral attachments in ``data.resolved.attachments`` and the
      component's ``values`` are their ids; ``min_values`` (default 1, 0 when not required) and
      ``max_values`` (default 1) are enforced.
"""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loopback.fake_discord.interaction import FakeInteraction
from loopback.fake_discord.server import UploadedFile
from loopback.fake_discord.wire import (
    ACTION_ROW,
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    BUTTON,
    CHAT_INPUT,
    CONTEXT_BOT_DM,
    CONTEXT_GUILD,
    CONTEXT_PRIVATE_CHANNEL,
    FILE_UPLOAD,
    FLAG_EPHEMERAL,
    GUILD_INSTALL,
    LABEL,
    MESSAGE_COMMAND,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    SELECT_TYPES,
    TEXT_DISPLAY,
    TEXT_INPUT,
    USER_COMMAND,
    USER_INSTALL,
    ApiError,
    Permissions,
    as_int,
    member_object,
    missing_permissions,
    walk_components,
)


@dataclass
class _ModalForm:
    """What a member typed and uploaded into a modal, and what submitting it produced."""

    values: dict[str, Any]
    files: dict[str, Sequence[tuple[str, bytes]]]
    channel_id: int
    used: set[str] = field(default_factory=set)
    used_files: set[str] = field(default_factory=set)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)


class Driver:
    """Member actions and member's-eye reading, as methods of :class:`~loopback.fake_discord.FakeDiscord`."""

    # ------------------------------------------------------------------ interactions

    def _interaction_base(
        self,
        kind: int,
        user: Mapping[str, Any],
        channel: dict[str, Any],
        *,
        locale: str = "en-US",
        install: str | None = None,
    ) -> dict[str, Any]:
        """The fields every interaction carries, shaped by where it happens and which install runs it.

        ``install`` is ``"guild"`` (the app installed in the bot's server; in a DM with the bot the
        owner id is ``"0"``) or ``"user"`` (the member's own install); by default ``"user"`` where
        only a user install can reach (a group DM, a server without the bot), else ``"guild"``.
        """
        place = self._place(channel)
        install = install or ("user" if place in ("group", "foreign") else "guild")
        if install not in ("guild", "user"):
            raise ValueError(f"install is 'guild' or 'user', not {install!r}")
        if install == "guild" and place in ("group", "foreign"):
            raise ValueError(f"a {place} channel is reached only through a user install (install='user')")
        uid = int(user["id"])
        payload: dict[str, Any] = {
            "id": str(self._ids.next()),
            "application_id": str(self.application_id),
            "type": kind,
            "token": "fake." + secrets.token_urlsafe(48),
            "version": 1,
            "channel_id": channel["id"],
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        channel_payload = copy.deepcopy(channel)
        if place in ("dm", "group"):
            if all(int(r["id"]) != uid for r in channel["recipients"]):
                raise LookupError(f"user {uid} is not in DM channel {channel['id']}")
            payload["user"] = copy.deepcopy(self.users.get(uid, dict(user)))
            payload["context"] = CONTEXT_BOT_DM if place == "dm" else CONTEXT_PRIVATE_CHANNEL
            payload["app_permissions"] = str(
                Permissions.BOT_DM
                if place == "dm"
                else Permissions.USER_INSTALL | Permissions.USE_EXTERNAL_EMOJIS
            )
            # In a DM with the bot, a guild install's owner is "0": there is no server.
            owner = "0" if install == "guild" else str(uid)
        elif place == "foreign":
            self.users.setdefault(uid, dict(user))
            member_perms = Permissions.EVERYONE_DEFAULT
            channel_payload["permissions"] = str(member_perms)
            payload["guild_id"] = channel["guild_id"]
            payload["guild"] = {"id": channel["guild_id"], "locale": "en-US", "features": []}
            payload["guild_locale"] = "en-US"
            payload["member"] = {
                **member_object(copy.deepcopy(self.users[uid]), [], self._joined_at),
                "permissions": str(member_perms),
            }
            payload["context"] = CONTEXT_GUILD
            payload["app_permissions"] = str(Permissions.USER_INSTALL)
            owner = str(uid)
        else:
            guild_id = self._guild_of_channel(channel["id"]).id
            self._require_member(user, guild_id)
            channel_id = int(channel["id"])
            if not self.can_view(uid, channel_id):
                raise LookupError(f"user {uid} cannot view channel {channel_id}, so cannot act in it")
            channel_payload["permissions"] = str(self.permissions_for(uid, guild_id, channel_id=channel_id))
            payload["guild_id"] = str(guild_id)
            payload["guild"] = {"id": str(guild_id), "locale": "en-US", "features": []}
            payload["guild_locale"] = "en-US"
            payload["member"] = self._member_payload(
                uid, guild_id=guild_id, permissions=True, channel_id=channel_id
            )
            payload["context"] = CONTEXT_GUILD
            payload["app_permissions"] = str(
                self.permissions_for(self._bot_id(), guild_id, channel_id=channel_id)
            )
            owner = str(guild_id) if install == "guild" else str(uid)
        payload["channel"] = channel_payload
        key = GUILD_INSTALL if install == "guild" else USER_INSTALL
        payload["authorizing_integration_owners"] = {key: owner}
        return payload

    @staticmethod
    def _check_command_reach(command: Mapping[str, Any] | None, payload: Mapping[str, Any]) -> None:
        """Discord offers a command only where its ``contexts`` and ``integration_types`` allow it.

        Unset, ``contexts`` means every context unless the legacy ``dm_permission`` is false, and
        ``integration_types`` means a guild install only (an app's default install).
        """
        if command is None:
            return
        context = payload["context"]
        contexts = command.get("contexts")
        if contexts is None:
            contexts = [CONTEXT_GUILD] if command.get("dm_permission") is False else [0, 1, 2]
        installs = command.get("integration_types") or [0]
        install = int(next(iter(payload["authorizing_integration_owners"])))
        if context not in contexts or install not in installs:
            raise LookupError(
                f"{command['name']!r} is not offered here (context {context}, install {install}; "
                f"the command allows contexts {contexts}, installs {installs})"
            )

    async def _dispatch_interaction(
        self, payload: dict[str, Any], user: Mapping[str, Any]
    ) -> FakeInteraction:
        session = self._interaction_session(as_int(payload.get("guild_id")))
        inter = FakeInteraction(self, payload, dict(user))
        inter.shard_id = session.shard_id
        self.interactions.append(inter)
        self._interactions_by_id[inter.id] = inter
        self._interactions_by_token[inter.token] = inter
        inter.dispatched_at = time.monotonic()
        await self._send_event(session, "INTERACTION_CREATE", payload)
        self._notify()
        return inter

    @staticmethod
    def _install_of_owners(carrier: Mapping[str, Any]) -> str:
        owners = carrier.get("authorizing_integration_owners") or {}
        return "guild" if GUILD_INSTALL in owners else "user"

    def _install_of(self, message: Mapping[str, Any]) -> str | None:
        """A press on an interaction's message runs under the install that interaction ran under."""
        metadata = message.get("interaction_metadata")
        if not metadata:
            return None
        return self._install_of_owners(metadata)

    # ------------------------------------------------------------------ commands

    def _find_command(
        self, name: str, ctype: int = CHAT_INPUT, guild_id: int | None = None
    ) -> tuple[dict[str, Any] | None, int | None]:
        """A synced command by name: the guild's own first (the first guild's outside guilds), then global."""
        for scope in (guild_id or self.guild_id, None):
            for command in self.registered_commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == ctype:
                    return command, scope
        return None, None

    def _option_value(
        self,
        name: str,
        value: Any,
        opt_type: int | None,
        resolved: dict[str, dict[str, Any]],
        channel_id: int,
    ) -> tuple[int, Any]:
        """Encode a Python value as an interaction option (and fill ``resolved`` for entities)."""
        if opt_type is None:
            if isinstance(value, bool):
                opt_type = 5
            elif isinstance(value, int):
                opt_type = 4
            elif isinstance(value, float):
                opt_type = 10
            elif isinstance(value, str):
                opt_type = 3
            elif isinstance(value, dict) and "username" in value:
                opt_type = 6
            elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], bytes | bytearray):
                opt_type = 11
            else:
                raise TypeError(f"option {name!r}: cannot infer a Discord option type for {value!r}")
        checks: dict[int, Callable[[Any], bool]] = {
            3: lambda v: isinstance(v, str),
            4: lambda v: isinstance(v, int) and not isinstance(v, bool),
            5: lambda v: isinstance(v, bool),
            10: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        }
        if opt_type in checks:
            if not checks[opt_type](value):
                raise TypeError(f"option {name!r} has type {opt_type} but got {value!r}")
            return opt_type, value
        if opt_type == 6:
            user = value if isinstance(value, dict) else self.users[int(value)]
            uid = int(user["id"])
            resolved.setdefault("users", {})[str(uid)] = user
            guild = self._guild_of_channel(channel_id)
            if uid in guild.members:
                member = self._member_payload(
                    uid, guild_id=guild.id, with_user=False, permissions=True, channel_id=channel_id
                )
                resolved.setdefault("members", {})[str(uid)] = member
            return 6, str(uid)
        if opt_type == 7:
            channel = self._channel_or_404(value["id"] if isinstance(value, dict) else value)
            resolved.setdefault("channels", {})[channel["id"]] = {
                **channel,
                "permissions": str(Permissions.ALL),
            }
            return 7, channel["id"]
        if opt_type == 8:
            role = self._guild_of_channel(channel_id).roles[
                int(value["id"] if isinstance(value, dict) else value)
            ]
            resolved.setdefault("roles", {})[role["id"]] = role
            return 8, role["id"]
        if opt_type == 11:
            filename, data = value
            upload = UploadedFile("files[0]", filename, "application/octet-stream", bytes(data))
            attachment = self._store_attachment(channel_id, upload, filename, ephemeral=True)
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            return 11, attachment["id"]
        raise TypeError(f"option {name!r}: unsupported option type {opt_type}")

    def _build_options(
        self,
        definitions: list[dict[str, Any]] | None,
        values: Mapping[str, Any],
        resolved: dict[str, dict[str, Any]],
        channel_id: int,
        command_path: str,
        *,
        focused: str | None = None,
    ) -> list[dict[str, Any]]:
        """Encode ``values`` as interaction options, checked against ``definitions`` when known.

        With ``focused`` (an autocomplete interaction) that option is sent as the raw string the
        user is typing, unchecked and flagged ``"focused": true``, and required options may be missing.
        """
        by_name = {d["name"]: d for d in definitions or []}
        options: list[dict[str, Any]] = []
        if focused is not None and focused not in values:
            values = {**values, focused: ""}  # the user focused an empty field
        for name, value in values.items():
            definition = by_name.get(name)
            if definitions is not None and definition is None:
                raise ValueError(f"/{command_path} has no option {name!r} (has {sorted(by_name)})")
            if name == focused:
                options.append(self._focused_option(command_path, name, definition, value))
                continue
            opt_type, encoded = self._option_value(
                name, value, definition["type"] if definition else None, resolved, channel_id
            )
            if definition:
                self._check_option_limits(command_path, name, definition, encoded)
            if definition and definition.get("choices"):
                allowed = [c["value"] for c in definition["choices"]]
                if encoded not in allowed:
                    raise ValueError(f"/{command_path} option {name!r}: {encoded!r} is not one of {allowed}")
            options.append({"name": name, "type": opt_type, "value": encoded})
        for definition in definitions or []:
            if focused is None and definition.get("required") and definition["name"] not in values:
                raise ValueError(f"/{command_path} requires option {definition['name']!r}")
        return options

    @staticmethod
    def _focused_option(
        command_path: str, name: str, definition: Mapping[str, Any] | None, value: Any
    ) -> dict[str, Any]:
        """The option being typed in an autocomplete interaction: always a string, never validated."""
        if definition is None or not definition.get("autocomplete"):
            raise ValueError(
                f"/{command_path} option {name!r} has no autocomplete, so Discord never sends "
                "autocomplete interactions for it"
            )
        if not isinstance(value, str):
            raise TypeError(
                f"/{command_path} option {name!r} is focused: pass the partially typed text as a str, "
                f"not {value!r}"
            )
        return {"name": name, "type": definition["type"], "value": value, "focused": True}

    @staticmethod
    def _check_option_limits(command_path: str, name: str, definition: Mapping[str, Any], value: Any) -> None:
        """The Discord client refuses values outside an option's declared bounds."""
        where = f"/{command_path} option {name!r}"
        if isinstance(value, str) and definition.get("type") == 3:
            low, high = definition.get("min_length", 0), definition.get("max_length", 6000)
            if not low <= len(value) <= high:
                raise ValueError(f"{where}: length {len(value)} outside [{low}, {high}]")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if definition.get("min_value") is not None and value < definition["min_value"]:
                raise ValueError(f"{where}: {value} < min_value {definition['min_value']}")
            if definition.get("max_value") is not None and value > definition["max_value"]:
                raise ValueError(f"{where}: {value} > max_value {definition['max_value']}")

    def _command_payload(
        self,
        user: Mapping[str, Any],
        name: str,
        options: Mapping[str, Any],
        channel_id: int | None,
        locale: str,
        *,
        focused: str | None = None,
        install: str | None = None,
    ) -> dict[str, Any]:
        """A chat-input command interaction for ``/name`` (``"group sub"`` for subcommands).

        With ``focused`` it is an autocomplete interaction (type 4): the focused option is flagged
        and ``resolved`` is left out, since Discord never resolves entities while the user types.
        """
        parts = name.split()
        channel = self._channel_or_404(channel_id or self.channel_id)
        command, scope = self._find_command(parts[0], CHAT_INPUT, self._guild_id_of(channel))
        if command is None and (self.require_synced_commands or focused is not None):
            known = sorted({c["name"] for cmds in self.registered_commands.values() for c in cmds})
            raise LookupError(
                f"/{parts[0]} is not a synced command (synced: {known}); call bot.tree.sync() first"
            )
        kind = APPLICATION_COMMAND if focused is None else AUTOCOMPLETE
        payload = self._interaction_base(kind, user, channel, locale=locale, install=install)
        self._check_command_reach(command, payload)
        resolved: dict[str, dict[str, Any]] = {}
        definitions: list[dict[str, Any]] | None = command.get("options", []) if command else None
        chain: list[tuple[str, int]] = []
        for sub in parts[1:]:
            if definitions is not None:
                match = next((d for d in definitions if d["name"] == sub and d["type"] in (1, 2)), None)
                if match is None:
                    raise LookupError(f"/{name}: {sub!r} is not a subcommand")
                chain.append((sub, match["type"]))
                definitions = match.get("options", [])
            else:
                chain.append((sub, 1 if sub == parts[-1] else 2))
        leaf = self._build_options(definitions, options, resolved, int(channel["id"]), name, focused=focused)
        for sub, sub_type in reversed(chain):
            leaf = [{"name": sub, "type": sub_type, "options": leaf}]
        data: dict[str, Any] = {
            "id": command["id"] if command else str(self._ids.next()),
            "name": parts[0],
            "type": 1,
            "options": leaf,
        }
        if scope is not None:
            data["guild_id"] = str(scope)
        if resolved and focused is None:
            data["resolved"] = resolved
        payload["data"] = data
        return payload

    async def slash_command(
        self,
        user: Mapping[str, Any],
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        channel_id: int | None = None,
        locale: str = "en-US",
        install: str | None = None,
    ) -> FakeInteraction:
        """A member runs ``/name`` (``"group sub"`` for subcommands) with ``options``.

        Option types come from the synced definition when there is one (and are checked against
        it), else are inferred: str 3, int 4, bool 5, float 10, user dict 6, ``(filename, bytes)`` 11.
        """
        payload = self._command_payload(user, name, options or {}, channel_id, locale, install=install)
        return await self._dispatch_interaction(payload, user)

    async def autocomplete(
        self,
        user: Mapping[str, Any],
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        focused: str,
        channel_id: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A member is typing option ``focused`` of ``/name`` (``"group sub"`` for subcommands).

        Sends an APPLICATION_COMMAND_AUTOCOMPLETE interaction (type 4).  ``options[focused]`` is the
        partially typed text and must be a str whatever the option's type (``""`` if absent); it is
        not checked against min/max/choices.  The other ``options`` are what the user already
        filled in and are checked like :meth:`slash_command`'s, except that required ones may be
        missing.  The focused option must be synced with ``autocomplete: true`` (else ValueError).
        The bot's suggestions: ``await inter.wait_response()``, then ``inter.choices``.
        """
        payload = self._command_payload(user, name, options or {}, channel_id, locale, focused=focused)
        return await self._dispatch_interaction(payload, user)

    def _context_menu_payload(
        self,
        user: Mapping[str, Any],
        name: str,
        ctype: int,
        target_id: int,
        resolved: dict[str, Any],
        channel: dict[str, Any],
        locale: str,
        install: str | None = None,
    ) -> dict[str, Any]:
        command, scope = self._find_command(name, ctype, self._guild_id_of(channel))
        if command is None and self.require_synced_commands:
            kind = "message" if ctype == MESSAGE_COMMAND else "user"
            known = sorted(
                c["name"]
                for cmds in self.registered_commands.values()
                for c in cmds
                if c.get("type") == ctype
            )
            raise LookupError(
                f"{name!r} is not a synced {kind} command (synced: {known}); call bot.tree.sync() first"
            )
        payload = self._interaction_base(APPLICATION_COMMAND, user, channel, locale=locale, install=install)
        self._check_command_reach(command, payload)
        data: dict[str, Any] = {
            "id": command["id"] if command else str(self._ids.next()),
            "name": name,
            "type": ctype,
            "target_id": str(target_id),
            "resolved": resolved,
        }
        if scope is not None:
            data["guild_id"] = str(scope)
        payload["data"] = data
        return payload

    async def message_command(
        self,
        user: Mapping[str, Any],
        name: str,
        message_id: int,
        *,
        channel_id: int | None = None,
        locale: str = "en-US",
        install: str | None = None,
    ) -> FakeInteraction:
        """A member picks Apps > ``name`` in the context menu of a message (a type 3 command).

        Dispatches an APPLICATION_COMMAND interaction whose ``data`` is ``{"id", "name", "type": 3,
        "target_id", "resolved": {"messages": {id: message}}}`` like Discord's; the resolved message
        is the stored one as any client sees it (full content whatever the bot's intents, and
        without the attachments its components display).  ``channel_id`` defaults to the message's
        channel; ephemeral messages have no context menu.
        """
        message = self.messages.get(int(message_id))
        if message is None:
            raise LookupError(f"message {message_id} does not exist (deleted or never sent)")
        if int(message.get("flags", 0)) & FLAG_EPHEMERAL:
            raise LookupError(f"message {message_id} is ephemeral; Discord offers no apps menu on it")
        if channel_id is not None and int(channel_id) != int(message["channel_id"]):
            raise LookupError(f"message {message_id} is not in channel {channel_id}")
        channel = self._channel_or_404(message["channel_id"])
        resolved = {"messages": {message["id"]: copy.deepcopy(message)}}
        payload = self._context_menu_payload(
            user, name, MESSAGE_COMMAND, int(message_id), resolved, channel, locale, install
        )
        return await self._dispatch_interaction(payload, user)

    async def user_command(
        self,
        user: Mapping[str, Any],
        name: str,
        target: Mapping[str, Any] | int,
        *,
        channel_id: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A member picks Apps > ``name`` in the context menu of ``target`` (a user dict or id; type 2).

        ``data.resolved`` carries the target in ``users`` and, if they are a member, ``members``.
        """
        channel = self._channel_or_404(channel_id or self.channel_id)
        resolved: dict[str, dict[str, Any]] = {}
        _, target_id = self._option_value("target", target, 6, resolved, int(channel["id"]))
        payload = self._context_menu_payload(
            user, name, USER_COMMAND, int(target_id), resolved, channel, locale
        )
        return await self._dispatch_interaction(payload, user)

    # ------------------------------------------------------------------ components and modals

    async def click(
        self,
        user: Mapping[str, Any],
        message_id: int,
        custom_id: str | None = None,
        *,
        label: str | None = None,
        values: Sequence[str] | None = None,
    ) -> FakeInteraction:
        """A member clicks a button (or picks ``values`` in a select) on a stored message.

        The component is found by ``custom_id`` or, for buttons, by the ``label`` a member reads
        (exactly one must match), anywhere in the message: action rows, containers, sections.
        Disabled components and link buttons refuse the click (ValueError), as the client does.
        """
        if (custom_id is None) == (label is None):
            raise TypeError("click() needs exactly one of custom_id or label=")
        message = self.messages.get(int(message_id))
        if message is None:
            raise LookupError(f"message {message_id} does not exist (deleted or never sent)")
        everything = list(walk_components(message.get("components", [])))
        if label is not None:
            matches = [c for c in everything if c.get("type") == BUTTON and c.get("label") == label]
            if len(matches) != 1:
                labels = [c.get("label") for c in everything if c.get("type") == BUTTON]
                raise LookupError(
                    f"message {message_id} has {len(matches)} buttons labelled {label!r} (buttons: {labels})"
                )
            component: dict[str, Any] | None = matches[0]
            if component.get("custom_id") is None:
                raise ValueError(f"button {label!r} is a link (or premium) button; it sends no interaction")
            custom_id = component["custom_id"]
        else:
            component = next((c for c in everything if c.get("custom_id") == custom_id), None)
        if component is None:
            ids = [c.get("custom_id") for c in everything if c.get("custom_id")]
            raise LookupError(f"message {message_id} has no component {custom_id!r} (has {ids})")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; users cannot click it")
        channel = self._channel_or_404(message["channel_id"])
        payload = self._interaction_base(MESSAGE_COMPONENT, user, channel, install=self._install_of(message))
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if isinstance(component.get("id"), int):
            data["id"] = component["id"]
        if component["type"] in SELECT_TYPES:
            if values is None:
                raise ValueError(f"select {custom_id!r} needs values=[...]")
            data["values"] = [str(v) for v in values]
        payload["data"] = data
        payload["message"] = copy.deepcopy(message)
        return await self._dispatch_interaction(payload, user)

    def _modal_component_data(self, comp: dict[str, Any], form: _ModalForm) -> dict[str, Any]:
        ctype = comp["type"]
        if ctype == ACTION_ROW:
            return {
                "type": ACTION_ROW,
                "id": comp.get("id"),
                "components": [self._modal_component_data(c, form) for c in comp.get("components", [])],
            }
        if ctype == LABEL:
            return {
                "type": LABEL,
                "id": comp.get("id"),
                "component": self._modal_component_data(comp["component"], form),
            }
        if ctype == TEXT_DISPLAY:
            return {"type": TEXT_DISPLAY, "id": comp.get("id")}
        custom_id = comp.get("custom_id", "")
        result: dict[str, Any] = {"type": ctype, "id": comp.get("id"), "custom_id": custom_id}
        provided = custom_id in form.values
        value = form.values.get(custom_id)
        form.used.add(custom_id)
        required = bool(comp.get("required", True))
        if ctype == TEXT_INPUT:
            text = str(value) if provided else str(comp.get("value") or "")
            if required and not text:
                raise ValueError(f"modal field {custom_id!r} is required")
            low, high = comp.get("min_length") or 0, comp.get("max_length") or 4000
            if text and not low <= len(text) <= high:
                raise ValueError(f"modal field {custom_id!r}: length {len(text)} outside [{low}, {high}]")
            result["value"] = text
        elif ctype == FILE_UPLOAD:
            if provided:
                raise TypeError(
                    f"modal field {custom_id!r} is a file upload: pass files={{{custom_id!r}: [...]}}"
                )
            uploads = list(form.files.get(custom_id) or [])
            form.used_files.add(custom_id)
            low = comp.get("min_values")
            low = (1 if required else 0) if low is None else int(low)
            high = comp.get("max_values")
            high = 1 if high is None else int(high)
            if (uploads or required) and not low <= len(uploads) <= high:
                raise ValueError(
                    f"modal field {custom_id!r} takes {low} to {high} file(s), got {len(uploads)}"
                )
            ids: list[str] = []
            for filename, data in uploads:
                if len(data) > self.attachment_size_limit:
                    raise ValueError(f"modal field {custom_id!r}: {filename} is over the upload limit")
                upload = UploadedFile(f"files[{len(ids)}]", filename, "application/octet-stream", bytes(data))
                attachment = self._store_attachment(form.channel_id, upload, filename, ephemeral=True)
                form.resolved.setdefault("attachments", {})[attachment["id"]] = attachment
                ids.append(attachment["id"])
            result["values"] = ids
        elif ctype in (*SELECT_TYPES, 22):
            chosen = [str(v) for v in (value if provided else [])]
            low = comp.get("min_values")
            low = 1 if low is None else int(low)
            if required and low > len(chosen):
                raise ValueError(f"modal field {custom_id!r} needs at least {low} value(s)")
            result["values"] = chosen
        elif ctype == 21:
            result["value"] = None if value is None else str(value)
        elif ctype == 23:
            result["value"] = bool(value)
        else:
            raise ValueError(f"modal component type {ctype} is not supported by the fake")
        return result

    async def submit_modal(
        self,
        user: Mapping[str, Any],
        custom_id: str,
        values: Mapping[str, Any] | None = None,
        *,
        files: Mapping[str, Sequence[tuple[str, bytes]]] | None = None,
        channel_id: int | None = None,
        message_id: int | None = None,
    ) -> FakeInteraction:
        """A member submits a modal the bot opened earlier (latest one with this ``custom_id``).

        The submitted components mirror the modal's layout (action rows or labels), as Discord
        does; ``values`` maps text-input custom_ids to text (lists for selects, bool for checkbox).
        ``files`` maps file-upload (type 19) custom_ids to ``[(filename, bytes), ...]``: they become
        ephemeral attachments in ``data.resolved.attachments`` and the component's ``values`` are
        their ids, as on Discord.
        """
        opened = next(
            (item for item in reversed(self._opened_modals) if item[1]["custom_id"] == custom_id), None
        )
        if opened is None:
            shown = [m["custom_id"] for _, m in self._opened_modals]
            raise LookupError(f"the bot never opened a modal {custom_id!r} (opened: {shown})")
        source, modal = opened
        channel = self._channel_or_404(channel_id or source.channel_id)
        form = _ModalForm(values=dict(values or {}), files=dict(files or {}), channel_id=int(channel["id"]))
        components = [self._modal_component_data(c, form) for c in modal["components"]]
        unknown = (set(form.values) - form.used) | (set(form.files) - form.used_files)
        if unknown:
            raise ValueError(f"modal {custom_id!r} has no fields {sorted(unknown)} (or none that take them)")
        message_id = message_id if message_id is not None else source.message_id
        payload = self._interaction_base(
            MODAL_SUBMIT, user, channel, install=self._install_of_owners(source.payload)
        )
        payload["data"] = {"custom_id": custom_id, "components": components}
        if form.resolved:
            payload["data"]["resolved"] = form.resolved
        if message_id is not None:
            message = self.messages.get(int(message_id))
            if message is None:
                raise LookupError(f"message {message_id} does not exist")
            payload["message"] = copy.deepcopy(message)
        return await self._dispatch_interaction(payload, user)

    # ------------------------------------------------------------------ messages and threads

    async def user_message(
        self,
        user: Mapping[str, Any],
        channel_id: int,
        content: str,
        *,
        files: Mapping[str, bytes] | None = None,
        reply_to: int | None = None,
        mention_author: bool = True,
    ) -> dict[str, Any]:
        """A member posts ``content`` (and optional ``files`` name -> bytes) in a channel, thread or DM.

        A reply pings the author it answers unless ``mention_author=False`` (the client's "@ on"
        default): that author is then in ``mentions``, which is also what lets a bot without the
        Message Content intent read the reply.
        """
        channel = self._channel_or_404(channel_id)
        place = self._place(channel)
        if place == "guild":
            self._require_member(user, self._guild_id_of(channel))
            if not self.can_view(int(user["id"]), int(channel_id)):
                raise LookupError(f"user {user['id']} cannot view channel {channel_id}")
        elif place in ("dm", "group") and all(int(r["id"]) != int(user["id"]) for r in channel["recipients"]):
            raise LookupError(f"user {user['id']} is not in channel {channel_id}")
        uploads = [
            UploadedFile(f"files[{i}]", name, "application/octet-stream", data)
            for i, (name, data) in enumerate((files or {}).items())
        ]
        body: dict[str, Any] = {"content": content}
        if reply_to is not None:
            body["message_reference"] = {"message_id": reply_to, "fail_if_not_exists": True}
        try:
            if place == "guild":
                send = (
                    Permissions.SEND_MESSAGES_IN_THREADS
                    if self._is_thread(channel)
                    else Permissions.SEND_MESSAGES
                )
                if not self.permissions_for(int(user["id"]), channel_id=int(channel_id)) & send:
                    raise missing_permissions()
            self._validate_message_body(body, uploads, "", new=True)
            await self._admit_new_message(channel, int(user["id"]))
            message = self._new_message(channel, dict(user), body, uploads)
            replied = message.get("referenced_message")
            if replied and mention_author and replied["author"] not in message["mentions"]:
                message["mentions"].append(copy.deepcopy(replied["author"]))
            if self._is_thread(channel):
                self._join_thread(channel, int(user["id"]))
        except ApiError as err:
            raise ValueError(f"Discord would reject this user message: {err.body()}") from err
        await self._dispatch_message("MESSAGE_CREATE", message)
        return message

    async def create_thread(
        self,
        user: Mapping[str, Any],
        channel_id: int,
        name: str,
        *,
        message_id: int | None = None,
        private: bool = False,
    ) -> dict[str, Any]:
        """Have a member start a public thread (from a message if ``message_id``), or with ``private`` a
        private one (never from a message; only its members and moderators see it), like a user would:
        with Create Public (Private) Threads in a channel they can view."""
        parent = self._channel_or_404(channel_id)
        uid = self._require_member(user, self._guild_id_of(parent))
        if not self.can_view(uid, int(channel_id)):
            raise LookupError(f"user {uid} cannot view channel {channel_id}")
        needed = Permissions.CREATE_PRIVATE_THREADS if private else Permissions.CREATE_PUBLIC_THREADS
        if not self.permissions_for(uid, channel_id=int(channel_id)) & needed:
            raise ValueError(f"Discord would refuse this thread: {missing_permissions().body()}")
        self._validate_thread_request(parent, {"name": name})
        if private:
            if message_id is not None:
                raise ValueError("a private thread cannot start from a message")
            thread = self._make_thread(parent, self._ids.next(), name, uid, {}, PRIVATE_THREAD)
            self.channels[int(thread["id"])] = thread
            await self._broadcast("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True})
            return thread
        if message_id is not None:
            message = self.messages.get(int(message_id))
            if message is None or message["channel_id"] != parent["id"]:
                raise LookupError(f"message {message_id} is not in channel {channel_id}")
            return await self._start_thread_from_message(parent, message, name, uid, {})
        thread = self._make_thread(parent, self._ids.next(), name, uid, {}, PUBLIC_THREAD)
        self.channels[int(thread["id"])] = thread
        await self._broadcast("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True})
        return thread

    # ------------------------------------------------------------------ reading what a member sees

    def _stored(self, message: Any) -> Mapping[str, Any]:
        """A stored message from an id, a message payload or a discord.py ``Message`` (anything with ``.id``)."""
        if isinstance(message, Mapping):
            return self.messages.get(int(message["id"]), message)
        message_id = getattr(message, "id", message)
        stored = self.messages.get(int(message_id))
        if stored is None:
            raise LookupError(f"message {message_id} does not exist (deleted or never sent)")
        return stored

    def text_of(self, message: Any) -> str:
        """Everything a member reads on a message, in the order the client shows it, one part a line.

        The content, then each embed's author, title, description, fields (name then value) and
        footer, then every text display of the components in document order (containers and
        sections included).  ``message`` is an id, a message payload or a discord.py ``Message``.
        """
        stored = self._stored(message)
        parts: list[str] = [stored.get("content") or ""]
        for embed in stored.get("embeds") or []:
            parts.append((embed.get("author") or {}).get("name") or "")
            parts += [embed.get("title") or "", embed.get("description") or ""]
            for fld in embed.get("fields") or []:
                parts += [fld.get("name") or "", fld.get("value") or ""]
            parts.append((embed.get("footer") or {}).get("text") or "")
        parts += [
            c.get("content") or ""
            for c in walk_components(stored.get("components") or [])
            if c.get("type") == TEXT_DISPLAY
        ]
        return "\n".join(part for part in parts if part)

    def buttons_of(self, message: Any) -> list[dict[str, Any]]:
        """Every button of a message in document order: ``{"label", "custom_id", "disabled", "style",
        "url", "id"}`` (``custom_id`` None for link buttons, ``url`` None for the others)."""
        stored = self._stored(message)
        return [
            {
                "label": c.get("label"),
                "custom_id": c.get("custom_id"),
                "disabled": bool(c.get("disabled", False)),
                "style": c.get("style"),
                "url": c.get("url"),
                "id": c.get("id"),
            }
            for c in walk_components(stored.get("components") or [])
            if c.get("type") == BUTTON
        ]

    def attachments_of(self, message: Any) -> list[dict[str, Any]]:
        """Every attachment a message carries, including those shown by its components.

        Discord (and so the message payload's ``attachments``) omits attachments referenced by
        components; their ids are in the components' ``media.attachment_id``.
        """
        return copy.deepcopy(self._message_files(self._stored(message)))
