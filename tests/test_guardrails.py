"""Guardrails an admin relies on, checked through the real bot and the loopback fakes."""

from __future__ import annotations

import hashlib

import pytest

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
