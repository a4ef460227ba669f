"""Checks on the code itself: lint, format, the layering rules, and that the extensions load cleanly."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_asyncio

from bot.client import EXTENSIONS, MuralBot, build_services
from bot.config import settings_from
from bot.store import Store

ROOT = Path(__file__).resolve().parent.parent
GLUE = {"client.py", "ui.py", "actions.py", "__main__.py"}
CORE = sorted(p for p in (ROOT / "bot").glob("*.py") if p.name not in GLUE)
SQL = re.compile(
    r"\b(SELECT\s+\S|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX))", re.I
)


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_ruff_check_is_clean() -> None:
    result = _ruff("check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_core_never_imports_discord(path: Path) -> None:
    assert "discord" not in _imports(path)


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in sorted((ROOT / "bot").glob("*.py")) + sorted((ROOT / "cogs").glob("*.py"))
        if p.name != "store.py"
    ],
    ids=lambda p: p.name,
)
def test_sql_lives_only_in_the_store(path: Path) -> None:
    assert not SQL.search(path.read_text())


@pytest_asyncio.fixture
async def offline_bot(tmp_path: Path):
    settings = settings_from(
        {"DISCORD_TOKEN": "token", "OPENAI_API_KEY": "key", "OPENAI_BASE_URL": "http://127.0.0.1:9"}
    )
    store = await Store.open(tmp_path / "mural.db")
    bot = MuralBot(settings=settings, store=store, ai=build_services(settings))
    yield bot
    await bot.close()


@pytest.mark.asyncio
async def test_every_extension_loads_and_command_names_are_unique(offline_bot: MuralBot) -> None:
    for extension in EXTENSIONS:
        await offline_bot.load_extension(extension)
    names = [command.name for command in offline_bot.tree.get_commands()]
    assert {"prompt", "imagine"} <= set(names)
    assert len(names) == len(set(names))
    for command in offline_bot.tree.get_commands():
        assert command.to_dict(offline_bot.tree)["description"]
