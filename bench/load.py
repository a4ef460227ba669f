"""Load benchmark: many `/imagine` commands from many members at once, against a slow fake image API.

Run from the repository root: `.venv/bin/python -m bench.load [commands] [members] [image_seconds]`
(defaults 50, 20, 1.0). It prints acknowledgement latency, the time until every picture was delivered,
throughput, per-command end-to-end times, the most renders seen at the image API at once, and peak
memory. `tests/test_load.py` drives the same load through the pieces below and asserts on it; tests
never assert on wall-clock numbers beyond generous bounds, so the numbers belong here.
"""

from __future__ import annotations

import asyncio
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.fake_discord import FakeDiscord, FakeInteraction, RecordedRequest
from tests.fakes.fake_openai import FakeOpenAI, ImageReply
from tests.rig import DISCORD_TOKEN, Rig

_ORIGINAL = re.compile(r"^/webhooks/\d+/(?P<token>[^/]+)/messages/@original$")
_CHANNEL_MESSAGES = re.compile(r"^/channels/\d+/messages$")
FAILURE_MARK = "⚠️"


class TimedImageAPI:
    """An `image_handler` for FakeOpenAI: every picture takes `seconds`, and concurrency is counted.

    Counting here, rather than with `FakeOpenAI.peak_in_flight`, keeps chat requests out of the
    figure: only `/images/generations` calls that are being drawn are counted.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.in_flight = 0
        self.peak = 0
        self.calls = 0

    async def __call__(self, params: Mapping[str, Any]) -> ImageReply:
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.in_flight -= 1
        return ImageReply()


def idea_for(index: int) -> str:
    """A distinct idea per command; the fixed-width number keeps one idea from containing another."""
    return f"load idea {index:04d} a lighthouse in fog"


@dataclass
class Command:
    """One `/imagine` a member ran, and every request the bot made to answer it."""

    member: dict[str, Any]
    idea: str
    interaction: FakeInteraction
    edits: list[RecordedRequest] = field(default_factory=list)  # PATCH @original, in order
    channel_pictures: list[RecordedRequest] = field(default_factory=list)  # fallback posts with a file

    @property
    def pictures(self) -> list[RecordedRequest]:
        return [r for r in self.edits if r.files] + self.channel_pictures

    @property
    def failures(self) -> list[RecordedRequest]:
        return [r for r in self.edits if not r.files and _content(r).startswith(FAILURE_MARK)]

    @property
    def progress(self) -> list[str]:
        return [_content(r) for r in self.edits if not r.files and not _content(r).startswith(FAILURE_MARK)]

    @property
    def finished(self) -> bool:
        return bool(self.pictures or self.failures or self.interaction.errors)

    @property
    def finished_at(self) -> float | None:
        ends = [r.at for r in self.pictures + self.failures]
        return min(ends) if ends else None


def _content(request: RecordedRequest) -> str:
    body = request.json if isinstance(request.json, dict) else {}
    return body.get("content") or ""


def _ok(request: RecordedRequest) -> bool:
    return 200 <= request.status < 300


def collect(discord: FakeDiscord, commands: list[Command]) -> None:
    """Sort the bot's successful REST requests into the commands they answered."""
    by_token = {command.interaction.token: command for command in commands}
    by_idea = {command.idea: command for command in commands}
    for command in commands:
        command.edits.clear()
        command.channel_pictures.clear()
    for request in discord.requests:
        if not _ok(request):
            continue
        if request.method == "PATCH" and (match := _ORIGINAL.match(request.path)):
            command = by_token.get(match["token"])
            if command is not None:
                command.edits.append(request)
        elif request.method == "POST" and request.files and _CHANNEL_MESSAGES.match(request.path):
            # The token path failed and the picture went to the channel: its caption names the idea.
            owners = [c for idea, c in by_idea.items() if idea in _content(request)]
            if len(owners) == 1:
                owners[0].channel_pictures.append(request)


