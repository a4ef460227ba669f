"""At INFO the log tells what members did: one line per action (who, what, where, on what, how it
ended) and one per finished job; never their words, never a secret. Through the real bot and fakes."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from bot.ui import actions
from loopback.fake_openai import ImageReply, moderation_blocked
from loopback.rig import DISCORD_TOKEN, OPENAI_KEY, Rig, button

pytestmark = pytest.mark.asyncio

IDEA = "a lighthouse keeper's cat asleep on the lamp"
V1 = "A ginger cat asleep on the brass lamp of a lighthouse, dusk, warm glow, sea spray below."
INSTRUCTION = "make it a stormy night with green lightning"
V2 = "A ginger cat asleep on the brass lamp of a lighthouse in a storm, green lightning over the sea."
OK = r": ok in \d+\.\d\ds$"


def action_lines(caplog: pytest.LogCaptureFixture, doing: str) -> list[logging.LogRecord]:
    """The action lines of `doing` ("ran /prompt", "pressed generate", …)."""
    return [r for r in caplog.records if r.name == actions.__name__ and f" {doing} " in r.getMessage()]


def job_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.core.queue" and r.getMessage().startswith("Render ")]


async def one_line(rig: Rig, caplog: pytest.LogCaptureFixture, doing: str) -> logging.LogRecord:
    """The one line `doing` leaves, once its action ended (the line comes as its handler returns)."""
    await rig.discord.wait_for(lambda: action_lines(caplog, doing), message=f"a line for {doing!r}")
    [line] = action_lines(caplog, doing)
    return line


def user(member: dict[str, Any]) -> int:
    return int(member["id"])


async def test_a_prompt_a_refinement_and_a_generate_each_leave_one_line_ending_ok(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    guild = rig.discord.guild_id
    _, v1, thread = await rig.start_prompt(alice, IDEA, V1)

    prompt = await one_line(rig, caplog, "ran /prompt")
    assert re.match(
        rf"User {user(alice)} ran /prompt \(guild {guild}, text\) on session 1 v1{OK}", prompt.getMessage()
    )
    assert prompt.levelno == logging.INFO

    await rig.refine(alice, int(thread["id"]), INSTRUCTION, V2)
    refined = await one_line(rig, caplog, "sent a reply")
    assert re.match(
        rf"User {user(alice)} sent a reply \(guild {guild}, thread\) on session 1 v2{OK}",
        refined.getMessage(),
    )

    await rig.discord.click(alice, int(v1["id"]), button(v1, "gen"))
    await rig.wait_for_upload()
    generated = await one_line(rig, caplog, "pressed generate")
    assert re.match(
        rf"User {user(alice)} pressed generate \(guild {guild}, text\) on session 1 v1, job 1{OK}",
        generated.getMessage(),
    )
    settings = rig.settings()
    [job] = job_lines(caplog)
    assert re.match(
        rf"Render 1 done: generate of session 1 v1 for user {user(alice)}, "
        rf"{settings.image_model} {settings.image_size} {settings.image_quality} x1, "
        r"drawn in \d+\.\d\ds, queued \d+\.\d\ds$",
        job.getMessage(),
    )
    assert caplog.records.index(job) < caplog.records.index(generated), "the job ends before the press"
    assert [r for r in caplog.records if r.name == actions.__name__] == [prompt, refined, generated]


async def test_a_refused_command_ends_in_its_code_on_one_line(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rig.overrides["MEMBER_DAILY_SPEND"] = "0.10"
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    refused = await rig.discord.slash_command(alice, "imagine", {"idea": IDEA, "quality": "high"})
    await refused.wait_response()

    line = await one_line(rig, caplog, "ran /imagine")
    assert re.match(
        rf"User {user(alice)} ran /imagine \(guild \d+, text\): E-BUDGET in \d+\.\d\ds \(.+\)$",
        line.getMessage(),
    )
    assert line.levelno == logging.INFO and line.exc_info is None
    assert [r for r in caplog.records if "E-BUDGET" in r.getMessage()] == [line], "one line, not two"


async def test_a_render_refused_after_the_answer_ends_the_press_in_that_code(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The press was acknowledged and the job queued; the member was finally shown E-SAFETY."""
    caplog.set_level(logging.INFO)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, v1, thread = await rig.start_prompt(alice, IDEA, V1)
    rig.openai.script_images(ImageReply(stream_error=moderation_blocked()))
    await rig.discord.click(alice, int(v1["id"]), button(v1, "gen"))
    await rig.wait_for_bot_message(int(thread["id"]), "E-SAFETY")

    line = await one_line(rig, caplog, "pressed generate")
    assert re.search(r"on session 1 v1, job 1: E-SAFETY in \d+\.\d\ds$", line.getMessage())
    [job] = job_lines(caplog)
    assert job.getMessage().startswith("Render 1 failed [E-SAFETY]: generate of session 1 v1")


async def test_a_broken_button_is_one_error_line_with_its_incident_code_and_traceback(
    rig: Rig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, v1, _ = await rig.start_prompt(alice, IDEA, V1)

    async def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(rig.bot.studio, "version", broken)
    told = await (await rig.discord.click(alice, int(v1["id"]), button(v1, "copy"))).wait_response()
    [code] = re.findall(r"E-BUG-[0-9a-f]{6}", told["data"]["content"])

    line = await one_line(rig, caplog, "pressed copy")
    assert line.getMessage().startswith(f"User {user(alice)} pressed copy (guild ")
    assert f"on session 1 v1: {code} in " in line.getMessage()
    assert line.levelno == logging.ERROR and line.exc_info is not None
    assert [r for r in caplog.records if code in r.getMessage()] == [line]


async def test_at_debug_the_log_holds_no_members_words_and_no_secret(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Mural's own lines never carry an idea, a prompt or an instruction; no line at all a key or token."""
    caplog.set_level(logging.DEBUG)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, v1, thread = await rig.start_prompt(alice, IDEA, V1)
    await rig.refine(alice, int(thread["id"]), INSTRUCTION, V2)
    await rig.discord.click(alice, int(v1["id"]), button(v1, "gen"))
    await rig.wait_for_upload()
    await one_line(rig, caplog, "pressed generate")

    def text(record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message + logging.Formatter().formatException(record.exc_info) if record.exc_info else message

    ours = [r for r in caplog.records if r.name.startswith(("bot.", "cogs."))]
    assert ours, "Mural logged something"
    for words in (IDEA, V1, INSTRUCTION, V2):
        assert not [text(r) for r in ours if words in text(r)]
    for secret in (OPENAI_KEY, DISCORD_TOKEN):
        assert not [f"{r.name}: {text(r)}" for r in caplog.records if secret in text(r)]
