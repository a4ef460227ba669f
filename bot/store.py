"""SQLite persistence: the only module with SQL in it.

One aiosqlite connection in autocommit mode; every method holds `_lock` so that a multi-statement
transaction of one coroutine never interleaves with a statement of another on the shared
connection. Schema changes are numbered scripts applied in order, tracked by `PRAGMA user_version`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiosqlite

# Each script runs inside its own BEGIN/COMMIT, because executescript() commits any open
# transaction first: an outer transaction would not make a migration atomic.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sessions (
        id           INTEGER PRIMARY KEY,
        guild_id     INTEGER,
        channel_id   INTEGER NOT NULL,
        thread_id    INTEGER UNIQUE,
        owner_id     INTEGER NOT NULL,
        origin       TEXT NOT NULL CHECK (origin IN ('prompt', 'imagine')),
        idea         TEXT NOT NULL,
        target       TEXT NOT NULL,
        style        TEXT,
        head_version INTEGER NOT NULL DEFAULT 1,
        created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX sessions_by_owner ON sessions (owner_id, created_at);

    CREATE TABLE versions (
        id          INTEGER PRIMARY KEY,
        session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        number      INTEGER NOT NULL CHECK (number >= 1),
        parent      INTEGER,
        prompt      TEXT NOT NULL,
        instruction TEXT,
        author_id   INTEGER NOT NULL,
        message_id  INTEGER,
        created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        UNIQUE (session_id, number)
    );

    CREATE TABLE renders (
        id             INTEGER PRIMARY KEY,
        session_id     INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        version        INTEGER NOT NULL,
        requester_id   INTEGER NOT NULL,
        channel_id     INTEGER NOT NULL,
        status         TEXT NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'running', 'done', 'failed', 'interrupted')),
        model          TEXT NOT NULL,
        size           TEXT NOT NULL,
        quality        TEXT NOT NULL,
        revised_prompt TEXT,
        input_tokens   INTEGER,
        output_tokens  INTEGER,
        cost_usd       REAL,
        message_id     INTEGER,
        error_code     TEXT,
        error          TEXT,
        created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        started_at     TEXT,
        finished_at    TEXT
    );
    CREATE INDEX renders_by_status ON renders (status);

    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE refinements (
        id          INTEGER PRIMARY KEY,
        session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        author_id   INTEGER NOT NULL,
        channel_id  INTEGER NOT NULL,
        instruction TEXT NOT NULL,
        status      TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'done', 'failed', 'interrupted')),
        version     INTEGER,
        created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX refinements_by_status ON refinements (status);
    """,
)

_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


@dataclass(frozen=True)
class Session:
    id: int
    guild_id: int | None
    channel_id: int
    thread_id: int | None
    owner_id: int
    origin: str
    idea: str
    target: str
    style: str | None
    head_version: int


@dataclass(frozen=True)
class Version:
    id: int
    session_id: int
    number: int
    parent: int | None
    prompt: str
    instruction: str | None
    author_id: int
    message_id: int | None


@dataclass(frozen=True)
class Refinement:
    id: int
    session_id: int
    author_id: int
    channel_id: int
    instruction: str
    status: str
    version: int | None


@dataclass(frozen=True)
class Render:
    id: int
    session_id: int
    version: int
    requester_id: int
    channel_id: int
    status: str
    model: str
    size: str
    quality: str
    revised_prompt: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    message_id: int | None
    error_code: str | None
    error: str | None


def _row(cls: type, row: aiosqlite.Row | None) -> Any:
    if row is None:
        return None
    return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def _create_private_file(path: Path) -> None:
    """Create the database owner-readable only: it holds members' prompts."""
    if str(path) == ":memory:" or path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)


