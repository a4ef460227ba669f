"""REST: application commands, global and per guild (bulk overwrite; ids stable per name).

``GET|PUT /applications/{app}/commands`` and ``.../guilds/{guild}/commands``; at most 100 slash, 15
user and 15 message commands per scope (400/50035, 400/30032), each checked by
``Rules._validate_command_definition``.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from loopback.fake_discord.server import RecordedRequest
from loopback.fake_discord.wire import CHAT_INPUT, COMMAND_LIMITS, ApiError, form_error


class CommandRoutes:
    """Command routes of :class:`~loopback.fake_discord.FakeDiscord`."""

    def _check_app(self, app_id: str, guild_id: str | None = None) -> None:
        if int(app_id) != self.application_id:
            raise ApiError(403, 50001, "Missing Access")
        if guild_id is not None and int(guild_id) not in self.guilds:
            raise ApiError(403, 50001, "Missing Access")

    async def _get_commands(
        self, req: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> web.Response:
        self._check_app(app_id, guild_id)
        scope = int(guild_id) if guild_id is not None else None
        return self._json(self.registered_commands.get(scope, []))

    async def _put_commands(
        self, req: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> web.Response:
        self._check_app(app_id, guild_id)
        scope = int(guild_id) if guild_id is not None else None
        body = req.json
        if not isinstance(body, list):
            raise form_error("_", "LIST_TYPE_CONVERT", "Must be a list.")
        for ctype, limit in COMMAND_LIMITS.items():
            if sum(1 for c in body if isinstance(c, dict) and c.get("type", 1) == ctype) > limit:
                if ctype == CHAT_INPUT:
                    raise form_error("_", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
                raise ApiError(400, 30032, f"Maximum number of application commands reached ({limit})")
        previous = {(c["name"], c.get("type", 1)): c for c in self.registered_commands.get(scope, [])}
        seen: set[tuple[str, int]] = set()
        stored: list[dict[str, Any]] = []
        for index, command in enumerate(body):
            ctype = command.get("type", 1)
            name = command.get("name", "")
            key = (name, ctype)
            if key in seen:
                raise form_error(
                    f"{index}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", f"Duplicate name {name}"
                )
            seen.add(key)
            self._validate_command_definition(index, command)
            old = previous.get(key)
            entry = copy.deepcopy(command)
            entry.update(
                id=old["id"] if old else str(self._ids.next()),
                application_id=str(self.application_id),
                version=str(self._ids.next()),
                type=ctype,
            )
            entry.setdefault("description", "")
            entry.setdefault("default_member_permissions", None)
            entry.setdefault("nsfw", False)
            if scope is not None:
                entry["guild_id"] = str(scope)
            stored.append(entry)
        self.registered_commands[scope] = stored
        return self._json(stored)
