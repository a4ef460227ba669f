"""Secrets never leave: not in logs, not in anything sent to Discord, not in what the model sees.

The failure paths are the risky ones (exceptions carry request details), so this walks through them
with a known token and key and then searches every log line and every request Discord received.
"""

from __future__ import annotations

import ast
import json
import logging
import stat
from pathlib import Path

import pytest

from loopback.fake_openai import hang, model_not_found, moderation_blocked, server_error, unauthorized
from loopback.rig import DISCORD_TOKEN, OPENAI_KEY, Rig, button

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "A quiet harbour at dawn, fishing boats, mist, soft pastel light."


def everything_discord_received(rig: Rig) -> str:
    parts = []
    for request in rig.discord.requests:
        parts.append(request.path)
        parts.append(json.dumps(request.json, default=str))
        parts.extend(f.data.decode("latin-1") for f in request.files)
    return "\n".join(parts)


@pytest.mark.asyncio
async def test_failure_paths_leak_neither_token_nor_key(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rig.overrides["CHAT_TIMEOUT"] = "1"
    await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")

    _, message, thread = await rig.start_prompt(alice, "a harbour", PROMPT)
    thread_id = int(thread["id"])
    generate = button(message, "gen")

    for fault in (
        unauthorized(),
        model_not_found("gpt-image-1"),
        moderation_blocked(),
        *[server_error(500)] * 3,
    ):
        rig.openai.script_images(fault)
    for expected in ("E-CONFIG", "E-CONFIG", "E-SAFETY", "E-DOWN"):
        click = await rig.discord.click(alice, int(message["id"]), generate)
        # The failure is shown in the thread; the member who pressed is pointed at it.
        pointer = await rig.answer_containing(click, "the thread says why")
        failure = int(rig.discord.text_of(pointer).rsplit("/", 1)[1])
        assert expected in rig.discord.text_of(failure)
    await rig.discord.click(bob, int(message["id"]), generate)
    rig.openai.script_chat(hang())
    await rig.discord.user_message(alice, thread_id, "make it night")
    await rig.wait_for_bot_message(thread_id, "E-TIMEOUT")
    rig.openai.script_chat(unauthorized())
    failed = await rig.discord.slash_command(alice, "prompt", {"idea": "a harbour again"})
    await rig.answer_containing(failed, "E-CONFIG")

    sent = everything_discord_received(rig)
    model_saw = json.dumps([r.json for r in rig.openai.requests])
    for secret in (DISCORD_TOKEN, OPENAI_KEY):
        assert secret not in caplog.text
        assert secret not in sent
        assert secret not in model_saw


def test_formatter_blanks_secrets_even_in_tracebacks() -> None:
    from bot.logs import RedactingFormatter

    formatter = RedactingFormatter("%(message)s", [OPENAI_KEY])
    try:
        raise RuntimeError(f"request failed with key {OPENAI_KEY}")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "oops %s", (OPENAI_KEY,), exc_info=True)
        import sys

        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert OPENAI_KEY not in text
    assert "[redacted]" in text


# Constants only: SQLite's busy timeouts (numbers of the code's own).
ALLOWED_INTERPOLATIONS = {"BUSY_TIMEOUT_MS", "OPENING_BUSY_TIMEOUT_MS"}
# Functions that spell the shared SQL for one backend; what they are given is checked.
DIALECT_TRANSLATIONS = {"postgres_sql", "_sqlite_sql"}


def test_all_sql_is_parameterized() -> None:
    """SQL strings interpolate only constants; every value travels as a parameter."""
    trees = [ast.parse(path.read_text()) for path in sorted((ROOT / "bot" / "store").glob("*.py"))]
    statement_methods = {
        "execute",
        "executescript",
        "one",
        "all",
        "run",
        "_one",
        "_all",
        "_run",
        "fetch",
        "fetchrow",
        "fetchval",
    }
    checked = 0
    for node in (node for tree in trees for node in ast.walk(tree)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr not in statement_methods or not node.args:
                continue
            sql = node.args[0]
            if (
                isinstance(sql, ast.Call)
                and isinstance(sql.func, ast.Name)
                and sql.func.id in DIALECT_TRANSLATIONS
            ):
                sql = sql.args[0]  # the shared SQL, spelled for one backend
            checked += 1
            if isinstance(sql, ast.JoinedStr):
                names = {
                    part.value.id
                    for part in sql.values
                    if isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name)
                }
                values = [part for part in sql.values if isinstance(part, ast.FormattedValue)]
                assert len(names) == len(values) and names <= ALLOWED_INTERPOLATIONS, ast.unparse(sql)
            else:
                assert isinstance(sql, ast.Constant | ast.Name), ast.unparse(sql)
    assert checked > 20


@pytest.mark.asyncio
async def test_database_file_is_private(rig: Rig) -> None:
    await rig.start_bot()
    assert stat.S_IMODE(rig.database.stat().st_mode) == 0o600
