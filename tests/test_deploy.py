"""The systemd unit example: valid, runs the bot as `python -m bot`, not as root, stops it gracefully."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "mural.service"
EXAMPLE_FOLDER = "/opt/mural"


def _unit() -> configparser.ConfigParser:
    # systemd allows repeated keys; none is repeated here, so plain INI parsing reads it whole.
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_the_unit_runs_the_bot_module_as_a_plain_user_and_stops_it_with_a_handled_signal() -> None:
    service = _unit()["Service"]
    assert service["Type"] == "simple"
    assert service["ExecStart"].split()[1:] == ["-m", "bot"]
    assert service["ExecStart"].startswith(service["WorkingDirectory"] + "/.venv/bin/python")
    assert service["User"] not in ("", "root")
    assert service["KillSignal"] in ("SIGTERM", "SIGINT")  # the two bot/__main__.py handles
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == "2"
    assert service["NoNewPrivileges"] == "true" and service["ProtectSystem"] == "strict"
    database = Path(service["Environment"].removeprefix("DATABASE_PATH="))
    assert str(database.parent) in service["ReadWritePaths"].split()
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """systemd-analyze checks the executable exists, so the example's paths are pointed at real ones."""
    unit = UNIT.read_text().replace(f"{EXAMPLE_FOLDER}/.venv/bin/python", sys.executable)
    (tmp_path / "mural.service").write_text(unit.replace(EXAMPLE_FOLDER, str(tmp_path)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "mural.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mural.service" not in result.stderr, result.stderr
