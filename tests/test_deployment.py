"""A deployment: two real bot processes sharing one PostgreSQL database and one loopback Discord and
OpenAI (issue 14, DESIGN §5).

Process A holds shard 0 of 2 (its server's events and interactions, and every DM), process B shard 1
(another server's). Each test proves one property of the deployment as a whole: every job rendered
once and fairly across both, one limit on renders for both, a killed process's jobs finished or owned
up to by the other, a clean stop handing its jobs over, budgets and settings shared.

Image requests wait at the fake OpenAI until the test lets them through (`ImageGate`), so the order in
which the deployment starts jobs, and how many it runs at once, can be watched. What the processes
wrote is read from PostgreSQL beside them.

Budgets and settings are per server, and a server's interactions reach one shard, so those two tests
put both processes on shard 0: Discord hands each interaction to one of a shard's sessions (as while a
restarted process takes a shard over from the one it replaces), and the test picks which one
(`SteeredDiscord`). One of them fails today and is marked so: a refusal that the other process's
use calls for is not private.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import pytest_asyncio

from loopback.fake_discord import FakeDiscord, FakeGuild, Permissions
from loopback.rig import (
    DISCORD_TOKEN,
    EPHEMERAL,
    BotProcess,
    Rig,
    buttons,
    finished_pictures,
    loopback_rig,
)

pytestmark = pytest.mark.asyncio

T = TypeVar("T")

SHARD_COUNT = 2
# The shortest lease the settings allow: a process that died is noticed within seconds.
LEASE_SECONDS = 5
# Every wait is bounded by this; a loaded 2-core machine answers slower than an idle one.
WITHIN = 15.0
# Discord's callback type of a deferred answer.
DEFERRED = 5


class SteeredDiscord(FakeDiscord):
    """The fake Discord, handing each interaction to the gateway session the test names.

    Where several sessions hold a guild's shard (two processes on one shard, as while a restarted
    process takes a shard over), Discord gives each interaction to one of them. `spread` is the
    sessions to take turns over, one interaction each; empty, the fake's own choice (the latest).
    `routed` is the session each interaction went to, in order.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spread: list[str] = []
        self.routed: list[str] = []
        self._turn = 0

    def _interaction_session(self, guild_id: int | None) -> Any:
        if not self.spread:
            session = super()._interaction_session(guild_id)
        else:
            session_id = self.spread[self._turn % len(self.spread)]
            self._turn += 1
            session = self._sessions[session_id]
            if not (session.live and session.covers(guild_id)):
                raise RuntimeError(f"session {session_id} is not live on the shard of guild {guild_id}")
        self.routed.append(session.session_id)
        return session

    def steer(self, *processes: BotProcess, shard: int = 0) -> None:
        """Hand the next interactions to these processes' sessions of `shard`, in turn."""
        self.spread = [process.sessions[shard] for process in processes]
        self._turn = 0


class ImageGate:
    """The fake OpenAI's image handler: each request is recorded as it arrives and, while the gate
    holds, waits there until the test lets it through; then the fake's default picture is sent.

    `waiting` counts requests inside the gate now, `peak` the most ever there at once.
    """

    def __init__(self) -> None:
        self.arrived: list[str] = []  # each request's prompt, in the order they arrived
        self.waiting = 0
        self.peak = 0
        self._holding = False
        self._passes = 0
        self._changed = asyncio.Condition()

    async def __call__(self, body: dict[str, Any]) -> None:
        self.arrived.append(str(body.get("prompt")))
        self.waiting += 1
        self.peak = max(self.peak, self.waiting)
        try:
            async with self._changed:
                await self._changed.wait_for(lambda: not self._holding or self._passes > 0)
                if self._holding:
                    self._passes -= 1
        finally:
            self.waiting -= 1

    def hold(self) -> None:
        """Requests from now on wait until let through."""
        self._holding = True

    async def let_through(self, count: int = 1) -> None:
        async with self._changed:
            self._passes += count
            self._changed.notify_all()

    async def open(self) -> None:
        """Every request waiting, and every later one, goes through."""
        async with self._changed:
            self._holding = False
            self._changed.notify_all()


