"""The store's connection: one aiosqlite connection, transactions, and migrations from numbered files.

One connection in autocommit mode; every method holds `_lock` so that a multi-statement transaction
of one coroutine never interleaves with a statement of another on the shared connection. Schema
changes are the numbered `.sql` files in `migrations/`, applied in order and tracked by
`PRAGMA user_version`; each file carries its own BEGIN/COMMIT, because `executescript()` commits any
open transaction first, so an outer transaction would not make a migration atomic.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import aiosqlite

from bot.models import DatabaseOverview
from bot.store.totals import RunningTotals

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

log = logging.getLogger(__name__)

MIGRATIONS_FOLDER = Path(__file__).with_name("migrations")
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

T = TypeVar("T", bound="DataclassInstance")


def migration_files() -> list[Path]:
    """The migration scripts in order; their numbers must run 1, 2, 3… without gaps."""
    files = sorted(MIGRATIONS_FOLDER.glob("*.sql"))
    for expected, path in enumerate(files, start=1):
        match = re.match(r"([0-9]{4})_", path.name)
        if match is None or int(match[1]) != expected:
            raise RuntimeError(f"migration {path.name} is out of sequence (expected number {expected})")
    return files


def record(cls: type[T], row: aiosqlite.Row | None) -> T | None:
    """A row as the dataclass of the same field names, or None."""
    if row is None:
        return None
    return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def records(cls: type[T], rows: list[aiosqlite.Row]) -> list[T]:
    return [cls(**{name: row[name] for name in cls.__dataclass_fields__}) for row in rows]


def _create_private_file(path: Path) -> None:
    """Create the database owner-readable only: it holds members' prompts."""
    if str(path) == ":memory:" or path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)


async def copy_database(source: aiosqlite.Connection, target: Path) -> None:
    """SQLite's online backup of an open database into a new file at `target`, readable by its owner only.

    One step (`pages=0`), so the copy is one consistent snapshot: in WAL mode the bot keeps writing
    meanwhile, and what it commits after the copy began is simply not in it. Written beside the target
    and renamed into place, so a crash never leaves a half copy under the real name.
    """
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    _create_private_file(partial)
    try:
        destination = await aiosqlite.connect(partial, isolation_level=None)
        try:
            await source.backup(destination)
            # One self-contained file, with no write-ahead log beside it to lose when it is moved.
            await destination.execute("PRAGMA journal_mode = DELETE")
        finally:
            await destination.close()
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


async def _overview(connection: aiosqlite.Connection, *, integrity: bool) -> DatabaseOverview:
    async def number(sql: str) -> int:
        async with connection.execute(sql) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    version = await number("PRAGMA user_version")
    migrated = version > 0  # an empty file has no tables to count yet
    verdict = "ok"
    if integrity:
        async with connection.execute("PRAGMA integrity_check") as cursor:
            verdict = "; ".join(str(row[0]) for row in await cursor.fetchall())
    return DatabaseOverview(
        schema_version=version,
        latest_version=len(migration_files()),
        sessions=await number("SELECT COUNT(*) FROM sessions") if migrated else 0,
        versions=await number("SELECT COUNT(*) FROM versions") if migrated else 0,
        renders=await number("SELECT COUNT(*) FROM renders") if migrated else 0,
        integrity=verdict,
    )


def _check_backup_paths(source: Path, target: Path) -> None:
    if not source.is_file():
        raise FileNotFoundError(f"no database at {source}")
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose a new name")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"the folder {target.parent} does not exist")


async def backup_file(source: Path, target: Path) -> DatabaseOverview:
    """Back up the database at `source` (the bot may be running and writing) to `target`, then check
    the copy: what it holds and its `PRAGMA integrity_check`. `source` is opened read-only and never
    migrated; an existing `target` is never overwritten."""
    _check_backup_paths(source, target)
    connection = await aiosqlite.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None)
    try:
        await connection.execute("PRAGMA busy_timeout = 5000")
        await copy_database(connection, target)
    finally:
        await connection.close()
    copy = await aiosqlite.connect(f"file:{target}?mode=ro", uri=True, isolation_level=None)
    try:
        return await _overview(copy, integrity=True)
    finally:
        await copy.close()


