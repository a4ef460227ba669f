"""Crashes and restarts, with real signals: the bot runs as its own process (`Rig.start_process()`).

The fakes serve from this test's event loop while the child process talks to them over loopback. A
SIGKILL must lose nothing that was committed and leave SQLite consistent; the next start must tell the
owner about the render it cut off and keep every old button working. SIGTERM and SIGINT must stop the
bot cleanly and quickly, even with a render hanging at OpenAI.

One test runs `serve()` in-process instead, because it looks at the moment `serve()` returns.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

import bot.__main__ as bot_main
import bot.app
from bot.config import Settings
from bot.core.ai import OpenAIService, RetryPolicy
from bot.store import SQLiteStore, Store
from loopback.fake_discord import FakeDiscord
from loopback.fake_openai import hang
from loopback.rig import (
    DISCORD_TOKEN,
    EPHEMERAL,
    PNG_SIGNATURE,
    PROCESS_START_WITHIN,
    BotProcess,
    Rig,
    button,
    custom_ids,
    loopback_rig,
)

pytestmark = pytest.mark.asyncio

IDEA = "a beach at sunset"
V1 = "A wide, quiet beach at golden hour, the low sun melting into a hazy horizon, warm amber light."
V2 = "The same beach at night under a full moon, silver light on the wet sand, deep blue shadows."
# What the issue asks of SIGINT and SIGTERM.
SHUTDOWN_LIMIT = 5.0
# A generous bound for a loaded 2-core machine: every step's wait is bounded by it (the rig's `within`),
# a process start by PROCESS_START_WITHIN.
STEP_WITHIN = 15.0
# Far longer than any test: a hang() at the fake OpenAI is still hanging when the signal arrives.
AI_TIMEOUT = "300"


class RecordingDiscord(FakeDiscord):
    """The fake Discord, also remembering how each gateway websocket ended (it keeps no record of that).

    A client that closes properly sends a close frame with a code; a process that vanished leaves the
    server with 1006 (abnormal closure).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gateway_close_codes: list[int | None] = []

    async def _gateway_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = await super()._gateway_handler(request)
        self.gateway_close_codes.append(ws.close_code)
        return ws


@pytest_asyncio.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """The rig for bot processes: this process's discord.py is left alone, the model never times out."""
    # A subprocess on a busy machine answers slower than the in-process bot: widen Discord's 3 s deadline.
    discord_server = RecordingDiscord(token=DISCORD_TOKEN, interaction_deadline=10.0)
    async with loopback_rig(
        tmp_path,
        discord=discord_server,
        overrides={"CHAT_TIMEOUT": AI_TIMEOUT, "IMAGE_TIMEOUT": AI_TIMEOUT},
        within=STEP_WITHIN,
    ) as harness:
        yield harness


# -- SIGKILL during a render -------------------------------------------------------------------------


async def crash_during_a_render(rig: Rig) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Alice's /prompt reaches v1; her Generate hangs at OpenAI; the bot is killed. (alice, v1, thread)"""
    bot = await rig.start_process()
    alice = rig.discord.add_member("alice")
    _, v1, thread = await rig.start_prompt(alice, IDEA, V1)
    rig.openai.script_images(hang())
    click = await rig.discord.click(alice, int(v1["id"]), button(v1, "gen"))
    await click.wait_response(timeout=rig.within)
    await rig.openai.wait_for_calls("/images/generations", 1, wait_s=rig.within)
    await rig.crash(bot)
    return alice, v1, thread


async def test_sigkill_during_a_render_leaves_an_intact_database(rig: Rig) -> None:
    """Everything committed before the kill is there and consistent; the render is left unfinished."""
    alice, v1, thread = await crash_during_a_render(rig)

    assert rig.integrity() == "ok"
    sessions = rig.query("SELECT id, owner_id, thread_id, head_version, idea FROM sessions")
    assert sessions == [(1, int(alice["id"]), int(thread["id"]), 1, IDEA)]
    versions = rig.query("SELECT session_id, number, prompt, message_id FROM versions")
    assert versions == [(1, 1, V1, int(v1["id"]))]
    renders = rig.query("SELECT session_id, version, status FROM renders")
    assert len(renders) == 1
    assert renders[0][:2] == (1, 1) and renders[0][2] in ("queued", "running")