@dataclass
class Deployment:
    rig: Rig
    db: asyncpg.Connection
    gate: ImageGate
    guilds: dict[int, FakeGuild]  # by shard: a server on each of the two shards
    discord: SteeredDiscord

    async def start(self, *shards: int) -> list[BotProcess]:
        """One bot process per shard given, started at the same time (different shards only)."""
        return list(await asyncio.gather(*(self.rig.start_process(shards=[shard]) for shard in shards)))

    def member(self, name: str, shard: int, *, permissions: int | None = None) -> dict[str, Any]:
        return self.discord.add_member(name, guild_id=self.guilds[shard].id, permissions=permissions)

    async def imagine(self, member: dict[str, Any], idea: str, channel_id: int) -> Any:
        """`/imagine idea raw:True` (the idea is the prompt, no chat model): the interaction."""
        return await self.discord.slash_command(
            member, "imagine", {"idea": idea, "raw": True}, channel_id=channel_id
        )

    async def prompt(self, member: dict[str, Any], idea: str, prompt: str, channel_id: int) -> dict[str, Any]:
        """`/prompt idea`, the chat model answering `prompt`: the v1 message, once its thread is set up."""
        self.rig.openai.script_chat(prompt)
        interaction = await self.discord.slash_command(
            member, "prompt", {"idea": idea}, channel_id=channel_id
        )
        v1 = await self.rig.answer_containing(interaction, "### v1")
        await self.rig.settled_thread()
        return v1

    async def renders(self) -> list[asyncpg.Record]:
        return await self.db.fetch("SELECT * FROM renders ORDER BY id")

    async def render_of(self, prompt: str) -> asyncpg.Record:
        row = await self.db.fetchrow("SELECT * FROM renders WHERE prompt = $1", prompt)
        assert row is not None, f"no render of {prompt!r}"
        return row

    async def until(self, check: Callable[[], Awaitable[T]], what: str, within: float = WITHIN) -> T:
        """`check()`'s value once it is truthy, polled beside the processes (the database is theirs)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not (value := await check()):
            if loop.time() > deadline:
                raise AssertionError(
                    f"timed out after {within}s waiting for {what}\n{self.rig.process_output()}"
                )
            await asyncio.sleep(0.05)
        return value

    async def queued(self, count: int) -> None:
        """Wait until `count` jobs were recorded (a job is queued before its command is answered)."""

        async def recorded() -> bool:
            return await self.db.fetchval("SELECT COUNT(*) FROM renders") >= count

        await self.until(recorded, f"{count} jobs to be recorded")

    async def all_done(self, count: int) -> list[asyncpg.Record]:
        """Every job, once there are `count` and each is done."""
        return await self.all_ended(count, ("done",))

    async def all_ended(self, count: int, statuses: Sequence[str]) -> list[asyncpg.Record]:
        """Every job, once there are `count` and each has one of `statuses`."""

        async def ended() -> list[asyncpg.Record] | None:
            rows = await self.renders()
            return rows if len(rows) == count and all(r["status"] in statuses for r in rows) else None

        return await self.until(ended, f"{count} jobs to be {' or '.join(statuses)}")

    def uploads_by_render(self) -> Counter[int]:
        """How many times each render's finished picture was posted (a successful upload each)."""
        posted: Counter[int] = Counter()
        for request in self.discord.requests:
            if 200 <= request.status < 300:
                for picture in finished_pictures(request):
                    match = re.match(r"mural-\d+-(\d+)-1\.", picture.filename)
                    if match:
                        posted[int(match[1])] += 1
        return posted

    async def arrivals(self, count: int) -> list[str]:
        """Wait until `count` image requests arrived at the fake OpenAI: their prompts."""
        await self.discord.wait_for(
            lambda: len(self.gate.arrived) >= count, WITHIN, message=f"{count} image requests"
        )
        return list(self.gate.arrived)


