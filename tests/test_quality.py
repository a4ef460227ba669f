"""Checks on the code itself: lint, format, the layering rules, and that the extensions load cleanly."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import discord
import pytest
import pytest_asyncio

from bot.app import EXTENSIONS, MuralBot, build_bot
from bot.config import settings_from

ROOT = Path(__file__).resolve().parent.parent
PROJECT = sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "cogs").rglob("*.py")])
CORE = sorted((ROOT / "bot" / "core").rglob("*.py"))
STORE = ROOT / "bot" / "store"
AI = ROOT / "bot" / "core" / "ai"
MODULE_LINES = 500
TASK_STARTERS = frozenset({"create_task", "ensure_future"})
SQL = re.compile(
    r"\b(SELECT\s+\S|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX))", re.I
)

# A user, role or channel mention, or a timestamp, as Discord's message markup.
DISCORD_MARKUP = re.compile(r"<(?:@[!&]?|#|t:)")


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


def test_type_checker_is_clean() -> None:
    """basedpyright in pyright's basic mode over bot/ and cogs/, as configured in pyproject.toml.

    `--pythonpath` resolves discord, openai and aiosqlite in the environment running the tests,
    even where that is not the `.venv` the configuration names for editors and the command line.
    """
    result = subprocess.run(
        [sys.executable, "-m", "basedpyright", "--pythonpath", sys.executable],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at run time or for type checking alike."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", CORE, ids=_relative)
def test_core_never_imports_discord(path: Path) -> None:
    assert not any(name == "discord" or name.startswith("discord.") for name in _imported_modules(path))


def test_only_the_ai_package_imports_openai() -> None:
    importers = {
        path
        for path in PROJECT
        if any(name == "openai" or name.startswith("openai.") for name in _imported_modules(path))
    }
    assert importers and all(AI in path.parents for path in importers), sorted(map(_relative, importers))


@pytest.mark.parametrize(
    "path",
    PROJECT,
    ids=_relative,
)
def test_every_module_reads_in_one_sitting(path: Path) -> None:
    """Product modules stay under about 500 lines: each is read in one sitting."""
    assert len(path.read_text().splitlines()) <= MODULE_LINES


@pytest.mark.parametrize("path", CORE, ids=_relative)
def test_the_core_writes_no_discord_markup(path: Path) -> None:
    """Mentions (`<@…>`, `<@&…>`, `<#…>`) and timestamps (`<t:…>`) are presentation: `bot/ui/` writes them."""
    assert not DISCORD_MARKUP.findall(path.read_text())


def _tasks_started(path: Path) -> list[str]:
    """Where `path` starts a task itself (`create_task` or `ensure_future`, on asyncio or a loop)."""
    return [
        f"{_relative(path)}:{node.lineno}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Attribute) and node.func.attr in TASK_STARTERS)
            or (isinstance(node.func, ast.Name) and node.func.id in TASK_STARTERS)
        )
    ]


def test_background_work_is_started_only_by_a_task_owner() -> None:
    """Every task is kept, named and its failure logged (`bot/core/tasks.py`)."""
    owner = ROOT / "bot" / "core" / "tasks.py"
    started = [place for path in PROJECT if path != owner for place in _tasks_started(path)]
    assert started == []


@pytest.mark.parametrize("path", [p for p in PROJECT if STORE not in p.parents], ids=_relative)
def test_sql_lives_only_in_the_store(path: Path) -> None:
    assert not SQL.search(path.read_text())


def test_the_bot_package_never_imports_a_cog() -> None:
    offenders = [
        _relative(path)
        for path in (ROOT / "bot").rglob("*.py")
        if any(name == "cogs" or name.startswith("cogs.") for name in _imported_modules(path))
    ]
    assert offenders == []


def test_tests_and_benchmarks_share_the_loopback_rig_but_never_import_each_other() -> None:
    crossings = [
        f"{_relative(path)} imports {name}"
        for folder, other in (("tests", "bench"), ("bench", "tests"))
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in _imported_modules(path)
        if name == other or name.startswith(other + ".")
    ]
    assert crossings == []


def test_no_import_circles_among_the_projects_modules() -> None:
    modules = {_module_name(path): path for path in PROJECT}
    graph = {
        name: {imported for imported in _imported_modules(path) if imported in modules and imported != name}
        for name, path in modules.items()
    }
    # A package's __init__ re-exporting its own parts is not a circle of design.
    for name in graph:
        graph[name] = {other for other in graph[name] if not name.startswith(other + ".")}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = [*trail[trail.index(name) :], name]
            raise AssertionError("import circle: " + " -> ".join(cycle))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


@pytest_asyncio.fixture
async def offline_bot(tmp_path: Path):
    settings = settings_from(
        {
            "DISCORD_TOKEN": "token",
            "OPENAI_API_KEY": "key",
            "OPENAI_BASE_URL": "http://127.0.0.1:9",
            "DATABASE_PATH": str(tmp_path / "mural.db"),
        }
    )
    bot = await build_bot(settings)
    yield bot
    await bot.close()


@pytest.mark.asyncio
async def test_every_extension_loads_and_command_names_are_unique(offline_bot: MuralBot) -> None:
    for extension in EXTENSIONS:
        await offline_bot.load_extension(extension)
    names = [command.name for command in offline_bot.tree.get_commands()]
    assert {"prompt", "imagine"} <= set(names)
    assert len(offline_bot.cogs) == len(EXTENSIONS)
    assert len(names) == len(set(names))
    for command in offline_bot.tree.get_commands(type=discord.AppCommandType.chat_input):
        assert command.to_dict(offline_bot.tree)["description"]
    menus = [menu.name for menu in offline_bot.tree.get_commands(type=discord.AppCommandType.message)]
    assert menus == ["Edit with Mural"]
