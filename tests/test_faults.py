"""Faults from OpenAI and from Discord, each through the real bot: what the member sees, what the bot does."""

from __future__ import annotations

import io
import logging
import random

import pytest
from PIL import Image

import loopback.fake_discord as fake_discord_module
from loopback.fake_discord import Permissions
from loopback.fake_openai import (
    ImageReply,
    Reply,
    hang,
    insufficient_quota,
    model_not_found,
    permission_denied,
    rate_limited,
    server_error,
    unauthorized,
)
from loopback.rig import (
    FAST_RETRIES,
    OPENAI_KEY,
    ORIGINAL,
    Rig,
    button,
    custom_ids,
    png_size,
    sent_text,
    unused_port,
)

pytestmark = pytest.mark.asyncio
PROMPT = "A red fox on a snowy hill at dawn, soft pink light, long shadows, shallow depth of field."


async def imagine(rig: Rig, member: dict, idea: str = "a fox in the snow"):
    rig.openai.script_chat(PROMPT)
    return await rig.discord.slash_command(member, "imagine", {"idea": idea})


def edits_of(rig: Rig, interaction) -> list[str]:
    """What each edit of the interaction's answer showed."""
    return [sent_text(r) for r in rig.discord.requests_to("PATCH", ORIGINAL) if interaction.token in r.path]


def retry_of(rig: Rig, message: dict) -> str:
    """The Retry button of a failure card: it renders the same job again."""
    (retry,) = (b for b in rig.discord.buttons_of(message) if b["label"] == "Retry")
    assert retry["custom_id"].startswith("mural:reroll:")
    return retry["custom_id"]


def just_before(rig: Rig, message: dict) -> dict:
    """The bot's message right before `message` in its channel."""
    earlier = [
        m for m in rig.bot_messages_in(int(message["channel_id"])) if int(m["id"]) < int(message["id"])
    ]
    return earlier[-1]


def render_rows(rig: Rig) -> list[tuple]:
    return rig.query("SELECT status, error_code FROM renders ORDER BY id")


# -- OpenAI ------------------------------------------------------------------------------------


