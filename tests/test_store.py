"""The SQLite store: migrations, versions and their lineage, render records, restart facts."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path

import pytest
import pytest_asyncio

from bot.store import MIGRATIONS, Store

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def store(tmp_path: Path):
    opened = await Store.open(tmp_path / "mural.db")
    yield opened
    await opened.close()


async def _session(store: Store, owner: int = 1):
    return await store.create_session(
        guild_id=10,
        channel_id=20,
        owner_id=owner,
        origin="prompt",
        idea="a beach at sunset",
        target="openai",
        style=None,
        first_prompt="v1 prompt",
    )


async def test_new_database_is_migrated_private_and_in_wal(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "mural.db"
    store = await Store.open(path)
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        assert await store.integrity_ok()
    finally:
        await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "mural.db"
    first = await Store.open(path)
    session, _ = await _session(first)
    await first.close()
    second = await Store.open(path)
    try:
        assert (await second.get_session(session.id)).idea == "a beach at sunset"
        assert await second.schema_version() == len(MIGRATIONS)
    finally:
        await second.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mural.db"
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    with pytest.raises(RuntimeError, match="newer than this Mural"):
        await Store.open(path)


async def test_session_starts_with_v1_as_head(store: Store) -> None:
    session, first = await _session(store)
    assert (session.head_version, first.number, first.parent, first.instruction) == (1, 1, None, None)
    assert (await store.get_version(session.id, 1)).prompt == "v1 prompt"


async def test_versions_number_up_and_track_their_parent(store: Store) -> None:
    session, _ = await _session(store)
    v2 = await store.add_version(session.id, parent=1, prompt="p2", instruction="make it night", author_id=1)
    v3 = await store.add_version(session.id, parent=2, prompt="p3", instruction="add a fox", author_id=1)
    assert (v2.number, v2.parent, v3.number, v3.parent) == (2, 1, 3, 2)
    assert (await store.get_session(session.id)).head_version == 3


async def test_branching_from_an_older_version_keeps_numbers_unique(store: Store) -> None:
    session, _ = await _session(store)
    await store.add_version(session.id, parent=1, prompt="p2", instruction="i2", author_id=1)
    branch = await store.add_version(session.id, parent=1, prompt="p3", instruction="i3", author_id=1)
    assert (branch.number, branch.parent) == (3, 1)
    assert [v.number for v in await store.lineage(session.id, 3, limit=10)] == [1, 3]


async def test_lineage_is_bounded_and_oldest_first(store: Store) -> None:
    session, _ = await _session(store)
    for n in range(2, 21):
        await store.add_version(session.id, parent=n - 1, prompt=f"p{n}", instruction=f"i{n}", author_id=1)
    window = await store.lineage(session.id, 20, limit=4)
    assert [v.number for v in window] == [17, 18, 19, 20]


async def test_concurrent_additions_never_share_a_number(store: Store) -> None:
    session, _ = await _session(store)
    added = await asyncio.gather(
        *(
            store.add_version(session.id, parent=1, prompt=f"p{i}", instruction="i", author_id=1)
            for i in range(10)
        )
    )
    assert sorted(v.number for v in added) == list(range(2, 12))


async def test_thread_lookup(store: Store) -> None:
    session, _ = await _session(store)
    assert await store.session_for_thread(555) is None
    await store.attach_thread(session.id, 555)
    assert (await store.session_for_thread(555)).id == session.id


async def test_render_lifecycle(store: Store) -> None:
    session, _ = await _session(store)
    render = await store.create_render(
        session_id=session.id,
        version=1,
        requester_id=1,
        channel_id=20,
        model="gpt-image-2",
        size="1024x1024",
        quality="low",
    )
    assert render.status == "queued"
    await store.mark_render_running(render.id)
    assert (await store.get_render(render.id)).status == "running"
    await store.finish_render(
        render.id, revised_prompt=None, input_tokens=10, output_tokens=100, cost_usd=0.003
    )
    await store.set_render_message(render.id, 999)
    done = await store.get_render(render.id)
    assert (done.status, done.output_tokens, done.message_id) == ("done", 100, 999)


async def test_unfinished_renders_become_interrupted(store: Store) -> None:
    session, _ = await _session(store)
    kwargs = dict(
        session_id=session.id, version=1, requester_id=1, channel_id=20, model="m", size="auto", quality="low"
    )
    queued = await store.create_render(**kwargs)
    running = await store.create_render(**kwargs)
    finished = await store.create_render(**kwargs)
    await store.mark_render_running(running.id)
    await store.fail_render(finished.id, code="E-SAFETY", error="refused")
    interrupted = await store.interrupt_unfinished_renders()
    assert sorted(r.id for r in interrupted) == [queued.id, running.id]
    assert {r.status for r in await store.renders_for_session(session.id)} == {"interrupted", "failed"}
    assert await store.interrupt_unfinished_renders() == []


async def test_deleting_a_session_removes_its_versions_and_renders(store: Store) -> None:
    session, _ = await _session(store)
    await store.create_render(
        session_id=session.id, version=1, requester_id=1, channel_id=20, model="m", size="auto", quality="low"
    )
    await store.delete_session(session.id)
    assert await store.get_version(session.id, 1) is None
    assert await store.renders_for_session(session.id) == []


async def test_hostile_text_is_stored_verbatim(store: Store) -> None:
    idea = "'); DROP TABLE sessions; -- @everyone \u202e"
    session, _ = await store.create_session(
        guild_id=1,
        channel_id=2,
        owner_id=3,
        origin="prompt",
        idea=idea,
        target="openai",
        style=None,
        first_prompt="p",
    )
    assert (await store.get_session(session.id)).idea == idea


async def test_meta_round_trip(store: Store) -> None:
    assert await store.get_meta("k") is None
    await store.set_meta("k", "one")
    await store.set_meta("k", "two")
    assert await store.get_meta("k") == "two"


async def test_refinement_is_marked_done_with_its_version(store: Store) -> None:
    session, _ = await _session(store)
    pending = await store.start_refinement(
        session_id=session.id, author_id=1, channel_id=5, instruction="night"
    )
    assert pending.status == "pending"
    await store.add_version(
        session.id, parent=1, prompt="p2", instruction="night", author_id=1, refinement_id=pending.id
    )
    assert await store.interrupt_pending_refinements() == []


async def test_pending_refinements_become_interrupted_once(store: Store) -> None:
    session, _ = await _session(store)
    cut_off = await store.start_refinement(
        session_id=session.id, author_id=1, channel_id=5, instruction="night"
    )
    failed = await store.start_refinement(session_id=session.id, author_id=1, channel_id=5, instruction="fox")
    await store.fail_refinement(failed.id)
    interrupted = await store.interrupt_pending_refinements()
    assert [(r.id, r.status, r.instruction) for r in interrupted] == [(cut_off.id, "interrupted", "night")]
    assert await store.interrupt_pending_refinements() == []
