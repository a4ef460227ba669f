"""The store on both backends: versions and their lineage, render records, restart facts; SQLite's migrations."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from bot.core.budgets import window_at
from bot.models import Limits, OverLimit
from bot.store import SQLiteStore, Store
from bot.store.sqlite import migration_files
from loopback.rig import query
from tests.postgres import stored_rows

MIGRATIONS = migration_files()

pytestmark = pytest.mark.asyncio


DATABASE = "mural.db"


@pytest.fixture
def store(any_store: Store) -> Store:
    """Each store test runs on both backends (a SQLite file, a fresh PostgreSQL database)."""
    return any_store


async def _session(store: Store, *, idea: str = "a beach at sunset", **extra: Any):
    return await store.create_session(
        guild_id=10,
        channel_id=20,
        owner_id=1,
        origin="prompt",
        idea=idea,
        target="openai",
        style=None,
        first_prompt="v1 prompt",
        **extra,
    )


async def _render(store: Store, session_id: int):
    return await store.create_render(
        session_id=session_id,
        version=1,
        requester_id=1,
        channel_id=20,
        model="gpt-image-2",
        size="1024x1024",
        quality="low",
    )


async def test_new_database_is_migrated_private_and_in_wal(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "mural.db"
    store = await SQLiteStore.open(path)
    await store.close()
    assert query(path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "mural.db"
    first = await SQLiteStore.open(path)
    session, _ = await _session(first)
    await first.close()
    second = await SQLiteStore.open(path)
    try:
        assert (await second.get_session(session.id)).idea == "a beach at sunset"
    finally:
        await second.close()
    assert query(path, "PRAGMA user_version") == [(len(MIGRATIONS),)]


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mural.db"
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    with pytest.raises(RuntimeError, match="newer than this Mural"):
        await SQLiteStore.open(path)


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


async def _render_row(store: Store, render_id: int) -> tuple:
    (row,) = await stored_rows(
        store, "SELECT status, output_tokens, message_id FROM renders WHERE id = ?", render_id
    )
    return row


async def test_render_lifecycle(store: Store, tmp_path: Path) -> None:
    session, _ = await _session(store)
    render = await _render(store, session.id)
    assert render.status == "queued"
    await store.claim_next_render([render.id])
    assert (await _render_row(store, render.id))[0] == "running"
    await store.finish_render(
        render.id, revised_prompt=None, input_tokens=10, output_tokens=100, cost_usd=0.003
    )
    await store.set_render_message(render.id, 999)
    assert await _render_row(store, render.id) == ("done", 100, 999)


async def test_running_renders_become_interrupted_and_queued_ones_wait_to_run(
    store: Store, tmp_path: Path
) -> None:
    session, _ = await _session(store)
    queued, running, finished = [await _render(store, session.id) for _ in range(3)]
    await store.claim_next_render([running.id])
    await store.fail_render(finished.id, code="E-SAFETY", error="refused")
    interrupted = await store.interrupt_running_renders()
    assert [r.id for r in interrupted] == [running.id]
    statuses = await stored_rows(store, "SELECT status FROM renders WHERE session_id = ?", session.id)
    assert sorted(status for (status,) in statuses) == ["failed", "interrupted", "queued"]
    assert await store.interrupt_running_renders() == []
    assert [r.id for r in await store.queued_renders()] == [queued.id]


async def test_migrations_are_numbered_files_each_in_its_own_transaction() -> None:
    assert [path.name[:4] for path in MIGRATIONS] == [f"{n:04d}" for n in range(1, len(MIGRATIONS) + 1)]
    for number, path in enumerate(MIGRATIONS, start=1):
        script = path.read_text().strip()
        assert script.startswith("BEGIN;") and script.endswith("COMMIT;"), path.name
        assert f"PRAGMA user_version = {number};" in script, path.name


async def test_a_database_from_before_chat_usage_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / DATABASE
    with sqlite3.connect(path) as raw:
        for script in MIGRATIONS[:2]:
            raw.executescript(script.read_text())
        raw.execute(
            "INSERT INTO sessions (channel_id, owner_id, origin, idea, target) VALUES (1, 2, 'prompt', 'a fox', 'openai')"
        )
    store = await SQLiteStore.open(path)
    try:
        assert (await store.get_session(1)).idea == "a fox"
        await store.record_chat_usage(
            session_id=1,
            guild_id=None,
            user_id=2,
            purpose="refine",
            model="m",
            input_tokens=1,
            output_tokens=1,
            estimated=True,
            cost_usd=None,
        )
    finally:
        await store.close()
    assert query(path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert query(path, "SELECT session_id, estimated FROM chat_usage") == [(1, 1)]


async def test_chat_usage_of_v1_is_linked_to_its_new_session(store: Store, tmp_path: Path) -> None:
    usage_id = await store.record_chat_usage(
        session_id=None,
        guild_id=10,
        user_id=1,
        purpose="expand",
        model="gpt-5.4-mini",
        input_tokens=120,
        output_tokens=80,
        estimated=False,
        cost_usd=0.0004,
    )
    session, _ = await _session(store, chat_usage_id=usage_id)
    rows = await stored_rows(
        store, "SELECT session_id, input_tokens, output_tokens, cost_usd FROM chat_usage"
    )
    assert rows == [(session.id, 120, 80, 0.0004)]


async def test_hostile_text_is_stored_verbatim(store: Store) -> None:
    idea = "'); DROP TABLE sessions; -- @everyone \u202e"
    session, _ = await _session(store, idea=idea)
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


async def test_renders_are_rebuilt_to_allow_cancelled_keeping_rows_indexes_and_foreign_keys(
    tmp_path: Path,
) -> None:
    path = tmp_path / DATABASE
    with sqlite3.connect(path) as raw:
        for script in MIGRATIONS[:3]:
            raw.executescript(script.read_text())
        raw.execute(
            "INSERT INTO sessions (channel_id, owner_id, origin, idea, target) VALUES (1, 2, 'prompt', 'a fox', 'openai')"
        )
        raw.execute(
            "INSERT INTO renders (session_id, version, requester_id, channel_id, status, model, size, quality,"
            " cost_usd, message_id, started_at) VALUES (1, 1, 2, 1, 'done', 'm', '1024x1024', 'low', 0.01, 77,"
            " '2026-01-01T00:00:00.000Z')"
        )
    store = await SQLiteStore.open(path)
    try:
        kept = await store.get_render(1)
        assert kept is not None and (kept.status, kept.cost_usd, kept.message_id, kept.kind) == (
            "done",
            0.01,
            77,
            "generate",
        )
        queued = await _render(store, 1)
        assert await store.cancel_render(queued.id)
        assert not await store.cancel_render(queued.id), "only a queued job can be cancelled"
        assert query(path, "PRAGMA foreign_key_check") == []
        async with store._db.execute("PRAGMA foreign_keys") as cursor:
            assert tuple(await cursor.fetchone() or ()) == (1,), "foreign keys are back on after migrating"
    finally:
        await store.close()
    indexes = {name for (name,) in query(path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {
        "renders_by_status",
        "renders_by_message",
        "renders_by_session",
        "renders_by_requester",
    } <= indexes
    assert query(path, "SELECT status FROM renders ORDER BY id") == [("done",), ("cancelled",)]
    with sqlite3.connect(path) as raw, pytest.raises(sqlite3.IntegrityError):
        raw.execute("UPDATE renders SET status = 'lost' WHERE id = 1")
    # Deleting a session still removes its renders (the rebuilt table kept its foreign keys).
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute("DELETE FROM sessions WHERE id = 1")
    assert query(path, "SELECT COUNT(*) FROM renders") == [(0,)]


async def test_the_fair_order_takes_turns_across_members(store: Store) -> None:
    session, _ = await _session(store)

    async def queue(member: int) -> int:
        render = await store.create_render(
            session_id=session.id,
            version=1,
            requester_id=member,
            channel_id=20,
            model="gpt-image-2",
            size="1024x1024",
            quality="low",
        )
        return render.id

    a = [await queue(1) for _ in range(3)]
    b = [await queue(2) for _ in range(2)]
    c = await queue(3)
    # Nobody has started yet: one each, in the order the members queued, round after round.
    assert [t.render_id for t in await store.queued_render_order()] == [a[0], b[0], c, a[1], b[1], a[2]]

    first = await store.claim_next_render([*a, *b, c])
    assert first is not None and first.id == a[0] and first.status == "running"
    order = await store.queued_render_order()
    assert [t.render_id for t in order] == [b[0], c, a[1], b[1], a[2]]
    assert [t.busy for t in order] == [False, False, True, False, True]
    # Only the candidates this process holds, and never a second job of a busy member.
    second = await store.claim_next_render([a[1], c])
    assert second is not None and second.id == c
    assert await store.claim_next_render([a[1], a[2]]) is None
    await store.finish_render(a[0], revised_prompt=None, input_tokens=None, output_tokens=None, cost_usd=None)
    await store.finish_render(c, revised_prompt=None, input_tokens=None, output_tokens=None, cost_usd=None)
    # Bob has not started yet; then Alice, whose last start is older than Carol's.
    assert [t.render_id for t in await store.queued_render_order()] == [b[0], a[1], b[1], a[2]]


ROUNDS = 50


async def _open_together(path: Path, count: int) -> list[Store]:
    """`count` Stores opening one file at once; each has its own connection, as processes sharing it would."""
    results = await asyncio.gather(*(SQLiteStore.open(path) for _ in range(count)), return_exceptions=True)
    stores = [result for result in results if isinstance(result, SQLiteStore)]
    failures = [result for result in results if not isinstance(result, SQLiteStore)]
    if failures:
        for opened in stores:
            await opened.close()
        raise AssertionError(f"{len(failures)} of {count} openers failed: {failures!r}")
    return stores


async def test_two_processes_opening_a_new_database_at_once_both_end_up_on_the_latest_schema(
    tmp_path: Path,
) -> None:
    """Two, then three, openers of one new file at once, many times over (each round a new file): the race
    between them was lost about one time in three when each migration was checked outside its lock."""
    for attempt in range(ROUNDS):
        for count in (2, 3):
            folder = tmp_path / f"{attempt}-{count}"
            path = folder / "shared.db"
            stores = await _open_together(path, count)
            try:
                assert query(path, "PRAGMA user_version") == [(len(MIGRATIONS),)], (attempt, count)
                with sqlite3.connect(path) as raw:
                    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
                # Every store works and sees what the others wrote.
                for writer in stores:
                    session, _ = await _session(writer, idea=f"idea {id(writer)}")
                    for reader in stores:
                        assert (await reader.get_session(session.id)) == session, (attempt, count)
                # A new file is not an upgrade: nobody copied a half-migrated schema as if an older Mural left it.
                assert [opened.upgrade_copy for opened in stores] == [None] * count
                assert [name.name for name in folder.iterdir() if ".bak" in name.name] == []
            finally:
                for opened in stores:
                    await opened.close()
            assert query(path, "PRAGMA integrity_check") == [("ok",)]
            assert query(path, "PRAGMA foreign_key_check") == []


async def test_a_database_an_older_mural_left_is_upgraded_once_while_another_opener_runs(
    tmp_path: Path,
) -> None:
    for attempt in range(ROUNDS // 5):
        path = tmp_path / str(attempt) / DATABASE
        path.parent.mkdir()
        with sqlite3.connect(path) as raw:
            for script in MIGRATIONS[:3]:
                raw.executescript(script.read_text())
            raw.execute(
                "INSERT INTO sessions (channel_id, owner_id, origin, idea, target)"
                " VALUES (1, 2, 'prompt', 'a fox', 'openai')"
            )
            raw.execute(
                "INSERT INTO renders (session_id, version, requester_id, channel_id, status, model, size,"
                " quality, cost_usd) VALUES (1, 1, 2, 1, 'done', 'm', '1024x1024', 'low', 0.01)"
            )
            raw.execute(
                "INSERT INTO chat_usage (session_id, user_id, purpose, model, input_tokens, output_tokens)"
                " VALUES (1, 2, 'expand', 'm', 10, 5)"
            )
        stores = await _open_together(path, 2)
        try:
            assert query(path, "PRAGMA user_version") == [(len(MIGRATIONS),)], attempt
            for opened in stores:
                assert (await opened.get_session(1)).idea == "a fox"
                kept = await opened.get_render(1)
                assert kept is not None and (kept.status, kept.cost_usd, kept.kind) == (
                    "done",
                    0.01,
                    "generate",
                )
            queued = await _render(stores[1], 1)
            assert (await stores[0].get_render(queued.id)) == queued
            # One of them upgraded, after one copy of version 3; the other found the work done.
            copies = [opened.upgrade_copy for opened in stores if opened.upgrade_copy is not None]
            assert len(copies) == 1, attempt
            assert sorted(name.name for name in path.parent.glob("*.bak")) == [copies[0].name]
            assert query(copies[0], "PRAGMA user_version") == [(3,)]
            assert query(copies[0], "SELECT idea FROM sessions") == [("a fox",)]
        finally:
            for opened in stores:
                await opened.close()
        assert query(path, "SELECT user_id, input_tokens FROM chat_usage") == [(2, 10)]
        assert query(path, "PRAGMA integrity_check") == [("ok",)]
        assert query(path, "PRAGMA foreign_key_check") == []


async def _job(store: Store, session_id: int, *, cost: float = 0.05) -> Any:
    return await store.create_render(
        session_id=session_id,
        version=1,
        requester_id=1,
        channel_id=20,
        guild_id=10,
        model="gpt-image-2",
        size="1024x1024",
        quality="low",
        cost_reserved=cost,
    )


async def test_quick_budget_checks_refuse_only_what_the_rows_refuse(
    tmp_path: Path,
) -> None:
    """The running totals only ever let through what they count as well within; near a limit, the rows
    decide (a cancelled job frees its place). What another process spent only the exact check sees."""
    window = window_at()
    limits = Limits(member_daily_pictures=3, member_daily_spend=1.0)
    this, other = await SQLiteStore.open(tmp_path / DATABASE), await SQLiteStore.open(tmp_path / DATABASE)
    try:

        async def check(pictures: int = 1, cost: float = 0.05, *, quick: bool = True) -> OverLimit | None:
            return await this.check_limits(
                limits, window, guild_id=10, user_id=1, pictures=pictures, cost=cost, quick=quick
            )

        session, _ = await _session(this)
        assert await check() is None  # the first check reads the totals from the rows
        await _job(this, session.id)
        await _job(this, session.id)
        assert await check() is None
        third = await _job(this, session.id)
        assert await check() == OverLimit("member_daily_pictures", 3, 3)
        await this.cancel_render(third.id)  # the totals do not count down; the rows do
        assert await check() is None
        await _job(other, session.id, cost=0.90)  # spent by another process: the totals cannot know
        assert await check(pictures=0, cost=0.10) is None, "a quick check lets it through to the paid call"
        assert await check(pictures=0, cost=0.10, quick=False) == OverLimit(
            "member_daily_spend", pytest.approx(1.0), 1.0
        ), "which checks the rows"
    finally:
        await this.close()
        await other.close()
