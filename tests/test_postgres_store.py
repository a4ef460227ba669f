"""Several processes on one PostgreSQL database: each store here is its own pool, as each process has.

What must hold with two writers at once: budgets never overspent, version numbers and Undo atomic, each
job claimed once and the deployment's concurrency kept, a settings change heard everywhere, the schema
migrated once, and an unreachable server reported without its password.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.budgets import window_at
from bot.core.errors import StoreUnavailable
from bot.models import Limits, OverLimit, Render
from bot.store import PostgresStore
from bot.store.postgres import migration_files, postgres_sql
from tests.postgres import Databases, stored_rows

pytestmark = pytest.mark.asyncio
SESSION = dict(
    guild_id=10,
    channel_id=20,
    owner_id=1,
    origin="prompt",
    idea="a lighthouse",
    target="openai",
    style=None,
    first_prompt="v1",
)


async def two_processes(url: str) -> tuple[PostgresStore, PostgresStore]:
    return await PostgresStore.open(url), await PostgresStore.open(url)


def _job(session_id: int, *, requester: int = 1, guild: int | None = 10, **extra: Any) -> dict[str, Any]:
    job: dict[str, Any] = dict(
        session_id=session_id,
        version=1,
        requester_id=requester,
        channel_id=20,
        guild_id=guild,
        model="gpt-image-2",
        size="1024x1024",
        quality="low",
        cost_reserved=0.05,
    )
    return {**job, **extra}


@pytest.mark.parametrize(
    ("shared", "expected"),
    [
        ("SELECT * FROM renders WHERE id = ? AND status = 'queued'", "id = $1 AND status = 'queued'"),
        ("WHERE guild_id IS ? AND user_id = ?", "guild_id IS NOT DISTINCT FROM $1 AND user_id = $2"),
        ("VALUES (?, ?, ?)", "VALUES ($1, $2, $3)"),
    ],
)
async def test_the_shared_sql_is_numbered_for_postgresql(shared: str, expected: str) -> None:
    assert expected in postgres_sql(shared)


async def test_twenty_reservations_at_the_edge_from_two_processes_let_exactly_the_rest_through(
    postgres_url: str,
) -> None:
    first, second = await two_processes(postgres_url)
    try:
        session, _ = await first.create_session(**SESSION)
        limits = Limits(member_daily_pictures=7)
        for _ in range(3):
            await first.create_render(**_job(session.id))

        async def click(store: PostgresStore) -> Render | OverLimit:
            return await store.reserve_render(limits=limits, window=window_at(), **_job(session.id))

        results = await asyncio.gather(*(click(first if n % 2 else second) for n in range(20)))
        accepted = [result for result in results if isinstance(result, Render)]
        assert len(accepted) == 4
        assert await stored_rows(first, "SELECT COUNT(*) FROM renders") == [(7,)]
    finally:
        await first.close()
        await second.close()


async def test_server_spend_is_never_overspent_by_two_processes(postgres_url: str) -> None:
    first, second = await two_processes(postgres_url)
    try:
        session, _ = await first.create_session(**SESSION)
        limits = Limits(server_daily_spend=0.50)
        results = await asyncio.gather(
            *(
                (first if n % 2 else second).reserve_render(
                    limits=limits, window=window_at(), **_job(session.id, requester=100 + n)
                )
                for n in range(20)
            )
        )
        assert len([r for r in results if isinstance(r, Render)]) == 10
    finally:
        await first.close()
        await second.close()


async def test_versions_from_two_processes_at_once_never_share_a_number(postgres_url: str) -> None:
    first, second = await two_processes(postgres_url)
    try:
        session, _ = await first.create_session(**SESSION)
        added = await asyncio.gather(
            *(
                (first if n % 2 else second).add_version(
                    session.id, parent=1, prompt=f"p{n}", instruction=f"i{n}", author_id=1
                )
                for n in range(20)
            )
        )
        assert sorted(version.number for version in added) == list(range(2, 22))
        head = (await second.get_session(session.id)).head_version
        assert head in {version.number for version in added}
    finally:
        await first.close()
        await second.close()


async def test_two_undos_at_once_from_two_processes_go_back_once(postgres_url: str) -> None:
    first, second = await two_processes(postgres_url)
    try:
        session, _ = await first.create_session(**SESSION)
        await first.add_version(session.id, parent=1, prompt="v2", instruction="i", author_id=1)
        await first.add_version(session.id, parent=2, prompt="v3", instruction="i", author_id=1)
        undone = await asyncio.gather(
            first.move_head_to_parent(session.id, 3), second.move_head_to_parent(session.id, 3)
        )
        assert sorted(v.number if v else 0 for v in undone) == [0, 2]
        assert (await first.get_session(session.id)).head_version == 2
    finally:
        await first.close()
        await second.close()


async def test_each_job_is_claimed_once_and_the_deployment_keeps_its_concurrency(postgres_url: str) -> None:
    first, second = await two_processes(postgres_url)
    try:
        session, _ = await first.create_session(**SESSION)
        until = datetime.now(UTC) + timedelta(minutes=1)
        jobs = [
            await store.create_render(**_job(session.id, requester=n, held_by=name, lease_until=until))
            for n, (store, name) in enumerate([(first, "a"), (second, "b")] * 5)
        ]
        mine = {"a": [j.id for j in jobs if j.held_by == "a"], "b": [j.id for j in jobs if j.held_by == "b"]}

        async def claim(store: PostgresStore, name: str) -> Render | None:
            return await store.claim_next_render(
                mine[name], holder=name, lease_until=until, concurrency=3, now=datetime.now(UTC)
            )

        claimed = await asyncio.gather(
            *(claim(s, n) for _ in range(10) for s, n in ((first, "a"), (second, "b")))
        )
        started = [render.id for render in claimed if render is not None]
        assert len(started) == len(set(started)) == 3
        assert all(render.attempts == 1 for render in claimed if render is not None)
    finally:
        await first.close()
        await second.close()


async def test_the_next_in_turn_held_by_another_live_process_is_left_to_it(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url)
    try:
        session, _ = await store.create_session(**SESSION)
        now = datetime.now(UTC)
        theirs = await store.create_render(
            **_job(session.id, requester=1, held_by="b", lease_until=now + timedelta(minutes=1))
        )
        mine = await store.create_render(
            **_job(session.id, requester=2, held_by="a", lease_until=now + timedelta(minutes=1))
        )
        assert await store.claim_next_render([mine.id], holder="a", now=now) is None
        # Process b dies: once its lease lapses, a adopts its job and runs both in their turn.
        later = now + timedelta(minutes=2)
        adopted = await store.adopt_queued_renders(
            "a", lease_until=later + timedelta(minutes=1), lapsed_before=later
        )
        assert [render.id for render in adopted] == [theirs.id]
        first = await store.claim_next_render([mine.id, theirs.id], holder="a", now=later)
        assert first is not None and first.id == theirs.id
    finally:
        await store.close()


async def test_a_settings_change_in_one_process_is_heard_in_the_other(postgres_url: str) -> None:
    first, second = await two_processes(postgres_url)
    heard: list[int] = []
    second.add_settings_listener(heard.append)
    try:
        await first.change_server_settings(42, {"image_quality": "high"})
        await first.set_role_limit(43, 7, 5)
        for _ in range(100):
            if heard == [42, 43]:
                break
            await asyncio.sleep(0.02)
        assert heard == [42, 43]
        assert (await second.server_settings(42)).image_quality == "high"
    finally:
        await first.close()
        await second.close()


async def test_two_processes_starting_on_an_empty_database_migrate_it_once(
    postgres_databases: Databases,
) -> None:
    url = postgres_databases.empty()
    try:
        stores = await asyncio.gather(*(PostgresStore.open(url) for _ in range(3)))
        try:
            applied = await stored_rows(stores[0], "SELECT version FROM schema_migrations ORDER BY version")
            assert applied == [(number,) for number in range(1, len(migration_files()) + 1)]
            session, _ = await stores[1].create_session(**SESSION)
            assert (await stores[2].get_session(session.id)).idea == "a lighthouse"
        finally:
            for store in stores:
                await store.close()
    finally:
        postgres_databases.drop(url)


async def test_money_is_exact_and_ids_are_64_bit(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url)
    try:
        big = 1_234_567_890_123_456_789
        session, _ = await store.create_session(**{**SESSION, "guild_id": big, "owner_id": big - 1})
        for _ in range(10):
            await store.create_render(**_job(session.id, guild=big, cost_reserved=0.1))
        spent = await store.spent(window_at().day_start, guild_id=big, user_id=None)
        assert spent.spend == 1.0  # ten times 0.1, exactly
        assert (await store.get_session(session.id)).guild_id == big
        types = dict(
            await stored_rows(
                store,
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'renders'",
            )
        )
        assert types["guild_id"] == "bigint" and types["cost_usd"] == "numeric"
        assert types["created_at"] == "timestamp with time zone" and types["with_reference"] == "boolean"
    finally:
        await store.close()


async def test_an_unreachable_server_is_named_without_its_password() -> None:
    with pytest.raises(StoreUnavailable) as error:
        await PostgresStore.open("postgresql://mural:hunter2-secret@127.0.0.1:9/mural")
    assert "hunter2" not in str(error.value) and "127.0.0.1:9" in str(error.value)
    assert error.value.code == "E-DB"
