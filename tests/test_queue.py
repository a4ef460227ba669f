"""The fair render queue: round-robin across members, places in the queue, Cancel, the concurrency bound.

Every test runs the real bot against the loopback Discord and OpenAI with RENDER_CONCURRENCY=1 and
`/imagine raw:` (the idea is the prompt, no chat call), and holds pictures at the fake image API with
a `Gate`, so what is queued behind a render stays queued until the test lets it through.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import sqlite3
from collections.abc import Mapping
from typing import Any

import pytest

from loopback.fake_discord import FakeInteraction
from loopback.fake_openai import ImageReply
from loopback.load import Command, collect
from loopback.rig import EPHEMERAL, Rig

pytestmark = pytest.mark.asyncio

DEFERRED_UPDATE = 6


class Gate:
    """An `image_handler` that holds every picture until the test releases it, and counts concurrency."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self._released = asyncio.Semaphore(0)
        self.in_flight = 0
        self.peak = 0

    async def __call__(self, params: Mapping[str, Any]) -> ImageReply:
        self.prompts.append(str(params.get("prompt")))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self._released.acquire()
        finally:
            self.in_flight -= 1
        return ImageReply()

    def release(self, pictures: int = 1) -> None:
        for _ in range(pictures):
            self._released.release()


async def start(rig: Rig) -> Gate:
    rig.overrides["RENDER_CONCURRENCY"] = "1"
    gate = Gate()
    rig.openai.image_handler = gate
    await rig.start_bot()
    return gate


async def imagine(rig: Rig, member: dict[str, Any], idea: str, *, renders: int) -> FakeInteraction:
    """`/imagine raw:` and return once its render is recorded (the `renders`-th in the store)."""
    interaction = await rig.discord.slash_command(member, "imagine", {"idea": idea, "raw": True})
    await rig.discord.wait_for(
        lambda: rig.query("SELECT COUNT(*) FROM renders") == [(renders,)], message=f"render {renders} queued"
    )
    return interaction


def card_text(rig: Rig, interaction: FakeInteraction) -> str:
    return rig.discord.text_of(interaction.original) if interaction.original else ""


async def card_saying(rig: Rig, interaction: FakeInteraction, pattern: str) -> re.Match[str]:
    def shown() -> re.Match[str] | None:
        return re.search(pattern, card_text(rig, interaction))

    return await rig.discord.wait_for(shown, message=f"the card to match {pattern!r}")


def cancel_button(rig: Rig, interaction: FakeInteraction) -> dict[str, Any] | None:
    assert interaction.original is not None
    return next((b for b in rig.discord.buttons_of(interaction.original) if b["label"] == "Cancel"), None)


def render_id(rig: Rig, prompt: str) -> int:
    return rig.query("SELECT id FROM renders WHERE prompt = ?", (prompt,))[0][0]


async def test_a_member_who_queues_one_is_not_starved_by_one_who_queues_five(rig: Rig) -> None:
    gate = await start(rig)
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    commands = [
        Command(alice, f"alice picture {n}", await imagine(rig, alice, f"alice picture {n}", renders=n))
        for n in range(1, 6)
    ]
    await rig.discord.wait_for(lambda: gate.prompts == ["alice picture 1"], message="alice's first render")
    commands.append(Command(bob, "bob picture 1", await imagine(rig, bob, "bob picture 1", renders=6)))

    gate.release(6)
    await rig.discord.wait_for(lambda: len(gate.prompts) == 6, message="every render sent")

    assert gate.prompts == [
        "alice picture 1",
        "bob picture 1",
        "alice picture 2",
        "alice picture 3",
        "alice picture 4",
        "alice picture 5",
    ]

    def delivered() -> bool:
        collect(rig.discord, commands)
        return all(command.pictures for command in commands)

    await rig.discord.wait_for(delivered, message="every picture delivered")
    order = sorted(commands, key=lambda command: command.finished_at or 0.0)
    assert [command.idea for command in order[:2]] == ["alice picture 1", "bob picture 1"]
    # Counted at the fake's image endpoint (moderation and chat calls run beside renders).
    assert gate.peak == 1
    assert rig.query("SELECT DISTINCT status FROM renders") == [("done",)]


