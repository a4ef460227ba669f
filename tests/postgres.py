"""A real PostgreSQL for tests: a fresh database per test, copied from one migrated template per session.

The server is `TEST_DATABASE_URL` (default: the machine's PostgreSQL on 127.0.0.1:5432 as `postgres`,
trust authentication). Without one, the tests that need it skip with one reason, unless
`MURAL_REQUIRE_POSTGRES=1` (`.ci/run` sets it), when they fail instead: CI must never pass by skipping them.
Every database made here is named `mural_test_…` and dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from loopback.postgres_admin import run_admin as run_admin_on
from loopback.postgres_admin import run_in_own_loop, with_database

SERVER_URL = os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
REQUIRED = os.environ.get("MURAL_REQUIRE_POSTGRES") == "1"
SKIP_REASON = (
    "PostgreSQL tests need a server: none answered at TEST_DATABASE_URL "
    "(default postgresql://postgres@127.0.0.1:5432/postgres)"
)


def database_url(name: str) -> str:
    """The server's URL with another database name."""
    return with_database(SERVER_URL, name)


def run_admin(sql: str) -> None:
    """CREATE or DROP DATABASE on the test server."""
    run_admin_on(SERVER_URL, sql)


def server_answers() -> bool:
    try:
        run_admin("SELECT 1")
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def require_server() -> None:
    if server_answers():
        return
    if REQUIRED:
        pytest.fail(SKIP_REASON + ", and MURAL_REQUIRE_POSTGRES=1 says they must run")
    pytest.skip(SKIP_REASON)


class Databases:
    """Fresh databases for one test session, each a copy of the migrated template."""

    def __init__(self) -> None:
        self.prefix = f"mural_test_{secrets.token_hex(4)}"
        self.template = f"{self.prefix}_template"
        self._made: list[str] = []

    def fresh(self) -> str:
        name = f"{self.prefix}_{len(self._made) + 1}"
        run_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self._made.append(name)
        return database_url(name)

    def empty(self) -> str:
        """A database with no schema at all (what an operator creates before the first start)."""
        name = f"{self.prefix}_{len(self._made) + 1}"
        run_admin(f'CREATE DATABASE "{name}"')
        self._made.append(name)
        return database_url(name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._made:
            self._made.remove(name)

    def drop_all(self) -> None:
        for name in [*self._made, self.template]:
            run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._made.clear()


def template_databases() -> Iterator[Databases]:
    """Make the template (migrated by the store itself), yield, then drop everything made."""
    from bot.store import PostgresStore

    require_server()
    databases = Databases()
    run_admin(f'CREATE DATABASE "{databases.template}"')
    try:

        async def migrate() -> None:
            store = await PostgresStore.open(database_url(databases.template))
            await store.close()

        run_in_own_loop(migrate())
        yield databases
    finally:
        databases.drop_all()


async def stored_rows(store: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows as tuples, read with the store's own statements (the shared SQL, `?` placeholders) on either
    backend: a test's look at what was written, not an API of the store."""
    return [tuple(row.values()) for row in await store._all(sql, *params)]