async def test_render_cut_off_by_sigkill_is_reported_with_a_retry_that_renders(rig: Rig) -> None:
    alice, _, thread = await crash_during_a_render(rig)

    await rig.start_process()
    notice = await rig.wait_for_bot_message([rig.discord.channel_id, int(thread["id"])], "interrupted")
    assert f"<@{alice['id']}>" in rig.discord.text_of(notice) and "**v1**" in rig.discord.text_of(notice)
    assert [b["label"] for b in rig.discord.buttons_of(notice)] == ["Retry"]
    retry = button(notice, "reroll")
    assert rig.query("SELECT status FROM renders") == [("interrupted",)]

    before = len(rig.discord.requests)
    await rig.discord.click(alice, int(notice["id"]), retry)
    _, upload = await rig.wait_for_upload(before)

    assert upload.data.startswith(PNG_SIGNATURE)
    assert rig.openai.image_requests[-1].json["prompt"] == V1


async def test_buttons_on_messages_from_before_a_sigkill_still_work(rig: Rig) -> None:
    alice, v1, _ = await crash_during_a_render(rig)
    await rig.start_process()

    copy = button(v1, "copy")
    click = await rig.discord.click(alice, int(v1["id"]), copy)
    response = await click.wait_response(timeout=rig.within)

    assert response["data"]["flags"] & EPHEMERAL
    assert response["data"]["content"] == f"```\n{V1}\n```"


# -- SIGKILL during a refinement ---------------------------------------------------------------------


async def crash_during_a_refinement(rig: Rig) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Alice's /prompt reaches v1; her thread reply hangs at the model; the bot is killed. (alice, v1, thread id)"""
    bot = await rig.start_process()
    alice = rig.discord.add_member("alice")
    _, v1, thread = await rig.start_prompt(alice, IDEA, V1)
    await rig.refinement_hanging_at_openai(alice, int(thread["id"]), "make it night")
    await rig.crash(bot)
    return alice, v1, int(thread["id"])


async def test_sigkill_during_a_refinement_keeps_v1_and_no_half_written_v2(rig: Rig) -> None:
    _, v1, _ = await crash_during_a_refinement(rig)

    assert rig.integrity() == "ok"
    assert rig.query("SELECT head_version FROM sessions") == [(1,)]
    assert rig.query("SELECT number, prompt, message_id FROM versions") == [(1, V1, int(v1["id"]))]


async def test_refinement_continues_in_the_thread_after_a_sigkill(rig: Rig) -> None:
    alice, _, thread_id = await crash_during_a_refinement(rig)

    await rig.start_process()
    v2 = await rig.refine(alice, thread_id, "make it night, please", V2)

    assert "full moon" in rig.discord.text_of(v2)
    sent = rig.openai.chat_requests[-1].json["messages"][-1]["content"]
    assert V1 in sent and "make it night, please" in sent
    assert rig.query("SELECT number FROM versions ORDER BY number") == [(1,), (2,)]


async def test_refinement_cut_off_by_sigkill_is_reported_to_its_author(rig: Rig) -> None:
    """The instruction was recorded before the model was asked, so the restart can say it was not applied."""
    alice, _, thread_id = await crash_during_a_refinement(rig)

    await rig.start_process()
    notice = await rig.wait_for_bot_message(thread_id, "I restarted while working on")

    assert f"<@{alice['id']}>" in rig.discord.text_of(notice) and "**v1**" in rig.discord.text_of(notice)
    # Then the version the prompt is still at, with its Refine button, right after the notice.
    head = await rig.discord.wait_for(
        lambda: next((m for m in rig.bot_messages_in(thread_id) if int(m["id"]) > int(notice["id"])), None),
        rig.within,
        message="the head version after the notice",
    )
    assert rig.discord.text_of(head).startswith("### v1")
    assert "mural:refine:1:1" in custom_ids(head)
    assert rig.query("SELECT status FROM refinements") == [("interrupted",)]


# -- SIGTERM and SIGINT --------------------------------------------------------------------------------


