"""A fresh PostgreSQL database for a benchmark, made on a server and dropped afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import asyncpg


@contextlib.contextmanager
def fresh_database(server_url: str | None) -> Iterator[str | None]:
    """A new, empty database on the PostgreSQL server at `server_url` (the store migrates it), dropped
    afterwards; None (SQLite) when no server is given."""
    if server_url is None:
        yield None
        return
    name = f"mural_bench_{secrets.token_hex(4)}"
    _run_admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        _run_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_admin(server_url: str, sql: str) -> None:
    async def admin() -> None:
        connection = await asyncpg.connect(server_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    # Its own loop on its own thread: callers may be inside a running loop.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, admin()).result()
