"""One way out for every message: versions, pictures and errors reach the member whatever Discord refuses.

Each test drives the real bot through the loopback Discord and OpenAI, breaks one thing the way
Discord or OpenAI does, and checks what the member sees and what was stored or sent.
"""

from __future__ import annotations

import pytest

from bot.core.pricing import DEFAULT_PRICES
from loopback.fake_openai import ImageReply, moderation_blocked, server_error
from loopback.rig import EPHEMERAL, ORIGINAL, Rig, button, buttons, custom_ids, png_size

pytestmark = pytest.mark.asyncio

V1 = "A red fox on a snowy hill at dawn, soft pink light, long shadows, shallow depth of field."
V2 = "The same fox under a full moon, silver light on the snow, deep blue shadows."
IDEA = "a fox in the snow"


async def test_prompt_whose_token_expired_posts_v1_in_the_channel_with_its_thread(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.discord.fail_next("PATCH", ORIGINAL, 404, code=10015, message="Unknown Webhook", times=50)
    rig.openai.script_chat(V1)
    await rig.discord.slash_command(alice, "prompt", {"idea": IDEA})

    v1 = await rig.wait_for_bot_message(rig.discord.channel_id, "### v1")
    assert "snowy hill" in rig.discord.text_of(v1)
    assert any(cid.startswith("mural:gen:") for cid in custom_ids(v1))
    thread = await rig.settled_thread()
    assert int(thread["id"]) == int(v1["id"])
    assert rig.query("SELECT message_id FROM versions") == [(int(v1["id"]),)]


async def test_an_error_after_the_token_expired_still_reaches_the_member(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.discord.fail_next("PATCH", ORIGINAL, 401, code=50027, message="Invalid Webhook Token", times=50)
    rig.openai.script_chat(*[server_error(503)] * 3)
    await rig.discord.slash_command(alice, "prompt", {"idea": IDEA})

    told = await rig.wait_for_bot_message(rig.discord.channel_id, "E-DOWN")
    assert f"<@{alice['id']}>" in rig.discord.text_of(told)
    posted = next(
        r for r in rig.discord.requests_to("POST", r"/channels/\d+/messages$") if "E-DOWN" in str(r.json)
    )
    assert posted.json["allowed_mentions"] == {"parse": []}
    assert rig.query("SELECT COUNT(*) FROM sessions") == [(0,)]


async def test_without_a_thread_a_reply_to_the_version_refines_it(rig: Rig) -> None:
    await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    rig.discord.fail_next(
        "POST", r"/channels/\d+/messages/\d+/threads", 403, code=50013, message="Missing Permissions"
    )
    rig.openai.script_chat(V1)
    prompt = await rig.discord.slash_command(alice, "prompt", {"idea": IDEA})
    v1 = await rig.answer_containing(prompt, "### v1")
    note = await rig.discord.wait_for(
        lambda: next(iter(prompt.followups), None), message="the no-thread note"
    )
    assert "replying to the prompt message" in rig.discord.text_of(note)
    channel = rig.discord.channel_id

    await rig.discord.user_message(bob, channel, "make it purple", reply_to=int(v1["id"]))
    await rig.discord.user_message(alice, channel, "make it night")  # not a reply: just talk
    rig.openai.script_chat(V2)
    answer_to = await rig.discord.user_message(alice, channel, "make it night", reply_to=int(v1["id"]))

    v2 = await rig.wait_for_bot_message(channel, "### v2")
    assert "full moon" in rig.discord.text_of(v2)
    assert int(v2["message_reference"]["message_id"]) == int(answer_to["id"])
    assert len(rig.openai.chat_requests) == 2
    assert "make it night" in rig.openai.chat_requests[-1].json["messages"][-1]["content"]


async def test_a_failed_imagine_keeps_its_prompt_with_copy_and_retry(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(V1)
    rig.openai.script_images(*[server_error(500)] * 3)
    imagine = await rig.discord.slash_command(alice, "imagine", {"idea": IDEA})

    failed = await rig.answer_containing(imagine, "Couldn't render")
    assert "snowy hill" in rig.discord.text_of(failed) and "E-DOWN" in rig.discord.text_of(failed)
    assert sorted(buttons(failed).values()) == ["Copy", "Retry"]

    copy = await rig.discord.click(alice, int(failed["id"]), button(failed, "rcopy"))
    assert V1 in (await copy.wait_response())["data"]["content"]
    before = len(rig.discord.requests)
    retry = await rig.discord.click(alice, int(failed["id"]), button(failed, "reroll"))
    await rig.answer_containing(retry, "**v1**")
    _, upload = await rig.wait_for_upload(before)
    png_size(upload.data)
    assert rig.openai.image_requests[-1].json["prompt"] == V1


async def test_a_refused_imagine_keeps_its_prompt_without_a_pointless_retry(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(V1)
    rig.openai.script_images(moderation_blocked())
    imagine = await rig.discord.slash_command(alice, "imagine", {"idea": IDEA})
    failed = await rig.answer_containing(imagine, "E-SAFETY")
    assert "snowy hill" in rig.discord.text_of(failed)
    assert list(buttons(failed).values()) == ["Rephrase safely", "Copy"], (
        "no pointless Retry; a way out instead"
    )


async def test_a_long_prompt_is_kept_whole_rendered_whole_and_copied_whole(rig: Rig) -> None:
    # About 3,500 characters: more than one Discord message holds.
    long_prompt = "Positive: " + ", ".join(f"detail {n}" for n in range(300)) + "\nNegative: blur, watermark"
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(long_prompt)
    prompt = await rig.discord.slash_command(
        alice, "prompt", {"idea": "a busy market", "target": "stable-diffusion"}
    )
    v1 = await rig.answer_containing(prompt, "### v1")
    # Discord's limit for all the text of a Components v2 message.
    assert len(rig.discord.text_of(v1)) <= 4_000 and "Copy gives the whole prompt" in rig.discord.text_of(v1)
    assert rig.query("SELECT prompt FROM versions") == [(long_prompt,)]
    await rig.settled_thread()

    generate = await rig.discord.click(alice, int(v1["id"]), button(v1, "gen"))
    await generate.wait_response()
    await rig.openai.wait_for_calls("/images/generations")
    assert rig.openai.image_requests[0].json["prompt"] == long_prompt

    copy = await rig.discord.click(alice, int(v1["id"]), button(v1, "copy"))
    response = await copy.wait_response()
    assert response["data"]["flags"] & EPHEMERAL
    (attachment,) = copy.original["attachments"]
    assert rig.discord.attachment_bytes(attachment["url"]).decode() == long_prompt


async def test_every_chat_call_records_its_tokens_and_cost(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, _, thread = await rig.start_prompt(alice, IDEA, V1)
    await rig.refine(alice, int(thread["id"]), "make it night", V2)

    recorded = rig.query(
        "SELECT purpose, session_id, user_id, model, input_tokens, output_tokens, estimated, cost_usd"
        " FROM chat_usage ORDER BY id",
    )
    assert [row[0] for row in recorded] == ["expand", "refine"]
    (session_id,) = rig.query("SELECT id FROM sessions")[0]
    for (purpose, session, user, model, tokens_in, tokens_out, estimated, cost), request in zip(
        recorded, rig.openai.chat_requests, strict=True
    ):
        assert (session, user, model, estimated) == (session_id, int(alice["id"]), "gpt-5.4-mini", 0), purpose
        assert tokens_in > 0 and tokens_out > 0
        assert cost == pytest.approx(
            DEFAULT_PRICES.chat_cost(model, input_tokens=tokens_in, output_tokens=tokens_out)
        )
        assert request.json["model"] == model


async def test_a_token_that_expires_mid_render_finishes_in_the_same_message(rig: Rig) -> None:
    """A long job outlives its 15-minute token: the picture still replaces its progress, via the channel."""
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(V1)
    rig.openai.script_images(ImageReply(delay=1.0, partial_pngs=[]))
    imagine = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox in the snow"})
    progress = await rig.answer_containing(imagine, "Rendering v1")
    rig.discord.fail_next("PATCH", ORIGINAL, 404, code=10015, message="Unknown Webhook", times=50)

    picture = await rig.discord.wait_for(
        lambda: next(
            (
                r
                for r in rig.discord.requests_to("PATCH", rf"/channels/\d+/messages/{progress['id']}$")
                if r.files and 200 <= r.status < 300
            ),
            None,
        ),
        message="the picture edited into the same message through the channel",
    )
    assert picture.path == f"/channels/{rig.discord.channel_id}/messages/{progress['id']}"
    shown = rig.discord.messages[int(progress["id"])]
    assert "**v1** for" in rig.discord.text_of(shown) and rig.discord.attachments_of(shown)
    assert not [m for m in rig.bot_messages_in(rig.discord.channel_id) if m["id"] != progress["id"]]
