"""Acknowledgement benchmark: Mural against a bare discord.py bot, many slash commands at once, one run.

Run from the repository root: `.venv/bin/python -m bench.ack [commands] [rounds]` (defaults 200, 8).

Each round starts a fresh loopback Discord, starts one bot against it, has `commands` members run
`/prompt` at the same moment and records how long each interaction waited for its first answer
(`FakeInteraction.response_latency`: from the fake dispatching INTERACTION_CREATE to the fake
receiving the interaction callback). Rounds alternate (and so does which of a pair goes first) between

* the bare bot: a `commands.Bot` with Mural's intents and the same client options whose
  `/prompt idea:` only does `await interaction.response.defer(thinking=True)`, and
* Mural, built by `bot.app.build_bot` (or `--factory`), whose deferral starts a chat call to a
  loopback OpenAI server that answers after 0.3-1.0 s (seeded: the same draws every round); a Mural
  round ends once every v1 is posted and its thread opened,

so drift on a noisy machine hits both; the figure that matters is p99(Mural) / p99(bare), pooled
over the rounds. Two arrival patterns, both measured by default (`--arrival`):

* `batch`: all the INTERACTION_CREATE frames are written before the bot gets to run; every sample
  then includes the fake's own time to build and send them all;
* `stream`: the fake lets the event loop run after each frame, so the bot reads the commands as they
  come in, as it does from a socket; this is where work started by the first commands can get ahead
  of the later commands' acknowledgements.

Both bots run in this one process, on the same event loop implementation and with the same start-up
treatment of the garbage collector, each as `python -m bot` applies it in the tree measured
(`--loop` / `--freeze` override that). One warm-up round of each bot comes first and is not counted.
Garbage collections are timed through `gc.callbacks`; "in bursts" are those that started between
the first dispatch and the last acknowledgement of a round.

`--database-url postgresql://…/postgres` runs Mural on a fresh database made on that server (dropped
after the run) instead of a SQLite file per round.

`--metrics` adds a third bot to every round: Mural with METRICS_PORT set, its /metrics scraped every
`--scrape-every` seconds while the round runs (1 s; Prometheus's default is 15 s), so the figure for
metrics is p99(metrics on) / p99(metrics off), pooled over the rounds.

Another tree (the code before a change) against the same bare bot and loopback Discord: `--source
DIR` puts DIR first on `sys.path`, so its `bot` and `cogs` packages are the ones imported, and
`--factory module:function` names an `async (settings, **client_options) -> commands.Bot` that
builds its bot. Numbers go in issue notes; tests never assert on wall-clock time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import importlib
import math
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from loopback.fake_discord import FakeDiscord, FakeInteraction
from loopback.fake_openai import FakeOpenAI, Reply
from loopback.postgres_admin import fresh_database

DISCORD_TOKEN = "bench-discord-token.SECRET"
OPENAI_KEY = "sk-bench-SECRET"
# Both bots get exactly these client options (a short guild wait only makes start-up quicker).
CLIENT_OPTIONS: dict[str, Any] = {"guild_ready_timeout": 0.05}
SETTLE_SECONDS = 0.5  # after ready, before the burst: start-up work (and its collections) is over
WORK_TIMEOUT = 120.0
# The loopback servers share this process's event loop with the bot, so while the loop is busy they
# cannot accept; 200 connections at once then overflow aiohttp's default accept queue (128) and the
# kernel makes the client retry a second later. Discord's edge has no such limit: give the fakes one
# the burst fits in (capped by net.core.somaxconn). `--backlog 0` keeps aiohttp's default.
BACKLOG = 2048
ARRIVALS = ("batch", "stream")
PERCENTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
# How a v1 answer begins: a Components v2 card, or the plain message of trees from before the cards.
V1_HEADINGS = ("### v1", "**v1**")

BotFactory = Callable[..., Awaitable[Any]]
Heap = tuple[Callable[[], None], Callable[[], None]]  # freeze once started, thaw when closed


# -- what production does, read from the tree under test ------------------------------------------


def production_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `python -m bot` runs on (None: asyncio's default)."""
    try:
        entry = importlib.import_module("bot.__main__")
    except ImportError:
        return None
    factory = getattr(entry, "event_loop_factory", None)
    return factory() if callable(factory) else None


def production_heap() -> Heap | None:
    """The garbage-collector treatment the bot applies once started and undoes when closed, if any."""
    try:
        app = importlib.import_module("bot.app")
    except ImportError:
        return None
    freeze = getattr(app, "freeze_startup_heap", None)
    thaw = getattr(app, "thaw_startup_heap", None)
    return (freeze, thaw) if callable(freeze) and callable(thaw) else None


