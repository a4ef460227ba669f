"""Guardrails an admin relies on, checked through the real bot and the loopback fakes."""

from __future__ import annotations

import hashlib

import pytest

from bot.core.pricing import DEFAULT_PRICES
from loopback.fake_discord import Permissions
from loopback.fake_openai import ImageReply, Reply, moderation_blocked
from loopback.rig import EPHEMERAL, Rig

pytestmark = pytest.mark.asyncio

V1 = "A red fox on a snowy hill at dawn, soft pink light, long shadows, shallow depth of field."
V2 = "The same fox under a full moon, silver light on the snow, deep blue shadows."


async def test_openai_gets_a_salted_identifier_never_the_member_id_and_the_same_after_a_restart(
    rig: Rig,
) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, v1, thread = await rig.start_prompt(alice, "a fox in the snow", V1)
    generate = next(b for b in rig.discord.buttons_of(v1) if b["label"] == "Generate")
    await rig.discord.click(alice, int(v1["id"]), generate["custom_id"])
    await rig.openai.wait_for_calls("/images/generations")
    await rig.restart()
    await rig.refine(alice, int(thread["id"]), "make it night", V2)

    sent = {request.json["safety_identifier"] for request in rig.openai.chat_requests}
    sent |= {request.json["safety_identifier"] for request in rig.openai.image_requests}
    ((salt,),) = rig.query("SELECT value FROM meta WHERE key = 'safety-salt'")
    assert sent == {hashlib.sha256(f"{salt}:{alice['id']}".encode()).hexdigest()}
    assert all(str(alice["id"]) not in identifier for identifier in sent)


async def test_a_configured_salt_is_used_instead_of_a_stored_one(rig: Rig) -> None:
    rig.overrides["SAFETY_SALT"] = "operator-chosen-salt-0123"
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    await rig.start_prompt(alice, "a fox in the snow", V1)
    expected = hashlib.sha256(f"operator-chosen-salt-0123:{alice['id']}".encode()).hexdigest()
    assert rig.openai.chat_requests[0].json["safety_identifier"] == expected
    assert rig.query("SELECT COUNT(*) FROM meta WHERE key = 'safety-salt'") == [(0,)]


async def test_a_render_records_its_usage_and_cost_from_the_price_table(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(V1)
    await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "quality": "high"})
    await rig.discord.wait_for(
        lambda: rig.query("SELECT status FROM renders") == [("done",)], message="the render"
    )

    sent = rig.openai.image_requests[0]
    ((tokens_in, tokens_out, cost, estimated),) = rig.query(
        "SELECT input_tokens, output_tokens, cost_usd, cost_estimated FROM renders"
    )
    assert sent.json["quality"] == "high" and tokens_in > 0 and tokens_out > 0
    assert estimated == 0
    assert cost == pytest.approx(
        DEFAULT_PRICES.token_cost("gpt-image-2", text_input=tokens_in, image_input=0, image_output=tokens_out)
    )


