from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import discord
import pytest
import pytest_asyncio

import bot.app
from bot.store import PostgresStore, SQLiteStore, Store
from loopback.fake_discord import FakeDiscord
from loopback.rig import DISCORD_TOKEN, loopback_rig
from tests.postgres import Databases, template_databases


@pytest_asyncio.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake Discord and a fake OpenAI on loopback, and a database file; the test starts the bot."""
    # On ready the bot runs a full garbage collection and freezes what survives (a production tuning that
    # bench/ack.py measures). In this process that walks every earlier test's leftovers too: ~0.1 s a
    # start, a tenth of the suite. Bot processes (`rig.start_process()`) still do it.
    monkeypatch.setattr(bot.app, "freeze_startup_heap", lambda: None)
    async with loopback_rig(tmp_path, monkeypatch=monkeypatch) as harness:
        yield harness


@pytest_asyncio.fixture
async def loopback_discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """A fake Discord that every discord.py client of the test reaches; its own errors fail the test."""
    server = FakeDiscord(token=DISCORD_TOKEN)
    await server.start()
    server.patch(monkeypatch)
    yield server
    await server.close()
    assert not server.internal_errors, "\n".join(server.internal_errors)


ClientStarter = Callable[..., Awaitable[Any]]


@pytest_asyncio.fixture
async def start_client(loopback_discord: FakeDiscord) -> AsyncIterator[ClientStarter]:
    """Start bots as tasks in the test's loop, each ready (and its commands synced unless told not to);
    close them all, before the fake, at teardown."""
    running: list[tuple[discord.Client, asyncio.Task[None]]] = []

    async def _start(client: Any, *, sync: bool = True) -> Any:
        task = asyncio.create_task(client.start(DISCORD_TOKEN))
        running.append((client, task))
        await loopback_discord.wait_for(
            lambda: client.is_ready() or task.done(), timeout=10, message="the bot's on_ready"
        )
        if task.done():
            task.result()  # surface the bot's startup error
            raise RuntimeError("bot.start() returned before the bot became ready")
        if sync:
            await client.tree.sync()
        return client

    yield _start
    for client, task in running:
        await client.close()
        await asyncio.wait_for(task, timeout=10)


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[Databases]:
    """Fresh PostgreSQL databases for this test session (skips, with one reason, where none answers)."""
    yield from template_databases()


@pytest.fixture
def postgres_url(postgres_databases: Databases) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test, dropped after it."""
    url = postgres_databases.fresh()
    yield url
    postgres_databases.drop(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Run a test on both backends."""
    return str(request.param)


@pytest_asyncio.fixture
async def any_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A new store on each backend: a SQLite file, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        opened: Store = await SQLiteStore.open(tmp_path / "mural.db")
    else:
        opened = await PostgresStore.open(request.getfixturevalue("postgres_url"))
    yield opened
    await opened.close()
