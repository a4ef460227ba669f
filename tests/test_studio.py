"""The studio: talk to the prompt, then to the picture — each behaviour as a member meets it.

Every test drives the real bot through the loopback Discord and OpenAI, finds things the way a
member would (a button labelled `Edit`, a card that says `v3`) and checks what reached OpenAI.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from loopback.fake_openai import ImageReply, make_png, moderation_blocked
from loopback.rig import EPHEMERAL, Rig

pytestmark = pytest.mark.asyncio

V1 = "A red fox on a snowy hill at dawn, soft pink light, long shadows, shallow depth of field."
V2 = "The same fox under a full moon, silver light on the snow, deep blue shadows."
V3 = "A red fox at dawn on the snowy hill, now with a small wooden cabin far behind it."
EDIT = "Make the sky a deep stormy grey; keep the fox, the hill and the light on the snow as they are."
THREAD_HINT = "Reply here"


def text(rig: Rig, message: dict[str, Any]) -> str:
    return rig.discord.text_of(message)


def labelled(rig: Rig, message: dict[str, Any], label: str) -> dict[str, Any]:
    """The button a member would press by its label."""
    found = [b for b in rig.discord.buttons_of(message) if b["label"] == label]
    assert found, f"no button labelled {label!r}: {[b['label'] for b in rig.discord.buttons_of(message)]}"
    return found[0]


def labels(rig: Rig, message: dict[str, Any]) -> list[str]:
    return [b["label"] for b in rig.discord.buttons_of(message)]


def picture_bytes(rig: Rig, message: dict[str, Any]) -> list[bytes]:
    """The pictures a card shows, as uploaded."""
    return [rig.discord.attachment_bytes(a["url"]) for a in rig.discord.attachments_of(message)]


async def press(rig: Rig, member: dict[str, Any], message: dict[str, Any], label: str):
    return await rig.discord.click(member, int(message["id"]), labelled(rig, message, label)["custom_id"])


async def prompt_session(rig: Rig, member: dict[str, Any], **options: Any) -> tuple[dict, int]:
    """/prompt to the end: the v1 card and the thread id."""
    rig.openai.script_chat(V1)
    interaction = await rig.discord.slash_command(member, "prompt", {"idea": "a fox in the snow", **options})
    v1 = await rig.answer_containing(interaction, "### v1")
    thread = await rig.discord.wait_for(lambda: next(iter(rig.threads()), None), message="the thread")
    await rig.wait_for_bot_message(int(thread["id"]), THREAD_HINT)
    return v1, int(thread["id"])


async def generated_picture(rig: Rig, member: dict[str, Any], v1: dict[str, Any], thread_id: int) -> dict:
    """Generate on v1: the picture card in the thread, once it shows its buttons."""
    await press(rig, member, v1, "Generate")
    return await rig.discord.wait_for(
        lambda: next(
            (
                m
                for m in rig.bot_messages_in(thread_id)
                if "Edit" in labels(rig, m) and "**v1**" in text(rig, m)
            ),
            None,
        ),
        message="the picture card in the thread",
    )


def distinct_png(colour: tuple[int, int, int]) -> bytes:
    return make_png(32, 32, colour)


# -- version cards, Undo and branches -----------------------------------------------------------------


async def test_a_version_card_shows_badge_prompt_details_and_its_buttons(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    v1, _ = await prompt_session(rig, alice, style="watercolor", aspect="landscape")

    shown = text(rig, v1)
    assert shown.startswith("### v1") and "snowy hill" in shown
    assert "OpenAI images · watercolor · landscape" in shown
    assert labels(rig, v1) == ["Generate", "Refine", "Undo", "Copy"]
    assert labelled(rig, v1, "Undo")["disabled"] is True
    assert v1.get("content") in (None, "")


async def test_undo_then_refine_branches_from_the_earlier_version(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, thread_id = await prompt_session(rig, alice)
    rig.openai.script_chat(V2)
    await rig.discord.user_message(alice, thread_id, "make it night")
    v2 = await rig.wait_for_bot_message(thread_id, "### v2")

    undo = await press(rig, alice, v2, "Undo")
    told = await undo.wait_response()
    assert (
        "Back to v1" in told["data"]["content"]
        and "next message continues from it" in told["data"]["content"]
    )

    rig.openai.script_chat(V3)
    await rig.discord.user_message(alice, thread_id, "add a cabin far behind")
    v3 = await rig.wait_for_bot_message(thread_id, "### v3 (from v1)")
    assert "wooden cabin" in text(rig, v3)
    sent = rig.openai.chat_requests[-1].json["messages"][-1]["content"]
    assert f"Current prompt:\n{V1}" in sent and V2 not in sent
    assert rig.query("SELECT number, parent FROM versions ORDER BY number") == [(1, None), (2, 1), (3, 1)]


async def test_undo_is_for_the_owner_and_only_from_the_current_version(rig: Rig) -> None:
    await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    _, thread_id = await prompt_session(rig, alice)
    rig.openai.script_chat(V2)
    await rig.discord.user_message(alice, thread_id, "make it night")
    v2 = await rig.wait_for_bot_message(thread_id, "### v2")

    refused = await (await press(rig, bob, v2, "Undo")).wait_response()
    assert refused["data"]["flags"] & EPHEMERAL and "E-NOT-YOURS" in refused["data"]["content"]
    await (await press(rig, alice, v2, "Undo")).wait_response()
    again = await (await press(rig, alice, v2, "Undo")).wait_response()
    assert again["data"]["flags"] & EPHEMERAL and "not the current version" in again["data"]["content"]
    assert rig.query("SELECT head_version FROM sessions") == [(1,)]
    assert rig.query("SELECT COUNT(*) FROM versions") == [(2,)]


# -- pictures: cards, streaming, edits ---------------------------------------------------------------


async def test_generate_streams_previews_into_the_message_that_becomes_the_picture(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    v1, thread_id = await prompt_session(rig, alice)
    first, second, final = distinct_png((10, 20, 30)), distinct_png((40, 50, 60)), distinct_png((200, 10, 10))
    rig.openai.script_images(ImageReply(png=final, partial_pngs=[first, second], partial_delay=0.6))

    picture = await generated_picture(rig, alice, v1, thread_id)
    sent = rig.openai.image_requests[-1]
    assert sent.form.get("stream") == "true" or sent.json.get("stream") is True
    edits = rig.discord.requests_to("PATCH", rf"/channels/{thread_id}/messages/{picture['id']}$")
    shown = [request.files[0].data for request in edits if request.files]
    assert first in shown or second in shown, "a preview was shown in the message before the picture"
    assert picture_bytes(rig, picture) == [final]
    assert labels(rig, picture) == ["Edit", "Reroll", "Copy"]
    assert "**v1** for" in text(rig, picture) and "gpt-image-2 ·" in text(rig, picture)


async def test_edit_sends_that_picture_to_the_edit_endpoint_and_posts_a_new_card(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    v1, thread_id = await prompt_session(rig, alice)
    original, edited = distinct_png((0, 120, 0)), distinct_png((90, 90, 90))
    rig.openai.script_images(ImageReply(png=original))
    picture = await generated_picture(rig, alice, v1, thread_id)

    opened = await press(rig, alice, picture, "Edit")
    await opened.wait_response()
    assert opened.modal["title"] == "Edit the picture"
    rig.openai.script_chat(EDIT)
    rig.openai.script_images(ImageReply(png=edited))
    submitted = await rig.discord.submit_modal(
        alice, opened.modal["custom_id"], {"instruction": "darker sky"}
    )
    result = await rig.answer_containing(submitted, "Edit of v1")

    assert rig.openai.edit_inputs() == [original]
    assert rig.openai.edit_requests[-1].form["prompt"] == EDIT
    assert "darker sky" in rig.openai.chat_requests[-1].json["messages"][-1]["content"]
    assert V1 in rig.openai.chat_requests[-1].json["messages"][-1]["content"]
    assert picture_bytes(rig, result) == [edited]
    assert labels(rig, result) == ["Edit", "Reroll", "Copy"]
    assert rig.query("SELECT kind, source_index, instruction FROM renders ORDER BY id") == [
        ("generate", None, None),
        ("edit", 1, "darker sky"),
    ]


async def test_edits_chain_and_a_reply_to_a_picture_edits_it(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    v1, thread_id = await prompt_session(rig, alice)
    first, second, third = distinct_png((1, 1, 200)), distinct_png((2, 200, 2)), distinct_png((200, 2, 2))
    rig.openai.script_images(ImageReply(png=first))
    picture = await generated_picture(rig, alice, v1, thread_id)

    rig.openai.script_chat(EDIT)
    rig.openai.script_images(ImageReply(png=second))
    await rig.discord.user_message(alice, thread_id, "darker sky", reply_to=int(picture["id"]))
    edited = await rig.wait_for_bot_message(thread_id, "Edit of v1")
    assert rig.openai.edit_inputs() == [first]
    assert picture_bytes(rig, edited) == [second]

    rig.openai.script_chat("Add falling snow; keep everything else.")
    rig.openai.script_images(ImageReply(png=third))
    await rig.discord.user_message(alice, thread_id, "add snow", reply_to=int(edited["id"]))
    await rig.discord.wait_for(lambda: len(rig.openai.edit_requests) == 2, message="the second edit")
    assert rig.openai.edit_inputs() == [second]
    assert rig.query("SELECT COUNT(*) FROM versions") == [(1,)], "replies to pictures never refine the prompt"


async def test_count_posts_several_pictures_and_edit_2_edits_the_second(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    pngs = [distinct_png((50 * n, 10, 10)) for n in range(1, 4)]
    rig.openai.script_chat(V1)
    rig.openai.script_images(ImageReply(png=pngs))
    imagine = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "count": 3})
    card = await rig.answer_containing(imagine, "snowy hill")
    await rig.discord.wait_for(
        lambda: "Edit 3" in labels(rig, imagine.original), message="the three pictures"
    )
    card = imagine.original

    assert rig.openai.image_requests[0].json["n"] == 3
    assert picture_bytes(rig, card) == pngs
    assert labels(rig, card)[:3] == ["Edit 1", "Edit 2", "Edit 3"]
    opened = await press(rig, alice, card, "Edit 2")
    await opened.wait_response()
    rig.openai.script_chat(EDIT)
    await rig.discord.submit_modal(alice, opened.modal["custom_id"], {"instruction": "darker"})
    await rig.discord.wait_for(lambda: rig.openai.edit_requests, message="the edit request")
    assert rig.openai.edit_inputs() == [pngs[1]]

    await rig.discord.user_message(alice, rig.discord.channel_id, "darker", reply_to=int(card["id"]))
    told = await rig.wait_for_bot_message(rig.discord.channel_id, "press **Edit 1**")
    assert "E-INPUT" in text(rig, told) and len(rig.openai.edit_requests) == 1


async def test_a_refusal_inside_the_stream_reaches_the_member(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(V1)
    rig.openai.script_images(ImageReply(stream_error=moderation_blocked()))
    imagine = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox"})
    failed = await rig.answer_containing(imagine, "E-SAFETY")
    assert "snowy hill" in text(rig, failed)
    assert labels(rig, failed) == ["Rephrase safely", "Copy"]


# -- review, raw, aspect, Refine on an /imagine picture ----------------------------------------------


async def test_review_spends_nothing_on_images_until_generate(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(V1)
    imagine = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "review": True})
    card = await rig.answer_containing(imagine, "### v1")
    assert labels(rig, card) == ["Generate", "Refine", "Undo", "Copy"]
    assert rig.openai.calls("/images/generations") == 0

    await press(rig, alice, card, "Generate")
    await rig.openai.wait_for_calls("/images/generations")
    assert rig.openai.image_requests[0].json["prompt"] == V1


async def test_raw_renders_the_idea_verbatim_without_the_chat_model(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    idea = "a fox, 35mm, f/1.4, --no text"
    await rig.discord.slash_command(alice, "imagine", {"idea": idea, "raw": True})
    await rig.openai.wait_for_calls("/images/generations")
    assert rig.openai.image_requests[0].json["prompt"] == idea
    assert rig.openai.calls("/chat/completions") == 0


async def test_aspect_is_remembered_and_mapped_to_a_size_the_model_draws(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    v1, thread_id = await prompt_session(rig, alice, aspect="portrait")
    await generated_picture(rig, alice, v1, thread_id)
    assert rig.openai.image_requests[0].json["size"] == "1024x1536"
    assert rig.query("SELECT aspect FROM sessions") == [("portrait",)]


async def test_refine_on_an_imagine_picture_opens_a_thread_with_its_prompt_as_v1(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(V1)
    imagine = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox"})
    await rig.discord.wait_for(lambda: imagine.original and "Refine" in labels(rig, imagine.original))
    card = imagine.original
    assert labels(rig, card) == ["Edit", "Reroll", "Copy", "Refine"]

    opened = await press(rig, alice, card, "Refine")
    pointer = await rig.answer_containing(opened, "session is in")
    assert opened.ephemeral
    thread = await rig.discord.wait_for(lambda: next(iter(rig.threads()), None), message="the thread")
    assert int(thread["id"]) == int(card["id"]), "the thread opens on the picture"
    v1 = await rig.wait_for_bot_message(int(thread["id"]), "### v1")
    assert "snowy hill" in text(rig, v1) and str(thread["id"]) in rig.discord.text_of(pointer)

    rig.openai.script_chat(V2)
    await rig.discord.user_message(alice, int(thread["id"]), "make it night")
    await rig.wait_for_bot_message(int(thread["id"]), "### v2")


# -- your own pictures --------------------------------------------------------------------------------


def encoded(image_format: str, colour: tuple[int, int, int] = (30, 140, 220)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format=image_format)
    return buffer.getvalue()


async def test_an_imagine_reference_reaches_the_edit_endpoint(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    reference = encoded("JPEG")
    rig.openai.script_chat(V1)
    await rig.discord.slash_command(
        alice, "imagine", {"idea": "my dog as a knight", "reference": ("dog.jpg", reference)}
    )
    await rig.discord.wait_for(lambda: rig.openai.edit_requests, message="the edit request")
    assert rig.openai.edit_inputs() == [reference]
    assert rig.openai.edit_requests[0].form["prompt"] == V1
    assert rig.openai.calls("/images/generations") == 0


async def test_a_prompt_reference_is_remembered_for_every_generate(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    reference = encoded("PNG")
    v1, thread_id = await prompt_session(rig, alice, reference=("me.png", reference))
    await generated_picture(rig, alice, v1, thread_id)
    await rig.restart()
    await press(rig, alice, v1, "Generate")
    await rig.discord.wait_for(
        lambda: len(rig.openai.edit_requests) == 2, message="two renders from the reference"
    )
    assert [rig.openai.edit_inputs(request) for request in rig.openai.edit_requests] == [
        [reference],
        [reference],
    ]


@pytest.mark.parametrize(
    ("filename", "data", "reason"),
    [
        ("notes.txt", b"just words, not a picture", "is not a picture"),
        ("cat.gif", encoded("GIF"), "is a GIF"),
        ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "cannot be read"),
    ],
    ids=["not-an-image", "unsupported-type", "unreadable"],
)
async def test_bad_references_are_refused_privately_before_anything_is_spent(
    rig: Rig, filename: str, data: bytes, reason: str
) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    for command in ("imagine", "prompt"):
        refused = await rig.discord.slash_command(
            alice, command, {"idea": "a fox", "reference": (filename, data)}
        )
        answer = await refused.wait_response()
        assert answer["data"]["flags"] & EPHEMERAL and reason in answer["data"]["content"]
    assert rig.openai.requests == []
    assert rig.query("SELECT COUNT(*) FROM sessions") == [(0,)]


async def test_a_reference_over_the_image_api_limit_is_refused_before_download(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.core.picture_files.MAX_REFERENCE_BYTES", 1_000)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    refused = await rig.discord.slash_command(
        alice, "imagine", {"idea": "a fox", "reference": ("big.png", encoded("PNG") + b"\x00" * 2_000)}
    )
    answer = await refused.wait_response()
    assert (
        answer["data"]["flags"] & EPHEMERAL
        and "the image service takes pictures under" in answer["data"]["content"]
    )
    assert rig.openai.requests == []


async def test_edit_with_mural_changes_the_picture_on_any_message(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    photo = encoded("PNG", (250, 200, 10))
    posted = await rig.discord.user_message(
        alice, rig.discord.channel_id, "look", files={"sunflower.png": photo}
    )

    menu = await rig.discord.message_command(alice, "Edit with Mural", int(posted["id"]))
    await menu.wait_response()
    assert menu.modal["title"] == "Edit with Mural"
    edited = distinct_png((5, 5, 5))
    rig.openai.script_images(ImageReply(png=edited))
    submitted = await rig.discord.submit_modal(
        alice, menu.modal["custom_id"], {"instruction": "make it a watercolour"}
    )
    result = await rig.discord.wait_for(
        lambda: submitted.original and rig.discord.attachments_of(submitted.original) and submitted.original,
        message="the edited picture",
    )
    assert rig.openai.edit_inputs() == [photo]
    assert rig.openai.edit_requests[0].form["prompt"] == "make it a watercolour"
    assert picture_bytes(rig, result) == [edited]
    assert not submitted.ephemeral


async def test_edit_with_mural_on_a_message_without_a_picture_says_so(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    posted = await rig.discord.user_message(alice, rig.discord.channel_id, "no picture here")
    menu = await rig.discord.message_command(alice, "Edit with Mural", int(posted["id"]))
    answer = await menu.wait_response()
    assert answer["data"]["flags"] & EPHEMERAL and "has no picture" in answer["data"]["content"]


# -- /describe ----------------------------------------------------------------------------------------


async def test_describe_sends_the_picture_to_the_vision_model_and_starts_a_session(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    picture = encoded("WEBP")
    rig.openai.script_chat(V1)
    describe = await rig.discord.slash_command(alice, "describe", {"image": ("lake.webp", picture)})
    v1 = await rig.answer_containing(describe, "### v1")
    assert "snowy hill" in text(rig, v1)
    assert rig.openai.chat_image_inputs() == [picture]
    thread = await rig.discord.wait_for(lambda: next(iter(rig.threads()), None), message="the thread")
    await rig.wait_for_bot_message(int(thread["id"]), THREAD_HINT)
    assert rig.query("SELECT purpose FROM chat_usage") == [("describe",)]


async def test_describe_without_a_vision_model_says_so_and_names_the_setting(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.openai.vision_models = {"gpt-5.4-vision"}
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    describe = await rig.discord.slash_command(alice, "describe", {"image": ("lake.png", encoded("PNG"))})
    answer = await rig.answer_containing(describe, "E-VISION")
    assert "can't read pictures" in text(rig, answer)
    assert any("VISION_MODEL" in record.getMessage() for record in caplog.records)
    assert rig.query("SELECT COUNT(*) FROM sessions") == [(0,)]


# -- /history -----------------------------------------------------------------------------------------


async def test_history_lists_your_sessions_and_reposts_one_with_working_buttons(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, thread_id = await prompt_session(rig, alice)
    history = await rig.discord.slash_command(alice, "history")
    listed = await history.wait_response()
    assert listed["data"]["flags"] & EPHEMERAL
    card = history.original
    assert "a fox in the snow" in text(rig, card) and "1 version" in text(rig, card)
    assert f"/{thread_id}" in text(rig, card)

    select = next(c for c in rig.discord._walk_components(card["components"]) if c.get("type") == 3)
    session_id = rig.query("SELECT id FROM sessions")[0][0]
    picked = await rig.discord.click(alice, int(card["id"]), select["custom_id"], values=[str(session_id)])
    reposted = await rig.answer_containing(picked, "### v1")
    assert not picked.ephemeral
    assert labels(rig, reposted) == ["Generate", "Refine", "Undo", "Copy"]
    await press(rig, alice, reposted, "Generate")
    await rig.openai.wait_for_calls("/images/generations")


# -- restart-proof and owner-only ---------------------------------------------------------------------


@pytest.mark.parametrize("label", ["Edit", "Reroll", "Undo"])
async def test_new_buttons_work_after_a_restart_and_refuse_others_privately(rig: Rig, label: str) -> None:
    await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    v1, thread_id = await prompt_session(rig, alice)
    rig.openai.script_chat(V2)
    await rig.discord.user_message(alice, thread_id, "make it night")
    v2 = await rig.wait_for_bot_message(thread_id, "### v2")
    picture = await generated_picture(rig, alice, v1, thread_id)
    target = v2 if label == "Undo" else picture
    await rig.restart()

    refused = await (await press(rig, bob, target, label)).wait_response()
    assert refused["data"]["flags"] & EPHEMERAL and "E-NOT-YOURS" in refused["data"]["content"]
    accepted = await (await press(rig, alice, target, label)).wait_response()
    assert accepted["type"] in (4, 5, 9), accepted


async def test_refine_on_an_imagine_picture_after_a_restart_is_the_owners_alone(rig: Rig) -> None:
    await rig.start_bot()
    alice, bob = rig.discord.add_member("alice"), rig.discord.add_member("bob")
    rig.openai.script_chat(V1)
    imagine = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox"})
    await rig.discord.wait_for(lambda: imagine.original and "Refine" in labels(rig, imagine.original))
    card = imagine.original
    await rig.restart()

    refused = await (await press(rig, bob, card, "Refine")).wait_response()
    assert refused["data"]["flags"] & EPHEMERAL and "E-NOT-YOURS" in refused["data"]["content"]
    assert rig.threads() == []
    opened = await press(rig, alice, card, "Refine")
    await rig.answer_containing(opened, "session is in")
    assert len(rig.threads()) == 1