async def dispatch(rig: Rig, commands: int, members: int) -> list[Command]:
    """`commands` `/imagine`s from `members` members (round-robin), all dispatched at once."""
    people = [rig.discord.add_member(f"member{index:02d}") for index in range(members)]
    owners = [people[index % members] for index in range(commands)]
    ideas = [idea_for(index) for index in range(commands)]
    interactions = await asyncio.gather(
        *(
            rig.discord.slash_command(owner, "imagine", {"idea": idea})
            for owner, idea in zip(owners, ideas, strict=True)
        )
    )
    return [
        Command(member=owner, idea=idea, interaction=interaction)
        for owner, idea, interaction in zip(owners, ideas, interactions, strict=True)
    ]


async def wait_until_finished(rig: Rig, commands: list[Command], within: float) -> None:
    def done() -> bool:
        collect(rig.discord, commands)
        return all(command.finished for command in commands)

    try:
        await rig.discord.wait_for(done, within, message="every /imagine to end in a picture or a failure")
    finally:
        collect(rig.discord, commands)


def summary(name: str, samples: list[float]) -> str:
    if not samples:
        return f"{name:<34} n=0"
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"{name:<34} n={len(samples):<4} p50={statistics.median(ordered) * 1000:8.1f} ms"
        f"  p95={p95 * 1000:8.1f} ms  max={ordered[-1] * 1000:8.1f} ms"
    )


async def run(commands: int, members: int, image_seconds: float) -> None:
    discord_server = FakeDiscord(token=DISCORD_TOKEN)  # Discord's own 3 s deadline for the first answer
    await discord_server.start()
    openai_server = FakeOpenAI()
    await openai_server.start()
    images = TimedImageAPI(image_seconds)
    openai_server.image_handler = images
    with tempfile.TemporaryDirectory() as folder, discord_server.patched():
        rig = Rig(discord=discord_server, openai=openai_server, database=Path(folder) / "bench.db")
        # Generous per-picture timeout: a queued render waits for its slot before its own clock starts,
        # but keep headroom for a slow machine.
        rig.overrides["IMAGE_TIMEOUT"] = str(max(30, int(image_seconds * 10)))
        await rig.start_bot()
        concurrency = rig.bot.settings.render_concurrency if rig.bot else 0
        try:
            started = time.monotonic()
            sent = await dispatch(rig, commands, members)
            dispatched = time.monotonic() - started
            ideal = commands * image_seconds / max(1, concurrency)
            await wait_until_finished(rig, sent, within=60 + ideal * 4)
        finally:
            await rig.stop_bot()
            await openai_server.close()
            await discord_server.close()

    acks = [c.interaction.response_latency for c in sent if c.interaction.response_latency is not None]
    delivered = [c for c in sent if c.pictures]
    failed = [c for c in sent if c.failures and not c.pictures]
    late = [c for c in sent if c.interaction.errors]
    end_to_end = [c.finished_at - c.interaction.dispatched_at for c in delivered if c.finished_at]
    all_done = max((c.finished_at for c in delivered if c.finished_at), default=started) - started
    queued_told = sum(1 for c in sent if any("queued" in text for text in c.progress))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"commands={commands} members={members} fake image time={image_seconds:.2f} s"
        f" RENDER_CONCURRENCY={concurrency} (ideal render time {ideal:.1f} s)"
    )
    print(f"{'dispatching all commands took':<34} {dispatched * 1000:.1f} ms")
    print(summary("interaction acknowledged", acks))
    print(f"{'late acknowledgements (>3 s)':<34} {len(late)}")
    print(f"{'pictures delivered / failed':<34} {len(delivered)} / {len(failed)}")
    print(f"{'image API calls':<34} {images.calls}")
    print(f"{'all pictures delivered after':<34} {all_done:.2f} s")
    print(f"{'throughput':<34} {len(delivered) / all_done if all_done > 0 else 0:.2f} pictures/s")
    print(summary("command to picture (end to end)", end_to_end))
    print(f"{'max concurrent renders at the API':<34} {images.peak}")
    print(f"{'commands told they were queued':<34} {queued_told}")
    print(f"{'peak memory (whole process)':<34} {peak_mib:.1f} MiB")


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        run(
            int(args[0]) if len(args) > 0 else 50,
            int(args[1]) if len(args) > 1 else 20,
            float(args[2]) if len(args) > 2 else 1.0,
        )
    )
