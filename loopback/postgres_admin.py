"""Databases made and dropped on a PostgreSQL server, for tests and benchmarks alike.

CREATE and DROP DATABASE run on a connection of their own, on a loop of their own (a thread's), so they
work whether or not the caller's loop is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

T = TypeVar("T")


def with_database(server_url: str, name: str) -> str:
    """The server's URL naming another database."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def run_in_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` to the end on a loop of its own (a thread's), whether or not a caller's loop is running."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work).result()


def run_admin(server_url: str, sql: str) -> None:
    """One statement (CREATE or DROP DATABASE) on a connection of its own."""

    async def admin() -> None:
        connection = await asyncpg.connect(server_url, timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    run_in_own_loop(admin())


@contextlib.contextmanager
def fresh_database(server_url: str | None, prefix: str = "mural_bench") -> Iterator[str | None]:
    """A new, empty database on the server at `server_url` (the store migrates it), dropped afterwards;
    None (SQLite) when no server is given."""
    if server_url is None:
        yield None
        return
    name = f"{prefix}_{secrets.token_hex(4)}"
    run_admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        run_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