async def test_a_queued_card_shows_its_place_and_the_place_moves_up(rig: Rig) -> None:
    gate = await start(rig)
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    interactions = [await imagine(rig, alice, f"alice picture {n}", renders=n) for n in range(1, 6)]
    last = interactions[-1]
    # Alice 2, 3 and 4 start before her fifth, which waits behind her running render.
    await card_saying(rig, last, r"behind your render that is still running \(#4 in the queue\)")
    await card_saying(rig, interactions[1], r"still running\.$")  # next up: no number
    assert cancel_button(rig, last) is not None

    bob_command = await imagine(rig, bob, "bob picture 1", renders=6)
    await card_saying(rig, last, r"#5 in the queue")  # bob goes first: he has nothing running
    await card_saying(rig, bob_command, r"queued \(next up\)")

    gate.release()  # alice 1 done: bob starts
    await card_saying(rig, last, r"#4 in the queue")
    gate.release()  # bob done: alice 2 starts
    await card_saying(rig, last, r"#3 in the queue")
    gate.release()  # alice 2 done: alice 3 starts; alice 4 is next, so the fifth is second
    await card_saying(rig, last, r"#2 in the queue")
    gate.release(3)
    await rig.discord.wait_for(lambda: len(gate.prompts) == 6, message="every render sent")


async def test_cancel_keeps_a_queued_job_from_openai_and_is_its_owners_alone(rig: Rig) -> None:
    gate = await start(rig)
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    first = await imagine(rig, alice, "alice picture 1", renders=1)
    await rig.discord.wait_for(lambda: gate.prompts == ["alice picture 1"], message="the first render")
    second = await imagine(rig, alice, "alice picture 2", renders=2)
    third = await imagine(rig, alice, "alice picture 3", renders=3)
    await card_saying(rig, third, r"#2 in the queue")
    second_cancel = cancel_button(rig, second)
    third_cancel = cancel_button(rig, third)
    assert second_cancel and third_cancel
    assert second_cancel["custom_id"] == f"mural:cancel:{render_id(rig, 'alice picture 2')}"
    assert first.original and cancel_button(rig, first) is None, "a running render has no Cancel"

    # Someone else's Cancel is refused privately.
    assert third.original is not None
    refused = await (
        await rig.discord.click(bob, int(third.original["id"]), third_cancel["custom_id"])
    ).wait_response()
    assert refused["data"]["flags"] & EPHEMERAL and "E-NOT-YOURS" in refused["data"]["content"]

    # The owner's Cancel: the row is cancelled, the card says so, and the third never reaches OpenAI.
    pressed = await rig.discord.click(alice, int(third.original["id"]), third_cancel["custom_id"])
    answered = await pressed.wait_response()
    assert answered["type"] == DEFERRED_UPDATE
    await card_saying(rig, third, r"v1 was cancelled before it started")
    assert cancel_button(rig, third) is None
    assert rig.query("SELECT status, cost_usd, started_at FROM renders WHERE prompt = 'alice picture 3'") == [
        ("cancelled", None, None)
    ]
    await card_saying(rig, second, r"queued behind your render that is still running\.$")  # now next up

    # Cancel pressed on a card the member still sees, once its render is out: answered privately.
    assert second.original is not None
    stale = copy.deepcopy(second.original["components"])
    gate.release()
    await rig.discord.wait_for(lambda: len(gate.prompts) == 2, message="the second render")
    await card_saying(rig, second, r"Rendering v1")
    rig.discord.messages[int(second.original["id"])]["components"] = stale  # the member's client lags
    late = await (
        await rig.discord.click(alice, int(second.original["id"]), second_cancel["custom_id"])
    ).wait_response()
    assert late["data"]["flags"] & EPHEMERAL and "can't be stopped" in late["data"]["content"]

    gate.release()
    await rig.discord.wait_for(
        lambda: rig.query("SELECT COUNT(*) FROM renders WHERE status = 'done'") == [(2,)],
        message="both kept renders finished",
    )
    assert gate.prompts == ["alice picture 1", "alice picture 2"]
    assert not any("alice picture 3" in str(request.json) for request in rig.openai.image_requests)
    assert rig.query("SELECT status FROM renders ORDER BY id") == [("done",), ("done",), ("cancelled",)]


async def test_many_members_never_exceed_the_concurrency_bound(rig: Rig) -> None:
    rig.overrides["RENDER_CONCURRENCY"] = "2"
    gate = Gate()
    rig.openai.image_handler = gate
    await rig.start_bot()
    members = [rig.discord.add_member(f"member{n}") for n in range(3)]
    for n in range(9):
        await imagine(rig, members[n % 3], f"picture {n}", renders=n + 1)
    await rig.discord.wait_for(lambda: len(gate.prompts) == 2, message="two renders at once")
    for sent in range(3, 10):
        gate.release()
        await rig.discord.wait_for(lambda sent=sent: len(gate.prompts) == sent, message=f"render {sent}")
        assert gate.in_flight <= 2
    gate.release(2)
    await rig.discord.wait_for(
        lambda: rig.query("SELECT COUNT(*) FROM renders WHERE status = 'done'") == [(9,)],
        message="every render finished",
    )
    assert gate.peak == 2
    # One at a time per member: the first three sent are three different members' pictures.
    assert sorted(int(prompt.split()[1]) % 3 for prompt in gate.prompts[:3]) == [0, 1, 2]


