"""Mural wherever a member is: DMs, group DMs, user installs, channels without threads, no Message Content.

Where no thread can exist or the bot cannot post, a session lives on its interactions: the version
card carries the same buttons, Refine is a modal, pictures come back as the press's own answer, and
replies to the bot's messages refine wherever the bot receives them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from discord import app_commands

import bot.app
from loopback.fake_discord import FakeDiscord, FakeInteraction, Intents, Permissions
from loopback.fake_openai import make_png
from loopback.rig import DISCORD_TOKEN, EPHEMERAL, MODAL, ORIGINAL, Rig, loopback_rig

pytestmark = pytest.mark.asyncio

IDEA = "a fox in the snow"
V1 = "A red fox on a snowy hill at dawn, soft pink light, long shadows, shallow depth of field."
V2 = "The same fox under a full moon, silver light on the snow, deep blue shadows."
V3 = "The fox under the full moon, with a small wooden cabin far behind it."
WEBHOOK = r"^/webhooks/\d+/"


def text(rig: Rig, message: dict[str, Any]) -> str:
    return rig.discord.text_of(message)


async def press(rig: Rig, member: dict[str, Any], message: dict[str, Any], label: str) -> FakeInteraction:
    return await rig.discord.click(member, int(message["id"]), label=label)


async def session_without_thread(
    rig: Rig, member: dict[str, Any], channel_id: int, **where: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """/prompt where no thread can open, to the end: the v1 card and the private note saying why."""
    rig.openai.script_chat(V1)
    prompt = await rig.discord.slash_command(member, "prompt", {"idea": IDEA}, channel_id=channel_id, **where)
    v1 = await rig.answer_containing(prompt, "### v1")
    (note,) = await prompt.wait_followup(1)
    assert int(note["flags"]) & EPHEMERAL
    return v1, note


async def refine_by_modal(rig: Rig, member: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    """Refine on a version card, "make it night" in the modal: the next version, as the submit's own answer."""
    click = await press(rig, member, version, "Refine")
    assert (await click.wait_response())["type"] == MODAL
    rig.openai.script_chat(V2)
    submitted = await rig.discord.submit_modal(
        member, click.modal["custom_id"], {"instruction": "make it night"}
    )
    return await rig.answer_containing(submitted, "### v2")


async def generate_answers_the_press(
    rig: Rig, member: dict[str, Any], version: dict[str, Any]
) -> dict[str, Any]:
    """Generate: the picture is uploaded through the press's own interaction, never posted by the bot."""
    before = len(rig.discord.requests)
    click = await press(rig, member, version, "Generate")
    request, upload = await rig.wait_for_upload(before)
    assert "@original" in request.path and upload.filename.startswith("mural-")
    assert rig.discord.attachments_of(click.original)
    return click.original


def bot_calls_to(rig: Rig, channel: dict[str, Any]) -> list[str]:
    return [f"{r.method} {r.path}" for r in rig.discord.requests_to("*", rf"^/channels/{channel['id']}(/|$)")]


