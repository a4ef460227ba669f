"""The systemd unit examples (one process, and a template for several): valid, run the bot as `python -m bot`,
not as root, stop it gracefully."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import shard_list

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


# -- several processes: the template unit, one instance per shard range ----------------------------

TEMPLATE = ROOT / "deploy" / "mural@.service"


def _template() -> dict[str, dict[str, list[str]]]:
    """Section → key → every value, in order: systemd repeats keys (EnvironmentFile) where INI would not."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in TEMPLATE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"a setting outside a section: {line}"
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_the_template_runs_one_process_per_instance_with_the_instance_as_its_shards() -> None:
    service = {key: values[-1] for key, values in _template()["Service"].items()}
    assert _template()["Service"]["Environment"] == ["SHARD_IDS=%i"]
    assert shard_list("0-1") == (0, 1)  # `mural@0-1` names shards as SHARD_IDS reads them
    # Settings every process shares, then this instance's own (optional), which win.
    shared, own = _template()["Service"]["EnvironmentFile"]
    assert not shared.startswith("-") and "%i" not in shared
    assert own.startswith("-") and own.endswith("/%i.env")
    assert service["ExecStart"].split()[1:] == ["-m", "bot"]
    assert service["ExecStart"].startswith(service["WorkingDirectory"] + "/.venv/bin/python")
    assert service["User"] not in ("", "root")
    assert service["KillSignal"] in ("SIGTERM", "SIGINT")
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == "2"
    # Everything is in PostgreSQL: no database file, so nothing on disk needs to be writable.
    assert "DATABASE_PATH" not in TEMPLATE.read_text() and "ReadWritePaths" not in service
    assert service["NoNewPrivileges"] == "true" and service["ProtectSystem"] == "strict"
    assert "%i" in _template()["Unit"]["Description"][0]
    assert _template()["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_template_names_every_setting_a_deployment_shares() -> None:
    text = TEMPLATE.read_text()
    for setting in ("DATABASE_URL", "SHARD_COUNT", "RENDER_CONCURRENCY", "RENDER_LEASE_SECONDS"):
        assert setting in text, setting


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_an_instance_of_the_template(tmp_path: Path) -> None:
    """An instance (`mural@0-1`) as systemd loads it, its paths pointed at real ones."""
    unit = TEMPLATE.read_text().replace(f"{EXAMPLE_FOLDER}/.venv/bin/python", sys.executable)
    unit = unit.replace(EXAMPLE_FOLDER, str(tmp_path)).replace("/etc/mural/", f"{tmp_path}/")
    (tmp_path / "common.env").write_text("SHARD_COUNT=4\n")
    (tmp_path / "mural@0-1.service").write_text(unit)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "mural@0-1.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mural@" not in result.stderr, result.stderr
