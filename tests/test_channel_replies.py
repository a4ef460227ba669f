"""A reply to a version message refines its session wherever it is written; silence is never the answer."""

from __future__ import annotations

from pathlib import Path

import pytest

import bot.app
from loopback.fake_discord import FakeDiscord
from loopback.rig import DISCORD_TOKEN, Rig, loopback_rig

pytestmark = pytest.mark.asyncio
V1 = "A red fox on a snowy hill at dawn, soft pink light, long shadows."
V2 = "A red fox on a snowy hill at night, moonlight on the snow, long blue shadows."


def _sent_without_pings(rig: Rig, message: dict) -> bool:
    (request,) = [
        r
        for r in rig.discord.requests_to("POST", rf"/channels/{message['channel_id']}/messages$")
        if r.status == 200 and r.json.get("content") == message["content"]
    ]
    pings = request.json["allowed_mentions"]
    return pings["parse"] == [] and not pings.get("replied_user") and bool(request.json["message_reference"])


async def _reply_to_v1_in_the_channel(rig: Rig, text: str, *, author: dict | None = None) -> tuple[dict, int]:
    alice = rig.discord.add_member("alice")
    _, v1, thread = await rig.start_prompt(alice, "a fox", V1)
    rig.openai.script_chat(V2)
    await rig.discord.user_message(author or alice, rig.discord.channel_id, text, reply_to=int(v1["id"]))
    return v1, int(thread["id"])


async def test_a_reply_to_v1_in_the_channel_puts_v2_in_the_thread_and_points_to_it(rig: Rig) -> None:
    await rig.start_bot()
    _, thread_id = await _reply_to_v1_in_the_channel(rig, "make it night @everyone")
    v2 = await rig.wait_for_bot_message(thread_id, "### v2")
    assert "moonlight" in rig.discord.text_of(v2)
    pointer = await rig.wait_for_bot_message(rig.discord.channel_id, "v2 is in the thread")
    assert f"/{thread_id}/{v2['id']}" in rig.discord.text_of(pointer)
    assert pointer["message_reference"]["channel_id"] == str(rig.discord.channel_id)
    assert _sent_without_pings(rig, pointer)
    # The version itself is not repeated in the channel.
    assert not [m for m in rig.bot_messages_in(rig.discord.channel_id) if "### v2" in rig.discord.text_of(m)]
    instruction = rig.openai.chat_requests[-1].json["messages"][-1]["content"]
    assert "make it night" in instruction


async def test_a_reply_to_v1_from_someone_who_may_not_refine_is_answered_with_why(rig: Rig) -> None:
    await rig.start_bot()
    bob = rig.discord.add_member("bob")
    chats = rig.openai.calls("/chat/completions")
    await _reply_to_v1_in_the_channel(rig, "make it night", author=bob)
    refusal = await rig.wait_for_bot_message(rig.discord.channel_id, "E-")
    assert "Only <@" in rig.discord.text_of(refusal) and _sent_without_pings(rig, refusal)
    assert rig.openai.calls("/chat/completions") == chats + 1  # only /prompt's own call


async def test_without_message_content_a_reply_to_v1_in_the_channel_still_refines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the intent a reply (its @ on) is one of the few ways a member's words reach Mural."""
    monkeypatch.setattr(bot.app, "freeze_startup_heap", lambda: None)
    without = FakeDiscord(token=DISCORD_TOKEN, allowed_privileged_intents=0)
    async with loopback_rig(tmp_path, discord=without, monkeypatch=monkeypatch) as rig:
        mural = await rig.start_bot()
        assert not mural.reads_messages
        _, thread_id = await _reply_to_v1_in_the_channel(rig, "make it night")
        await rig.wait_for_bot_message(thread_id, "### v2")
        await rig.wait_for_bot_message(rig.discord.channel_id, "v2 is in the thread")