async def test_a_prompt_in_a_dm_refines_by_modal_and_by_reply_and_draws_as_the_answer(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    dm = rig.discord.open_dm(alice)

    v1, note = await session_without_thread(rig, alice, int(dm["id"]))
    assert text(rig, note).startswith("No thread here (a DM)")
    assert "replying to the prompt message" in text(rig, note)
    assert rig.threads() == [] and not rig.discord.requests_to("POST", r"/threads$")

    v2 = await refine_by_modal(rig, alice, v1)
    assert v2["channel_id"] == dm["id"] and "full moon" in text(rig, v2)
    await generate_answers_the_press(rig, alice, v2)

    # The bot reads its DMs: a reply to a version refines it, answered in the DM.
    rig.openai.script_chat(V3)
    await rig.discord.user_message(alice, int(dm["id"]), "add a cabin", reply_to=int(v2["id"]))
    v3 = await rig.wait_for_bot_message(int(dm["id"]), "### v3")
    assert "cabin" in text(rig, v3)
    assert rig.query("SELECT guild_id, thread_id FROM sessions") == [(None, None)]


async def test_a_user_install_in_a_server_without_the_bot_never_posts_there(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    elsewhere = rig.discord.add_foreign_channel("their-server")

    v1, note = await session_without_thread(rig, alice, int(elsewhere["id"]))
    assert "not a member of this server" in text(rig, note) and "replying" not in text(rig, note)
    v2 = await refine_by_modal(rig, alice, v1)
    picture = await generate_answers_the_press(rig, alice, v2)

    # Edit reads the picture off the pressed message itself; the bot cannot fetch anything here.
    opened = await press(rig, alice, picture, "Edit")
    await opened.wait_response()
    rig.openai.script_chat("The fox under a stormy grey sky.")
    submitted = await rig.discord.submit_modal(
        alice, opened.modal["custom_id"], {"instruction": "darker sky"}
    )
    edited = await rig.answer_containing(submitted, "Edit of v2")
    assert rig.discord.attachments_of(edited) and len(rig.openai.edit_requests) == 1

    # Reroll of the edit would need the first picture, on a message the bot cannot fetch here: said so.
    reroll = await press(rig, alice, edited, "Reroll")
    refusal = await reroll.wait_response()
    assert refusal["data"]["flags"] & EPHEMERAL and "E-INPUT" in refusal["data"]["content"]
    assert "Press Edit on the picture itself" in refusal["data"]["content"]
    assert len(rig.openai.edit_requests) == 1, "nothing was sent"
    assert [call for call in bot_calls_to(rig, elsewhere) if not call.startswith("GET ")] == []


async def test_imagine_in_a_group_dm_answers_with_the_picture_and_refine_brings_the_prompt(rig: Rig) -> None:
    await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    group = rig.discord.add_group_dm(alice, bob)
    rig.openai.script_chat(V1)
    before = len(rig.discord.requests)

    imagine = await rig.discord.slash_command(alice, "imagine", {"idea": IDEA}, channel_id=int(group["id"]))
    request, _ = await rig.wait_for_upload(before)
    assert "@original" in request.path

    # `Refine` on the picture cannot open a thread here: the prompt comes back as a version card.
    click = await press(rig, alice, imagine.original, "Refine")
    v1 = await rig.answer_containing(click, "### v1")
    (note,) = await click.wait_followup(1)
    assert "group DM" in text(rig, note) and "replying" not in text(rig, note)
    v2 = await refine_by_modal(rig, alice, v1)
    assert "full moon" in text(rig, v2)
    assert bot_calls_to(rig, group) == []


async def test_a_channel_without_create_public_threads_keeps_the_session_on_its_messages(rig: Rig) -> None:
    await rig.start_bot()
    rig.discord.set_everyone_permissions(Permissions.EVERYONE_DEFAULT & ~Permissions.CREATE_PUBLIC_THREADS)
    rig.discord.set_bot_permissions(Permissions.BOT_DEFAULT & ~Permissions.CREATE_PUBLIC_THREADS)
    alice = rig.discord.add_member("alice")

    v1, note = await session_without_thread(rig, alice, rig.discord.channel_id)
    assert "Create Public Threads" in text(rig, note)
    assert not rig.discord.requests_to("POST", r"/threads$")  # known from app_permissions: not even tried
    v2 = await refine_by_modal(rig, alice, v1)
    assert v2["channel_id"] == str(rig.discord.channel_id)
    await generate_answers_the_press(rig, alice, v2)


async def test_without_message_content_replies_and_mentions_refine_and_plain_messages_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(bot.app, "freeze_startup_heap", lambda: None)
    without = FakeDiscord(token=DISCORD_TOKEN, allowed_privileged_intents=0)
    async with loopback_rig(tmp_path, discord=without, monkeypatch=monkeypatch) as rig:
        with caplog.at_level(logging.WARNING, logger="bot.app"):
            mural = await rig.start_bot()
        assert not mural.reads_messages
        assert len([r for r in caplog.records if "Message Content intent is off" in r.message]) == 1
        assert all(not s.intents & Intents.MESSAGE_CONTENT for s in without._sessions.values())

        alice = rig.discord.add_member("alice")
        _, _, thread = await rig.start_prompt(alice, IDEA, V1)
        thread_id = int(thread["id"])
        hint = await rig.wait_for_bot_message(thread_id, "Reply here")
        assert "mention me" in text(rig, hint)

        await rig.discord.user_message(alice, thread_id, "make it purple")  # arrives empty: passed over
        rig.openai.script_chat(V2)
        await rig.discord.user_message(alice, thread_id, f"<@{rig.discord.bot_user['id']}> make it night")
        v2 = await rig.wait_for_bot_message(thread_id, "### v2")
        instruction = rig.openai.chat_requests[-1].json["messages"][-1]["content"]
        assert "make it night" in instruction and "<@" not in instruction

        rig.openai.script_chat(V3)
        await rig.discord.user_message(alice, thread_id, "add a cabin", reply_to=int(v2["id"]))
        await rig.wait_for_bot_message(thread_id, "### v3")
        sent = [str(r.json["messages"]) for r in rig.openai.chat_requests]
        assert len(sent) == 3 and not any("make it purple" in s for s in sent)


async def test_help_is_private_fits_discord_and_names_every_command_and_button(rig: Rig) -> None:
    mural = await rig.start_bot()
    alice = rig.discord.add_member("alice")
    for where in ({}, {"channel_id": int(rig.discord.open_dm(alice)["id"])}):
        answer = await rig.discord.slash_command(alice, "help", **where)
        await answer.wait_response()
        assert answer.ephemeral
        shown = text(rig, answer.original)
        assert len(shown) <= 4_000
        for command in mural.tree.get_commands():
            named = command.name if isinstance(command, app_commands.ContextMenu) else f"/{command.name}"
            assert named in shown, f"/help does not name {named}"
        for label in ("Generate", "Refine", "Undo", "Copy", "Edit", "Reroll", "Cancel", "Rephrase safely"):
            assert f"**{label}**" in shown
        assert mural.settings.image_model in shown and "E-BUG" in shown


async def test_an_expired_token_where_the_bot_is_absent_never_falls_back_to_the_channel(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """In a server without the bot, the channel is no way out: the answer is lost, not posted by force."""
    caplog.set_level(logging.INFO, logger="bot.ui")
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    elsewhere = rig.discord.add_foreign_channel("their-server")
    rig.discord.fail_next("PATCH", ORIGINAL, 401, code=50027, message="Invalid Webhook Token", times=50)
    rig.openai.script_chat(V1)

    await rig.discord.slash_command(alice, "imagine", {"idea": IDEA}, channel_id=int(elsewhere["id"]))
    await rig.discord.wait_for(
        lambda: any("cannot post" in r.message for r in caplog.records), message="the lost answer logged"
    )
    assert bot_calls_to(rig, elsewhere) == []
    assert any("E-EXPIRED" in r.getMessage() for r in caplog.records)


async def test_edit_with_mural_works_in_a_group_dm_from_the_resolved_message(rig: Rig) -> None:
    await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    group = rig.discord.add_group_dm(alice, bob)
    photo = make_png(24, 24, (250, 200, 10))
    posted = await rig.discord.user_message(bob, int(group["id"]), "look", files={"sunflower.png": photo})

    menu = await rig.discord.message_command(alice, "Edit with Mural", int(posted["id"]))
    await menu.wait_response()
    submitted = await rig.discord.submit_modal(alice, menu.modal["custom_id"], {"instruction": "watercolour"})
    await rig.discord.wait_for(
        lambda: submitted.original and rig.discord.attachments_of(submitted.original), message="the edit"
    )
    assert rig.openai.edit_inputs() == [photo]
    assert bot_calls_to(rig, group) == []


async def test_settings_stays_in_servers(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice", permissions=Permissions.MANAGE_GUILD)
    for where in ({"channel_id": int(rig.discord.open_dm(alice)["id"])}, {"install": "user"}):
        with pytest.raises(LookupError, match="not offered here"):
            await rig.discord.slash_command(alice, "settings", **where)
