"""The PostgreSQL backend: a pool of asyncpg connections shared by one process's work, one more connection
that listens for the other processes, and migrations under an advisory lock.

Several processes share one database. What SQLite gets from taking turns on the file (BEGIN IMMEDIATE),
this backend gets from transaction-scoped advisory locks on named keys (`_serialize`): a budget's
check-and-reserve, the queue's claim, a server's settings. Notifications (`NOTIFY`) are delivered at
commit, to every listening process, this one included; they are wake-ups, never the only way a
change is seen (a listener that was disconnected misses them, so it tells its listeners to re-read
everything when it is back).

asyncpg was chosen over psycopg 3: it is what large discord.py bots run, the fastest driver, with pools and
`add_listener` for LISTEN built in. Behind pgbouncer in transaction mode prepared statements cannot be
cached per client: `?pgbouncer=true` on DATABASE_URL turns the cache off.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from bot.core.errors import StoreUnavailable
from bot.models import DatabaseOverview
from bot.store.base import Database, Row, Tx
from bot.store.protocol import JOBS_TOPIC, SETTINGS_TOPIC, USE_TOPIC

log = logging.getLogger(__name__)

MIGRATIONS_FOLDER = Path(__file__).with_name("migrations") / "postgresql"
# The advisory lock two processes starting together take turns on while one migrates.
_MIGRATION_LOCK = 0x6D757261  # "mura"
_TOPICS = (SETTINGS_TOPIC, JOBS_TOPIC, USE_TOPIC)
# Errors that mean "the database is not there right now", as opposed to a mistake in a statement.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
)
# Waiting for a free pooled connection is normal in a burst (200 commands at once share the pool), so
# that wait is long; a database that does not answer is found out by the connect and statement limits
# below, and one known to be away by `check_reachable`, each well within Discord's 3 s.
_ACQUIRE_TIMEOUT = 30.0
_CONNECT_TIMEOUT = 2.0
# Every statement Mural sends is small; one that has not answered by then met a server that went away
# without closing the connection. Migrations and copy-to set their own, longer, limits.
_STATEMENT_TIMEOUT = 5.0
_MIGRATION_TIMEOUT = 600.0
_RELISTEN_EVERY = 2.0


def migration_files() -> list[Path]:
    """The PostgreSQL migration scripts in order; their numbers must run 1, 2, 3… without gaps."""
    files = sorted(MIGRATIONS_FOLDER.glob("*.sql"))
    for expected, path in enumerate(files, start=1):
        match = re.match(r"([0-9]{4})_", path.name)
        if match is None or int(match[1]) != expected:
            raise RuntimeError(f"migration {path.name} is out of sequence (expected number {expected})")
    return files


@functools.lru_cache(maxsize=1024)
def postgres_sql(sql: str) -> str:
    """The shared SQL as PostgreSQL takes it: `$1, $2…` for `?`, and `IS ?` (SQLite's null-safe equality)
    as `IS NOT DISTINCT FROM`."""
    sql = re.sub(r"\bIS \?", "IS NOT DISTINCT FROM ?", sql)
    numbers = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)


def _as_row(record: asyncpg.Record | None) -> Row | None:
    if record is None:
        return None
    # NUMERIC columns hold money: exact in the database, dollars as floats in Mural.
    return {key: float(value) if isinstance(value, Decimal) else value for key, value in record.items()}


def _changed(status: str) -> int:
    """How many rows a command changed, from its status ("UPDATE 3", "INSERT 0 1", "DELETE 0")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _where(url: str) -> str:
    """The server a URL names, for messages (never the user or the password)."""
    parts = urlsplit(url)
    host = parts.hostname or dict(parse_qsl(parts.query)).get("host") or "localhost"
    return f"{host}:{parts.port or 5432}"


def _unreachable(error: BaseException, url: str) -> StoreUnavailable:
    # The driver's own text is not repeated: some name the user, and none is for a member.
    return StoreUnavailable(f"PostgreSQL at {_where(url)} did not answer ({type(error).__name__})")


def _connection_options(url: str) -> tuple[str, dict[str, Any]]:
    """The URL asyncpg takes, and its options. `?pgbouncer=true` (a pooler in transaction mode) turns
    prepared-statement caching off, which such a pooler cannot keep per client."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    options: dict[str, Any] = {"command_timeout": _STATEMENT_TIMEOUT, "timeout": _CONNECT_TIMEOUT}
    if query.pop("pgbouncer", "").lower() in ("1", "true", "yes"):
        options["statement_cache_size"] = 0
    return urlunsplit(parts._replace(query=urlencode(query))), options


class _Statements:
    def __init__(self, connection: Any, url: str) -> None:
        # A pooled connection (asyncpg's proxy of one), or the listener's own.
        self._connection = connection
        self._url = url

    async def one(self, sql: str, *params: Any) -> Row | None:
        with _translate_failures(self._url):
            return _as_row(await self._connection.fetchrow(postgres_sql(sql), *params))

    async def all(self, sql: str, *params: Any) -> list[Row]:
        with _translate_failures(self._url):
            rows = await self._connection.fetch(postgres_sql(sql), *params)
        return [row for record in rows if (row := _as_row(record)) is not None]

    async def run(self, sql: str, *params: Any) -> int:
        with _translate_failures(self._url):
            return _changed(await self._connection.execute(postgres_sql(sql), *params))


@contextlib.contextmanager
def _translate_failures(url: str) -> Iterator[None]:
    try:
        yield
    except StoreUnavailable:
        raise
    except _UNREACHABLE as error:
        raise _unreachable(error, url) from None


class PostgresDatabase(Database):
    dialect = "postgresql"
    shared = True

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        super().__init__()
        self._pool = pool
        self._url = url
        self._listener: asyncpg.Connection | None = None
        self._closing = False
        # The server went away (a statement or the listening connection failed) and nothing has
        # succeeded since: `check_reachable` then asks it before a member's command is answered.
        self._away = False

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 20) -> Self:
        """Connect, migrate (once, whichever process gets there first), and start listening."""
        dsn, options = _connection_options(url)
        try:
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size, **options)
        except _UNREACHABLE as error:
            raise _unreachable(error, url) from None
        except asyncpg.PostgresError as error:
            # Refused: a wrong password, a missing database or role. Its class says which.
            raise StoreUnavailable(
                f"PostgreSQL at {_where(url)} refused the connection ({type(error).__name__})"
            ) from None
        store = cls(pool, url)
        try:
            await store._migrate()
            await store._listen()
        except BaseException:
            await pool.close()
            raise
        return store

    async def close(self) -> None:
        self._closing = True
        await self._background.shutdown(1.0)
        if self._listener is not None and not self._listener.is_closed():
            with contextlib.suppress(*_UNREACHABLE):
                await self._listener.close(timeout=2)
        await self._pool.close()

    async def ping(self) -> None:
        await self._one("SELECT 1 AS ok")

    async def check_reachable(self) -> None:
        # Nothing to ask while all is well; while away, one quick question, which clears it once answered.
        if self._away:
            await self.ping()

    # -- migrations -----------------------------------------------------------------------------------

    async def _migrate(self) -> None:
        files = migration_files()
        async with self._connection() as connection:
            # Two processes starting together: the second waits here until the first has migrated.
            await connection.execute(
                "SELECT pg_advisory_lock($1)", _MIGRATION_LOCK, timeout=_MIGRATION_TIMEOUT
            )
            try:
                await connection.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                current = int(
                    await connection.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") or 0
                )
                if current > len(files):
                    raise RuntimeError(
                        f"The database schema is version {current}, newer than this Mural ({len(files)}); "
                        "upgrade Mural or use another DATABASE_URL."
                    )
                for number, path in enumerate(files[current:], start=current + 1):
                    script = path.read_text(encoding="utf-8")
                    async with connection.transaction():
                        await connection.execute(script, timeout=_MIGRATION_TIMEOUT)
                        await connection.execute(
                            "INSERT INTO schema_migrations (version) VALUES ($1)", number
                        )
                    log.info("PostgreSQL schema migrated to v%d", number)
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)

    async def schema_version(self) -> int:
        row = await self._one("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")
        return 0 if row is None else int(row["version"])

    async def server_version(self) -> str:
        row = await self._one("SHOW server_version")
        return "" if row is None else str(row["server_version"]).split(" ")[0]

    # -- statements and transactions ------------------------------------------------------------------

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        try:
            connection = await self._pool.acquire(timeout=_ACQUIRE_TIMEOUT)
        except _UNREACHABLE as error:
            self._away = True
            raise _unreachable(error, self._url) from None
        try:
            yield connection
        except StoreUnavailable:
            self._away = True
            raise
        else:
            self._away = False
        finally:
            with contextlib.suppress(*_UNREACHABLE):
                await self._pool.release(connection)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._connection() as connection:
            with _translate_failures(self._url):
                transaction = connection.transaction()
                await transaction.start()
            try:
                yield _Statements(connection, self._url)
            except BaseException:
                with contextlib.suppress(*_UNREACHABLE, asyncpg.PostgresError):
                    await transaction.rollback()
                raise
            with _translate_failures(self._url):
                await transaction.commit()

    async def _one(self, sql: str, *params: Any) -> Row | None:
        async with self._connection() as connection:
            return await _Statements(connection, self._url).one(sql, *params)

    async def _all(self, sql: str, *params: Any) -> list[Row]:
        async with self._connection() as connection:
            return await _Statements(connection, self._url).all(sql, *params)

    async def _run(self, sql: str, *params: Any) -> int:
        async with self._connection() as connection:
            return await _Statements(connection, self._url).run(sql, *params)

    async def _serialize(self, tx: Tx, *keys: str) -> None:
        # Always in the same order, so two transactions wanting the same keys never wait on each other.
        for key in sorted(set(keys)):
            await tx.one("SELECT pg_advisory_xact_lock(hashtextextended(?, 0)) AS locked", key)

    async def _announce(self, topic: str, payload: str) -> None:
        await self._one("SELECT pg_notify(?, ?) AS sent", topic, payload)

    async def _notify(self, tx: Tx, topic: str, payload: str) -> None:
        await tx.one("SELECT pg_notify(?, ?) AS sent", topic, payload)

    # -- listening for other processes ------------------------------------------------------------------

    async def _listen(self) -> None:
        dsn, options = _connection_options(self._url)
        try:
            listener = await asyncpg.connect(dsn, **options)
        except _UNREACHABLE as error:
            raise _unreachable(error, self._url) from None
        for topic in _TOPICS:
            await listener.add_listener(topic, self._heard)
        listener.add_termination_listener(self._listener_lost)
        self._listener = listener

    def _heard(self, _connection: Any, _pid: int, topic: str, payload: str) -> None:
        self._deliver(topic, payload)

    def _listener_lost(self, _connection: Any) -> None:
        if not self._closing:
            self._away = True
            log.warning("Lost the PostgreSQL listening connection; reconnecting")
            self._background.spawn(self._listen_again(), name="relisten")

    async def _listen_again(self) -> None:
        while not self._closing:
            await asyncio.sleep(_RELISTEN_EVERY)
            try:
                await self._listen()
            except StoreUnavailable:
                continue
            log.info("Listening to PostgreSQL again")
            # Whatever was notified meanwhile is lost: everyone re-reads what they keep.
            for topic in _TOPICS:
                self._deliver(topic, "")
            return

    # -- what `check` and `copy-to` need ------------------------------------------------------------------

    async def overview(self) -> DatabaseOverview:
        counts = await self._one(
            "SELECT (SELECT COUNT(*) FROM sessions) AS sessions, (SELECT COUNT(*) FROM versions) AS versions,"
            " (SELECT COUNT(*) FROM renders) AS renders"
        )
        assert counts is not None
        return DatabaseOverview(
            schema_version=await self.schema_version(),
            latest_version=len(migration_files()),
            sessions=int(counts["sessions"]),
            versions=int(counts["versions"]),
            renders=int(counts["renders"]),
        )
