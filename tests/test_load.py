"""Load: fifty `/imagine` commands from twenty members at once, with the image API taking half a second each.

One load run feeds several checks, each with its own message: every interaction acknowledged in time,
every command answered exactly once with its own picture, renders bounded by RENDER_CONCURRENCY (and
the bound reached, so the queue really was used), members with a render in flight told their next one
is queued, and the database consistent afterwards. The bounds are generous: ~7 s of render time
(50 pictures of 0.5 s, 4 at a time) must finish within 45 s even on a slow shared machine. Half a second
is still far longer than it takes all fifty commands to reach the queue (milliseconds), so every
command after the first four waits for a slot, as it would with real renders.
`bench/load.py` runs the same load (both through `loopback.load`) and prints the numbers.
"""

from __future__ import annotations

from collections import Counter

import pytest

from loopback.load import Command, TimedImageAPI, dispatch, wait_until_finished
from loopback.rig import DEFERRED, PNG_SIGNATURE, Rig, finished_pictures, sent_text

pytestmark = pytest.mark.asyncio

COMMANDS = 50
MEMBERS = 20
IMAGE_SECONDS = 0.5
CONCURRENCY = 4  # the default RENDER_CONCURRENCY
ACK_WITHIN = 3.0
FINISH_WITHIN = 45.0


def _describe(command: Command) -> str:
    return f"{command.member['username']} / {command.idea!r}"


async def test_fifty_imagines_from_twenty_members_are_queued_rendered_and_recorded(rig: Rig) -> None:
    images = TimedImageAPI(IMAGE_SECONDS)
    rig.openai.image_handler = images  # chat stays instant; each picture takes IMAGE_SECONDS
    bot = await rig.start_bot()
    assert bot.settings.render_concurrency == CONCURRENCY

    commands = await dispatch(rig, COMMANDS, MEMBERS)
    await wait_until_finished(rig, commands, within=FINISH_WITHIN)

    # Acknowledged in time: a deferral within Discord's 3 s, and the fake never refused a late callback.
    for command in commands:
        interaction = command.interaction
        assert interaction.response_type == DEFERRED, (
            f"{_describe(command)}: first callback {interaction.responses[:1]}"
        )
        assert interaction.response_latency is not None and interaction.response_latency < ACK_WITHIN, (
            f"{_describe(command)}: acknowledged after {interaction.response_latency} s"
        )
        assert interaction.errors == [], (
            f"{_describe(command)}: the fake refused a callback: {interaction.errors}"
        )

    # Every command ends in exactly one picture, its own; no failures without faults injected.
    for command in commands:
        assert command.failures == [], f"{_describe(command)} failed: {[r.json for r in command.failures]}"
        assert len(command.pictures) == 1, f"{_describe(command)}: {len(command.pictures)} pictures delivered"
        picture = command.pictures[0]
        [upload] = picture.files
        assert upload.filename.endswith(".png") and upload.data.startswith(PNG_SIGNATURE), upload.filename
        assert command.idea in sent_text(picture), f"{_describe(command)} got someone else's picture"
        if not command.channel_pictures:
            assert command.edits[-1] is picture, f"{_describe(command)}: a progress edit replaced the picture"
    uploads = [r for r in rig.discord.requests if finished_pictures(r) and 200 <= r.status < 300]
    assert len(uploads) == COMMANDS, f"{len(uploads)} picture uploads for {COMMANDS} commands"

    # The image API saw each idea's prompt exactly once: nothing lost, nothing drawn twice.
    ideas = {command.idea for command in commands}
    prompts = [request.json["prompt"] for request in rig.openai.image_requests]
    drawn = Counter(idea for prompt in prompts for idea in ideas if idea in prompt)
    assert len(prompts) == COMMANDS and images.calls == COMMANDS, f"{len(prompts)} image requests"
    assert drawn == dict.fromkeys(ideas, 1), (
        f"ideas not drawn exactly once: { {idea: drawn[idea] for idea in ideas if drawn[idea] != 1} }"
    )

    # Renders were bounded, and the bound was reached, so the queue was exercised.
    assert images.peak == CONCURRENCY, f"at most {images.peak} renders at once; expected {CONCURRENCY}"

    # A member with a render in flight is told their next command is queued, not refused: one render
    # per member at a time, so each of a member's commands after the first one drawn waited its turn.
    by_member: dict[str, list[Command]] = {}
    for command in commands:
        by_member.setdefault(command.member["id"], []).append(command)
    assert all(len(mine) >= 2 for mine in by_member.values()) and len(by_member) == MEMBERS
    for mine in by_member.values():
        first, *later = sorted(mine, key=lambda command: command.finished_at or 0.0)
        for command in later:
            assert any("queued" in text for text in command.progress), (
                f"{_describe(command)} ran while {first.idea!r} was in flight but was never shown as "
                f"queued; progress shown: {command.progress}"
            )

    # The database afterwards: intact, one session and one finished render per command, each render
    # pointing at the message that shows its own picture.
    await rig.stop_bot()
    assert rig.integrity() == "ok"
    assert rig.query("SELECT COUNT(*) FROM sessions") == [(COMMANDS,)]
    assert rig.query("SELECT COUNT(*) FROM renders") == [(COMMANDS,)]
    statuses = dict(rig.query("SELECT status, COUNT(*) FROM renders GROUP BY status"))
    assert statuses == {"done": COMMANDS}, f"render statuses: {statuses}"
    rows = rig.query(
        "SELECT sessions.idea, renders.message_id FROM renders JOIN sessions ON sessions.id = renders.session_id"
    )
    assert sorted(idea for idea, _ in rows) == sorted(ideas), "sessions do not match the commands' ideas"
    assert len({message_id for _, message_id in rows}) == COMMANDS, "renders share or lack a message_id"
    for idea, message_id in rows:
        message = rig.discord.messages.get(message_id) if message_id else None
        assert message is not None, f"{idea!r}: render has no message or an unknown one ({message_id})"
        assert idea in rig.discord.text_of(message) and len(rig.discord.attachments_of(message)) == 1, (
            f"{idea!r}: renders.message_id {message_id} is not the message with its picture"
        )
