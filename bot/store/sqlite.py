"""The SQLite backend: one aiosqlite connection, transactions, and migrations from numbered files.

One connection in autocommit mode; every method holds `_lock` so that a multi-statement transaction
of one coroutine never interleaves with a statement of another on the shared connection.

Schema changes are the numbered `.sql` files in `migrations/`, applied in order and tracked by
`PRAGMA user_version`. Each file carries its own BEGIN/COMMIT, so that it can be applied by hand
(`sqlite3 mural.db < 0004_studio.sql`), but the bot does not run it that way: several processes may
open one file at once, and "is migration N still needed?" must be decided under the same write lock
that applies it, or two openers both apply N, or one finds the version moved under it. `executescript()`
cannot give that: it commits any open transaction before it runs, so the version can only be read
outside the script's own transaction, and may be stale by the time the script writes. So `_migrate` takes the write lock
itself (`BEGIN IMMEDIATE`, which waits out another opener's migration), reads `user_version` again
inside that transaction, and runs every pending file's statements, split with
`sqlite3.complete_statement` and without their own BEGIN/COMMIT, on the connection inside it, then
commits once. One transaction for all the pending files (not one each) means no other opener ever sees
a half-upgraded schema, which it would take for one an older Mural left, copy, and report as upgraded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import aiosqlite

from bot.models import DatabaseOverview
from bot.store.base import Database, Row, Tx

log = logging.getLogger(__name__)

MIGRATIONS_FOLDER = Path(__file__).with_name("migrations") / "sqlite"
# How SQLite spells the moment a statement runs, in the text form times are kept in (sorts as it reads).
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
# How long a statement waits for another connection's write lock before "database is locked".
BUSY_TIMEOUT_MS = 5000
# While opening, longer: another process opening the same file may hold the write lock while it copies
# a large database and migrates it, and this one must wait for that, not fail.
OPENING_BUSY_TIMEOUT_MS = 10 * 60 * 1000


def migration_files() -> list[Path]:
    """The migration scripts in order; their numbers must run 1, 2, 3… without gaps."""
    files = sorted(MIGRATIONS_FOLDER.glob("*.sql"))
    for expected, path in enumerate(files, start=1):
        match = re.match(r"([0-9]{4})_", path.name)
        if match is None or int(match[1]) != expected:
            raise RuntimeError(f"migration {path.name} is out of sequence (expected number {expected})")
    return files


# Comments and blank space before a statement's first word.
_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*", re.DOTALL)
# Statements that would end or nest the transaction the migration runs in (`ROLLBACK TO` a savepoint is fine).
_TRANSACTION_CONTROL = re.compile(
    r"(?:BEGIN|COMMIT|END)\b|ROLLBACK\b(?!\s+(?:TRANSACTION\s+)?TO\b)", re.IGNORECASE
)


def _bare(statement: str) -> str:
    """The statement from its first word on (leading comments and blank space dropped)."""
    match = _LEADING_NOISE.match(statement)
    return statement[match.end() if match else 0 :]


def migration_statements(path: Path) -> list[str]:
    """A migration file's statements, one per item, without the file's own leading BEGIN and trailing
    COMMIT: the runner executes them inside a transaction of its own.

    Split where `sqlite3.complete_statement` says a statement ends, so a `;` in a string, a comment or
    a trigger's body does not cut it. Transaction control anywhere else in the file is refused.
    """
    script = path.read_text(encoding="utf-8")
    statements: list[str] = []
    start = 0
    for end, character in enumerate(script, start=1):
        if character == ";" and sqlite3.complete_statement(script[start:end]):
            statement = script[start:end].strip()
            if _bare(statement).strip(" ;\t\r\n"):  # not an empty or comment-only statement
                statements.append(statement)
            start = end
    if _bare(script[start:]).strip():
        raise RuntimeError(f"migration {path.name} ends in an unfinished statement (no closing ';')")
    if statements and re.match(r"BEGIN\b", _bare(statements[0]), re.IGNORECASE):
        statements.pop(0)
    if statements and re.match(r"(?:COMMIT|END)\b", _bare(statements[-1]), re.IGNORECASE):
        statements.pop()
    for statement in statements:
        if _TRANSACTION_CONTROL.match(_bare(statement)):
            raise RuntimeError(
                f"migration {path.name} controls its transaction mid-way ({_bare(statement)!r}); "
                "only a leading BEGIN and a trailing COMMIT are allowed"
            )
    return statements


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
        await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
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


async def _switch_to_wal(connection: aiosqlite.Connection) -> None:
    """`PRAGMA journal_mode = WAL`, waiting for another connection opening the same new file meanwhile.

    Switching needs the file to itself for a moment, and SQLite reports "database is locked" at once,
    without its busy timeout, when another connection holds it then (two processes starting together on
    a new file): so retry for as long as opening may wait.
    """
    deadline = time.monotonic() + OPENING_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.01)


def _refuse_newer(version: int, latest: int) -> None:
    if version > latest:
        raise RuntimeError(
            f"The database schema is version {version}, newer than this Mural ({latest}); "
            "upgrade Mural or use another DATABASE_PATH."
        )


def stored_time(moment: datetime) -> str:
    """A time as SQLite keeps it: UTC ISO 8601 text to the millisecond, as `NOW` writes it."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _sqlite_params(params: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(stored_time(value) if isinstance(value, datetime) else value for value in params)


