"""The cache of servers' rules (`bot.core.server_rules`): read once at start, dropped when the store says so.

The store here is a stand-in that counts its reads and tells its listeners only when a test says a
change committed, as the real store does in this process and PostgreSQL does from other processes.
Through the real store and Discord, tests/test_guardrails.py checks that a /settings change applies
to the next command.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest
import pytest_asyncio

from bot.core.server_rules import ServerRules
from bot.core.tasks import TaskOwner
from bot.models import ServerSettings
from bot.store import Store

pytestmark = pytest.mark.asyncio

GUILD, OTHER = 1, 2


class CountingStore:
    """Servers' settings and role limits in memory; each read counted, and held while `hold` is clear."""

    def __init__(self) -> None:
        self.settings: dict[int, ServerSettings] = {}
        self.roles: dict[int, dict[int, int]] = {}
        self.reads = 0
        self.hold = asyncio.Event()
        self.hold.set()
        self._listeners: list[Callable[[int], None]] = []

    def add_settings_listener(self, listener: Callable[[int], None]) -> None:
        self._listeners.append(listener)

    def change(self, guild_id: int, *, tell: bool = True, **fields: Any) -> None:
        """A change committed (by this process, or another one sharing the database)."""
        self.settings[guild_id] = ServerSettings(guild_id=guild_id, **fields)
        if tell:
            for listener in self._listeners:
                listener(guild_id)

    async def all_server_rules(self) -> tuple[dict[int, ServerSettings], dict[int, dict[int, int]]]:
        self.reads += 1
        snapshot = dict(self.settings), {guild: dict(roles) for guild, roles in self.roles.items()}
        await self.hold.wait()
        return snapshot

    async def server_settings(self, guild_id: int) -> ServerSettings:
        self.reads += 1
        stored = self.settings.get(guild_id, ServerSettings(guild_id=guild_id))
        await self.hold.wait()
        return stored

    async def role_limits(self, guild_id: int) -> dict[int, int]:
        return dict(self.roles.get(guild_id, {}))


@pytest_asyncio.fixture
async def store() -> CountingStore:
    return CountingStore()


@pytest_asyncio.fixture
async def rules(store: CountingStore) -> AsyncIterator[ServerRules]:
    tasks = TaskOwner("test")
    yield ServerRules(cast(Store, store), tasks)
    await tasks.shutdown()


async def settle() -> None:
    """Let reads started in the background finish."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_every_servers_rules_are_read_once_at_start_and_commands_read_nothing(
    store: CountingStore, rules: ServerRules
) -> None:
    store.change(GUILD, tell=False, moderation="strict")
    store.roles[GUILD] = {7: 3}
    await rules.read_all()
    assert (await rules.settings(GUILD)).moderation == "strict"
    assert await rules.role_limits(GUILD) == {7: 3}
    assert await rules.settings(OTHER) == ServerSettings(guild_id=OTHER), "nothing stored: the defaults"
    assert await rules.settings(None) == ServerSettings(guild_id=0), "outside a server: the defaults"
    assert store.reads == 1


async def test_without_word_from_the_store_nothing_is_read_again_however_long_it_waits(
    store: CountingStore, rules: ServerRules
) -> None:
    await rules.read_all()
    store.change(GUILD, tell=False, moderation="off")
    assert (await rules.settings(GUILD)).moderation is None
    assert store.reads == 1


async def test_a_change_applies_to_the_very_next_command(store: CountingStore, rules: ServerRules) -> None:
    await rules.read_all()
    assert (await rules.settings(GUILD)).required_role_id is None
    store.change(GUILD, required_role_id=42)
    assert (await rules.settings(GUILD)).required_role_id == 42
    assert (await rules.settings(GUILD)).required_role_id == 42
    assert store.reads == 2, "read again once, when the store told of the change"


async def test_the_new_rules_are_read_as_soon_as_the_store_tells(
    store: CountingStore, rules: ServerRules
) -> None:
    """So the next command seldom waits for a read before it is acknowledged."""
    await rules.read_all()
    store.change(GUILD, moderation="strict")
    await settle()
    assert store.reads == 2
    assert (await rules.settings(GUILD)).moderation == "strict"
    assert store.reads == 2


async def test_commands_asking_meanwhile_share_one_read(store: CountingStore, rules: ServerRules) -> None:
    store.hold.clear()
    asking = [asyncio.ensure_future(rules.settings(GUILD)) for _ in range(5)]
    await settle()
    store.hold.set()
    assert len(set(await asyncio.gather(*asking))) == 1
    assert store.reads == 1


async def test_a_read_under_way_when_a_change_lands_is_not_kept(
    store: CountingStore, rules: ServerRules
) -> None:
    store.hold.clear()
    early = asyncio.ensure_future(rules.settings(GUILD))
    await settle()
    store.change(GUILD, moderation="off")
    store.hold.set()
    await early
    assert (await rules.settings(GUILD)).moderation == "off"


async def test_a_change_during_the_start_up_read_wins_over_it(
    store: CountingStore, rules: ServerRules
) -> None:
    store.change(GUILD, tell=False, moderation="strict")
    store.hold.clear()
    starting = asyncio.ensure_future(rules.read_all())
    await settle()
    store.change(GUILD, moderation="off")
    store.hold.set()
    await starting
    assert (await rules.settings(GUILD)).moderation == "off"