async def test_rate_limit_shows_retrying_then_fails_with_retry(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    # A second apart: progress edits go out at most once a second, so a shorter wait hides "retrying".
    rig.openai.script_images(*(rate_limited(retry_after=1.0) for _ in range(FAST_RETRIES.attempts)))
    interaction = await imagine(rig, alice)

    answer = await rig.answer_containing(interaction, "E-BUSY")
    assert any("retrying" in text for text in edits_of(rig, interaction))
    assert rig.openai.calls("/images/generations") == FAST_RETRIES.attempts
    assert retry_of(rig, answer), "a Retry button"
    assert render_rows(rig) == [("failed", "E-BUSY")]


async def test_rate_limit_then_success_delivers_the_picture(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_images(rate_limited(retry_after=0.1))
    before = len(rig.discord.requests)
    await imagine(rig, alice)
    _, upload = await rig.wait_for_upload(before)
    png_size(upload.data)
    assert rig.openai.calls("/images/generations") == 2


async def test_out_of_credit_is_sent_once_and_logged_once(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_images(insufficient_quota(), insufficient_quota())
    caplog.set_level(logging.INFO)

    first = await imagine(rig, alice)
    await rig.answer_containing(first, "out of OpenAI credit; the admins have been told")
    second = await imagine(rig, alice, "a second fox")
    await rig.answer_containing(second, "E-CREDIT")

    assert rig.openai.calls("/images/generations") == 2, "one request per command, never retried"
    operator_errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR and "insufficient_quota" in r.getMessage()
    ]
    assert len(operator_errors) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retried_then_fail_with_retry(rig: Rig, status: int) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_images(*(server_error(status) for _ in range(FAST_RETRIES.attempts)))
    interaction = await imagine(rig, alice)
    answer = await rig.answer_containing(interaction, "E-DOWN")
    assert rig.openai.calls("/images/generations") == FAST_RETRIES.attempts
    assert retry_of(rig, answer)


async def test_a_passing_server_error_goes_unnoticed(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_images(server_error(502))
    before = len(rig.discord.requests)
    interaction = await imagine(rig, alice)
    _, upload = await rig.wait_for_upload(before)
    png_size(upload.data)
    assert not any("E-" in text for text in edits_of(rig, interaction))


async def test_hanging_image_call_times_out_and_marks_the_job_failed(rig: Rig) -> None:
    rig.overrides["IMAGE_TIMEOUT"] = "1"
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_images(hang())
    interaction = await imagine(rig, alice)
    await rig.answer_containing(interaction, "E-TIMEOUT")
    assert render_rows(rig) == [("failed", "E-TIMEOUT")]


async def test_hanging_chat_call_times_out(rig: Rig) -> None:
    rig.overrides["CHAT_TIMEOUT"] = "1"
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(hang())
    interaction = await rig.discord.slash_command(alice, "prompt", {"idea": "a fox"})
    await rig.answer_containing(interaction, "E-TIMEOUT")


async def test_unreachable_image_service_and_the_bot_keeps_serving(rig: Rig) -> None:
    rig.overrides.update(
        {"OPENAI_BASE_URL": f"http://127.0.0.1:{unused_port()}/v1", "CHAT_BASE_URL": rig.openai.base_url}
    )
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    interaction = await imagine(rig, alice)
    await rig.answer_containing(interaction, "moderation service cannot be reached")

    # Moderation runs on the unreachable server too: never silently skipped, it fails like an outage.
    refused = await rig.discord.slash_command(alice, "prompt", {"idea": "a fox"})
    await rig.answer_containing(refused, "E-DOWN")
    assert rig.openai.calls("/chat/completions") == 0

    boss = rig.discord.add_member("boss", permissions=Permissions.EVERYONE_DEFAULT | Permissions.MANAGE_GUILD)
    await (await rig.discord.slash_command(boss, "settings", {"moderation": "off"})).wait_response()
    rig.openai.script_chat(PROMPT)
    prompt = await rig.discord.slash_command(alice, "prompt", {"idea": "a fox"})
    await rig.answer_containing(prompt, "### v1")


@pytest.mark.parametrize(
    "fault",
    [unauthorized(), permission_denied(), model_not_found("gpt-image-1")],
    ids=["401", "403", "404-model"],
)
async def test_operator_problems_are_explained_and_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture, fault
) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_images(fault)
    caplog.set_level(logging.INFO)
    interaction = await imagine(rig, alice)
    await rig.answer_containing(interaction, "misconfigured")
    await rig.answer_containing(interaction, "admins have been told")

    [logged] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Operator action needed" in logged
    if fault.status == 404:
        assert "gpt-image-2" in logged and "IMAGE_MODEL" in logged
    assert OPENAI_KEY not in caplog.text


# -- Discord -----------------------------------------------------------------------------------


async def test_gateway_drop_mid_session_loses_nothing(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, message, thread = await rig.start_prompt(alice, "a fox", PROMPT)
    rig.openai.script_images(ImageReply(delay=1.0))
    before = len(rig.discord.requests)
    generate = button(message, "gen")
    await rig.discord.click(alice, int(message["id"]), generate)
    await rig.openai.wait_for_calls("/images/generations", 1)

    await rig.discord.drop_gateway()
    _, upload = await rig.wait_for_upload(before, within=15)
    png_size(upload.data)
    await rig.discord.wait_for(
        lambda: rig.bot.is_ready() and rig.discord.resume_count >= 1, 15, message="the bot to resume"
    )

    rig.openai.script_chat("A fox at night.")
    await rig.discord.user_message(alice, int(thread["id"]), "make it night")
    await rig.wait_for_bot_message(int(thread["id"]), "### v2", within=15)
    assert render_rows(rig) == [("done", None)]


@pytest.mark.parametrize(
    ("status", "code"), [(404, 10015), (401, 50027)], ids=["unknown-webhook", "invalid-token"]
)
async def test_expired_interaction_token_posts_to_the_channel(rig: Rig, status: int, code: int) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.discord.fail_next("PATCH", ORIGINAL, status, code=code, message="Unknown Webhook", times=50)
    before = len(rig.discord.requests)
    await imagine(rig, alice)
    request, upload = await rig.wait_for_upload(before)
    png_size(upload.data)
    # The job goes on in a message of the bot's own in the channel: progress first, then the picture.
    channel = rig.discord.channel_id
    (shown,) = (m for m in rig.bot_messages_in(channel) if rig.discord.attachments_of(m))
    (created,) = (
        r
        for r in rig.discord.requests[before:]
        if (r.method, r.path, r.status) == ("POST", f"/channels/{channel}/messages", 200)
    )
    assert not created.files and "v1" in sent_text(created)
    assert (request.method, request.path) == ("PATCH", f"/channels/{channel}/messages/{shown['id']}")
    assert "**v1**" in rig.discord.text_of(shown)


def revoke(rig: Rig, permission: int) -> None:
    """Take a permission from the bot (its role and @everyone); members keep theirs through their own role."""
    rig.discord.set_everyone_permissions(Permissions.EVERYONE_DEFAULT & ~permission)
    rig.discord.set_bot_permissions(Permissions.BOT_DEFAULT & ~permission)


async def test_no_thread_posting_permission_falls_back_to_the_channel(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice", permissions=Permissions.EVERYONE_DEFAULT)
    _, _, thread = await rig.start_prompt(alice, "a fox", PROMPT)
    revoke(rig, Permissions.SEND_MESSAGES_IN_THREADS)

    rig.openai.script_chat("A fox at night.")
    await rig.discord.user_message(alice, int(thread["id"]), "make it night")
    fallback = await rig.wait_for_bot_message(rig.discord.channel_id, "### v2")
    assert any(cid.endswith(":2") for cid in custom_ids(fallback))
    # Said just before, on its own: a card carries no text beside it.
    note = just_before(rig, fallback)
    assert "Send Messages in Threads" in rig.discord.text_of(note) and not note.get("components")


async def test_no_attach_permission_in_the_thread_is_explained(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice", permissions=Permissions.EVERYONE_DEFAULT)
    _, message, thread = await rig.start_prompt(alice, "a fox", PROMPT)
    thread_id = int(thread["id"])
    revoke(rig, Permissions.ATTACH_FILES)
    # The picture is uploaded by editing the message that showed the progress; Discord refuses the upload.
    # (No previews, so that edit is the first one.)
    rig.openai.script_images(ImageReply(partial_pngs=[]))
    rig.discord.fail_next(
        "PATCH", rf"/channels/{thread_id}/messages/\d+$", 403, code=50013, message="Missing Permissions"
    )

    generate = button(message, "gen")
    click = await rig.discord.click(alice, int(message["id"]), generate)
    pointer = await rig.answer_containing(click, "the thread says why")
    assert click.ephemeral
    explained = int(rig.discord.text_of(pointer).rsplit("/", 1)[1])
    assert "Attach Files" in rig.discord.text_of(explained)
    assert [b["label"] for b in rig.discord.buttons_of(explained)] == ["Retry"]
    assert rig.discord.buttons_of(explained)[0]["custom_id"].startswith("mural:reroll:")
    assert not rig.discord.attachments_of(explained)
    assert rig.discord.messages[explained]["channel_id"] == str(thread_id)


def _noisy_png(width: int = 400, height: int = 400) -> bytes:
    rng = random.Random(7)
    picture = Image.frombytes(
        "RGB", (width, height), bytes(rng.getrandbits(8) for _ in range(width * height * 3))
    )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_picture_over_the_upload_limit_is_recompressed(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_discord_module, "ATTACHMENT_SIZE_LIMIT", 150_000)
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    big = _noisy_png()
    assert len(big) > 150_000
    rig.openai.script_images(ImageReply(png=big))
    before = len(rig.discord.requests)
    await imagine(rig, alice)
    request, upload = await rig.wait_for_upload(before)
    assert len(upload.data) <= 150_000
    assert upload.filename.endswith((".webp", ".jpg"))
    assert "Compressed" in sent_text(request)


async def test_413_from_discord_shrinks_and_retries(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    big = _noisy_png()
    # No previews: the only upload is the picture.
    rig.openai.script_images(ImageReply(png=big, delay=0.5, partial_pngs=[]))
    before = len(rig.discord.requests)
    interaction = await imagine(rig, alice)
    await rig.openai.wait_for_calls("/images/generations", 1)
    # Progress edits are done by now; the next edit of the placeholder is the upload.
    await rig.discord.wait_for(
        lambda: any("Rendering" in text for text in edits_of(rig, interaction)), message="a progress edit"
    )
    rig.discord.fail_next("PATCH", ORIGINAL + "$", 413, code=40005, message="Request entity too large")
    await rig.discord.wait_for(
        lambda: interaction.original and rig.discord.attachments_of(interaction.original),
        message="the picture",
    )
    uploads = [r for r in rig.discord.requests[before:] if r.files]
    assert [r.status for r in uploads] == [413, 200]
    assert len(uploads[1].files[0].data) < len(big)


async def _session_locked_while_the_model_works(rig: Rig) -> tuple[dict, int]:
    """A moderator archives and locks the thread between the owner's message and the bot's answer."""
    alice = rig.discord.add_member("alice")
    _, _, thread = await rig.start_prompt(alice, "a fox", PROMPT)
    thread_id = int(thread["id"])
    rig.openai.script_chat(Reply(content="A fox at night.", delay=0.5))
    await rig.discord.user_message(alice, thread_id, "make it night")
    await rig.openai.wait_for_calls("/chat/completions", 2)
    rig.discord.channels[thread_id]["thread_metadata"].update(archived=True, locked=True)
    return alice, thread_id


async def test_locked_thread_is_reopened_when_the_bot_may(rig: Rig) -> None:
    await rig.start_bot()
    _, thread_id = await _session_locked_while_the_model_works(rig)
    await rig.wait_for_bot_message(thread_id, "### v2")
    assert rig.discord.channels[thread_id]["thread_metadata"]["archived"] is False


async def test_locked_thread_is_answered_in_the_channel_when_the_bot_may_not_reopen(rig: Rig) -> None:
    await rig.start_bot()
    rig.discord.set_bot_permissions(Permissions.BOT_DEFAULT & ~Permissions.MANAGE_THREADS)
    _, thread_id = await _session_locked_while_the_model_works(rig)
    answer = await rig.wait_for_bot_message(rig.discord.channel_id, "### v2")
    assert "archived" in rig.discord.text_of(just_before(rig, answer))
    assert rig.discord.channels[thread_id]["thread_metadata"]["archived"] is True


async def test_archived_thread_reopens_when_the_owner_writes(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, _, thread = await rig.start_prompt(alice, "a fox", PROMPT)
    thread_id = int(thread["id"])
    rig.discord.channels[thread_id]["thread_metadata"]["archived"] = True
    await rig.refine(alice, thread_id, "make it night", "A fox at night.")
