"""What both backends share: statements through one small interface, rows as Mural's records.

The query groups (`sessions`, `renders`, `budgets`, `guilds`, `usage`) are written once, in the SQL both
SQLite and PostgreSQL speak, with `?` placeholders; each backend runs them on its own driver (the
PostgreSQL one numbers the placeholders and spells `IS ?` as `IS NOT DISTINCT FROM`). A backend's rows
are plain mappings; `record` turns one into the dataclass of `bot.models` with real types (times as
aware datetimes, booleans as booleans, money as floats), so no driver type and no SQLite text timestamp
reaches the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from bot.core.errors import StoreUnavailable
from bot.core.tasks import TaskOwner
from bot.models import DatabaseOverview
from bot.store.protocol import SETTINGS_TOPIC, USE_TOPIC
from bot.store.totals import RunningTotals

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

log = logging.getLogger(__name__)

Row = Mapping[str, Any]
T = TypeVar("T", bound="DataclassInstance")


class Tx(Protocol):
    """One transaction's statements (or, outside one, single statements that commit at once)."""

    async def one(self, sql: str, *params: Any) -> Row | None: ...

    async def all(self, sql: str, *params: Any) -> list[Row]: ...

    async def run(self, sql: str, *params: Any) -> int:
        """Run a statement; how many rows it changed."""
        ...


class _SingleStatements:
    """A `Tx` whose every statement commits at once: for reads that need no transaction."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def one(self, sql: str, *params: Any) -> Row | None:
        return await self._database._one(sql, *params)

    async def all(self, sql: str, *params: Any) -> list[Row]:
        return await self._database._all(sql, *params)

    async def run(self, sql: str, *params: Any) -> int:
        return await self._database._run(sql, *params)


def parse_time(value: Any) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite keeps ISO 8601 text ending in Z)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _base_type(hint: Any) -> Any:
    """`int` for `int | None`, and so on."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return kinds[0] if len(kinds) == 1 else None
    return hint


def _coerce(kind: Any) -> Callable[[Any], Any] | None:
    if kind is bool:
        return bool
    if kind is float:
        return float
    if kind is int:
        return int
    if kind is datetime:
        return parse_time
    if kind is bytes:
        return bytes
    return None


@functools.cache
def _converters(cls: type) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((name, _coerce(_base_type(hints[name]))) for name in cls.__dataclass_fields__)


def record(cls: type[T], row: Row | None) -> T | None:
    """A row as the dataclass of the same field names, each value as its field's type; or None."""
    if row is None:
        return None
    values = {}
    for name, convert in _converters(cls):
        value = row[name]
        values[name] = value if value is None or convert is None else convert(value)
    return cls(**values)


def records(cls: type[T], rows: Sequence[Row]) -> list[T]:
    return [item for row in rows if (item := record(cls, row)) is not None]


