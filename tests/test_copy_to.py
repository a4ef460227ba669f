"""`python -m bot copy-to URL`: a SQLite database copied into an empty PostgreSQL one answers the same.

Checked at the store level (every question the bot asks of an old session, budget and server), then as
the command an operator runs: its counts, its refusals, and never the password.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.gallery import GalleryScope, KeptPicture, new_scope_id
from bot.models import Reference
from bot.store import PostgresStore, SQLiteStore, Store
from bot.store.copying import TABLES, Checksum, CopyRefused, copy_to
from loopback.rig import REPO, unused_port
from tests.postgres import Databases, stored_rows

pytestmark = pytest.mark.asyncio

GUILD, OTHER_GUILD, OWNER, HELPER = 10, 11, 1, 2
PASSWORD = "copy-to-SECRET-pw"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def fill(store: Store) -> dict[str, Any]:
    """Something in every table: two sessions (one in a DM, one with a reference picture and a thread),
    branches and an undo, a pending and a failed instruction, a finished picture with its message, an edit of
    it, a failed and a queued job, chat usage, a server's settings and a role's limit, the safety salt, two
    pictures kept for the gallery (one in a private thread), a link's scope and the gallery's secret."""
    session, v1 = await store.create_session(
        guild_id=GUILD,
        channel_id=20,
        owner_id=OWNER,
        origin="prompt",
        idea="a lighthouse at dusk",
        target="openai",
        style="watercolor",
        first_prompt="A lighthouse at dusk, watercolor",
        aspect="landscape",
        reference=Reference("sketch.png", "image/png", PNG),
    )
    await store.attach_thread(session.id, 3000)
    await store.set_version_message(v1.id, 4001)
    v2 = await store.add_version(
        session.id, parent=1, prompt="At night", instruction="night", author_id=OWNER
    )
    await store.set_version_message(v2.id, 4002)
    await store.move_head_to_parent(session.id, 2)
    v3 = await store.add_version(session.id, parent=1, prompt="In fog", instruction="fog", author_id=HELPER)
    await store.set_version_message(v3.id, 4003)
    pending = await store.start_refinement(
        session_id=session.id, author_id=HELPER, channel_id=3000, instruction="add a ship"
    )
    failed = await store.start_refinement(
        session_id=session.id, author_id=OWNER, channel_id=3000, instruction="add gulls"
    )
    await store.fail_refinement(failed.id)
    dm, _ = await store.create_session(
        guild_id=None,
        channel_id=21,
        owner_id=OWNER,
        origin="imagine",
        idea="a cat",
        target="plain",
        style=None,
        first_prompt="A cat",
    )
    job = dict(
        session_id=session.id, requester_id=OWNER, channel_id=3000, guild_id=GUILD, model="gpt-image-2"
    )
    picture = await store.create_render(
        **job,
        version=3,
        size="1536x1024",
        quality="medium",
        n=2,
        with_reference=True,
        cost_reserved=0.0712345,
    )
    await store.finish_render(
        picture.id,
        revised_prompt=None,
        input_tokens=120,
        output_tokens=3000,
        cost_usd=0.0906789,
        cost_estimated=True,
    )
    await store.set_render_message(picture.id, 5001, 3000)
    edit = await store.create_render(
        **{**job, "requester_id": HELPER},
        version=3,
        size="1536x1024",
        quality="low",
        kind="edit",
        source_render_id=picture.id,
        source_index=2,
        instruction="make the sky red",
        prompt="The same picture, the sky red",
        cost_reserved=0.02,
    )
    await store.finish_render(
        edit.id, revised_prompt=None, input_tokens=50, output_tokens=900, cost_usd=0.03, cost_estimated=False
    )
    await store.set_render_message(edit.id, 5002, 3000)
    broken = await store.create_render(**job, version=1, size="1024x1024", quality="high", cost_reserved=0.19)
    await store.fail_render(broken.id, code="E-SAFETY", error="moderation_blocked")
    queued = await store.create_render(
        **{**job, "session_id": dm.id, "guild_id": None, "channel_id": 21},
        version=1,
        size="1024x1024",
        quality="low",
        cost_reserved=0.011,
        held_by="process-a",
        lease_until=datetime.now(UTC) + timedelta(seconds=60),
    )
    for purpose, user, guild, cost in (
        ("expand", OWNER, GUILD, 0.0012345),
        ("refine", HELPER, GUILD, 0.0004),
        ("describe", OWNER, None, None),
    ):
        await store.record_chat_usage(
            session_id=session.id if guild else dm.id,
            guild_id=guild,
            user_id=user,
            purpose=purpose,
            model="gpt-5-mini",
            input_tokens=200,
            output_tokens=80,
            estimated=cost is None,
            cost_usd=cost,
        )
    await store.change_server_settings(
        GUILD,
        {
            "image_quality": "medium",
            "session_access": "thread",
            "daily_pictures": 20,
            "daily_spend": 1.25,
            "gallery": True,
        },
    )
    await store.change_server_settings(OTHER_GUILD, {"server_monthly_spend": 30.5, "moderation": "strict"})
    await store.set_role_limit(GUILD, 777, 50)
    await store.set_role_limit(GUILD, 778, 0)
    kept = [
        await store.keep_gallery_picture(
            KeptPicture(
                render_id=picture.id,
                picture_index=index,
                guild_id=GUILD,
                in_server=True,
                channel_id=3000,
                parent_id=20,
                private_thread=index == 1,
                message_id=5001,
                owner_id=OWNER,
                owner_name="Ówner",
                prompt="In fog, a lighthouse",
                model="gpt-image-2",
                size="1536x1024",
                width=1024,
                height=683,
                webp=b"RIFF" + bytes([index]) * 300 + b"WEBP",
            )
        )
        for index in (0, 1)
    ]
    gallery_scope = GalleryScope(new_scope_id(), OWNER, GUILD, frozenset({20, 3000}), int(time.time()) + 3600)
    await store.save_gallery_scope(gallery_scope)
    return {
        "gallery": kept,
        "gallery scope": gallery_scope,
        "gallery secret": await store.gallery_secret(),
        "sessions": (session.id, dm.id),
        "messages": (4001, 4002, 4003),
        "pictures": (5001, 5002),
        "renders": (picture.id, edit.id, broken.id, queued.id),
        "refinements": (pending.id, failed.id),
        "salt": await store.safety_salt(),
    }


async def answers(store: Store, made: dict[str, Any]) -> dict[str, Any]:
    """Everything the bot asks of old sessions, pictures, budgets and servers."""
    week_ago = datetime.now(UTC) - timedelta(days=7)
    session_id = made["sessions"][0]
    return {
        "sessions": [await store.get_session(number) for number in made["sessions"]],
        "thread": await store.session_for_thread(3000),
        "reference": await store.reference_for(session_id),
        "history": await store.recent_sessions(OWNER, 10),
        "helper history": await store.recent_sessions(HELPER, 10),
        "versions": [await store.version_for_message(message) for message in made["messages"]],
        "lineage": await store.lineage(session_id, 3, 10),
        "v2": await store.get_version(session_id, 2),
        "pictures": [await store.render_for_message(message) for message in made["pictures"]],
        "renders": [await store.get_render(number) for number in made["renders"]],
        "queued": await store.queued_renders(),
        "jobs": await store.count_jobs(),
        "spent": [
            await store.spent(week_ago, guild_id=guild, user_id=user)
            for guild in (GUILD, None)
            for user in (OWNER, HELPER, None)
        ],
        "top": await store.top_members(GUILD, week_ago),
        "settings": [await store.server_settings(guild) for guild in (GUILD, OTHER_GUILD, 12)],
        "roles": await store.role_limits(GUILD),
        "salt": await store.safety_salt(),
        "gallery scope": await store.gallery_scope(made["gallery scope"].scope_id),
        "gallery page": await store.gallery_page(made["gallery scope"]),
        "gallery search": await store.gallery_page(made["gallery scope"], search="FOG"),
        "gallery images": [
            await store.gallery_image(made["gallery scope"], number) for number in made["gallery"]
        ],
        "gallery threads": await store.private_gallery_threads(GUILD),
        "gallery secret": await store.gallery_secret(),
    }


def to_the_millionth(answer: Any) -> Any:
    """An answer with its dollars rounded as PostgreSQL keeps them (NUMERIC to six places; SQLite's REAL
    keeps whatever a float holds)."""
    if isinstance(answer, float):
        return round(answer, 6)
    if isinstance(answer, list | tuple):
        return type(answer)(to_the_millionth(item) for item in answer)
    if isinstance(answer, dict):
        return {key: to_the_millionth(value) for key, value in answer.items()}
    if dataclasses.is_dataclass(answer) and not isinstance(answer, type):
        changes = {
            field.name: to_the_millionth(getattr(answer, field.name)) for field in dataclasses.fields(answer)
        }
        return dataclasses.replace(answer, **changes)
    return answer


@pytest.fixture
def empty_postgres(postgres_databases: Databases):
    """An empty database, not yet migrated: what an operator creates for copy-to."""
    url = postgres_databases.empty()
    yield url
    postgres_databases.drop(url)


async def test_a_copy_answers_every_question_the_same_and_continues_the_ids(
    tmp_path: Path, empty_postgres: str
) -> None:
    source = await SQLiteStore.open(tmp_path / "mural.db")
    made = await fill(source)
    await source.close()

    report = await copy_to(tmp_path / "mural.db", empty_postgres)

    assert [copied.table for copied in report.tables] == [table.name for table in TABLES]
    assert all(copied.rows > 0 for copied in report.tables), report.tables
    old, new = await SQLiteStore.open(tmp_path / "mural.db"), await PostgresStore.open(empty_postgres)
    try:
        before = to_the_millionth(await answers(old, made))
        after = to_the_millionth(await answers(new, made))
        for question in before:
            assert after[question] == before[question], question
        assert after["renders"][0].cost_usd == 0.090679  # 0.0906789 in SQLite
        assert after["salt"] == made["salt"]
        # New rows continue after the copied ids, on both sides alike.
        for store in (old, new):
            session, version = await store.create_session(
                guild_id=GUILD,
                channel_id=20,
                owner_id=OWNER,
                origin="prompt",
                idea="next",
                target="openai",
                style=None,
                first_prompt="next",
            )
            assert session.id == max(made["sessions"]) + 1
            assert version.number == 1
            render = await store.create_render(
                session_id=session.id,
                version=1,
                requester_id=OWNER,
                channel_id=20,
                guild_id=GUILD,
                model="gpt-image-2",
                size="1024x1024",
                quality="low",
            )
            assert render.id == max(made["renders"]) + 1
            kept = await store.keep_gallery_picture(
                KeptPicture(
                    render_id=render.id,
                    picture_index=0,
                    guild_id=None,
                    in_server=False,
                    channel_id=21,
                    parent_id=None,
                    private_thread=False,
                    message_id=6001,
                    owner_id=OWNER,
                    owner_name="Owner",
                    prompt="next",
                    model="gpt-image-2",
                    size="1024x1024",
                    width=1024,
                    height=1024,
                    webp=b"RIFFWEBP",
                )
            )
            assert kept == max(made["gallery"]) + 1
    finally:
        await old.close()
        await new.close()


async def test_a_target_that_is_not_empty_is_refused_and_left_unchanged(
    tmp_path: Path, postgres_url: str
) -> None:
    source = await SQLiteStore.open(tmp_path / "mural.db")
    await fill(source)
    await source.close()
    target = await PostgresStore.open(postgres_url)
    try:
        await target.set_meta("already", "here")
        with pytest.raises(CopyRefused, match=r"is not empty \(meta has 1 row\); nothing was copied"):
            await copy_to(tmp_path / "mural.db", postgres_url)
        assert await stored_rows(target, "SELECT key, value FROM meta") == [("already", "here")]
        assert await stored_rows(target, "SELECT COUNT(*) FROM sessions") == [(0,)]
    finally:
        await target.close()


async def test_no_sqlite_database_is_refused_before_postgresql_is_touched(tmp_path: Path) -> None:
    unused = f"postgresql://postgres@127.0.0.1:{unused_port()}/nowhere"
    with pytest.raises(CopyRefused, match="there is no SQLite database at"):
        await copy_to(tmp_path / "missing.db", unused)
    assert not (tmp_path / "missing.db").exists()


async def test_the_copier_knows_every_table_of_the_postgresql_schema(postgres_url: str) -> None:
    """A new table in a migration must be added to TABLES (in its dependency order), or it is not copied."""
    store = await PostgresStore.open(postgres_url)
    try:
        rows = await stored_rows(
            store,
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        )
    finally:
        await store.close()
    assert {name for (name,) in rows} - {"schema_migrations"} == {table.name for table in TABLES}


@pytest.mark.parametrize(
    ("types", "sqlite_row", "postgres_row"),
    [
        (
            ["bigint", "timestamp with time zone", "boolean", "numeric", "bytea", "text"],
            (1, "2026-05-01T12:00:00.123Z", 1, 0.1234567, b"\x00\x01", "x"),
            (
                1,
                datetime(2026, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
                True,
                Decimal("0.123457"),
                b"\x00\x01",
                "x",
            ),
        ),
        (["integer", "timestamp with time zone", "numeric"], (3, None, None), (3, None, None)),
    ],
)
async def test_the_checksum_is_the_same_for_a_value_read_from_either_side(
    types: list[str], sqlite_row: tuple[Any, ...], postgres_row: tuple[Any, ...]
) -> None:
    read, stored = Checksum(types), Checksum(types)
    read.add(sqlite_row)
    stored.add(postgres_row)
    assert read.hexdigest() == stored.hexdigest()


@pytest.mark.parametrize(
    "changed",
    [
        (1, "2026-05-01T12:00:00.124Z", 1, 0.5),  # a millisecond later
        (1, "2026-05-01T12:00:00.123Z", 0, 0.5),  # a flag flipped
        (1, "2026-05-01T12:00:00.123Z", 1, 0.500001),  # a millionth of a dollar
        (2, "2026-05-01T12:00:00.123Z", 1, 0.5),  # another id
    ],
)
async def test_the_checksum_changes_when_any_value_does(changed: tuple[Any, ...]) -> None:
    types = ["bigint", "timestamp with time zone", "boolean", "numeric"]
    original, other = Checksum(types), Checksum(types)
    original.add((1, "2026-05-01T12:00:00.123Z", 1, 0.5))
    other.add(changed)
    assert original.hexdigest() != other.hexdigest()


# -- the command ------------------------------------------------------------------------------------


def with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")


async def run_copy_to(tmp_path: Path, *args: str) -> tuple[int, str]:
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "DISCORD_TOKEN": "token",
        "OPENAI_API_KEY": "key",
        "DATABASE_PATH": str(tmp_path / "mural.db"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "copy-to",
        *args,
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_the_command_prints_the_counts_and_verified_then_refuses_a_second_copy(
    tmp_path: Path, empty_postgres: str
) -> None:
    source = await SQLiteStore.open(tmp_path / "mural.db")
    await fill(source)
    await source.close()
    # Trust authentication accepts any password: enough to prove it is never printed.
    url = with_password(empty_postgres)

    status, printed = await run_copy_to(tmp_path, url)

    assert status == 0, printed
    lines = printed.splitlines()
    assert lines[0].startswith(f"Copied {tmp_path / 'mural.db'} into PostgreSQL at 127.0.0.1:5432/")
    counts = {line.split()[0]: int(line.split()[1]) for line in lines[1:-1]}
    assert counts == {
        "sessions": 2,
        "versions": 4,
        "refinements": 2,
        "reference_images": 1,
        "renders": 4,
        "chat_usage": 3,
        "guild_settings": 2,
        "role_limits": 2,
        "meta": 2,
        "gallery_pictures": 2,
        "gallery_images": 2,
        "gallery_scopes": 1,
        "gallery_scope_channels": 2,
    }
    assert lines[-1].startswith("verified")

    status, printed = await run_copy_to(tmp_path, url)
    assert status == 1
    assert printed.splitlines() == [printed.strip()]  # one line
    assert "copy-to refused" in printed and "is not empty" in printed
    assert PASSWORD not in printed and "Traceback" not in printed


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        (f"mysql://root:{PASSWORD}@127.0.0.1/mural", 2, "is not a PostgreSQL URL"),
        (f"postgresql://postgres:{PASSWORD}@127.0.0.1:{unused_port()}/mural", 1, "did not answer"),
    ],
    ids=["another database", "nothing listening"],
)
async def test_a_bad_url_is_one_line_without_the_password(
    tmp_path: Path, url: str, status: int, says: str
) -> None:
    source = await SQLiteStore.open(tmp_path / "mural.db")
    await source.close()
    returned, printed = await run_copy_to(tmp_path, url)
    assert returned == status
    assert says in printed and len(printed.strip().splitlines()) == 1, printed
    assert PASSWORD not in printed and "Traceback" not in printed
