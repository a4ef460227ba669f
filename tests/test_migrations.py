"""How migration files are split and run: inside the runner's own transaction, all or nothing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from bot.store import SQLiteStore
from bot.store import sqlite as database
from bot.store.sqlite import migration_files, migration_statements
from loopback.rig import query

MIGRATIONS = migration_files()
LATEST = len(MIGRATIONS)


def _file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_is_split_into_whole_statements_without_its_own_begin_and_commit(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "0001_x.sql",
        "-- a comment; with a semicolon\n"
        "BEGIN;\n"
        "CREATE TABLE t (a TEXT DEFAULT 'x;y'); /* and; here */\n"
        "CREATE TRIGGER t_stamp AFTER INSERT ON t BEGIN\n"
        "    UPDATE t SET a = a || ';' WHERE rowid = new.rowid;\n"
        "    SELECT 1;\n"
        "END;\n"
        ";\n"
        "-- only a comment here;\n"
        "PRAGMA user_version = 1;\n"
        "COMMIT;\n"
        "-- the end\n",
    )
    statements = migration_statements(path)
    assert len(statements) == 3
    assert statements[0] == "CREATE TABLE t (a TEXT DEFAULT 'x;y');"
    trigger = next(statement for statement in statements if "CREATE TRIGGER" in statement)
    assert trigger.rstrip().endswith("END;") and "SELECT 1;" in trigger
    assert statements[-1].endswith("PRAGMA user_version = 1;")
    assert not any(statement.lstrip().upper().startswith(("BEGIN", "COMMIT")) for statement in statements)


@pytest.mark.parametrize(
    "body",
    [
        "COMMIT;\nCREATE TABLE u (a);",
        "ROLLBACK;",
        "BEGIN IMMEDIATE;",
        "END TRANSACTION;\nCREATE TABLE u (a);",
    ],
)
def test_transaction_control_mid_way_is_refused(tmp_path: Path, body: str) -> None:
    path = _file(
        tmp_path, "0001_x.sql", f"BEGIN;\nCREATE TABLE t (a);\n{body}\nPRAGMA user_version = 1;\nCOMMIT;\n"
    )
    with pytest.raises(RuntimeError, match="controls its transaction mid-way"):
        migration_statements(path)


def test_a_savepoint_inside_a_migration_is_allowed(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "0001_x.sql",
        "BEGIN;\nSAVEPOINT s;\nCREATE TABLE t (a);\nROLLBACK TO s;\nRELEASE s;\nCOMMIT;\n",
    )
    assert len(migration_statements(path)) == 4


def test_an_unfinished_statement_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, "0001_x.sql", "BEGIN;\nCREATE TABLE t (a);\nCOMMIT;\nCREATE TABLE u (a)\n")
    with pytest.raises(RuntimeError, match="unfinished statement"):
        migration_statements(path)


def test_every_shipped_migration_splits_into_its_statements_only() -> None:
    for number, path in enumerate(MIGRATIONS, start=1):
        statements = migration_statements(path)
        assert statements, path.name
        assert statements[-1] == f"PRAGMA user_version = {number};", path.name


def _schema(path: Path) -> list[tuple[str, str, str, str | None]]:
    return query(path, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")


@pytest.mark.asyncio
async def test_the_runner_builds_the_same_schema_as_the_files_applied_by_hand(tmp_path: Path) -> None:
    by_hand = tmp_path / "by-hand.db"
    with sqlite3.connect(by_hand) as raw:
        for script in MIGRATIONS:
            raw.executescript(script.read_text())
    opened = await SQLiteStore.open(tmp_path / "by-store.db")
    await opened.close()
    assert _schema(tmp_path / "by-store.db") == _schema(by_hand)
    assert query(tmp_path / "by-store.db", "PRAGMA user_version") == query(by_hand, "PRAGMA user_version")


@pytest.fixture
def migrations_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The shipped migrations plus extra files of a test's own, as the runner's folder."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in MIGRATIONS:
        shutil.copy(path, folder / path.name)
    monkeypatch.setattr(database, "MIGRATIONS_FOLDER", folder)

    def add(name: str, text: str) -> None:
        _file(folder, name, text)

    return add


@pytest.mark.asyncio
async def test_a_migration_with_a_trigger_runs_and_the_trigger_works(tmp_path: Path, migrations_with) -> None:
    migrations_with(
        f"{LATEST + 1:04d}_trigger.sql",
        "BEGIN;\n"
        "CREATE TABLE audit (note TEXT NOT NULL);\n"
        "CREATE TRIGGER meta_audit AFTER INSERT ON meta BEGIN\n"
        "    INSERT INTO audit (note) VALUES ('meta; ' || new.key);\n"
        "END;\n"
        f"PRAGMA user_version = {LATEST + 1};\n"
        "COMMIT;\n",
    )
    path = tmp_path / "mural.db"
    opened = await SQLiteStore.open(path)
    try:
        await opened.set_meta("k", "v")
    finally:
        await opened.close()
    assert query(path, "PRAGMA user_version") == [(LATEST + 1,)]
    assert query(path, "SELECT note FROM audit") == [("meta; k",)]


@pytest.mark.asyncio
async def test_a_failing_migration_leaves_the_database_as_it_found_it(
    tmp_path: Path, migrations_with
) -> None:
    path = tmp_path / "mural.db"
    with sqlite3.connect(path) as raw:
        for script in MIGRATIONS[:3]:
            raw.executescript(script.read_text())
        raw.execute(
            "INSERT INTO sessions (channel_id, owner_id, origin, idea, target) VALUES (1, 2, 'prompt', 'a fox', 'openai')"
        )
    before = _schema(path)
    migrations_with(
        f"{LATEST + 1:04d}_broken.sql",
        f"BEGIN;\nCREATE TABLE half (a);\nINSERT INTO nowhere VALUES (1);\nPRAGMA user_version = {LATEST + 1};\nCOMMIT;\n",
    )
    with pytest.raises(sqlite3.OperationalError, match="no such table: nowhere"):
        await SQLiteStore.open(path)
    # Nothing of the shipped migrations it ran first, nor of the broken one: one transaction, rolled back.
    assert query(path, "PRAGMA user_version") == [(3,)]
    assert _schema(path) == before
    assert query(path, "SELECT idea FROM sessions") == [("a fox",)]
    # The copy taken before migrating is there, and the file can be opened again.
    [copy] = path.parent.glob("*.bak")
    assert query(copy, "PRAGMA user_version") == [(3,)]
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO meta (key, value) VALUES ('still', 'writable')")


@pytest.mark.asyncio
async def test_a_migration_that_breaks_a_foreign_key_is_rolled_back(tmp_path: Path, migrations_with) -> None:
    migrations_with(
        f"{LATEST + 1:04d}_orphan.sql",
        "BEGIN;\n"
        "INSERT INTO versions (session_id, number, prompt, author_id) VALUES (999, 1, 'p', 1);\n"
        f"PRAGMA user_version = {LATEST + 1};\n"
        "COMMIT;\n",
    )
    path = tmp_path / "mural.db"
    with pytest.raises(RuntimeError, match="broken foreign key"):
        await SQLiteStore.open(path)
    assert query(path, "PRAGMA user_version") == [(0,)]
    assert query(path, "SELECT COUNT(*) FROM sqlite_master") == [(0,)]