class Database(ABC):
    """A backend: statements, transactions, locks that serialize writers, and notifications.

    Subclasses open the connection and say how; the query groups only use what is here.
    """

    # "sqlite" or "postgresql": for the few statements the two dialects cannot share.
    dialect: ClassVar[str]
    # Whether other processes may share this database (PostgreSQL): jobs and refinements then carry
    # leases, and a start recovers only what no live process holds.
    shared: ClassVar[bool]

    def __init__(self) -> None:
        # Today's use as this process counts it (see `bot.store.totals`); None until first read.
        self._totals: RunningTotals | None = None
        self._totals_reader: Any = None
        # Work the store starts for itself (reading the running totals again for a new day).
        self._background = TaskOwner("store")
        self._listeners: dict[str, list[Callable[[str], None]]] = {}
        # This store among the processes that share the database (their notifications of use are told apart).
        self._instance = secrets.token_hex(6)
        self.listen(USE_TOPIC, self._heard_use)
        # Statements outside a transaction, for code that also runs inside one.
        self._single = _SingleStatements(self)

    # -- what a backend provides ------------------------------------------------------------------

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction that serializes with other writers of the same keys (see `_serialize`)."""

    @abstractmethod
    async def _one(self, sql: str, *params: Any) -> Row | None: ...

    @abstractmethod
    async def _all(self, sql: str, *params: Any) -> list[Row]: ...

    @abstractmethod
    async def _run(self, sql: str, *params: Any) -> int: ...

    @abstractmethod
    async def _serialize(self, tx: Tx, *keys: str) -> None:
        """Hold, until `tx` ends, a lock on each key (say `member:42`), so that transactions that check
        and then write the same thing (a budget, the queue) take turns, whichever process runs them.
        SQLite's transactions already take turns (BEGIN IMMEDIATE)."""

    @abstractmethod
    async def _notify(self, tx: Tx, topic: str, payload: str) -> None:
        """Tell every process that shares the database, once `tx` commits."""

    @abstractmethod
    async def _announce(self, topic: str, payload: str) -> None:
        """Tell every process that shares the database now, outside any transaction."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def overview(self) -> DatabaseOverview:
        """Schema version and how much is stored, for the set-up check."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers now."""

    @abstractmethod
    async def check_reachable(self) -> None:
        """Raise StoreUnavailable when the database is known to be away and still does not answer."""

    # -- notifications ----------------------------------------------------------------------------

    def listen(self, topic: str, listener: Callable[[str], None]) -> None:
        """Call `listener(payload)` whenever `topic` is notified by any process sharing the database,
        this one included."""
        self._listeners.setdefault(topic, []).append(listener)

    def _deliver(self, topic: str, payload: str) -> None:
        for listener in self._listeners.get(topic, ()):
            try:
                listener(payload)
            except Exception:
                log.exception("A listener of %s failed", topic)

    def add_settings_listener(self, listener: Callable[[int | None], None]) -> None:
        """Call `listener(guild_id)` whenever a server's settings or role limits change, from any process
        that shares the database (this one included), so caches of them are dropped at once; None when
        word of changes may have been lost (a reconnection): every server's may have changed."""
        self.listen(SETTINGS_TOPIC, lambda payload: listener(int(payload) if payload else None))

    async def _settings_changed(self, tx: Tx, guild_id: int) -> None:
        await self._notify(tx, SETTINGS_TOPIC, str(guild_id))

    # -- running totals -----------------------------------------------------------------------------

    async def _count_use(
        self, guild_id: int | None, user_id: int, *, pictures: int, spend: float | None
    ) -> None:
        """Something that counts against budgets was just recorded (called right after its commit): this
        process counts it, and, where processes share the database, tells the others, so that their quick
        checks before an acknowledgement count it too (the reservation's exact check decides either way)."""
        if self._totals is not None:
            self._totals.count(guild_id, user_id, pictures=pictures, spend=spend or 0.0)
        if self.shared:
            payload = f"{self._instance}|{guild_id or ''}|{user_id}|{pictures}|{spend or 0.0!r}"
            # Untold, the others' quick checks count less; the rows still decide at the reservation.
            with contextlib.suppress(StoreUnavailable):
                await self._announce(USE_TOPIC, payload)

    def _heard_use(self, payload: str) -> None:
        """Another process recorded use (or word of it may have been lost: count again from the rows)."""
        if not payload:
            self._totals = None
            return
        instance, guild, user, pictures, spend = payload.split("|")
        if instance != self._instance and self._totals is not None:
            self._totals.count(
                int(guild) if guild else None, int(user), pictures=int(pictures), spend=float(spend)
            )

    # -- small facts kept in the store ------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM meta WHERE key = ?", key)
        return None if row is None else str(row["value"])

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key,
            value,
        )

    async def identify_turn(self, bucket: int, *, spacing: float) -> None:
        """Wait until this process may identify a shard of `bucket` with Discord: one identify per bucket per
        `spacing` seconds across every process sharing the database (their clocks agree to NTP's measure).
        Each caller books the next free moment in one short transaction, then waits for it outside."""
        key = f"identify:{bucket}"
        async with self._transaction() as tx:
            await self._serialize(tx, key)
            row = await tx.one("SELECT value FROM meta WHERE key = ?", key)
            turn = time.time() if row is None else max(time.time(), float(row["value"]) + spacing)
            await tx.run(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                key,
                repr(turn),
            )
        await asyncio.sleep(max(0.0, turn - time.time()))

    async def safety_salt(self) -> str:
        """This bot's own salt for safety identifiers: made once, then the same for the life of the database."""
        await self._run(
            "INSERT INTO meta (key, value) VALUES ('safety-salt', ?) ON CONFLICT (key) DO NOTHING",
            secrets.token_hex(16),
        )
        salt = await self.get_meta("safety-salt")
        assert salt is not None
        return salt
