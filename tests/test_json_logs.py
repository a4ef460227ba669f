"""LOG_FORMAT=json: one JSON object per line, whatever the process writes, with the same redaction.

The formatter on its own, then whole processes whose every output line is parsed: one that logs,
warns, prints and dies of an uncaught exception; `python -m bot` refusing a setting; and the bot
itself against the loopback fakes, serving a command and failing one with an E-BUG.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.logs import JsonFormatter
from loopback.rig import DISCORD_TOKEN, OPENAI_KEY, Rig

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-json-SECRET-0123456789"


def objects(output: str) -> list[dict[str, Any]]:
    """Every line of `output` as a JSON object (an assertion names the first line that is not one)."""
    found = []
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\n--- all of it:\n{output}") from None
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        assert datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0
        assert entry["time"].endswith("Z")
        found.append(entry)
    return found


def record(
    message: str, *args: Any, level: int = logging.INFO, name: str = "bot.test", **extra: Any
) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


# -- the formatter --------------------------------------------------------------------------------


def test_a_record_is_one_line_with_its_traceback_inside_and_no_secret() -> None:
    formatter = JsonFormatter([SECRET])
    try:
        raise RuntimeError(f"the key {SECRET} leaked into an error")
    except RuntimeError:
        failed = record("Interaction by 42 failed [%s] with %s", "E-BUG-1a2b3c", SECRET, level=logging.ERROR)
        failed.exc_info = sys.exc_info()
    line = formatter.format(failed)
    assert "\n" not in line and SECRET not in line
    [entry] = objects(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "bot.test"
    assert entry["code"] == "E-BUG-1a2b3c"
    assert entry["message"] == "Interaction by 42 failed [E-BUG-1a2b3c] with [redacted]"
    assert entry["traceback"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: the key [redacted] leaked" in entry["traceback"]


@pytest.mark.parametrize(
    ("made", "code", "shard"),
    [
        (record("Render 3 failed [E-SAFETY]: generate"), "E-SAFETY", None),
        (
            record("User 1 ran /imagine: E-INPUT", mural_action=type("A", (), {"outcome": "E-INPUT"})()),
            "E-INPUT",
            None,
        ),
        (record("User 1 ran /imagine: ok", shard=2), None, 2),
        (record("Shard ID %s has connected to Gateway", 3, name="discord.shard"), None, 3),
        (record("Shard ID 3 is a phrase in a member's words", name="bot.test"), None, None),
        (record("Connected as Mural"), None, None),
    ],
)
def test_code_and_shard_where_they_apply(
    made: logging.LogRecord, code: str | None, shard: int | None
) -> None:
    [entry] = objects(JsonFormatter([]).format(made))
    assert entry.get("code") == code
    assert entry.get("shard") == shard


# -- whole processes ------------------------------------------------------------------------------


def run_python(
    code: str, env: dict[str, str] | None = None, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args] if args else [sys.executable, "-c", code],
        cwd=cwd or ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_in_json_mode_warnings_prints_and_an_uncaught_exception_are_objects_too() -> None:
    program = textwrap.dedent(
        f"""
        import logging, threading, warnings
        from bot.logs import setup_logging
        setup_logging("INFO", ["{SECRET}"], log_format="json")
        logging.getLogger("bot").info("started with %s", "{SECRET}")
        print("a line printed at start-up")
        warnings.warn("something old", DeprecationWarning, stacklevel=1)
        thread = threading.Thread(target=lambda: 1 / 0, name="worker")
        thread.start(); thread.join()
        raise SystemError("the end, {SECRET}")
        """
    )
    result = run_python(program)
    assert result.returncode == 1
    assert SECRET not in result.stdout + result.stderr
    lines = objects(result.stdout + result.stderr)
    by_message = {entry["message"]: entry for entry in lines}
    assert by_message["started with [redacted]"]["logger"] == "bot"
    assert by_message["a line printed at start-up"]["logger"] == "stdout"
    [warned] = [entry for entry in lines if entry["logger"] == "py.warnings"]
    assert "DeprecationWarning: something old" in warned["message"]
    [thread] = [entry for entry in lines if "in thread worker" in entry["message"]]
    assert "ZeroDivisionError" in thread["traceback"]
    [uncaught] = [
        entry for entry in lines if entry["level"] == "CRITICAL" and "SystemError" in entry["message"]
    ]
    assert "SystemError: the end, [redacted]" in uncaught["traceback"]
    assert len(lines) == 5


def test_a_bad_setting_in_json_mode_is_one_object_naming_it_and_exit_2(tmp_path: Path) -> None:
    env = {
        "DISCORD_TOKEN": DISCORD_TOKEN,
        "OPENAI_API_KEY": OPENAI_KEY,
        "LOG_FORMAT": "json",
        "METRICS_PORT": "99999",
    }
    result = run_python("", env, "-m", "bot", cwd=tmp_path)
    assert result.returncode == 2
    [entry] = objects(result.stdout + result.stderr)
    assert entry["level"] == "ERROR" and "METRICS_PORT" in entry["message"]


@pytest.mark.parametrize(("variable", "raw"), [("LOG_FORMAT", "xml"), ("METRICS_PORT", "http")])
def test_a_bad_log_format_or_port_is_one_text_line_and_exit_2(
    tmp_path: Path, variable: str, raw: str
) -> None:
    env = {"DISCORD_TOKEN": DISCORD_TOKEN, "OPENAI_API_KEY": OPENAI_KEY, variable: raw}
    result = run_python("", env, "-m", "bot", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"mural: configuration error: {variable}: ")


@pytest.mark.asyncio
async def test_the_bot_in_json_mode_writes_only_objects_an_e_bug_with_its_traceback_inside(rig: Rig) -> None:
    rig.overrides["LOG_FORMAT"] = "json"
    child = await rig.start_process(settled=True)
    alice = rig.discord.add_member("alice")
    await rig.start_prompt(alice, "a fox in the snow", "A red fox on a snowy hill at dawn.")
    # Discord refuses the first answer to /help: an unexpected error, so an incident code and a traceback.
    rig.discord.fail_next(
        "POST", r"/interactions/\d+/[^/]+/callback", 400, code=50035, message="Invalid Form Body"
    )
    broken = await rig.discord.slash_command(alice, "help")
    told = await broken.wait_response()
    [incident] = re.findall(r"E-BUG-[0-9a-f]{6}", json.dumps(told))
    await rig.discord.wait_for(lambda: incident in child.output(), message="the incident in the log")
    child.send(signal.SIGTERM)
    assert await child.wait(rig.within) == 0

    output = child.output()
    assert DISCORD_TOKEN not in output and OPENAI_KEY not in output
    lines = objects(output)
    [failure] = [entry for entry in lines if entry.get("code") == incident]
    assert failure["level"] == "ERROR" and failure["logger"] == "bot.ui.actions"
    assert failure["message"].startswith(f"User {alice['id']} ran /help ")
    assert failure["shard"] == 0
    assert failure["traceback"].startswith("Traceback (most recent call last):")
    assert "HTTPException" in failure["traceback"]
    assert any(entry["message"].startswith("Connected as") for entry in lines)
    assert any(entry["message"].startswith(f"User {alice['id']} ran /prompt ") for entry in lines)
    assert lines[-1]["message"] == "Stopped cleanly"
    assert datetime.fromisoformat(lines[-1]["time"].replace("Z", "+00:00")) <= datetime.now(UTC)