def _sqlite_sql(sql: str) -> str:
    """The shared SQL as SQLite runs it: `NOW()` is written in SQLite's own words."""
    return sql.replace("NOW()", NOW)


def _as_row(row: sqlite3.Row | None) -> Row | None:
    return None if row is None else {key: row[key] for key in row.keys()}  # noqa: SIM118 - sqlite3.Row


class _Statements:
    """Statements on the one connection; the caller holds the lock."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def one(self, sql: str, *params: Any) -> Row | None:
        async with self._db.execute(_sqlite_sql(sql), _sqlite_params(params)) as cursor:
            return _as_row(await cursor.fetchone())

    async def all(self, sql: str, *params: Any) -> list[Row]:
        async with self._db.execute(_sqlite_sql(sql), _sqlite_params(params)) as cursor:
            return [row for item in await cursor.fetchall() if (row := _as_row(item)) is not None]

    async def run(self, sql: str, *params: Any) -> int:
        async with self._db.execute(_sqlite_sql(sql), _sqlite_params(params)) as cursor:
            return cursor.rowcount


class SQLiteDatabase(Database):
    dialect = "sqlite"
    shared = False

    def __init__(self, connection: aiosqlite.Connection, path: Path | None = None) -> None:
        super().__init__()
        self._db = connection
        self._lock = asyncio.Lock()
        self._statements = _Statements(connection)
        # The file behind the connection (None in memory): where a pre-upgrade copy goes beside it.
        self.path = path
        # Where the copy taken before this opening's migrations went, if it migrated an older schema.
        self.upgrade_copy: Path | None = None
        # What this process notified inside the transaction under way, told once it commits.
        self._pending: list[tuple[str, str]] = []

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Self:
        path = Path(path)
        _create_private_file(path)
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = aiosqlite.Row
        try:
            await connection.execute(f"PRAGMA busy_timeout = {OPENING_BUSY_TIMEOUT_MS}")
            await _switch_to_wal(connection)
            await connection.execute("PRAGMA foreign_keys = ON")
            await connection.execute("PRAGMA synchronous = NORMAL")
            store = cls(connection, None if str(path) == ":memory:" else path)
            await store._migrate()
            await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except BaseException:
            await connection.close()
            raise
        return store

    async def close(self) -> None:
        await self._background.shutdown(1.0)
        async with self._lock:
            await self._db.close()

    async def ping(self) -> None:
        async with self._lock, self._db.execute("SELECT 1") as cursor:
            await cursor.fetchone()

    async def check_reachable(self) -> None:
        """Nothing to do: a file is always there (a failure to write it is an error of its own)."""

    async def _migrate(self) -> None:
        """Bring the schema to the latest version: every pending migration in one transaction under the
        write lock, after a copy of an older schema (see the module's docstring for why)."""
        files = migration_files()
        current = await self._schema_version()
        _refuse_newer(current, len(files))
        if current == len(files):
            return
        # A migration may rebuild a table; foreign keys can only be switched off outside a transaction,
        # and are checked before it commits.
        await self._db.execute("PRAGMA foreign_keys = OFF")
        try:
            # The write lock first, then the version: another opener may have migrated while we waited.
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                current = await self._schema_version()
                _refuse_newer(current, len(files))
                if 0 < current < len(files) and self.path is not None:
                    await self._copy_before_upgrade(current, len(files))
                for number, path in enumerate(files[current:], start=current + 1):
                    for statement in migration_statements(path):
                        await self._db.execute(statement)
                    async with self._db.execute("PRAGMA foreign_key_check") as cursor:
                        broken = list(await cursor.fetchall())
                    if broken:
                        raise RuntimeError(f"migration {path.name} left {len(broken)} broken foreign key(s)")
                    if await self._schema_version() != number:
                        raise RuntimeError(f"migration {path.name} did not set user_version to {number}")
                await self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite rolls some failures back by itself
                    with contextlib.suppress(sqlite3.Error):
                        await self._db.execute("ROLLBACK")
                raise
        finally:
            await self._db.execute("PRAGMA foreign_keys = ON")

    async def _copy_before_upgrade(self, version: int, latest: int) -> None:
        """Copy the file before migrating it: a migration that fails half-way or a newer Mural rolled back
        must not cost data.

        Called holding the write lock (so no other opener copies or migrates meanwhile, and the copy is the
        schema about to be migrated), through a second connection: SQLite's backup cannot read from a
        connection that is inside a write transaction (Python's `backup` would retry forever).
        """
        assert self.path is not None
        copy = _free_name(self.path.with_name(f"{self.path.name}.before-v{latest}.bak"))
        reader = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await copy_database(reader, copy)
        finally:
            await reader.close()
        self.upgrade_copy = copy
        log.info(
            "Database schema v%d is older than this Mural's v%d: copied it to %s before migrating",
            version,
            latest,
            copy,
        )

    async def _schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._lock:
            self._pending = []
            try:
                await self._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                # Cancelled (a stop) while waiting: the BEGIN still runs in the connection's thread.
                await asyncio.shield(self._end_transaction())
                raise
            try:
                yield self._statements
            except BaseException:
                self._pending = []
                # Shielded: a stop that cancels the work must not leave the transaction open for the next.
                await asyncio.shield(self._end_transaction())
                raise
            await self._db.execute("COMMIT")
            told, self._pending = self._pending, []
        for topic, payload in told:
            self._deliver(topic, payload)

    async def _end_transaction(self) -> None:
        """Roll back whatever transaction is open (statements run in order on the connection's thread, so
        this comes after any still under way); none open is fine."""
        with contextlib.suppress(sqlite3.OperationalError):
            await self._db.execute("ROLLBACK")

    async def _one(self, sql: str, *params: Any) -> Row | None:
        async with self._lock:
            return await self._statements.one(sql, *params)

    async def _all(self, sql: str, *params: Any) -> list[Row]:
        async with self._lock:
            return await self._statements.all(sql, *params)

    async def _run(self, sql: str, *params: Any) -> int:
        async with self._lock:
            return await self._statements.run(sql, *params)

    async def _serialize(self, tx: Tx, *keys: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already made this the only writer until it ends."""

    async def _announce(self, topic: str, payload: str) -> None:
        self._deliver(topic, payload)

    async def _notify(self, tx: Tx, topic: str, payload: str) -> None:
        # Only this process uses the file: tell its own listeners once the transaction commits.
        self._pending.append((topic, payload))

    async def overview(self) -> DatabaseOverview:
        """Schema version and how much is stored, for the set-up check."""
        async with self._lock:
            return await _overview(self._db, integrity=False)
