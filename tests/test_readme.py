"""The README's commands run as written: the two set-up commands CI runs, and every `python -m bot` one."""

from __future__ import annotations

import re
from pathlib import Path

from bot.__main__ import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_readme_test_command_is_the_one_ci_runs() -> None:
    ci = next(line for line in (ROOT / ".ci" / "run").read_text().splitlines() if "pytest" in line)
    assert f"\n{ci.replace(' -q ', ' ')}\n" in README  # CI only quietens pip
    assert "\npython3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python -m bot\n" in README


def test_every_bot_command_in_the_readme_exists() -> None:
    known = {name.split()[0] for name, _ in COMMANDS}
    used = set(re.findall(r"python -m bot ([a-z][a-z-]*)", README))
    assert used and used <= known, used - known
    assert {"check", "backup"} <= used
