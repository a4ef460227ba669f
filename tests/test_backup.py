"""Backups: `python -m bot backup PATH` while the bot writes, and the copy taken before an upgrade migrates."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store import SQLiteStore, Store
from bot.store.sqlite import backup_file, migration_files
from loopback.rig import query

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parent.parent
LATEST = len(migration_files())


async def _session(store: Store, idea: str) -> int:
    session, _ = await store.create_session(
        guild_id=10,
        channel_id=20,
        owner_id=1,
        origin="prompt",
        idea=idea,
        target="openai",
        style=None,
        first_prompt="v1 prompt",
    )
    return session.id


async def test_a_backup_taken_while_the_store_writes_is_whole_and_holds_what_was_committed(
    tmp_path: Path,
) -> None:
    store = await SQLiteStore.open(tmp_path / "mural.db")
    session_id = await _session(store, "a beach")
    written = 1
    stop, busy = asyncio.Event(), asyncio.Event()

    async def keep_writing() -> None:
        nonlocal written
        while not stop.is_set():
            written += 1
            await store.add_version(
                session_id, parent=1, prompt=f"p{written}", instruction="again", author_id=1
            )
            if written >= 50:
                busy.set()
            await asyncio.sleep(0)

    writer = asyncio.create_task(keep_writing())
    try:
        await busy.wait()
        committed_before = written - 1  # the one in flight may or may not have been committed
        copied = await backup_file(tmp_path / "mural.db", tmp_path / "copy.db")
        after = written
    finally:
        stop.set()
        await writer
        await store.close()

    assert copied.integrity == "ok" and copied.schema_version == LATEST
    assert committed_before <= copied.versions <= after
    assert query(tmp_path / "copy.db", "PRAGMA integrity_check") == [("ok",)]
    assert query(tmp_path / "copy.db", "SELECT COUNT(*) FROM sessions") == [(1,)]
    assert_private_single_file(tmp_path / "copy.db")


def assert_private_single_file(path: Path) -> None:
    """One file with nothing beside it, readable by its owner only: it holds members' prompts."""
    assert not Path(f"{path}-wal").exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob("*.partial"))


async def test_a_backup_never_overwrites_and_never_creates_the_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await backup_file(tmp_path / "missing.db", tmp_path / "copy.db")
    assert not (tmp_path / "missing.db").exists()
    store = await SQLiteStore.open(tmp_path / "mural.db")
    await store.close()
    (tmp_path / "copy.db").write_text("an earlier backup")
    with pytest.raises(FileExistsError):
        await backup_file(tmp_path / "mural.db", tmp_path / "copy.db")
    assert (tmp_path / "copy.db").read_text() == "an earlier backup"


def _database_at_version(path: Path, version: int) -> None:
    """A database as an older Mural left it: the first `version` migrations, and one session."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for script in migration_files()[:version]:
            connection.executescript(script.read_text())
        connection.execute(
            "INSERT INTO sessions (guild_id, channel_id, owner_id, origin, idea, target)"
            " VALUES (10, 20, 1, 'prompt', 'old', 'openai')"
        )
    finally:
        connection.close()


async def test_an_upgrade_copies_the_database_before_migrating_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.store.sqlite")
    database = tmp_path / "mural.db"
    _database_at_version(database, 1)
    store = await SQLiteStore.open(database)
    overview = await store.overview()
    await store.close()

    copy = tmp_path / f"mural.db.before-v{LATEST}.bak"
    assert store.upgrade_copy == copy
    assert overview.schema_version == LATEST and overview.sessions == 1
    assert query(copy, "PRAGMA user_version") == [(1,)]
    assert query(copy, "SELECT idea FROM sessions") == [("old",)]
    [line] = [r.getMessage() for r in caplog.records if "before migrating" in r.getMessage()]
    assert f"v1 is older than this Mural's v{LATEST}" in line and str(copy) in line

    # A database already current, or a new one, is not copied.
    await (await SQLiteStore.open(database)).close()
    await (await SQLiteStore.open(tmp_path / "new.db")).close()
    assert backups(tmp_path) == [copy.name]


def backups(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("*.bak"))


async def test_a_second_upgrade_attempt_keeps_the_first_copy(tmp_path: Path) -> None:
    database = tmp_path / "mural.db"
    _database_at_version(database, 1)
    first = tmp_path / f"mural.db.before-v{LATEST}.bak"
    first.write_text("the copy an earlier, failed upgrade took")
    await (await SQLiteStore.open(database)).close()
    assert first.read_text() == "the copy an earlier, failed upgrade took"
    assert query(tmp_path / f"mural.db.before-v{LATEST}.bak.2", "PRAGMA user_version") == [(1,)]


async def test_python_m_bot_backup_copies_the_configured_database(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "mural.db")
    await _session(store, "kept")
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": "token-for-a-backup",
        "OPENAI_API_KEY": "key-for-a-backup",
        "DATABASE_PATH": str(tmp_path / "mural.db"),
    }

    def backup(target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", "backup", target],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )

    try:
        # The store stays open, as a running bot's would.
        done = await asyncio.to_thread(backup, "copy.db")
        again = await asyncio.to_thread(backup, "copy.db")
    finally:
        await store.close()
    assert done.returncode == 0, done.stderr
    assert "1 sessions" in done.stdout and "integrity ok" in done.stdout
    assert query(tmp_path / "copy.db", "SELECT idea FROM sessions") == [("kept",)]
    assert again.returncode == 1 and "already exists" in again.stderr


async def test_backup_with_a_database_url_points_to_pg_dump_without_the_password(tmp_path: Path) -> None:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": "token-for-a-backup",
        "OPENAI_API_KEY": "key-for-a-backup",
        "DATABASE_URL": "postgresql://mural:pg-SECRET-pw@db.example:5433/mural",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "backup", "copy.db"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "pg_dump --host=db.example --port=5433 --username=mural" in done.stderr
    assert "pg-SECRET-pw" not in done.stderr
    assert not (tmp_path / "copy.db").exists()