def plain_heap() -> Heap:
    def freeze() -> None:
        gc.collect()
        gc.freeze()

    return freeze, gc.unfreeze


def load_factory(path: str) -> BotFactory:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute or "build_bot")


# -- the loopback servers ----------------------------------------------------------------------------


@contextlib.contextmanager
def listen_backlog(backlog: int) -> Iterator[None]:
    """Loopback servers started inside the block accept up to `backlog` pending connections."""
    if not backlog:
        yield
        return
    saved = web.TCPSite, web.SockSite
    web.TCPSite = functools.partial(saved[0], backlog=backlog)  # type: ignore[misc]
    web.SockSite = functools.partial(saved[1], backlog=backlog)  # type: ignore[misc]
    try:
        yield
    finally:
        web.TCPSite, web.SockSite = saved


def listen_overflows() -> int:
    """The kernel's count of connections dropped at a full accept queue (Linux; 0 elsewhere)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenOverflows", 0))
    return 0


# -- the bare bot -------------------------------------------------------------------------------------


def make_bare_bot(heap: Heap | None, **options: Any) -> Any:
    """A `commands.Bot` whose `/prompt idea:` only defers; it freezes the heap when and as Mural does."""
    import discord
    from discord import app_commands
    from discord.ext import commands

    class BareBot(commands.Bot):
        def __init__(self) -> None:
            intents = discord.Intents.default()
            intents.message_content = True  # the same gateway traffic as Mural's
            super().__init__(
                command_prefix=commands.when_mentioned, intents=intents, help_command=None, **options
            )
            self.frozen = False

            @app_commands.command(name="prompt", description="Only defers")
            async def prompt(interaction: discord.Interaction[Any], idea: str) -> None:
                await interaction.response.defer(thinking=True)

            self.tree.add_command(prompt)

        async def setup_hook(self) -> None:
            await self.tree.sync()

        async def on_ready(self) -> None:
            if heap is not None and not self.frozen:
                self.frozen = True
                heap[0]()

        async def close(self) -> None:
            await super().close()
            if heap is not None and self.frozen:
                self.frozen = False
                heap[1]()

    return BareBot()


# -- measuring ----------------------------------------------------------------------------------------


@dataclass
class Collection:
    generation: int
    started: float
    seconds: float


class GcTimer:
    """Every garbage collection's generation, start and duration, through `gc.callbacks`."""

    def __init__(self) -> None:
        self.collections: list[Collection] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._started = now
        else:
            self.collections.append(Collection(info["generation"], self._started, now - self._started))

    def between(self, start: float, end: float) -> list[Collection]:
        return [c for c in self.collections if start <= c.started <= end]


@dataclass
class Round:
    kind: str
    arrival: str
    acks: list[float] = field(default_factory=list)
    scrapes: int = 0  # /metrics answered during the round (metrics rounds)
    late: int = 0  # no acknowledgement within Discord's 3 s
    overflows: int = 0  # connections the kernel dropped at a full accept queue
    chats_early: int = 0  # chat calls that reached the model before the last acknowledgement
    burst: float = 0.0  # first dispatch to last acknowledgement
    work: float = 0.0  # first dispatch to the last v1 with its thread (Mural)
    burst_gc: list[Collection] = field(default_factory=list)
    round_gc: list[Collection] = field(default_factory=list)


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted samples."""
    if not ordered:
        return math.nan
    rank = math.ceil(fraction * len(ordered) - 1e-9)
    return ordered[min(len(ordered), max(1, rank)) - 1]


async def poll(predicate: Callable[[], bool], within: float, what: str) -> None:
    """Check every 50 ms: cheap, and the same for both bots (unlike waking on every fake event)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def work_done(discord_server: FakeDiscord, interactions: list[FakeInteraction]) -> bool:
    """Every acknowledged /prompt answered with v1, its thread opened and the hint posted there."""
    answered = [i for i in interactions if not i.errors]
    # A v1 card starts "### v1"; a tree from before the cards (`--source`) posted "**v1**" as content.
    if not all(i.original and discord_server.text_of(i.original).startswith(V1_HEADINGS) for i in answered):
        return False
    hints = sum(1 for m in discord_server.messages.values() if "Reply here" in discord_server.text_of(m))
    return hints >= len(answered)


