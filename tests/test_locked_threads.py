"""Pictures whose thread a moderator archives and locks while they render: reopened where Mural may,
else delivered in the parent channel with a note; never E-BUG."""

from __future__ import annotations

from typing import Any

import pytest

from loopback.fake_discord import Permissions
from loopback.fake_openai import ImageReply
from loopback.rig import Rig

pytestmark = pytest.mark.asyncio
PROMPT = "A lighthouse on a cliff in a storm, green waves, spray in the lamp's beam, oil painting."
RENDER_SECONDS = 1.5


async def _render_locked_midway(rig: Rig, *, press_in_thread: bool) -> tuple[dict[str, Any], int]:
    """Generate on v1 (in the channel, or its copy in the thread); the thread is archived and locked
    while the picture is drawn. Returns the member and the thread's id."""
    alice = rig.discord.add_member("alice")
    _, v1, thread = await rig.start_prompt(alice, "a lighthouse", PROMPT)
    thread_id = int(thread["id"])
    card = v1
    if press_in_thread:
        card = await rig.refine(alice, thread_id, "add rain", PROMPT + " Rain.")
    rig.openai.script_images(ImageReply(delay=RENDER_SECONDS))
    await rig.discord.click(alice, int(card["id"]), label="Generate")
    await rig.openai.wait_for_calls("/images/generations", 1)
    rig.discord.channels[thread_id]["thread_metadata"].update(archived=True, locked=True)
    return alice, thread_id


def _picture_in(rig: Rig, channel_id: int) -> dict[str, Any] | None:
    """The finished picture card (previews are uploads too, but without buttons)."""
    return next(
        (
            m
            for m in rig.bot_messages_in(channel_id)
            if "Reroll" in [b["label"] for b in rig.discord.buttons_of(m)] and rig.discord.attachments_of(m)
        ),
        None,
    )


def _bugs(rig: Rig) -> list[str]:
    every = [rig.discord.text_of(m) for m in rig.discord.messages.values()]
    return [text for text in every if "E-BUG" in text]


@pytest.mark.parametrize("press_in_thread", [False, True], ids=["pressed-in-channel", "pressed-in-thread"])
async def test_a_locked_thread_is_reopened_for_the_picture_when_mural_manages_threads(
    rig: Rig, press_in_thread: bool
) -> None:
    await rig.start_bot()
    _, thread_id = await _render_locked_midway(rig, press_in_thread=press_in_thread)
    await rig.discord.wait_for(
        lambda: _picture_in(rig, thread_id), message="the picture in the reopened thread"
    )
    assert rig.discord.channels[thread_id]["thread_metadata"]["archived"] is False
    assert _bugs(rig) == []


@pytest.mark.parametrize("press_in_thread", [False, True], ids=["pressed-in-channel", "pressed-in-thread"])
async def test_a_locked_thread_mural_may_not_reopen_gets_the_picture_in_its_channel_with_a_note(
    rig: Rig, press_in_thread: bool
) -> None:
    await rig.start_bot()
    rig.discord.set_bot_permissions(Permissions.BOT_DEFAULT & ~Permissions.MANAGE_THREADS)
    _, thread_id = await _render_locked_midway(rig, press_in_thread=press_in_thread)
    channel_id = rig.discord.channel_id
    picture = await rig.discord.wait_for(
        lambda: _picture_in(rig, channel_id), message="the picture in the parent channel"
    )
    notes = [
        rig.discord.text_of(m)
        for m in rig.bot_messages_in(channel_id)
        if "archived" in rig.discord.text_of(m) and int(m["id"]) < int(picture["id"])
    ]
    assert notes and f"<#{thread_id}>" in notes[-1]
    assert rig.discord.channels[thread_id]["thread_metadata"]["archived"] is True
    assert _bugs(rig) == []
