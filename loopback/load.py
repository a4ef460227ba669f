"""Many members at once: dispatching `/imagine` in bulk and sorting the bot's answers per command.

Used by `tests/test_load.py` (which asserts on behaviour) and `bench/load.py` (which prints numbers).
"""

from __future__ import annotations

import asyncio
import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loopback.fake_discord import FakeDiscord, FakeInteraction, RecordedRequest
from loopback.fake_openai import ImageReply
from loopback.rig import Rig, finished_pictures, sent_text

_ORIGINAL = re.compile(r"^/webhooks/\d+/(?P<token>[^/]+)/messages/@original$")
# A message of the bot's own in a channel: created (progress, or the whole answer), then edited.
_CHANNEL_MESSAGE = re.compile(r"^/channels/\d+/messages(/\d+)?$")
# A failure card (or error notice) has a line that starts with this; progress lines start with ⏳ or 🎨.
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
    # Once the token failed, the job goes on in a message in the channel: the requests there with its picture.
    channel_pictures: list[RecordedRequest] = field(default_factory=list)

    @property
    def pictures(self) -> list[RecordedRequest]:
        """The edits that uploaded the finished picture (previews shown while it formed are not counted)."""
        return [r for r in self.edits if finished_pictures(r)] + self.channel_pictures

    @property
    def failures(self) -> list[RecordedRequest]:
        return [r for r in self.edits if not finished_pictures(r) and _failed(r)]

    @property
    def progress(self) -> list[str]:
        """What each progress edit showed (queued, rendering, retrying, a preview)."""
        return [sent_text(r) for r in self.edits if not finished_pictures(r) and not _failed(r)]

    @property
    def finished(self) -> bool:
        return bool(self.pictures or self.failures or self.interaction.errors)

    @property
    def finished_at(self) -> float | None:
        ends = [r.at for r in self.pictures + self.failures]
        return min(ends) if ends else None


def _failed(request: RecordedRequest) -> bool:
    return any(line.startswith(FAILURE_MARK) for line in sent_text(request).splitlines())


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
        elif finished_pictures(request) and _CHANNEL_MESSAGE.match(request.path):
            # The token path failed and the picture went to the channel: its caption names the idea.
            owners = [c for idea, c in by_idea.items() if idea in sent_text(request)]
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
    """One line of percentiles for a benchmark report."""
    if not samples:
        return f"{name:<34} n=0"
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"{name:<34} n={len(samples):<4} p50={statistics.median(ordered) * 1000:8.1f} ms"
        f"  p95={p95 * 1000:8.1f} ms  max={ordered[-1] * 1000:8.1f} ms"
    )
