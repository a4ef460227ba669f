"""A look at a PostgreSQL database without changing it, for `python -m bot check`: does it answer, which
version it runs, and whether Mural's schema is there. Opening the store would migrate it; this never does.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg

from bot.models import DatabaseOverview
from bot.store.postgres import _UNREACHABLE, _connection_options, _where, migration_files


@dataclass(frozen=True)
class PostgresProbe:
    # "ok" (it answered), "unreachable" (nothing answered in time) or "refused" (it answered no).
    status: str
    # The error's class when it did not answer or refused (never the driver's text: some name the user).
    detail: str = ""
    server_version: str = ""
    overview: DatabaseOverview | None = None

    @property
    def migrated(self) -> bool:
        return self.overview is not None and self.overview.schema_version == self.overview.latest_version


def target_label(url: str) -> str:
    """The database a URL names, for messages: host, port and name, never the user or the password."""
    return f"{_where(url)}/{urlsplit(url).path.lstrip('/')}"


async def probe_postgres(url: str) -> PostgresProbe:
    dsn, options = _connection_options(url)
    try:
        connection = await asyncpg.connect(dsn, **options)
    except _UNREACHABLE as error:
        return PostgresProbe("unreachable", type(error).__name__)
    except asyncpg.PostgresError as error:
        return PostgresProbe("refused", type(error).__name__)
    try:
        version = str(await connection.fetchval("SHOW server_version")).split(" ")[0]
        latest = len(migration_files())
        schema = 0
        if await connection.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            schema = int(await connection.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
        counts = (0, 0, 0)
        if schema == latest:
            row = await connection.fetchrow(
                "SELECT (SELECT COUNT(*) FROM sessions) AS sessions, (SELECT COUNT(*) FROM versions) AS versions,"
                " (SELECT COUNT(*) FROM renders) AS renders"
            )
            assert row is not None
            counts = (int(row["sessions"]), int(row["versions"]), int(row["renders"]))
    except _UNREACHABLE as error:
        return PostgresProbe("unreachable", type(error).__name__)
    except asyncpg.PostgresError as error:
        return PostgresProbe("refused", type(error).__name__)
    finally:
        with contextlib.suppress(*_UNREACHABLE):
            await connection.close(timeout=2)
    return PostgresProbe(
        "ok",
        server_version=version,
        overview=DatabaseOverview(schema, latest, *counts),
    )
