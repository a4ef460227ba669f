"""Guardrails an admin relies on, checked through the real bot and the loopback fakes."""

from __future__ import annotations

import hashlib

import pytest

from bot.core.pricing import DEFAULT_PRICES
from loopback.fake_openai import ImageReply, Reply
from loopback.rig import Rig

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