async def test_after_a_restart_queued_renders_run_and_running_ones_are_interrupted_with_retry(
    rig: Rig,
) -> None:
    gate = await start(rig)
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    await imagine(rig, alice, "alice picture 1", renders=1)
    await rig.discord.wait_for(lambda: gate.prompts == ["alice picture 1"], message="the first render")
    queued = await imagine(rig, bob, "bob picture 1", renders=2)
    cancelled = await imagine(rig, bob, "bob picture 2", renders=3)
    await card_saying(rig, cancelled, r"#2 in the queue")
    button = cancel_button(rig, cancelled)
    assert button and cancelled.original
    await (await rig.discord.click(bob, int(cancelled.original["id"]), button["custom_id"])).wait_response()
    await card_saying(rig, queued, r"next up")

    await rig.restart()

    def notices() -> list[dict[str, Any]]:
        return [
            m
            for m in rig.bot_messages_in(rig.discord.channel_id)
            if "interrupted when I restarted" in rig.discord.text_of(m)
        ]

    (told,) = await rig.discord.wait_for(notices, message="alice told")
    assert rig.discord.text_of(told).startswith(f"⚠️ <@{alice['id']}>")
    assert [b["label"] for b in rig.discord.buttons_of(told)] == ["Retry"]
    await rig.discord.wait_for(
        lambda: gate.prompts == ["alice picture 1", "bob picture 1"], message="bob's queued job sent"
    )
    gate.release(2)  # the first wakes the request the stop abandoned
    await rig.discord.wait_for(
        lambda: queued.original and rig.discord.attachments_of(queued.original), message="bob's picture"
    )
    assert rig.query("SELECT prompt, status FROM renders ORDER BY id") == [
        ("alice picture 1", "interrupted"),
        ("bob picture 1", "done"),
        ("bob picture 2", "cancelled"),
    ]
    assert not notices()[1:], "a job that waited is run, not reported"


async def test_a_queued_render_whose_message_is_gone_after_a_restart_is_never_sent(rig: Rig) -> None:
    gate = await start(rig)
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    await imagine(rig, alice, "alice picture 1", renders=1)
    await rig.discord.wait_for(lambda: gate.prompts == ["alice picture 1"], message="the first render")
    queued = await imagine(rig, bob, "bob picture 1", renders=2)
    await card_saying(rig, queued, r"next up")
    await rig.stop_bot()
    gone = 10**18  # a channel deleted while the bot was away
    with contextlib.closing(sqlite3.connect(rig.database)) as db, db:
        db.execute(
            "UPDATE renders SET channel_id = ?, message_channel_id = ? WHERE prompt = 'bob picture 1'",
            (gone, gone),
        )

    await rig.start_bot()
    await rig.discord.wait_for(
        lambda: rig.query("SELECT status FROM renders WHERE prompt = 'bob picture 1'") == [("failed",)],
        message="bob's job given up",
    )
    gate.release(1)
    assert gate.prompts == ["alice picture 1"], "nothing was sent for a job nobody could see"


async def test_a_queued_edit_runs_after_a_restart_from_the_picture_it_changes(rig: Rig) -> None:
    gate = await start(rig)
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    first = await imagine(rig, alice, "alice picture 1", renders=1)
    gate.release(1)
    await rig.discord.wait_for(
        lambda: first.original and rig.discord.attachments_of(first.original), message="alice's picture"
    )
    await imagine(rig, bob, "bob picture 1", renders=2)
    await rig.discord.wait_for(lambda: len(gate.prompts) == 2, message="bob's render holds the slot")
    assert first.original is not None
    opened = await rig.discord.click(alice, int(first.original["id"]), label="Edit")
    await opened.wait_response()
    rig.openai.script_chat("The same picture with a darker, stormier sky.")
    edit = await rig.discord.submit_modal(alice, opened.modal["custom_id"], {"instruction": "darker sky"})
    await rig.discord.wait_for(
        lambda: rig.query("SELECT status FROM renders WHERE kind = 'edit'") == [("queued",)], message="queued"
    )
    await card_saying(rig, edit, r"next up")

    await rig.restart()
    await rig.discord.wait_for(lambda: len(gate.prompts) == 3, message="the edit sent after the restart")
    gate.release(2)  # the first wakes the request the stop abandoned
    await rig.discord.wait_for(
        lambda: rig.query("SELECT status FROM renders WHERE kind = 'edit'") == [("done",)],
        message="edit done",
    )
    (sent,) = rig.openai.edit_requests
    assert sent.files and gate.prompts[2] == "The same picture with a darker, stormier sky."
    # The row says done once recorded; the picture is uploaded right after, into the waiting card.
    await rig.discord.wait_for(
        lambda: edit.original and rig.discord.attachments_of(edit.original),
        message="its waiting card became the picture",
    )