async def stop_with(bot: BotProcess, signum: signal.Signals) -> tuple[int, float]:
    """Send `signum`; (exit status, seconds from the signal to the exit)."""
    loop = asyncio.get_running_loop()
    sent_at = loop.time()
    bot.send(signum)
    status = await bot.wait(SHUTDOWN_LIMIT * 3)
    took = loop.time() - sent_at
    print(f"{signum.name}: exit status {status} after {took:.2f}s")
    return status, took


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_stops_cleanly_within_five_seconds_despite_a_hanging_render(
    rig: Rig, signum: signal.Signals
) -> None:
    """Exit status 0 in time, no traceback, nothing left unclosed, gateway closed, SQLite closed and sound."""
    bot = await rig.start_process(settled=True)
    await rig.imagine_hanging_at_openai(rig.discord.add_member("alice"), IDEA, V1)

    status, took = await stop_with(bot, signum)

    output = bot.output()
    assert took < SHUTDOWN_LIMIT, output
    assert status == 0, output
    assert "Traceback" not in output
    assert "unclosed" not in output.lower()
    assert "Stopped cleanly" in output
    assert not rig.write_ahead_log_exists()
    assert rig.integrity() == "ok"
    [close_code] = await rig.discord.wait_for(
        lambda: rig.discord.gateway_close_codes, rig.within, message="the gateway socket to end"
    )
    # A close frame from the bot, not a vanished peer (1006). discord.py 2.7.1 sends 4000, not the 1000 its
    # Client.close() asks for: its gateway reader wakes up first and closes the socket with 4000 itself.
    assert close_code in (1000, 1001, 4000)


async def test_render_stopped_by_sigterm_is_reported_after_the_restart(rig: Rig) -> None:
    """A clean stop cancels the render but keeps its record unfinished, so the next start owns up to it."""
    bot = await rig.start_process()
    alice = rig.discord.add_member("alice")
    await rig.imagine_hanging_at_openai(alice, IDEA, V1)
    await stop_with(bot, signal.SIGTERM)

    await rig.start_process()
    notice = await rig.wait_for_bot_message(rig.discord.channel_id, "interrupted")

    assert f"<@{alice['id']}>" in rig.discord.text_of(notice)
    assert any(cid.startswith("mural:reroll:") for cid in custom_ids(notice))


async def test_serve_returns_only_after_the_database_and_http_clients_are_closed(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`main()` runs `serve()` under `asyncio.run()`, which cancels every task still running when `serve()`
    returns: the database and the HTTP clients must be closed by then, whichever call began closing.

    That moment can only be watched in-process: `serve()` runs on this test's loop, where it installs its
    signal handlers before connecting, and this process sends itself a real SIGTERM.
    """
    closed: list[str] = []

    class RecordingStore(SQLiteStore):
        async def close(self) -> None:
            await super().close()
            closed.append("database")

    build_ai = bot.app.build_ai

    def recording_services(
        settings: Settings, *, retry: RetryPolicy | None = None, safety_salt: str = ""
    ) -> OpenAIService:
        service = build_ai(settings, retry=retry, safety_salt=safety_salt)
        close = service.close

        async def recording_close() -> None:
            await close()
            closed.append("http clients")

        service.close = recording_close  # type: ignore[method-assign]
        return service

    async def open_recording_store(*, path: Path, url: str | None = None) -> Store:
        assert url is None
        return await RecordingStore.open(path)

    monkeypatch.setattr(bot.app, "open_store", open_recording_store)
    monkeypatch.setattr(bot.app, "build_ai", recording_services)
    rig.discord.patch(monkeypatch)
    settings = rig.settings()
    # Should serve() ever stop taking SIGTERM over, the signal must not end the test run.
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serving = asyncio.create_task(bot_main.serve(settings, sync_only=False))
    try:
        await rig.discord.wait_for(
            lambda: serving.done() or rig.discord.identify_count > 0,
            PROCESS_START_WITHIN,
            message="serve() to connect",
        )
        if serving.done():  # pytest.fail, not assert: only the known bug may count as the expected failure
            pytest.fail(f"serve() stopped before it connected, with {serving.result()}")
        os.kill(os.getpid(), signal.SIGTERM)
        status = await asyncio.wait_for(serving, SHUTDOWN_LIMIT)
        closed_when_serve_returned = sorted(closed)
        # Here nothing cancels the leftover close: let it finish, so no open database outlives the test.
        await rig.discord.wait_for(lambda: len(closed) == 2, rig.within, message="the close to finish")
    finally:
        serving.cancel()
        signal.signal(signal.SIGTERM, previous)

    if status != 0:
        pytest.fail(f"serve() returned {status} after SIGTERM")
    assert closed_when_serve_returned == ["database", "http clients"]
