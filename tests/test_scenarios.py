"""The core loop end to end: the real bot against the loopback Discord and OpenAI, with a real database."""

from __future__ import annotations

import sqlite3

import pytest

from loopback.fake_openai import moderation_blocked, server_error
from loopback.rig import (
    DEFERRED,
    EPHEMERAL,
    MODAL,
    Rig,
    button,
    custom_ids,
    png_size,
    sent_text,
    unused_port,
)

pytestmark = pytest.mark.asyncio

V1 = "A wide, quiet beach at golden hour, the low sun melting into a hazy horizon, warm amber light."
V2 = "The same beach at night under a full moon, silver light on the wet sand, deep blue shadows."
V3 = "The moonlit beach, now with a red fox pausing at the waterline, calm and uncluttered."
IDEA = "a beach at sunset"


async def test_bot_connects_and_registers_its_commands(rig: Rig) -> None:
    await rig.start_bot()
    names = {command["name"] for command in rig.discord.registered_commands[None]}
    assert {"prompt", "imagine"} <= names
    imagine = next(c for c in rig.discord.registered_commands[None] if c["name"] == "imagine")
    options = {o["name"]: o for o in imagine["options"]}
    # Offered by autocomplete from the model a render will use, so they can differ per server later.
    assert options["size"].get("autocomplete") and options["quality"].get("autocomplete")


async def test_imagine_offers_the_sizes_and_qualities_of_the_model_it_will_use(rig: Rig) -> None:
    rig.overrides["IMAGE_MODEL"] = "gpt-image-2.5-flare"
    await rig.start_bot()
    alice = rig.discord.add_member("alice")

    sizes = await rig.discord.autocomplete(alice, "imagine", {"idea": "a fox", "size": ""}, focused="size")
    await sizes.wait_response()
    assert [c["value"] for c in sizes.choices] == ["1024x1024", "1536x1024", "1024x1536", "auto"]
    narrowed = await rig.discord.autocomplete(alice, "imagine", {"size": "land"}, focused="size")
    await narrowed.wait_response()
    assert [c["value"] for c in narrowed.choices] == ["1536x1024"]
    qualities = await rig.discord.autocomplete(alice, "imagine", {"quality": ""}, focused="quality")
    await qualities.wait_response()
    assert "xhigh" in [c["value"] for c in qualities.choices]


async def test_imagine_checks_a_typed_size_against_the_model_at_the_call(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    refused = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "quality": "max"})
    answer = await refused.wait_response()
    assert answer["data"]["flags"] & EPHEMERAL and "E-INPUT" in answer["data"]["content"]
    assert rig.openai.calls("/chat/completions") == 0

    rig.openai.script_chat(V1)
    custom = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "size": "1280x720"})
    await custom.wait_response()
    await rig.openai.wait_for_calls("/images/generations")
    assert rig.openai.image_requests[0].json["size"] == "1280x720"