@pytest_asyncio.fixture
async def deployment(tmp_path: Path, postgres_url: str) -> AsyncIterator[Deployment]:
    """The fakes, a fresh PostgreSQL database and a rig whose processes share it, rendering one job at a
    time for the whole deployment; the test starts the processes."""
    # Two identify buckets, so that the processes of shards 0 and 1 need not wait 5 s for each other.
    discord = SteeredDiscord(token=DISCORD_TOKEN, interaction_deadline=10.0, max_concurrency=2)
    first = discord.shard_of(discord.guild_id, SHARD_COUNT)
    guilds = {
        first: discord.guilds[discord.guild_id],
        1 - first: discord.add_guild("Second Server", shard=1 - first, shard_count=SHARD_COUNT),
    }
    overrides = {
        "DATABASE_URL": postgres_url,
        "SHARD_COUNT": str(SHARD_COUNT),
        "RENDER_CONCURRENCY": "1",
        "RENDER_LEASE_SECONDS": str(LEASE_SECONDS),
        # Image requests wait at the gate far longer than a test: never timed out and retried.
        "IMAGE_TIMEOUT": "120",
        "CHAT_TIMEOUT": "120",
    }
    Rig.keep_processes_ready(2)  # two processes at once (a restart takes the one made meanwhile)
    gate = ImageGate()
    db = await asyncpg.connect(postgres_url)
    try:
        async with loopback_rig(tmp_path, discord=discord, overrides=overrides, within=WITHIN) as rig:
            rig.openai.image_handler = gate
            try:
                yield Deployment(rig, db, gate, guilds, discord)
            finally:
                await gate.open()  # nothing is left waiting in the fake when it closes
    finally:
        await db.close()


def text(rig: Rig, message: dict[str, Any] | None) -> str:
    return rig.discord.text_of(message) if message else ""


# -- 1. a burst across both processes ---------------------------------------------------------------


async def test_a_burst_across_both_processes_renders_each_job_once_in_round_robin_order(
    deployment: Deployment,
) -> None:
    """Six jobs queued through both processes while the first is drawn: each is sent to OpenAI once,
    recorded done once and posted once, in the fair order across processes: a member's one job in a DM
    (process A) goes before another member's second in a server (process B)."""
    d = deployment
    await d.start(0, 1)
    alice, bob, dave = d.member("alice", 0), d.member("bob", 1), d.member("dave", 1)
    carol = d.discord.add_member("carol", guild_id=d.guilds[1].id)
    home, other = d.guilds[0].channel_id, d.guilds[1].channel_id
    dm = int(d.discord.open_dm(carol)["id"])
    d.gate.hold()

    burst = [
        (alice, "alice first", home),
        (bob, "bob first", other),
        (bob, "bob second", other),
        (alice, "alice second", home),
        (carol, "carol in a DM", dm),
        (dave, "dave first", other),
    ]
    interactions = []
    for number, (member, idea, channel) in enumerate(burst, start=1):
        interactions.append(await d.imagine(member, idea, channel))
        await d.queued(number)  # queued in this order: the fair order, not the arrival, decides
    assert [i.shard_id for i in interactions] == [0, 1, 1, 0, 0, 1], "A holds shard 0 and DMs, B shard 1"
    await d.arrivals(1)
    await d.gate.open()

    rows = await d.all_done(len(burst))
    arrived = await d.arrivals(len(burst))
    await asyncio.sleep(0.5)  # a second request for any job would arrive about now
    assert arrived == [
        "alice first",
        # Then round by round, members with nothing drawn yet first, in the order they queued:
        "bob first",
        "carol in a DM",
        "dave first",
        "alice second",
        "bob second",
    ]
    assert d.rig.openai.calls("/images/generations") == len(burst), "each job was sent to OpenAI once"
    assert [r["attempts"] for r in rows] == [1] * len(burst), "each job was claimed once"
    await d.discord.wait_for(
        lambda: len(d.uploads_by_render()) == len(burst), WITHIN, message="every picture posted"
    )
    assert d.uploads_by_render() == {r["id"]: 1 for r in rows}, "each picture posted once"