def _free_name(path: Path) -> Path:
    """`path`, or `path.2`, `path.3`… : an earlier pre-upgrade copy is older, so it is never replaced."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}.{number}")
    return candidate


class Database:
    def __init__(self, connection: aiosqlite.Connection, path: Path | None = None) -> None:
        self._db = connection
        self._lock = asyncio.Lock()
        # The file behind the connection (None in memory): where a pre-upgrade copy goes beside it.
        self.path = path
        # Where the copy taken before this opening's migrations went, if it migrated an older schema.
        self.upgrade_copy: Path | None = None
        # Today's use as this process counts it (see `bot.store.totals`); None until first read.
        self._totals: RunningTotals | None = None
        self._totals_reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Self:
        path = Path(path)
        _create_private_file(path)
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = aiosqlite.Row
        try:
            await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute("PRAGMA foreign_keys = ON")
            await connection.execute("PRAGMA busy_timeout = 5000")
            await connection.execute("PRAGMA synchronous = NORMAL")
            store = cls(connection, None if str(path) == ":memory:" else path)
            await store._migrate()
        except BaseException:
            await connection.close()
            raise
        return store

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    async def _migrate(self) -> None:
        files = migration_files()
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        if current > len(files):
            raise RuntimeError(
                f"The database schema is version {current}, newer than this Mural ({len(files)}); "
                "upgrade Mural or use another DATABASE_PATH."
            )
        if 0 < current < len(files) and self.path is not None:
            # An upgrade: a migration that fails half-way or a newer Mural rolled back must not cost data.
            copy = _free_name(self.path.with_name(f"{self.path.name}.before-v{len(files)}.bak"))
            await copy_database(self._db, copy)
            self.upgrade_copy = copy
            log.info(
                "Database schema v%d is older than this Mural's v%d: copied it to %s before migrating",
                current,
                len(files),
                copy,
            )
        for number, path in enumerate(files[current:], start=current + 1):
            script = path.read_text(encoding="utf-8")
            # A migration may rebuild a table; foreign keys can only be switched off outside a
            # transaction, and are checked once they are back on.
            await self._db.execute("PRAGMA foreign_keys = OFF")
            try:
                await self._db.executescript(script)
            except sqlite3.OperationalError:
                # Another process sharing the file may have applied this migration first (its BEGIN
                # waited for theirs to commit, then found the tables there): theirs stands.
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                if await self._schema_version() < number:
                    raise
                continue
            finally:
                await self._db.execute("PRAGMA foreign_keys = ON")
            async with self._db.execute("PRAGMA foreign_key_check") as cursor:
                broken = list(await cursor.fetchall())
            if broken:
                raise RuntimeError(f"migration {path.name} left {len(broken)} broken foreign key(s)")
            async with self._db.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            if not row or int(row[0]) != number:
                raise RuntimeError(f"migration {path.name} did not set user_version to {number}")

    async def _schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _one(self, sql: str, params: tuple[Any, ...]) -> aiosqlite.Row | None:
        async with self._lock, self._db.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def _all(self, sql: str, params: tuple[Any, ...]) -> list[aiosqlite.Row]:
        async with self._lock, self._db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        async with self._lock, self._db.execute(sql, params) as cursor:
            return cursor.rowcount

    async def overview(self) -> DatabaseOverview:
        """Schema version and how much is stored, for the set-up check."""
        async with self._lock:
            return await _overview(self._db, integrity=False)

    def _count_use(self, guild_id: int | None, user_id: int, *, pictures: int, spend: float | None) -> None:
        """Something that counts against budgets was just recorded (called right after its commit)."""
        if self._totals is not None:
            self._totals.count(guild_id, user_id, pictures=pictures, spend=spend or 0.0)

    async def get_meta(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row["value"]

    async def set_meta(self, key: str, value: str) -> None:
        await self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def safety_salt(self) -> str:
        """This bot's own salt for safety identifiers: made once, then the same for the life of the database."""
        await self._write(
            "INSERT INTO meta (key, value) VALUES ('safety-salt', ?) ON CONFLICT (key) DO NOTHING",
            (secrets.token_hex(16),),
        )
        salt = await self.get_meta("safety-salt")
        assert salt is not None
        return salt