async def test_prompt_is_deferred_then_posts_v1_and_opens_a_thread(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    interaction, message, thread = await rig.start_prompt(alice, IDEA, V1)

    assert interaction.response_type == DEFERRED
    assert interaction.response_latency < 3
    assert rig.discord.text_of(message).startswith("### v1")
    assert "golden hour" in rig.discord.text_of(message)
    assert any(cid.startswith("mural:gen:") and cid.endswith(":1") for cid in custom_ids(message))
    assert thread["name"] == "a beach at sunset"
    assert int(thread["id"]) == int(message["id"])
    system, user = rig.openai.chat_requests[0].json["messages"]
    assert system["role"] == "system" and "image prompt" in system["content"]
    assert "a beach at sunset" in user["content"]


async def test_thread_reply_refines_into_v2(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, _, thread = await rig.start_prompt(alice, IDEA, V1)
    thread_id = int(thread["id"])

    v2 = await rig.refine(alice, thread_id, "make it night", V2)

    assert "full moon" in rig.discord.text_of(v2)
    assert any(cid.endswith(":2") for cid in custom_ids(v2))
    request = rig.openai.chat_requests[-1].json["messages"][-1]["content"]
    assert "a beach at sunset" in request
    assert V1 in request
    assert "make it night" in request
    assert rig.discord.requests_to("POST", rf"/channels/{thread_id}/typing")


async def test_generate_on_v1_uploads_a_png_into_the_thread(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, message, thread = await rig.start_prompt(alice, IDEA, V1)
    thread_id = int(thread["id"])
    generate = button(message, "gen")
    in_thread = {int(m["id"]) for m in rig.bot_messages_in(thread_id)}

    before = len(rig.discord.requests)
    click = await rig.discord.click(alice, int(message["id"]), generate)
    response = await click.wait_response()
    request, upload = await rig.wait_for_upload(before)

    assert response["type"] == DEFERRED and click.ephemeral
    # One new message in the thread: it showed the progress, and the picture then replaced it there.
    (picture,) = (m for m in rig.bot_messages_in(thread_id) if int(m["id"]) not in in_thread)
    (created,) = (
        r
        for r in rig.discord.requests[before:]
        if (r.method, r.path) == ("POST", f"/channels/{thread_id}/messages")
    )
    assert not created.files and "v1" in sent_text(created)
    assert (request.method, request.path) == ("PATCH", f"/channels/{thread_id}/messages/{picture['id']}")
    assert png_size(upload.data) == (64, 64)
    assert [a["filename"] for a in rig.discord.attachments_of(picture)] == [upload.filename]
    assert "**v1**" in sent_text(request) and "**v1**" in rig.discord.text_of(picture)
    assert rig.openai.image_requests[0].json["prompt"] == V1
    # The clicker is pointed at the picture: a link to the message holding it, in the thread.
    pointer = await rig.answer_containing(click, "v1 is in the thread")
    assert rig.discord.text_of(pointer).endswith(f"/{thread_id}/{picture['id']}")


async def test_generate_inside_the_thread_answers_there_with_the_picture(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, _, thread = await rig.start_prompt(alice, IDEA, V1)
    thread_id = int(thread["id"])
    v2 = await rig.refine(alice, thread_id, "make it night", V2)

    before = len(rig.discord.requests)
    click = await rig.discord.click(alice, int(v2["id"]), "mural:gen:1:2")
    assert (await click.wait_response())["type"] == DEFERRED and not click.ephemeral
    request, upload = await rig.wait_for_upload(before)
    png_size(upload.data)
    assert "@original" in request.path
    assert rig.openai.image_requests[0].json["prompt"] == V2
    assert click.original["channel_id"] == str(thread_id)


async def test_imagine_posts_a_png_and_the_prompt_in_the_channel(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(V1)
    before = len(rig.discord.requests)
    interaction = await rig.discord.slash_command(
        alice, "imagine", {"idea": "a beach at sunset", "size": "1536x1024", "quality": "high"}
    )
    assert (await interaction.wait_response())["type"] == DEFERRED
    request, upload = await rig.wait_for_upload(before)

    png_size(upload.data)
    assert upload.filename.endswith(".png")
    assert "golden hour" in sent_text(request)
    sent = rig.openai.image_requests[0].json
    assert (sent["size"], sent["quality"], sent["model"]) == ("1536x1024", "high", "gpt-image-2")
    assert interaction.original["channel_id"] == str(rig.discord.channel_id)


async def test_someone_elses_generate_click_is_refused_privately(rig: Rig) -> None:
    await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    _, message, _ = await rig.start_prompt(alice, IDEA, V1)
    generate = button(message, "gen")

    click = await rig.discord.click(bob, int(message["id"]), generate)
    response = await click.wait_response()

    assert response["data"]["flags"] & EPHEMERAL
    assert "Only" in response["data"]["content"]
    assert rig.openai.image_requests == []


async def test_messages_from_other_members_and_bots_are_ignored(rig: Rig) -> None:
    await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    helper = rig.discord.add_member("helperbot", bot=True)
    _, _, thread = await rig.start_prompt(alice, IDEA, V1)
    chats = len(rig.openai.chat_requests)

    await rig.discord.user_message(bob, int(thread["id"]), "make it purple")
    await rig.discord.user_message(helper, int(thread["id"]), "make it green")
    rig.openai.script_chat(V2)
    await rig.discord.user_message(alice, int(thread["id"]), "make it night")
    await rig.wait_for_bot_message(int(thread["id"]), "### v2")

    assert len(rig.openai.chat_requests) == chats + 1
    assert "make it night" in rig.openai.chat_requests[-1].json["messages"][-1]["content"]


async def test_two_quick_replies_become_v2_and_v3(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, _, thread = await rig.start_prompt(alice, IDEA, V1)
    thread_id = int(thread["id"])
    rig.openai.latency = 0.2
    rig.openai.script_chat(V2, V3)

    await rig.discord.user_message(alice, thread_id, "make it night")
    await rig.discord.user_message(alice, thread_id, "add a fox")
    await rig.wait_for_bot_message(thread_id, "### v3")

    headers = [
        text.split("\n", 1)[0]
        for m in rig.bot_messages_in(thread_id)
        if (text := rig.discord.text_of(m)).startswith("### v")
    ]
    assert headers == ["### v2", "### v3"]
    # The second request already builds on the first answer.
    assert V2 in rig.openai.chat_requests[-1].json["messages"][-1]["content"]


async def test_restart_continues_the_session_and_old_buttons_work(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, message, thread = await rig.start_prompt(alice, IDEA, V1)
    thread_id = int(thread["id"])
    await rig.refine(alice, thread_id, "make it night", V2)
    syncs = len(rig.discord.requests_to("PUT", r"/applications/\d+/commands"))

    await rig.restart()

    await rig.refine(alice, thread_id, "add a fox", V3, version=3)
    assert V2 in rig.openai.chat_requests[-1].json["messages"][-1]["content"]

    before = len(rig.discord.requests)
    generate = button(message, "gen")
    await rig.discord.click(alice, int(message["id"]), generate)
    _, upload = await rig.wait_for_upload(before)
    png_size(upload.data)
    assert rig.openai.image_requests[-1].json["prompt"] == V1
    # The definitions did not change, so the restart did not register the commands again.
    assert len(rig.discord.requests_to("PUT", r"/applications/\d+/commands")) == syncs


async def test_safety_refusal_is_explained_and_the_bot_serves_the_next_command(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(V1, V2)
    rig.openai.script_images(moderation_blocked())

    refused = await rig.discord.slash_command(alice, "imagine", {"idea": "something edgy"})
    text = await rig.answer_containing(refused, "E-SAFETY")
    assert "safety" in rig.discord.text_of(text)
    assert rig.openai.calls("/images/generations") == 1

    before = len(rig.discord.requests)
    await rig.discord.slash_command(alice, "imagine", {"idea": "a calm lake"})
    _, upload = await rig.wait_for_upload(before)
    png_size(upload.data)


async def test_chat_model_failure_reaches_the_member(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(*(server_error(503) for _ in range(3)))

    interaction = await rig.discord.slash_command(alice, "prompt", {"idea": "a beach"})
    failed = await rig.answer_containing(interaction, "E-DOWN")
    assert "cannot be reached" in rig.discord.text_of(failed)
    assert rig.openai.calls("/chat/completions") == 3
    assert rig.threads() == []


async def test_nobody_is_pinged_whatever_the_text_says(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, _, thread = await rig.start_prompt(alice, "@everyone look", "@everyone @here <@123> a beach")
    await rig.refine(alice, int(thread["id"]), "@everyone make it night", "@here a beach at night")

    # Every message the bot sent or edited: plain text (content) or a card (components).
    sends = [
        r
        for r in rig.discord.requests
        if r.method in ("POST", "PATCH")
        and isinstance(r.json, dict)
        and {"content", "components"} & r.json.keys()
    ]
    assert sends
    for request in sends:
        assert request.json.get("allowed_mentions", {}).get("parse") == [], request.path


async def test_a_very_long_prompt_still_fits_discord(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    long_prompt = "A beach " + "with ever more detail " * 300
    _, message, _ = await rig.start_prompt(alice, IDEA, long_prompt)
    # Discord's limit for all the text of a Components v2 message.
    assert len(rig.discord.text_of(message)) <= 4_000
    assert "Copy gives the whole prompt" in rig.discord.text_of(message)
    copy = button(message, "copy")
    click = await rig.discord.click(alice, int(message["id"]), copy)
    response = await click.wait_response()
    assert response["data"]["flags"] & EPHEMERAL


async def test_refine_button_on_v1_posts_the_next_version_in_the_thread(rig: Rig) -> None:
    """v1 sits in the channel, but the session lives in its thread: v2 goes there, not beside v1."""
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, message, thread = await rig.start_prompt(alice, IDEA, V1)
    refine = button(message, "refine")

    click = await rig.discord.click(alice, int(message["id"]), refine)
    assert (await click.wait_response())["type"] == MODAL
    rig.openai.script_chat(V2)
    submitted = await rig.discord.submit_modal(
        alice, click.modal["custom_id"], {"instruction": "make it night"}
    )
    v2 = await rig.wait_for_bot_message(int(thread["id"]), "### v2")
    assert "full moon" in rig.discord.text_of(v2)
    assert "make it night" in rig.openai.chat_requests[-1].json["messages"][-1]["content"]
    pointer = await rig.answer_containing(submitted, "is in the thread")
    assert submitted.ephemeral and str(v2["id"]) in rig.discord.text_of(pointer)
    assert not any("### v2" in rig.discord.text_of(m) for m in rig.bot_messages_in(rig.discord.channel_id))


async def test_refine_button_inside_the_thread_answers_there(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, _, thread = await rig.start_prompt(alice, IDEA, V1)
    thread_id = int(thread["id"])
    v2 = await rig.refine(alice, thread_id, "make it night", V2)

    click = await rig.discord.click(alice, int(v2["id"]), button(v2, "refine"))
    await click.wait_response()
    rig.openai.script_chat(V3)
    submitted = await rig.discord.submit_modal(alice, click.modal["custom_id"], {"instruction": "add a fox"})
    v3 = await rig.answer_containing(submitted, "### v3")
    assert "red fox" in rig.discord.text_of(v3) and not submitted.ephemeral


async def test_copy_shows_the_bare_prompt_privately(rig: Rig) -> None:
    await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    _, message, _ = await rig.start_prompt(alice, IDEA, V1)
    copy = button(message, "copy")
    click = await rig.discord.click(bob, int(message["id"]), copy)
    response = await click.wait_response()
    assert response["data"]["flags"] & EPHEMERAL
    assert response["data"]["content"] == f"```\n{V1}\n```"


async def test_missing_thread_permission_is_explained(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.discord.fail_next(
        "POST", r"/channels/\d+/messages/\d+/threads", 403, code=50013, message="Missing Permissions"
    )
    rig.openai.script_chat(V1)
    interaction = await rig.discord.slash_command(alice, "prompt", {"idea": "a beach"})
    [note] = await interaction.wait_followup(1)
    assert "Create Public Threads" in rig.discord.text_of(note)
    assert int(note.get("flags", 0)) & EPHEMERAL
    assert rig.discord.text_of(interaction.original).startswith("### v1")


async def test_dev_guild_gets_the_commands_instead_of_everyone(rig: Rig) -> None:
    rig.overrides["DEV_GUILD_ID"] = str(rig.discord.guild_id)
    await rig.start_bot()
    guild_names = {c["name"] for c in rig.discord.registered_commands[rig.discord.guild_id]}
    assert {"prompt", "imagine"} <= guild_names
    assert not rig.discord.requests_to("PUT", r"/applications/\d+/commands$")


async def test_changed_definitions_are_registered_again(rig: Rig) -> None:
    await rig.start_bot()
    await rig.stop_bot()
    # As if the last registration had been of other definitions (an older Mural).
    with sqlite3.connect(rig.database) as db:
        db.execute("UPDATE meta SET value = 'an older fingerprint' WHERE key LIKE 'commands-fingerprint:%'")
    await rig.start_bot()
    puts = rig.discord.requests_to("PUT", r"/applications/\d+/commands$")
    assert len(puts) == 2
    assert {"prompt", "imagine"} <= {c["name"] for c in rig.discord.registered_commands[None]}


async def test_sync_command_registers_and_exits(rig: Rig) -> None:
    from bot.__main__ import serve

    assert await serve(rig.settings(), sync_only=True) == 0
    assert {"prompt", "imagine"} <= {c["name"] for c in rig.discord.registered_commands[None]}


async def test_legacy_dalle_server_gets_legacy_parameters(rig: Rig) -> None:
    rig.overrides.update({"IMAGE_MODEL": "dall-e-3", "IMAGE_QUALITY": "high", "IMAGE_SIZE": "1792x1024"})
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(V1)
    before = len(rig.discord.requests)
    await rig.discord.slash_command(alice, "imagine", {"idea": "a beach"})
    request, upload = await rig.wait_for_upload(before)
    png_size(upload.data)
    sent = rig.openai.image_requests[0].json
    assert (sent["response_format"], sent["quality"], sent["size"]) == ("b64_json", "hd", "1792x1024")
    assert "revised the prompt" in sent_text(request)


async def test_render_cut_off_by_a_restart_is_reported_with_retry(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    await rig.imagine_hanging_at_openai(alice, "a beach", V1)

    await rig.restart()
    notice = await rig.wait_for_bot_message(rig.discord.channel_id, "interrupted")
    retry = button(notice, "reroll")
    assert rig.discord.buttons_of(notice)[0]["label"] == "Retry"

    before = len(rig.discord.requests)
    await rig.discord.click(alice, int(notice["id"]), retry)
    _, upload = await rig.wait_for_upload(before)
    png_size(upload.data)


async def test_a_rejected_token_stops_with_one_clear_line(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.__main__ import serve

    rig.overrides["DISCORD_TOKEN"] = "not-the-right-token"
    assert await serve(rig.settings(), sync_only=False) == 2
    err = capsys.readouterr().err
    assert "DISCORD_TOKEN was rejected" in err
    assert "not-the-right-token" not in err


async def test_refinement_in_flight_at_a_clean_stop_is_reported_after_the_restart(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, _, thread = await rig.start_prompt(alice, IDEA, V1)
    thread_id = int(thread["id"])
    await rig.refinement_hanging_at_openai(alice, thread_id, "make it night")

    await rig.restart()
    notice = await rig.wait_for_bot_message(thread_id, "I restarted while working on")
    assert "make it night" in rig.discord.text_of(notice)
    await rig.refine(alice, thread_id, "make it night", V2)


async def test_unreachable_discord_stops_with_one_clear_line(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import discord.http

    from bot.__main__ import serve

    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{unused_port()}/api/v10")
    assert await serve(rig.settings(), sync_only=False) == 1
    err = capsys.readouterr().err
    assert "cannot reach Discord" in err and "Traceback" not in err
