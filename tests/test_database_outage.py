"""PostgreSQL going away under the running bot, and coming back: members are answered privately with E-DB
(in time, never silence, a traceback or the driver's words), nothing queued is lost, and the bot works
again without a restart. The bot reaches PostgreSQL through a loopback TCP proxy the test cuts.

Start-up against a PostgreSQL that does not answer is one line and exit status 1.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.core.errors import StoreUnavailable
from loopback.fake_discord import FakeInteraction
from loopback.fake_openai import ImageReply
from loopback.rig import REPO, Rig, button, unused_port
from loopback.tcp_proxy import TcpProxy
from tests.postgres import stored_rows

pytestmark = pytest.mark.asyncio

PROMPT = "A red fox on a snowy hill at dawn, soft pink light, long shadows, shallow depth of field."
# What the member reads (bot.core.errors.StoreUnavailable): the store's trouble in plain words, with its code.
DATABASE_DOWN = "can't reach my database"
# The driver's words, a traceback, where the database is, or an unexpected failure: never for a member.
NEVER_SHOWN = ("asyncpg", "Traceback", "Connection", "postgres", "127.0.0.1", "E-BUG")
PASSWORD = "outage-SECRET-pw"


@pytest_asyncio.fixture
async def proxy(rig: Rig, postgres_url: str) -> AsyncIterator[TcpProxy]:
    """The rig's bot on PostgreSQL, through a proxy the test can cut; the bot is stopped before the proxy."""
    async with TcpProxy() as started:
        rig.overrides["DATABASE_URL"] = started.url_for(postgres_url)
        yield started
        await started.restore()
        await rig.stop_bot()


def private_database_error(rig: Rig, interaction: FakeInteraction) -> str:
    """The interaction's answer: acknowledged in Discord's 3 s, private, with E-DB and no driver text."""
    assert interaction.responses, "never acknowledged"
    assert interaction.response_latency is not None and interaction.response_latency < 3.0
    assert interaction.ephemeral
    message = interaction.original or (interaction.followups or [None])[-1]
    assert message is not None
    text = rig.discord.text_of(message)
    assert "E-DB" in text and DATABASE_DOWN in text, text
    for words in NEVER_SHOWN:
        assert words not in text, text
    return text


async def answered(rig: Rig, interaction: FakeInteraction) -> None:
    await rig.discord.wait_for(
        lambda: any(
            "E-DB" in rig.discord.text_of(message)
            for message in [interaction.original, *interaction.followups]
            if message
        ),
        rig.within,
        message="an E-DB answer",
    )


async def test_members_hear_e_db_while_postgresql_is_away_and_nothing_queued_is_lost(
    rig: Rig, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    rig.overrides["RENDER_CONCURRENCY"] = "1"
    bot = await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    _, message, _ = await rig.start_prompt(alice, "a fox", PROMPT)

    # Alice's picture is being drawn (held at the fake OpenAI); Bob's waits behind it in the queue.
    drawing, release = asyncio.Event(), asyncio.Event()

    async def held(_params: dict[str, Any]) -> ImageReply | None:
        if not drawing.is_set():
            drawing.set()
            await release.wait()
        return None  # then the scripted (default) picture

    rig.openai.image_handler = held
    await rig.discord.click(alice, int(message["id"]), button(message, "gen"))
    await asyncio.wait_for(drawing.wait(), rig.within)
    rig.openai.script_chat(PROMPT)
    queued = await rig.discord.slash_command(bob, "imagine", {"idea": "a hare"})
    await rig.answer_containing(queued, "queue")
    store = bot.store
    assert await stored_rows(store, "SELECT requester_id, status FROM renders ORDER BY id") == [
        (int(alice["id"]), "running"),
        (int(bob["id"]), "queued"),
    ]

    proxy.cut()
    # PostgreSQL's connections close as it goes: the bot notices before the next member asks anything.
    await rig.discord.wait_for(
        lambda: "Lost the PostgreSQL listening connection" in caplog.text,
        rig.within,
        message="the bot to notice",
    )

    prompt = await rig.discord.slash_command(alice, "prompt", {"idea": "a cat"})
    await answered(rig, prompt)
    private_database_error(rig, prompt)
    press = await rig.discord.click(alice, int(message["id"]), button(message, "gen"))
    await answered(rig, press)
    private_database_error(rig, press)

    await proxy.restore()
    assert await eventually_rows(store) == [(int(alice["id"]), "running"), (int(bob["id"]), "queued")]
    release.set()

    # Alice's picture is finished, then Bob's job, queued before the outage, runs in its turn; both are
    # remembered on their messages (Edit and replies find them).
    await statuses_become(store, [("done", True), ("done", True)])
    assert rig.openai.calls("/images/generations") == 2
    # The same member, the same bot (no restart): a new session, with its thread.
    rig.openai.script_chat("A cat asleep in the sun.")
    again = await rig.discord.slash_command(alice, "prompt", {"idea": "a cat"})
    await rig.answer_containing(again, "### v1")
    await rig.discord.wait_for(lambda: len(rig.threads()) == 2, rig.within, message="the second thread")
    await rig.wait_for_bot_message(int(rig.threads()[1]["id"]), "Reply here")
    assert rig.bot is bot
    broken = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [line for line in broken if "E-BUG" in line or "never retrieved" in line], broken


async def eventually_rows(store: Any, within: float = 10.0) -> list[tuple[Any, ...]]:
    """Who asked for each render and its status, once the store answers again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            return await stored_rows(store, "SELECT requester_id, status FROM renders ORDER BY id")
        except StoreUnavailable:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def statuses_become(store: Any, wanted: list[tuple[str, bool]], within: float = 30.0) -> None:
    """Each render's status and whether its message is known, once they are `wanted`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    sql = "SELECT status, message_id IS NOT NULL FROM renders ORDER BY id"
    while (found := await stored_rows(store, sql)) != wanted:
        if loop.time() > deadline:
            raise AssertionError(f"renders are {found}, not {wanted}")
        await asyncio.sleep(0.1)


# -- at start-up ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("database", "says"),
    [
        ("127.0.0.1:{port}/mural", "PostgreSQL at 127.0.0.1:{port} did not answer (ConnectionRefusedError)"),
        (
            "127.0.0.1:5432/mural_never_made",
            "PostgreSQL at 127.0.0.1:5432 refused the connection (InvalidCatalogNameError)",
        ),
    ],
    ids=["nothing listening", "no such database"],
)
@pytest.mark.usefixtures("postgres_databases")  # a server that answers, for the database it lacks
async def test_start_up_without_postgresql_is_one_line_and_exit_status_1(
    tmp_path: Path, database: str, says: str
) -> None:
    port = unused_port()
    url = f"postgresql://postgres:{PASSWORD}@" + database.format(port=port)
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "DISCORD_TOKEN": "token",
        "OPENAI_API_KEY": "key",
        "DATABASE_URL": url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    printed = out.decode()
    assert process.returncode == 1, printed
    assert printed.splitlines() == [
        f"mural: DATABASE_URL: {says.format(port=port)}; check that PostgreSQL runs and that DATABASE_URL "
        "names it (host, port, user, password, database)"
    ]
    assert PASSWORD not in printed