async def test_a_server_without_usage_gets_an_estimate_marked_as_one(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(Reply(content=V1, omit_usage=True))
    rig.openai.script_images(ImageReply(omit_usage=True))
    await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "quality": "low"})
    await rig.discord.wait_for(
        lambda: rig.query("SELECT status FROM renders") == [("done",)], message="the render"
    )

    assert rig.query("SELECT input_tokens, cost_usd, cost_estimated FROM renders") == [
        (None, pytest.approx(0.02), 1)
    ]
    ((estimated, tokens_in, cost),) = rig.query("SELECT estimated, input_tokens, cost_usd FROM chat_usage")
    assert estimated == 1 and tokens_in > 0
    assert cost == pytest.approx(
        DEFAULT_PRICES.chat_cost("gpt-5.4-mini", input_tokens=tokens_in, output_tokens=len(V1) // 4)
    )


# -- /settings ----------------------------------------------------------------------------------------


def admin(rig: Rig) -> dict:
    return rig.discord.add_member(
        "admin", permissions=Permissions.EVERYONE_DEFAULT | Permissions.MANAGE_GUILD
    )


def role_of(rig: Rig, member: dict) -> int:
    return int(rig.discord.members[int(member["id"])]["roles"][0])


async def settings(rig: Rig, member: dict, **options: object) -> str:
    """Run /settings and return the private answer's text."""
    interaction = await rig.discord.slash_command(member, "settings", options)
    answer = await interaction.wait_response()
    assert answer["data"]["flags"] & EPHEMERAL, "settings are answered privately"
    return answer["data"]["content"]


async def test_settings_are_for_manage_server_and_anyone_else_is_refused_privately(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    assert "E-PERMS" in await settings(rig, alice, moderation="off")
    shown = await settings(rig, admin(rig))
    assert "Image model: `gpt-image-2` *(default)*" in shown and "Moderation: `standard` *(default)*" in shown
    assert rig.query("SELECT COUNT(*) FROM guild_settings") == [(0,)]
    registered = next(c for c in rig.discord.registered_commands[None] if c["name"] == "settings")
    assert int(registered["default_member_permissions"]) == Permissions.MANAGE_GUILD


async def test_a_servers_model_choice_is_used_by_the_next_render(rig: Rig) -> None:
    rig.overrides["IMAGE_MODELS"] = "gpt-image-2, gpt-image-2.5-flare"
    await rig.start_bot()
    boss, alice = admin(rig), rig.discord.add_member("alice")
    refused = await settings(rig, boss, model="dall-e-3")
    assert "E-INPUT" in refused and "gpt-image-2.5-flare" in refused
    confirmed = await settings(rig, boss, model="gpt-image-2.5-flare", quality="high")
    assert "✅ Changed image model, default quality" in confirmed

    rig.openai.script_chat(V1)
    await rig.discord.slash_command(alice, "imagine", {"idea": "a fox"})
    await rig.openai.wait_for_calls("/images/generations")
    sent = rig.openai.image_requests[0].json
    assert (sent["model"], sent["quality"]) == ("gpt-image-2.5-flare", "high")
    assert "Default quality: `medium` *(default)*" in await settings(rig, boss, clear="quality")


async def test_a_required_role_keeps_others_out_but_never_the_admins(rig: Rig) -> None:
    await rig.start_bot()
    boss = admin(rig)
    carol = rig.discord.add_member("carol", permissions=Permissions.EVERYONE_DEFAULT)
    dave = rig.discord.add_member("dave")
    await settings(rig, boss, required_role=str(role_of(rig, carol)))

    refused = await rig.discord.slash_command(dave, "prompt", {"idea": "a fox"})
    answer = await refused.wait_response()
    assert answer["data"]["flags"] & EPHEMERAL and "E-ROLE" in answer["data"]["content"]
    assert rig.openai.calls("/chat/completions") == 0
    await rig.start_prompt(carol, "a fox", V1)
    assert "Required role" in await settings(rig, boss)


async def test_anyone_in_the_thread_may_refine_when_the_server_says_so(rig: Rig) -> None:
    await rig.start_bot()
    boss, alice, bob = admin(rig), rig.discord.add_member("alice"), rig.discord.add_member("bob")
    _, _, thread = await rig.start_prompt(alice, "a fox", V1)
    thread_id = int(thread["id"])
    await rig.discord.user_message(bob, thread_id, "make it purple")
    await settings(rig, boss, access="thread")

    await rig.refine(bob, thread_id, "make it night", V2)
    assert len(rig.openai.chat_requests) == 2, "bob's first message, before the change, was only conversation"


async def test_every_change_is_written_to_the_audit_channel(rig: Rig) -> None:
    await rig.start_bot()
    boss = admin(rig)
    audit = rig.discord.add_text_channel("mural-audit")
    await settings(rig, boss, audit_channel=audit["id"])
    await settings(rig, boss, moderation="strict")
    await rig.wait_for_bot_message(int(audit["id"]), "changed moderation")
    lines = [m["content"] for m in rig.bot_messages_in(int(audit["id"]))]
    assert len(lines) == 2 and all(f"<@{boss['id']}>" in line for line in lines)
    assert "changed audit channel" in lines[0]
    assert rig.query("SELECT moderation, audit_channel_id FROM guild_settings") == [
        ("strict", int(audit["id"]))
    ]


# -- moderation -----------------------------------------------------------------------------------------


async def test_a_flagged_idea_is_refused_before_anything_is_spent_and_audited(rig: Rig) -> None:
    await rig.start_bot()
    boss, alice = admin(rig), rig.discord.add_member("alice")
    audit = rig.discord.add_text_channel("mural-audit")
    await settings(rig, boss, audit_channel=audit["id"])
    refused = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox FLAG:violence"})
    told = await rig.answer_containing(refused, "E-FLAGGED")
    assert "violence" in rig.discord.text_of(told)
    assert rig.openai.calls("/chat/completions") == 0 and rig.openai.calls("/images/generations") == 0
    line = await rig.wait_for_bot_message(int(audit["id"]), "Moderation stopped")
    assert f"<@{alice['id']}>" in line["content"] and "violence" in line["content"]
    assert "FLAG" not in line["content"], "at standard, the text itself stays out of the audit channel"

    await settings(rig, boss, moderation="strict")
    await rig.discord.slash_command(alice, "prompt", {"idea": "another FLAG:harassment"})
    strict = await rig.wait_for_bot_message(int(audit["id"]), "harassment")
    assert "another FLAG:harassment" in rig.discord.text_of(strict)
    assert rig.query("SELECT COUNT(*) FROM sessions") == [(0,)]


async def test_generate_states_the_image_apis_moderation_parameter(rig: Rig) -> None:
    await rig.start_bot()
    boss, alice = admin(rig), rig.discord.add_member("alice")
    rig.openai.script_chat(V1, V1)
    await rig.discord.slash_command(alice, "imagine", {"idea": "a fox"})
    await rig.openai.wait_for_calls("/images/generations")
    await settings(rig, boss, moderation="off")
    await rig.discord.slash_command(alice, "imagine", {"idea": "a fox FLAG:violence"})
    await rig.openai.wait_for_calls("/images/generations", 2)
    assert rig.openai.calls("/moderations") == 1, "with moderation off, nothing is sent to be moderated"

    await rig.discord.wait_for(
        lambda: rig.query("SELECT COUNT(*) FROM renders WHERE status = 'done'") == [(2,)]
    )
    ((first_message,),) = rig.query("SELECT message_id FROM renders ORDER BY id LIMIT 1")
    await rig.discord.click(alice, first_message, label="Reroll")
    await rig.openai.wait_for_calls("/images/generations", 3)
    sent = [r.json["moderation"] for r in rig.openai.image_requests]
    assert sent == ["auto", "low", "low"], "a Reroll states the server's choice as it is now"


async def test_a_server_without_the_moderation_endpoint_goes_on_and_says_so(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.openai.moderations_available = False
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    await rig.start_prompt(alice, "a fox", V1)
    await rig.start_prompt(alice, "a fox again", V2)
    assert rig.openai.calls("/moderations") == 1, "asked once, then known to be missing"
    assert sum("no moderation endpoint" in r.getMessage() for r in caplog.records) == 1
    assert "unavailable" in await settings(rig, admin(rig))


async def test_rephrase_safely_after_a_refusal_makes_a_new_version(rig: Rig) -> None:
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    _, v1, thread = await rig.start_prompt(alice, "a fox", V1)
    rig.openai.script_images(moderation_blocked())
    generate = next(b for b in rig.discord.buttons_of(v1) if b["label"] == "Generate")
    await rig.discord.click(alice, int(v1["id"]), generate["custom_id"])
    refused = await rig.wait_for_bot_message(int(thread["id"]), "E-SAFETY")
    rephrase = next(b for b in rig.discord.buttons_of(refused) if b["label"] == "Rephrase safely")

    rig.openai.script_chat(V2)
    await rig.discord.click(alice, int(refused["id"]), rephrase["custom_id"])
    v2 = await rig.wait_for_bot_message(int(thread["id"]), "### v2")
    assert "full moon" in rig.discord.text_of(v2)
    asked = rig.openai.chat_requests[-1].json["messages"][-1]["content"]
    assert V1 in asked and "refused" in asked
    assert rig.query("SELECT purpose FROM chat_usage ORDER BY id") == [("expand",), ("rephrase",)]
