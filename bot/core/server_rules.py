"""Each server's settings and role limits, as the store holds them, kept in memory between changes.

They are consulted before every command is acknowledged, where a read is a round trip through a busy
event loop. So every server's are read once at start (`read_all`), a command goes by what was read,
and nothing is read again until the store says a server's rules changed: in this process right after
the change commits, in another process sharing the database when it tells this one. A change then
applies to the very next command; the new rules are read at once, behind the commands, so that
command seldom waits for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from bot.core.tasks import TaskOwner
from bot.models import ServerSettings
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rules:
    """One server's own settings and its roles' daily picture limits (role id → pictures, 0: no limit)."""

    settings: ServerSettings
    role_limits: Mapping[int, int]


class ServerRules:
    """What each server chose, read once and dropped when the store says it changed."""

    def __init__(self, store: Store, tasks: TaskOwner) -> None:
        self._store = store
        self._tasks = tasks
        self._known: dict[int, Rules | None] = {}  # None: changed since it was read, to be read again
        self._all_read = False
        self._reading: dict[int, asyncio.Task[Rules]] = {}
        self._changes: dict[int, int] = {}  # per server, how many changes the store told of
        store.add_settings_listener(self.changed)

    async def settings(self, guild_id: int | None) -> ServerSettings:
        """A server's settings; outside a server (None), the operator's defaults alone."""
        if guild_id is None:
            return ServerSettings(guild_id=0)
        return (await self.of(guild_id)).settings

    async def role_limits(self, guild_id: int) -> dict[int, int]:
        return dict((await self.of(guild_id)).role_limits)

    async def of(self, guild_id: int) -> Rules:
        """A server's rules as last read; read first only after a change (or when none were read at start)."""
        if guild_id not in self._known and self._all_read:
            # Nothing stored for this server when all were read, and nothing changed since: the defaults.
            self._known[guild_id] = Rules(ServerSettings(guild_id=guild_id), {})
        rules = self._known.get(guild_id)
        if rules is None:
            return await asyncio.shield(self._read_soon(guild_id))
        return rules

    async def read_all(self) -> None:
        """Every server's settings and role limits, read once at start."""
        before = dict(self._changes)
        settings, role_limits = await self._store.all_server_rules()
        for guild_id in {*settings, *role_limits}:
            if self._changes.get(guild_id, 0) != before.get(guild_id, 0):
                continue  # changed while this read: what was read may be older than the change
            stored = settings.get(guild_id) or ServerSettings(guild_id=guild_id)
            self._known[guild_id] = Rules(stored, role_limits.get(guild_id, {}))
        self._all_read = True

    def changed(self, guild_id: int | None) -> None:
        """The store's word that a server's settings or role limits changed: what was read is dropped
        (a read already under way is not kept either), and they are read again at once. None: any server's
        may have (the store lost word of changes for a while), so every server's are dropped."""
        if guild_id is None:
            for known in list(self._known):
                self.changed(known)
            self._all_read = False
            return
        self._changes[guild_id] = self._changes.get(guild_id, 0) + 1
        self._known[guild_id] = None
        self._reading.pop(guild_id, None)
        self._read_soon(guild_id)

    def _read_soon(self, guild_id: int) -> asyncio.Task[Rules]:
        """One read of a server's rules, however many commands ask meanwhile."""
        reading = self._reading.get(guild_id)
        if reading is None:
            reading = self._tasks.spawn(self._read(guild_id), name=f"rules-{guild_id}", awaited=True)
            self._reading[guild_id] = reading
            reading.add_done_callback(lambda done: self._read_done(guild_id, done))
        return reading

    def _read_done(self, guild_id: int, reading: asyncio.Task[Rules]) -> None:
        if self._reading.get(guild_id) is reading:
            del self._reading[guild_id]
        if not reading.cancelled() and (error := reading.exception()) is not None:
            log.warning("Could not read the settings of server %d: %s", guild_id, error)

    async def _read(self, guild_id: int) -> Rules:
        changes = self._changes.get(guild_id, 0)
        settings = await self._store.server_settings(guild_id)
        rules = Rules(settings, await self._store.role_limits(guild_id))
        if self._changes.get(guild_id, 0) == changes:  # not read from before a change told meanwhile
            self._known[guild_id] = rules
        return rules