# -- 2. one limit on renders for the deployment ------------------------------------------------------


async def test_render_concurrency_one_holds_for_both_processes_together(deployment: Deployment) -> None:
    """With RENDER_CONCURRENCY=1 and jobs waiting in both processes, one image request at a time
    reaches OpenAI from the whole deployment."""
    d = deployment
    await d.start(0, 1)
    alice, bob = d.member("alice", 0), d.member("bob", 1)
    home, other = d.guilds[0].channel_id, d.guilds[1].channel_id
    d.gate.hold()

    await d.imagine(alice, "alice one", home)
    await d.arrivals(1)
    for number, (member, idea, channel) in enumerate(
        [(bob, "bob one", other), (alice, "alice two", home), (bob, "bob two", other)], start=2
    ):
        await d.imagine(member, idea, channel)
        await d.queued(number)

    for drawn in range(1, 5):
        await d.arrivals(drawn)
        # Long enough for a process that ignored the other's running job to have sent its own.
        await asyncio.sleep(0.4)
        statuses = Counter(r["status"] for r in await d.renders())
        assert d.gate.waiting == 1 and len(d.gate.arrived) == drawn, d.gate.arrived
        assert statuses["running"] == 1, statuses
        await d.gate.let_through()

    await d.all_done(4)
    assert d.gate.peak == 1
    assert sorted(d.gate.arrived) == ["alice one", "alice two", "bob one", "bob two"]


# -- 3. kill -9 ----------------------------------------------------------------------------------------


async def test_a_killed_process_leaves_its_running_job_interrupted_and_its_queued_one_to_the_other(
    deployment: Deployment,
) -> None:
    """SIGKILL of A while it draws alice's picture and holds bob's in the queue: once A's lease lapsed, B
    marks alice's interrupted and tells her with Retry, and draws bob's on the message that showed it
    waiting."""
    d = deployment
    a, _b = await d.start(0, 1)
    alice, bob = d.member("alice", 0), d.member("bob", 0)
    home = d.guilds[0].channel_id
    d.gate.hold()
    await d.imagine(alice, "alice running", home)
    await d.arrivals(1)
    waiting = await d.imagine(bob, "bob waiting", home)
    await d.rig.answer_containing(waiting, "queued")

    async def shown_waiting() -> int | None:
        return (await d.render_of("bob waiting"))["message_id"]

    waiting_message = await d.until(shown_waiting, "bob's waiting message to be recorded")

    await d.rig.crash(a)
    await d.gate.open()  # alice's request has no one to answer any more; bob's goes through
    notice = await d.rig.wait_for_bot_message(home, "interrupted", within=LEASE_SECONDS + WITHIN)

    assert f"<@{alice['id']}>" in text(d.rig, notice)
    assert list(buttons(notice).values()) == ["Retry"]
    rows = await d.all_ended(2, ("interrupted", "done"))
    assert [(r["prompt"], r["status"], r["attempts"]) for r in rows] == [
        ("alice running", "interrupted", 1),
        ("bob waiting", "done", 1),
    ]
    assert d.gate.arrived == ["alice running", "bob waiting"], "bob's job was sent once, alice's not again"
    await d.discord.wait_for(
        lambda: d.uploads_by_render().get(rows[1]["id"]) == 1, WITHIN, message="bob's picture"
    )
    shown = d.discord.messages[waiting_message]
    assert any(f["filename"].startswith("mural-") for f in d.discord.attachments_of(shown)), (
        "bob's picture replaced his waiting message"
    )
    assert d.uploads_by_render() == {rows[1]["id"]: 1}


# -- 4. a clean stop and a restart -----------------------------------------------------------------------


