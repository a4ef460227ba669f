"""The log at INFO reads as what Mural did: no line per HTTP request, one line per refused request."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.core.errors import InvalidRequest, NotAllowed
from bot.logs import NOISY_LOGGERS, keep_secret, setup_logging
from bot.ui.errors import describe, log_failure
from loopback.rig import Rig


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """setup_logging changes process-wide state: put the root handlers and levels back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    root.handlers[:], root.level = handlers, level
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


@pytest.mark.parametrize(
    ("level", "http_level"), [("INFO", "WARNING"), ("WARNING", "WARNING"), ("DEBUG", "DEBUG")]
)
def test_http_clients_speak_only_of_problems_unless_debugging(
    restored_logging: None, level: str, http_level: str
) -> None:
    setup_logging(level, ())
    for name in ("httpx2", "httpcore2", "openai", "httpx"):
        assert logging.getLevelName(logging.getLogger(name).getEffectiveLevel()) == http_level


@pytest.mark.parametrize(
    "error",
    [InvalidRequest("Quality max is not one of low, medium, high, auto."), NotAllowed("That is not yours.")],
    ids=["E-INPUT", "E-NOT-YOURS"],
)
def test_a_members_refused_request_is_one_info_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    caplog.set_level(logging.DEBUG)
    try:
        raise error
    except Exception as raised:
        log_failure(describe(raised), raised, "Interaction by 42")
    [record] = caplog.records
    assert record.levelno == logging.INFO and record.exc_info is None
    assert "\n" not in record.getMessage() and "refused [E-" in record.getMessage()


@pytest.mark.asyncio
async def test_a_refused_command_and_a_render_log_a_story(
    rig: Rig, caplog: pytest.LogCaptureFixture, restored_logging: None
) -> None:
    """Through the real bot: a refused /imagine is one INFO line; a render adds no HTTP request lines."""
    setup_logging("INFO", ())
    caplog.set_level(logging.INFO)
    logging.getLogger().addHandler(caplog.handler)  # setup_logging replaced the root's handlers
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    refused = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "quality": "max"})
    await refused.wait_response()
    rig.openai.script_chat("A red fox in the snow.")
    drawn = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox"})
    await drawn.wait_response()
    await rig.wait_for_upload()

    [refusal] = [r for r in caplog.records if "E-INPUT" in r.getMessage()]
    assert refusal.levelno == logging.INFO and refusal.exc_info is None
    assert not [r.getMessage() for r in caplog.records if r.name.startswith(NOISY_LOGGERS)]
    assert not [r for r in caplog.records if r.exc_info]


def test_a_secret_the_store_generates_is_blanked_out_once_known(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The safety salt and the gallery's signing secret are made by the store after logging began (json
    lines use the same redaction; json mode is not set up here, as it takes over this process's streams)."""
    setup_logging("INFO", ("discord-token-1234",))
    keep_secret("generated-salt-5678abcd")
    logging.getLogger("bot.test").warning("salt generated-salt-5678abcd, token discord-token-1234")
    written = capsys.readouterr().err
    assert "generated-salt-5678abcd" not in written and "discord-token-1234" not in written
    assert written.count("[redacted]") == 2