@dataclass(frozen=True)
class Setup:
    commands: int
    factory: BotFactory
    heap: Heap | None
    chat_latency: tuple[float, float]
    backlog: int
    folder: Path
    scrape_every: float = 1.0
    # A PostgreSQL database for Mural (`--database-url`); None: a SQLite file per round.
    database_url: str | None = None


def turn(kinds: tuple[str, ...], number: int) -> tuple[str, ...]:
    """The order of round `number`: two bots alternate; three take each place in turn, forwards and
    backwards, so that over six rounds each follows each of the others equally often."""
    if len(kinds) == 2:
        return kinds if number % 2 == 0 else kinds[::-1]
    shift = number % len(kinds)
    rotated = kinds[shift:] + kinds[:shift]
    return rotated if (number // len(kinds)) % 2 == 0 else rotated[::-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def scrape_until(port: int, every: float, stop: asyncio.Event, result: Round) -> None:
    """GET /metrics every `every` seconds until `stop`, as Prometheus would (counting the answers)."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            async with session.get(f"http://127.0.0.1:{port}/metrics") as answer:
                await answer.read()
                result.scrapes += answer.status == 200
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


async def one_round(kind: str, arrival: str, setup: Setup, timer: GcTimer, index: int) -> Round:
    from bot.config import settings_from

    discord_server = FakeDiscord(token=DISCORD_TOKEN)  # Discord's 3 s deadline for the first answer
    openai_server = FakeOpenAI()
    draws = random.Random(1234)  # the same answer times in every Mural round
    openai_server.chat_handler = lambda params: Reply(delay=draws.uniform(*setup.chat_latency))
    with listen_backlog(setup.backlog):
        await discord_server.start()
        await openai_server.start()
    members = [discord_server.add_member(f"member{n:03d}") for n in range(setup.commands)]
    result = Round(kind, arrival)
    bot: Any = None
    task: asyncio.Task[None] | None = None
    scraping: asyncio.Task[None] | None = None
    stop_scraping = asyncio.Event()
    port = free_port() if kind == "metrics" else 0
    try:
        with discord_server.patched():
            if kind == "bare":
                bot = make_bare_bot(setup.heap, **CLIENT_OPTIONS)
            else:
                settings = settings_from(
                    {
                        "DISCORD_TOKEN": DISCORD_TOKEN,
                        "OPENAI_API_KEY": OPENAI_KEY,
                        "OPENAI_BASE_URL": openai_server.base_url,
                        "DATABASE_PATH": str(setup.folder / f"round{index}.db"),
                        **({"DATABASE_URL": setup.database_url} if setup.database_url else {}),
                        "CHAT_TIMEOUT": "60",
                        "IMAGE_TIMEOUT": "60",
                        **({"METRICS_PORT": str(port)} if kind == "metrics" else {}),
                    }
                )
                bot = await setup.factory(settings, **CLIENT_OPTIONS)
            task = asyncio.create_task(bot.start(DISCORD_TOKEN), name=f"{kind}-bot")
            await poll(lambda: bot.is_ready() or task.done(), 30, "the bot to become ready")
            if task.done():
                task.result()
            if kind == "metrics":
                scraping = asyncio.create_task(scrape_until(port, setup.scrape_every, stop_scraping, result))
            await asyncio.sleep(SETTLE_SECONDS)

            overflows = listen_overflows()
            started = time.monotonic()
            sent: list[FakeInteraction] = []
            for n, member in enumerate(members):
                idea = f"bench idea {n:03d} a lighthouse in fog"
                sent.append(await discord_server.slash_command(member, "prompt", {"idea": idea}))
                if arrival == "stream":
                    await asyncio.sleep(0)
            await poll(lambda: all(i.responded_at or i.errors for i in sent), 30, "every acknowledgement")
            last_ack = max((i.responded_at for i in sent if i.responded_at), default=started)
            result.burst = last_ack - started
            result.acks = [i.response_latency for i in sent if i.response_latency is not None]
            result.late = sum(1 for i in sent if i.errors)
            result.burst_gc = timer.between(started, last_ack)
            result.chats_early = sum(1 for r in openai_server.chat_requests if r.received_at <= last_ack)
            if kind != "bare":
                await poll(lambda: work_done(discord_server, sent), WORK_TIMEOUT, "every v1 and its thread")
                result.work = time.monotonic() - started
            result.round_gc = timer.between(started, time.monotonic())
            result.overflows = listen_overflows() - overflows
    finally:
        stop_scraping.set()
        if scraping is not None:
            await scraping
        if bot is not None:
            await bot.close()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        await openai_server.close()
        await discord_server.close()
    return result


# -- reporting ----------------------------------------------------------------------------------------


def table_line(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    if not ordered:
        return f"{name:<6} n=0"
    cells = "  ".join(f"{label} {percentile(ordered, q) * 1000:7.1f}" for label, q in PERCENTILES)
    return f"{name:<6} n={len(ordered):<5} {cells}  max {ordered[-1] * 1000:7.1f}  (ms)"


def gc_line(name: str, rounds: list[Round], attribute: str) -> str:
    parts = []
    for generation in (0, 1, 2):
        found = [c for r in rounds for c in getattr(r, attribute) if c.generation == generation]
        total = sum(c.seconds for c in found) * 1000 / len(rounds)
        longest = max((c.seconds for c in found), default=0.0) * 1000
        parts.append(
            f"gen{generation} {len(found) / len(rounds):5.1f} x, {total:6.1f} ms, max {longest:6.1f} ms"
        )
    return f"  {name:<6} " + " | ".join(parts)


def report_arrival(arrival: str, rounds: list[Round]) -> None:
    bare = [r for r in rounds if r.kind == "bare" and r.arrival == arrival]
    mural = [r for r in rounds if r.kind == "mural" and r.arrival == arrival]
    if not bare or not mural:
        return
    bare_acks = sorted(a for r in bare for a in r.acks)
    mural_acks = sorted(a for r in mural for a in r.acks)
    print(f"\n== arrival: {arrival} -- acknowledgement latency, {len(bare)} rounds of each bot pooled")
    print(table_line("bare", bare_acks))
    print(table_line("mural", mural_acks))
    ratio = percentile(mural_acks, 0.99) / percentile(bare_acks, 0.99)
    pairs = [
        percentile(sorted(m.acks), 0.99) / percentile(sorted(b.acks), 0.99)
        for b, m in zip(bare, mural, strict=False)
    ]
    print(
        f"p99(mural) / p99(bare) = {ratio:.2f}   (round pairs: "
        + ", ".join(f"{p:.2f}" for p in pairs)
        + f"; median {statistics.median(pairs):.2f})"
    )
    print(
        f"late (>3 s): bare {sum(r.late for r in bare)}, mural {sum(r.late for r in mural)};"
        f" accept-queue drops: bare {sum(r.overflows for r in bare)}, mural {sum(r.overflows for r in mural)};"
        f" chat calls before the last ack, per round: {', '.join(str(r.chats_early) for r in mural)}"
    )
    print(
        f"first dispatch to last ack (median): bare {statistics.median(r.burst for r in bare) * 1000:.0f} ms,"
        f" mural {statistics.median(r.burst for r in mural) * 1000:.0f} ms;"
        f" mural's v1s and threads all done after {statistics.median(r.work for r in mural):.2f} s"
    )
    print("garbage collections in bursts, per round (count, total, longest):")
    print(gc_line("bare", bare, "burst_gc"))
    print(gc_line("mural", mural, "burst_gc"))
    print("garbage collections over the whole round (Mural: until every v1 and thread is out):")
    print(gc_line("bare", bare, "round_gc"))
    print(gc_line("mural", mural, "round_gc"))


def report_metrics(arrival: str, rounds: list[Round]) -> None:
    """Mural with metrics on against Mural with them off: the acknowledgement latency of each, pooled."""
    off = [r for r in rounds if r.kind == "mural" and r.arrival == arrival]
    on = [r for r in rounds if r.kind == "metrics" and r.arrival == arrival]
    if not off or not on:
        return
    off_acks = sorted(a for r in off for a in r.acks)
    on_acks = sorted(a for r in on for a in r.acks)
    print(f"\n== arrival: {arrival} -- metrics off (mural) and on (metrics), {len(on)} rounds of each pooled")
    print(table_line("mural", off_acks))
    print(table_line("metric", on_acks))
    ratio = percentile(on_acks, 0.99) / percentile(off_acks, 0.99)
    pairs = [
        percentile(sorted(m.acks), 0.99) / percentile(sorted(o.acks), 0.99)
        for o, m in zip(off, on, strict=False)
    ]
    print(
        f"p99(metrics on) / p99(metrics off) = {ratio:.3f}   (round pairs: "
        + ", ".join(f"{p:.2f}" for p in pairs)
        + f"; median {statistics.median(pairs):.2f}); scrapes answered per round: "
        + ", ".join(str(r.scrapes) for r in on)
    )


# -- main ---------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    if args.freeze == "production":
        heap = production_heap()
    else:
        heap = plain_heap() if args.freeze == "yes" else None
    arrivals = ARRIVALS if args.arrival == "both" else (args.arrival,)
    timer = GcTimer()
    gc.callbacks.append(timer)
    rounds: list[Round] = []
    began = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as folder, fresh_database(args.database_url) as database_url:
            setup = Setup(
                commands=args.commands,
                factory=load_factory(args.factory),
                heap=heap,
                chat_latency=(args.chat_min, args.chat_max),
                backlog=args.backlog,
                folder=Path(folder),
                scrape_every=args.scrape_every,
                database_url=database_url,
            )
            warm_up = Setup(**{**setup.__dict__, "commands": max(10, args.commands // 4)})
            kinds = ("bare", "mural", "metrics") if args.metrics else ("bare", "mural")
            plan = [(kind, arrivals[0], False) for kind in kinds]
            plan += [
                (kind, arrival, True)
                for number in range(args.rounds)
                for arrival in arrivals
                # Which bot goes first turns too, so that none always follows another.
                for kind in turn(kinds, number)
            ]
            for index, (kind, arrival, counted) in enumerate(plan):
                gc.collect()  # every round starts from the same kind of heap, without the last one's garbage
                outcome = await one_round(kind, arrival, setup if counted else warm_up, timer, index)
                if counted:
                    rounds.append(outcome)
                acks = sorted(outcome.acks)
                print(
                    f"{'round' if counted else 'warm-up':<7} {index:>2} {arrival:<6} {kind:<7}"
                    f" p50 {percentile(acks, 0.5) * 1000:6.1f}  p99 {percentile(acks, 0.99) * 1000:6.1f}"
                    f"  max {acks[-1] * 1000 if acks else math.nan:6.1f} ms"
                    f"  full collections in burst {sum(1 for c in outcome.burst_gc if c.generation == 2)}"
                    f"  chat calls before last ack {outcome.chats_early}",
                    flush=True,
                )
    finally:
        gc.callbacks.remove(timer)

    import discord.utils

    loop = asyncio.get_running_loop()
    print()
    for key, value in {
        "commands at once": f"{args.commands} from as many members, /prompt",
        "rounds": f"{args.rounds} per bot and arrival (+1 warm-up per bot, not counted)",
        "chat answer time": f"{args.chat_min:.2f}-{args.chat_max:.2f} s (seeded)",
        "mural built by": args.factory + (f" from {args.source}" if args.source else ""),
        "event loop": f"{type(loop).__module__}.{type(loop).__name__} ({args.loop})",
        "gc.freeze once ready": f"{'yes' if heap else 'no'} ({args.freeze})",
        "orjson (speed extra)": "yes" if discord.utils.HAS_ORJSON else "no",
        "fakes' accept queue": str(args.backlog or "aiohttp's default (128)"),
        "machine": f"Python {platform.python_version()}, {os.cpu_count()} cores,"
        f" load average {os.getloadavg()[0]:.2f} at the end, run took {time.monotonic() - began:.0f} s",
    }.items():
        print(f"{key:<22} {value}")
    for arrival in arrivals:
        report_arrival(arrival, rounds)
        report_metrics(arrival, rounds)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ack", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("commands", nargs="?", type=int, default=200, help="commands at once (200)")
    parser.add_argument("rounds", nargs="?", type=int, default=8, help="rounds per bot and arrival (8)")
    parser.add_argument("--arrival", choices=(*ARRIVALS, "both"), default="both")
    parser.add_argument("--factory", default="bot.app:build_bot", help="module:function that builds Mural")
    parser.add_argument("--source", help="a tree whose bot/ and cogs/ to measure instead of this one")
    parser.add_argument("--loop", choices=("production", "asyncio", "uvloop"), default="production")
    parser.add_argument("--freeze", choices=("production", "yes", "no"), default="production")
    parser.add_argument("--backlog", type=int, default=BACKLOG, help="the fakes' accept queue (0: aiohttp's)")
    parser.add_argument("--chat-min", type=float, default=0.3, help="shortest chat answer, seconds")
    parser.add_argument("--chat-max", type=float, default=1.0, help="longest chat answer, seconds")
    parser.add_argument(
        "--metrics", action="store_true", help="also run Mural with METRICS_PORT set and scraped (on vs off)"
    )
    parser.add_argument("--scrape-every", type=float, default=1.0, help="seconds between scrapes (1.0)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (postgresql://…): Mural runs on a fresh database there instead of SQLite",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.source:
        sys.path.insert(0, str(Path(args.source).resolve()))
    if args.loop == "production":
        loop_factory = production_loop_factory()
    elif args.loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    else:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run(args))


if __name__ == "__main__":
    main()