async def test_a_clean_stop_hands_its_queued_job_over_and_its_restart_leaves_the_others_alone(
    deployment: Deployment,
) -> None:
    """SIGTERM of A while alice's job waits behind bob's (drawn by B): A hands it back and B draws it;
    A's restart, while B draws one and holds two, takes and reports none of them."""
    d = deployment
    a, _b = await d.start(0, 1)
    alice, bob, carol = d.member("alice", 0), d.member("bob", 1), d.member("carol", 1)
    home, other = d.guilds[0].channel_id, d.guilds[1].channel_id
    d.gate.hold()
    await d.imagine(bob, "bob running", other)
    await d.arrivals(1)
    waiting = await d.imagine(alice, "alice waiting", home)
    await d.rig.answer_containing(waiting, "queued")
    b_holder = (await d.render_of("bob running"))["held_by"]
    a_holder = (await d.render_of("alice waiting"))["held_by"]
    assert a_holder not in (None, b_holder)

    a.send(signal.SIGTERM)
    assert await a.wait(WITHIN) == 0, a.output()
    assert "Handed back 1 queued render" in a.output()

    async def taken_over() -> bool:
        return (await d.render_of("alice waiting"))["held_by"] == b_holder

    await d.until(taken_over, "B to take alice's job over", within=LEASE_SECONDS + WITHIN)
    await d.imagine(carol, "carol waiting", other)
    await d.queued(3)
    before = [(r["prompt"], r["status"], r["held_by"]) for r in await d.renders()]
    assert before == [
        ("bob running", "running", b_holder),
        ("alice waiting", "queued", b_holder),
        ("carol waiting", "queued", b_holder),
    ]

    restarted = await d.rig.start_again(a)
    await asyncio.sleep(LEASE_SECONDS / 3 + 0.5)  # and one round of its lease keeper
    assert [(r["prompt"], r["status"], r["held_by"]) for r in await d.renders()] == before
    assert "interrupted" not in restarted.output() and "left by a stop run here" not in restarted.output()
    assert not [m for m in d.rig.bot_messages_in(home) if "interrupted" in text(d.rig, m)]

    await d.gate.open()
    rows = await d.all_done(3)
    assert d.gate.arrived == ["bob running", "alice waiting", "carol waiting"]
    assert [r["attempts"] for r in rows] == [1, 1, 1]
    await d.discord.wait_for(lambda: len(d.uploads_by_render()) == 3, WITHIN, message="three pictures")
    assert d.uploads_by_render() == {r["id"]: 1 for r in rows}
    alice_row = await d.render_of("alice waiting")
    shown = d.discord.messages[alice_row["message_id"]]
    assert any(f["filename"].startswith("mural-") for f in d.discord.attachments_of(shown))


# -- 5. budgets at the edge from both processes -------------------------------------------------------------


async def test_twenty_presses_split_across_both_processes_at_the_edge_of_a_limit_let_exactly_the_rest_through(
    deployment: Deployment,
) -> None:
    """Both processes on shard 0; alice has made one of her four pictures today. Twenty Generate presses,
    handed to A and B in turn, let exactly three through; the seventeen others are refused privately."""
    d = deployment
    limit = {"MEMBER_DAILY_PICTURES": "4"}
    (a,) = await asyncio.gather(d.rig.start_process(shards=[0], env=limit))
    # B waits its turn to identify on the same shard (5 s after A's): meanwhile alice works through A.
    starting_b = asyncio.create_task(d.rig.start_process(shards=[0], env=limit))
    d.discord.steer(a)
    alice = d.member("alice", 0)
    home = d.guilds[0].channel_id
    await d.imagine(alice, "alice before", home)
    await d.all_done(1)
    v1 = await d.prompt(alice, "a fox in the snow", "A red fox on a snowy hill at dawn.", home)
    generate = next(b["custom_id"] for b in d.discord.buttons_of(v1) if b["label"] == "Generate")
    b = await starting_b

    d.discord.steer(a, b)
    presses = await asyncio.gather(*(d.discord.click(alice, int(v1["id"]), generate) for _ in range(20)))
    answers = await asyncio.gather(*(press.wait_response(timeout=WITHIN) for press in presses))

    routed = Counter(d.discord.routed[-20:])
    assert routed == {a.sessions[0]: 10, b.sessions[0]: 10}, "ten presses reached each process"
    accepted = [answer for answer in answers if answer["type"] == DEFERRED]
    refused = [answer for answer in answers if answer["type"] != DEFERRED]
    assert len(accepted) == 3, "one of four was made today: three more fit, whichever process took them"
    for answer in refused:
        assert answer["data"]["flags"] & EPHEMERAL
        assert "E-BUDGET" in answer["data"]["content"], answer["data"]["content"]
        assert "4 of 4" in answer["data"]["content"]
    rows = await d.all_done(4)
    assert len(d.gate.arrived) == 4
    assert sum(r["n"] for r in rows) == 4


