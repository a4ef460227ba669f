"""`python -m bot copy-to URL`: everything in the SQLite file, copied into an empty PostgreSQL database.

The PostgreSQL schema is migrated first (as the bot would), then, in one transaction: every table is
locked and must be empty (else nothing is written), each table is copied in dependency order with its
ids (asyncpg's binary COPY), each identity sequence is moved past the highest id, and every table is
verified before the commit: the same number of rows on both sides, and the same checksum.

Values change type on the way (SQLite keeps times as ISO 8601 text, flags as 0/1, money as REAL):
`convert` turns a value of either side into what PostgreSQL holds, and `canonical` spells that one way
(times in UTC to the millisecond, money to six places), so a checksum computed from the SQLite rows and
one computed from the PostgreSQL rows are equal exactly when the copy kept every value.

The SQLite side is read in one read transaction: a snapshot, even if something writes to the file
meanwhile (the operator should still stop the bot first: what it writes later is not copied).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg

from bot.store import PostgresStore, SQLiteStore
from bot.store.postgres import _UNREACHABLE, PostgresDatabase, _unreachable
from bot.store.probe import target_label

# Rows read from SQLite and sent to PostgreSQL at a time.
BATCH = 5000
# Money as PostgreSQL keeps it: NUMERIC(14, 6), dollars to the millionth.
MONEY_PLACES = Decimal("0.000001")
# How long the copy waits for another session's lock on a target table before giving up.
LOCK_TIMEOUT = "10s"


@dataclass(frozen=True)
class Table:
    name: str
    # The primary key: rows are copied and checksummed in its order.
    key: tuple[str, ...]
    # The identity column whose sequence must continue after the copied ids, if any.
    identity: str | None = None


# In dependency order: a table comes after every table it refers to (renders refer to renders: the rows
# go in id order, so a source picture is always there before the edit made from it).
TABLES: tuple[Table, ...] = (
    Table("sessions", ("id",), "id"),
    Table("versions", ("id",), "id"),
    Table("refinements", ("id",), "id"),
    Table("reference_images", ("session_id",)),
    Table("renders", ("id",), "id"),
    Table("chat_usage", ("id",), "id"),
    Table("guild_settings", ("guild_id",)),
    Table("role_limits", ("guild_id", "role_id")),
    Table("meta", ("key",)),
    Table("gallery_pictures", ("id",), "id"),
    Table("gallery_images", ("picture_id",)),
    Table("gallery_scopes", ("scope_id",)),
    Table("gallery_scope_channels", ("scope_id", "channel_id")),
)


class CopyRefused(Exception):
    """The copy cannot be made (a target that is not empty, no source, schemas that differ); nothing was
    written. The message is one line for the operator."""


@dataclass(frozen=True)
class Copied:
    table: str
    rows: int
    checksum: str


@dataclass(frozen=True)
class CopyReport:
    tables: tuple[Copied, ...]
    seconds: float


# -- values ---------------------------------------------------------------------------------------------


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    # SQLite's times are UTC; a time written without its zone is one too.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _money(value: Any) -> Decimal:
    # A float's exact binary value, rounded as Python's round() does: 0.0712345 (a little above) is 0.071235.
    exact = value if isinstance(value, Decimal) else Decimal(float(value))
    return exact.quantize(MONEY_PLACES, rounding=ROUND_HALF_EVEN)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise ValueError(f"{value!r} is not a flag (0 or 1)")


def _length_prefixed(text: str) -> str:
    return f"{len(text)}:{text}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


Convert = Callable[[Any], Any]
Spell = Callable[[Any], str]
# PostgreSQL's column type → how a value of either side becomes the one PostgreSQL holds, and how that one
# is spelled for the checksum (times in UTC to the millisecond, money to six places, text with its length
# so that no separator inside it can make two rows spell alike).
_KINDS: dict[str, tuple[Convert, Spell]] = {
    "timestamp with time zone": (_time, lambda moment: moment.isoformat(timespec="milliseconds")),
    "numeric": (_money, str),
    "boolean": (_flag, lambda flag: "t" if flag else "f"),
    "bigint": (int, str),
    "integer": (int, str),
    "smallint": (int, str),
    "bytea": (bytes, _sha256),
    "text": (str, _length_prefixed),
}


def _kind(pg_type: str) -> tuple[Convert, Spell]:
    try:
        return _KINDS[pg_type]
    except KeyError:
        raise CopyRefused(f"copy-to does not know how to copy a {pg_type} column; update Mural") from None


class Checksum:
    """sha256 over a table's rows in key order, each value converted to what PostgreSQL holds and spelled
    one way, so that the rows read from SQLite and the rows stored in PostgreSQL give the same sum exactly
    when every value survived the copy."""

    def __init__(self, types: Sequence[str]) -> None:
        self._kinds = [_kind(pg_type) for pg_type in types]
        self._hash = hashlib.sha256()
        self.rows = 0

    def add(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """Count the row (from either side) and return it as PostgreSQL holds it."""
        converted: list[Any] = []
        spelled: list[str] = []
        for (convert, spell), value in zip(self._kinds, row, strict=True):
            if value is None:
                converted.append(None)
                spelled.append("-")
            else:
                value = convert(value)
                converted.append(value)
                spelled.append(spell(value))
        self._hash.update("\x1f".join(spelled).encode() + b"\x1e")
        self.rows += 1
        return tuple(converted)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


# -- the copy -------------------------------------------------------------------------------------------


# Table and column names cannot travel as parameters: they are written into the statements below, and
# only plain lower-case names (all Mural's schema has) are; values always travel as parameters.
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def _name(identifier: str) -> str:
    if _PLAIN_NAME.fullmatch(identifier) is None:
        raise CopyRefused(f"copy-to does not copy a table or column named {identifier!r}; update Mural")
    return f'"{identifier}"'


def _reading(table: Table, columns: Sequence[tuple[str, str]], *, postgres: bool) -> str:
    """Every row of `table`, its columns (name, PostgreSQL type) in order, in the order of its key, the
    same on both sides: PostgreSQL's "C" collation orders text by its bytes, as SQLite's default (BINARY)
    does; numbers and bytes order alike anyway."""
    types = dict(columns)
    order = ", ".join(
        _name(key) + (' COLLATE "C"' if postgres and types[key] == "text" else "") for key in table.key
    )
    return f"SELECT {', '.join(_name(name) for name, _ in columns)} FROM {_name(table.name)} ORDER BY {order}"


_COUNT_ROWS = {table.name: f"SELECT COUNT(*) FROM {_name(table.name)}" for table in TABLES}
# Nothing else writes to these tables until the copy commits or rolls back.
_LOCK_TABLES = f"LOCK TABLE {', '.join(_name(table.name) for table in TABLES)} IN EXCLUSIVE MODE"
_WAIT_FOR_LOCKS = f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
# Each identity sequence continues after the highest copied id.
_CONTINUE_IDS = {
    table.name: f"SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({_name(table.identity)}), 0) + 1,"
    f" false) FROM {_name(table.name)}"
    for table in TABLES
    if table.identity is not None
}


async def _postgres_columns(connection: Any, table: str) -> list[tuple[str, str]]:
    rows = await connection.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    return [(str(row["column_name"]), str(row["data_type"])) for row in rows]


async def _sqlite_columns(source: aiosqlite.Connection, table: str) -> set[str]:
    async with source.execute("SELECT name FROM pragma_table_info(?)", (table,)) as cursor:
        return {str(row[0]) for row in await cursor.fetchall()}


async def _check_source(source: aiosqlite.Connection) -> None:
    async with source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ) as cursor:
        tables = {str(row[0]) for row in await cursor.fetchall()}
    unknown = sorted(tables - {table.name for table in TABLES})
    if unknown:
        raise CopyRefused(f"the SQLite database has tables copy-to does not know ({', '.join(unknown)})")


async def _refuse_unless_empty(connection: Any, where: str) -> None:
    counts = []
    for table in TABLES:
        count_sql = _COUNT_ROWS[table.name]
        rows = int(await connection.fetchval(count_sql))
        if rows:
            counts.append(f"{table.name} has {rows} row{'s' if rows != 1 else ''}")
    if counts:
        raise CopyRefused(
            f"the PostgreSQL database at {where} is not empty ({', '.join(counts)}); "
            "nothing was copied. Copy into a new, empty database"
        )


async def _copy_table(source: aiosqlite.Connection, connection: Any, table: Table) -> Copied:
    columns = await _postgres_columns(connection, table.name)
    names = [name for name, _ in columns]
    if await _sqlite_columns(source, table.name) != set(names):
        raise CopyRefused(
            f"the SQLite table {table.name} has other columns than PostgreSQL's; start the bot once on "
            "the SQLite file so that it is migrated, then copy again"
        )
    types = [kind for _, kind in columns]
    sent = Checksum(types)
    read_sql = _reading(table, columns, postgres=False)
    async with source.execute(read_sql) as cursor:
        while batch := await cursor.fetchmany(BATCH):
            try:
                records = [sent.add(row) for row in batch]
            except (ValueError, TypeError) as error:
                raise CopyRefused(f"a value in {table.name} cannot be copied ({error})") from None
            await connection.copy_records_to_table(table.name, records=records, columns=names)
    if table.identity is not None:
        continue_sql = _CONTINUE_IDS[table.name]
        await connection.execute(continue_sql, table.name, table.identity)
    # Read back what PostgreSQL now holds, in the same order, spelled the same way.
    stored = Checksum(types)
    async for row in connection.cursor(_reading(table, columns, postgres=True), prefetch=BATCH):
        stored.add(tuple(row.values()))
    if (stored.rows, stored.hexdigest()) != (sent.rows, sent.hexdigest()):
        raise CopyRefused(
            f"verification failed for {table.name}: {sent.rows} rows read, {stored.rows} stored, "
            "checksums differ; nothing was copied"
        )
    return Copied(table.name, stored.rows, stored.hexdigest())


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise CopyRefused(f"there is no SQLite database at {path} (DATABASE_PATH); nothing to copy")


async def copy_to(source_path: Path, url: str) -> CopyReport:
    """Copy the SQLite database at `source_path` into the empty PostgreSQL database at `url`.

    Raises CopyRefused (nothing written) or StoreUnavailable (the server did not answer).
    """
    _require_file(source_path)
    started = time.perf_counter()
    # Opened as the bot opens it: an older schema is migrated (after a copy of the file) first.
    await (await SQLiteStore.open(source_path)).close()
    target = await PostgresStore.open(url)
    try:
        source = await aiosqlite.connect(f"file:{source_path}?mode=ro", uri=True, isolation_level=None)
        try:
            await source.execute("BEGIN")  # one snapshot of every table
            await _check_source(source)
            copied = await _copy_all(source, target, url)
        finally:
            await source.close()
    finally:
        await target.close()
    return CopyReport(copied, time.perf_counter() - started)


async def _copy_all(source: aiosqlite.Connection, target: PostgresDatabase, url: str) -> tuple[Copied, ...]:
    copied: list[Copied] = []
    async with target._connection() as connection:
        try:
            async with connection.transaction():
                await connection.execute(_WAIT_FOR_LOCKS)
                await connection.execute(_LOCK_TABLES)
                await _refuse_unless_empty(connection, target_label(url))
                for table in TABLES:
                    copied.append(await _copy_table(source, connection, table))
        except _UNREACHABLE as error:
            raise _unreachable(error, url) from None
        except asyncpg.PostgresError as error:
            # A row PostgreSQL refuses (a broken reference, a value out of range) or a lock not granted.
            raise CopyRefused(
                f"PostgreSQL refused the copy ({type(error).__name__}: {error}); nothing was copied"
            ) from None
    return tuple(copied)