class Store:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Store:
        path = Path(path)
        _create_private_file(path)
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = aiosqlite.Row
        try:
            await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute("PRAGMA foreign_keys = ON")
            await connection.execute("PRAGMA busy_timeout = 5000")
            await connection.execute("PRAGMA synchronous = NORMAL")
            store = cls(connection)
            await store._migrate()
        except BaseException:
            await connection.close()
            raise
        return store

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cursor:
            (current,) = await cursor.fetchone()
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"The database schema is version {current}, newer than this Mural ({len(MIGRATIONS)}); "
                "upgrade Mural or use another DATABASE_PATH."
            )
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            await self._db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")

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

    # -- schema facts -------------------------------------------------------------------

    async def schema_version(self) -> int:
        row = await self._one("PRAGMA user_version", ())
        return int(row[0])

    async def integrity_ok(self) -> bool:
        row = await self._one("PRAGMA integrity_check", ())
        return row is not None and row[0] == "ok"

    # -- meta -----------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row["value"]

    async def set_meta(self, key: str, value: str) -> None:
        await self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- sessions and versions ------------------------------------------------------------

    async def create_session(
        self,
        *,
        guild_id: int | None,
        channel_id: int,
        owner_id: int,
        origin: str,
        idea: str,
        target: str,
        style: str | None,
        first_prompt: str,
    ) -> tuple[Session, Version]:
        """A new session with its v1, written together so neither exists without the other."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO sessions (guild_id, channel_id, owner_id, origin, idea, target, style, head_version)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                (guild_id, channel_id, owner_id, origin, idea, target, style),
            )
            session_id = cursor.lastrowid
            await db.execute(
                "INSERT INTO versions (session_id, number, parent, prompt, instruction, author_id)"
                " VALUES (?, 1, NULL, ?, NULL, ?)",
                (session_id, first_prompt, owner_id),
            )
            session = await self._fetch_session(db, session_id)
            version = await self._fetch_version(db, session_id, 1)
        return session, version

    @staticmethod
    async def _fetch_session(db: aiosqlite.Connection, session_id: int) -> Session | None:
        async with db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)) as cursor:
            return _row(Session, await cursor.fetchone())

    @staticmethod
    async def _fetch_version(db: aiosqlite.Connection, session_id: int, number: int) -> Version | None:
        async with db.execute(
            "SELECT * FROM versions WHERE session_id = ? AND number = ?", (session_id, number)
        ) as cursor:
            return _row(Version, await cursor.fetchone())

    async def get_session(self, session_id: int) -> Session | None:
        return _row(Session, await self._one("SELECT * FROM sessions WHERE id = ?", (session_id,)))

    async def session_for_thread(self, thread_id: int) -> Session | None:
        return _row(Session, await self._one("SELECT * FROM sessions WHERE thread_id = ?", (thread_id,)))

    async def attach_thread(self, session_id: int, thread_id: int) -> None:
        await self._write(
            f"UPDATE sessions SET thread_id = ?, updated_at = {_NOW} WHERE id = ?", (thread_id, session_id)
        )

    async def delete_session(self, session_id: int) -> None:
        await self._write("DELETE FROM sessions WHERE id = ?", (session_id,))

    async def get_version(self, session_id: int, number: int) -> Version | None:
        return _row(
            Version,
            await self._one(
                "SELECT * FROM versions WHERE session_id = ? AND number = ?", (session_id, number)
            ),
        )

    async def lineage(self, session_id: int, number: int, limit: int) -> list[Version]:
        """Up to `limit` versions ending at `number`, following parents back, oldest first."""
        rows = await self._all(
            """
            WITH RECURSIVE chain (number, depth) AS (
                SELECT ?, 0
                UNION ALL
                SELECT v.parent, chain.depth + 1 FROM versions v JOIN chain ON v.number = chain.number
                WHERE v.session_id = ? AND v.parent IS NOT NULL AND chain.depth + 1 < ?
            )
            SELECT v.* FROM versions v JOIN chain ON v.number = chain.number
            WHERE v.session_id = ? ORDER BY chain.depth DESC
            """,
            (number, session_id, limit, session_id),
        )
        return [_row(Version, row) for row in rows]

    async def add_version(
        self,
        session_id: int,
        *,
        parent: int,
        prompt: str,
        instruction: str,
        author_id: int,
        refinement_id: int | None = None,
    ) -> Version:
        """Store the next version (numbers only grow, even after an undo) and make it the head.

        The refinement that asked for it, if any, is marked done in the same transaction.
        """
        async with self._transaction() as db:
            async with db.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM versions WHERE session_id = ?", (session_id,)
            ) as cursor:
                (number,) = await cursor.fetchone()
            await db.execute(
                "INSERT INTO versions (session_id, number, parent, prompt, instruction, author_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, number, parent, prompt, instruction, author_id),
            )
            await db.execute(
                f"UPDATE sessions SET head_version = ?, updated_at = {_NOW} WHERE id = ?",
                (number, session_id),
            )
            if refinement_id is not None:
                await db.execute(
                    "UPDATE refinements SET status = 'done', version = ? WHERE id = ?",
                    (number, refinement_id),
                )
            version = await self._fetch_version(db, session_id, number)
        return version

    # -- refinements in progress ----------------------------------------------------------

    async def start_refinement(
        self, *, session_id: int, author_id: int, channel_id: int, instruction: str
    ) -> Refinement:
        """Record an instruction before the model is asked, so a crash mid-way can be reported."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO refinements (session_id, author_id, channel_id, instruction) VALUES (?, ?, ?, ?)",
                (session_id, author_id, channel_id, instruction),
            )
            async with db.execute("SELECT * FROM refinements WHERE id = ?", (cursor.lastrowid,)) as rows:
                return _row(Refinement, await rows.fetchone())

    async def fail_refinement(self, refinement_id: int) -> None:
        await self._write(
            "UPDATE refinements SET status = 'failed' WHERE id = ? AND status = 'pending'", (refinement_id,)
        )

    async def interrupt_pending_refinements(self) -> list[Refinement]:
        """Mark instructions a stop cut off as interrupted, and return them so their authors can be told."""
        async with self._transaction() as db:
            async with db.execute("SELECT * FROM refinements WHERE status = 'pending' ORDER BY id") as cursor:
                rows = list(await cursor.fetchall())
            await db.execute("UPDATE refinements SET status = 'interrupted' WHERE status = 'pending'")
        return [replace(_row(Refinement, row), status="interrupted") for row in rows]

    async def set_version_message(self, version_id: int, message_id: int) -> None:
        await self._write("UPDATE versions SET message_id = ? WHERE id = ?", (message_id, version_id))

    # -- renders --------------------------------------------------------------------------

    async def create_render(
        self,
        *,
        session_id: int,
        version: int,
        requester_id: int,
        channel_id: int,
        model: str,
        size: str,
        quality: str,
    ) -> Render:
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO renders (session_id, version, requester_id, channel_id, model, size, quality)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, version, requester_id, channel_id, model, size, quality),
            )
            async with db.execute("SELECT * FROM renders WHERE id = ?", (cursor.lastrowid,)) as rows:
                return _row(Render, await rows.fetchone())

    async def get_render(self, render_id: int) -> Render | None:
        return _row(Render, await self._one("SELECT * FROM renders WHERE id = ?", (render_id,)))

    async def mark_render_running(self, render_id: int) -> None:
        await self._write(
            f"UPDATE renders SET status = 'running', started_at = {_NOW} WHERE id = ? AND status = 'queued'",
            (render_id,),
        )

    async def finish_render(
        self,
        render_id: int,
        *,
        revised_prompt: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cost_usd: float | None,
    ) -> None:
        await self._write(
            "UPDATE renders SET status = 'done', revised_prompt = ?, input_tokens = ?, output_tokens = ?,"
            f" cost_usd = ?, error_code = NULL, error = NULL, finished_at = {_NOW} WHERE id = ?",
            (revised_prompt, input_tokens, output_tokens, cost_usd, render_id),
        )

    async def set_render_message(self, render_id: int, message_id: int) -> None:
        await self._write("UPDATE renders SET message_id = ? WHERE id = ?", (message_id, render_id))

    async def fail_render(self, render_id: int, *, code: str, error: str) -> None:
        await self._write(
            f"UPDATE renders SET status = 'failed', error_code = ?, error = ?, finished_at = {_NOW} WHERE id = ?",
            (code, error, render_id),
        )

    async def interrupt_unfinished_renders(self) -> list[Render]:
        """Mark renders cut off by a stop as interrupted, and return them so owners can be told."""
        async with self._transaction() as db:
            async with db.execute(
                "SELECT * FROM renders WHERE status IN ('queued', 'running') ORDER BY id"
            ) as cursor:
                rows = list(await cursor.fetchall())
            await db.execute(
                f"UPDATE renders SET status = 'interrupted', finished_at = {_NOW}"
                " WHERE status IN ('queued', 'running')"
            )
        return [replace(_row(Render, row), status="interrupted") for row in rows]

    async def renders_for_session(self, session_id: int) -> list[Render]:
        rows = await self._all("SELECT * FROM renders WHERE session_id = ? ORDER BY id", (session_id,))
        return [_row(Render, row) for row in rows]