# -- 6. settings apply everywhere at once ----------------------------------------------------------------


async def test_a_settings_change_through_one_process_applies_to_the_next_command_in_the_other(
    deployment: Deployment,
) -> None:
    """Both processes on shard 0, each with the server's settings in memory. /settings quality:low
    through A: the very next /imagine, through B, is drawn at low quality. /settings daily_pictures:1
    through B: the next /imagine, through A, is refused for alice, who made one picture today."""
    d = deployment
    a = await d.rig.start_process(shards=[0])
    starting_b = asyncio.create_task(d.rig.start_process(shards=[0]))
    admin = d.member("admin", 0, permissions=Permissions.EVERYONE_DEFAULT | Permissions.MANAGE_GUILD)
    alice, bob = d.member("alice", 0), d.member("bob", 0)
    home = d.guilds[0].channel_id
    d.discord.steer(a)
    await d.imagine(alice, "alice before", home)
    await d.all_done(1)
    b = await starting_b
    d.discord.steer(b)
    await d.imagine(bob, "bob before", home)
    await d.all_done(2)
    assert [r.json["quality"] for r in d.rig.openai.image_requests] == ["medium", "medium"]

    d.discord.steer(a)
    assert "Changed" in await private_answer(d, admin, "settings", quality="low")
    d.discord.steer(b)
    await d.imagine(bob, "bob after", home)
    await d.all_done(3)
    assert d.rig.openai.image_requests[-1].json["quality"] == "low"

    assert "Changed" in await private_answer(d, admin, "settings", daily_pictures=1)
    d.discord.steer(a)
    refusal = await private_answer(d, alice, "imagine", idea="alice over the limit", raw=True)
    assert "E-BUDGET" in refusal and "1 of 1" in refusal, refusal
    assert len(await d.renders()) == 3


async def test_imagine_over_a_limit_used_up_through_the_other_process_is_refused_privately_before_anything(
    deployment: Deployment,
) -> None:
    """Both processes on shard 0; alice's one picture for today was made through B. Her /imagine through A
    is refused as it is through one process: privately, before it is acknowledged or the model asked."""
    d = deployment
    limit = {"MEMBER_DAILY_PICTURES": "1"}
    a = await d.rig.start_process(shards=[0], env=limit)
    b = await d.rig.start_process(shards=[0], env=limit)
    alice = d.member("alice", 0)
    d.discord.steer(b)
    await d.imagine(alice, "alice through B", d.guilds[0].channel_id)
    await d.all_done(1)

    d.discord.steer(a)
    chats = d.rig.openai.calls("/chat/completions")
    refusal = await private_answer(d, alice, "imagine", idea="alice through A")
    assert "E-BUDGET" in refusal and "1 of 1" in refusal, refusal
    assert d.rig.openai.calls("/chat/completions") == chats, "the chat model was not asked"


async def private_answer(d: Deployment, member: dict[str, Any], command: str, **options: Any) -> str:
    """The private answer to `/command` in the shard-0 server."""
    interaction = await d.discord.slash_command(member, command, options, channel_id=d.guilds[0].channel_id)
    answer = await interaction.wait_response(timeout=WITHIN)
    assert answer.get("data", {}).get("flags", 0) & EPHEMERAL, f"/{command} is answered privately: {answer}"
    return str(answer["data"]["content"])
