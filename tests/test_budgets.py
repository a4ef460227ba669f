"""Budgets: every limit refuses before any paid call, privately, saying which limit, how much is used and
when it resets; nothing is spent or stored as a job. Through the real bot and the loopback fakes."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.budgets import window_at
from loopback.fake_discord import Permissions
from loopback.fake_openai import ImageReply, default_image_usage
from loopback.rig import EPHEMERAL, Rig

pytestmark = pytest.mark.asyncio

V1 = "A red fox on a snowy hill at dawn, soft pink light, long shadows, shallow depth of field."
CALLBACK_DEFERRED = 5


def admin(rig: Rig) -> dict[str, Any]:
    return rig.discord.add_member(
        "admin", permissions=Permissions.EVERYONE_DEFAULT | Permissions.MANAGE_GUILD
    )


def role_of(rig: Rig, member: dict[str, Any]) -> int:
    return int(rig.discord.members[int(member["id"])]["roles"][0])


async def private_answer(rig: Rig, member: dict[str, Any], command: str, **options: Any) -> str:
    interaction = await rig.discord.slash_command(member, command, options)
    answer = await interaction.wait_response()
    assert answer["data"]["flags"] & EPHEMERAL, f"/{command} is answered privately"
    return answer["data"]["content"]


async def generate_button(rig: Rig, member: dict[str, Any]) -> tuple[int, str]:
    """A fresh session's v1 and its Generate button."""
    _, v1, _ = await rig.start_prompt(member, "a fox in the snow", V1)
    generate = next(b for b in rig.discord.buttons_of(v1) if b["label"] == "Generate")
    return int(v1["id"]), generate["custom_id"]


def assert_refused(answer: dict[str, Any], limit_words: str) -> int:
    """A private E-BUDGET refusal naming the limit; returns the reset time it shows."""
    assert answer["type"] != CALLBACK_DEFERRED, "a refusal is an answer, not a deferral"
    content = answer["data"]["content"]
    assert answer["data"]["flags"] & EPHEMERAL, "refused privately"
    assert "E-BUDGET" in content and limit_words in content, content
    assert "Nothing was drawn or charged" in content
    reset = re.search(r"<t:(\d+):R>", content)
    assert reset, "the reset is a Discord timestamp"
    return int(reset[1])


async def test_twenty_clicks_at_once_at_the_edge_of_the_daily_picture_limit_let_exactly_the_rest_pass(
    rig: Rig,
) -> None:
    rig.overrides["MEMBER_DAILY_PICTURES"] = "4"
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat(V1)
    await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "raw": True})
    await rig.discord.wait_for(lambda: rig.query("SELECT status FROM renders") == [("done",)], message="one")
    message_id, generate = await generate_button(rig, alice)

    clicks = await asyncio.gather(*(rig.discord.click(alice, message_id, generate) for _ in range(20)))
    answers = await asyncio.gather(*(click.wait_response() for click in clicks))

    accepted = [a for a in answers if a["type"] == CALLBACK_DEFERRED]
    refused = [a for a in answers if a["type"] != CALLBACK_DEFERRED]
    assert len(accepted) == 3, "one picture was already made today, so three more fit under four"
    resets = {assert_refused(answer, "your pictures for today: 4 of 4 used") for answer in refused}
    assert resets == {window_at().day_reset}
    await rig.discord.wait_for(
        lambda: rig.query("SELECT COUNT(*) FROM renders WHERE status = 'done'") == [(4,)], message="four done"
    )
    assert rig.query("SELECT COUNT(*) FROM renders") == [(4,)], "a refused click stores no job"
    assert rig.openai.calls("/images/generations") == 4


async def test_a_members_daily_spend_refuses_imagine_before_the_chat_model_is_asked(rig: Rig) -> None:
    rig.overrides["MEMBER_DAILY_SPEND"] = "0.10"
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    # A high-quality square picture is about $0.19: more than the whole day's budget.
    answer = await (
        await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "quality": "high"})
    ).wait_response()
    assert_refused(answer, "your daily budget: $0.00 of $0.10 used")
    assert rig.openai.calls("/chat/completions") == 0 and rig.openai.calls("/images/generations") == 0
    assert rig.query("SELECT COUNT(*) FROM renders") == [(0,)]
    assert rig.query("SELECT COUNT(*) FROM sessions") == [(0,)]


async def test_a_used_up_daily_spend_refuses_even_a_prompt(rig: Rig) -> None:
    rig.overrides["MEMBER_DAILY_SPEND"] = "0.05"
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    # Billed like a high-quality picture, though a low one was asked for (and reserved).
    rig.openai.script_images(ImageReply(usage=default_image_usage("a fox", quality="high")))
    await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "quality": "low", "raw": True})
    await rig.discord.wait_for(lambda: rig.query("SELECT status FROM renders") == [("done",)], message="done")
    ((spent,),) = rig.query("SELECT cost_usd FROM renders")
    assert spent > 0.05, "the billed cost, not the reservation, is what counts once known"

    refused = await rig.discord.slash_command(alice, "prompt", {"idea": "a cat"})
    assert_refused(await refused.wait_response(), "your daily budget")
    assert rig.openai.calls("/chat/completions") == 0


async def test_a_servers_daily_spend_set_in_settings_stops_everyone(rig: Rig) -> None:
    await rig.start_bot()
    boss, alice, bob = admin(rig), rig.discord.add_member("alice"), rig.discord.add_member("bob")
    message_id, generate = await generate_button(rig, alice)
    await (await rig.discord.click(alice, message_id, generate)).wait_response()
    await rig.discord.wait_for(lambda: rig.query("SELECT status FROM renders") == [("done",)], message="done")
    ((spent,),) = rig.query("SELECT cost_usd FROM renders")

    shown = await private_answer(rig, boss, "settings", server_daily_spend=round(spent + 0.01, 2))
    assert "✅ Changed server spend per day" in shown

    bob_message, bob_generate = await generate_button(rig, bob)
    answer = await (await rig.discord.click(bob, bob_message, bob_generate)).wait_response()
    assert_refused(answer, "this server's daily budget")
    assert rig.query("SELECT COUNT(*) FROM renders") == [(1,)]


async def test_a_servers_monthly_spend_resets_at_the_start_of_next_month(rig: Rig) -> None:
    await rig.start_bot()
    boss, alice = admin(rig), rig.discord.add_member("alice")
    message_id, generate = await generate_button(rig, alice)
    await (await rig.discord.click(alice, message_id, generate)).wait_response()
    await rig.discord.wait_for(lambda: rig.query("SELECT status FROM renders") == [("done",)], message="done")

    await private_answer(rig, boss, "settings", server_monthly_spend=0.01)
    answer = await (await rig.discord.click(alice, message_id, generate)).wait_response()
    reset = assert_refused(answer, "this server's monthly budget")
    assert datetime.fromtimestamp(reset, UTC).day == 1 and reset == window_at().month_reset
    assert rig.openai.calls("/images/generations") == 1


async def test_a_roles_own_daily_picture_limit_overrides_the_servers(rig: Rig) -> None:
    await rig.start_bot()
    boss = admin(rig)
    carol = rig.discord.add_member("carol", permissions=Permissions.EVERYONE_DEFAULT)
    dave = rig.discord.add_member("dave")
    await private_answer(rig, boss, "settings", daily_pictures=1)
    confirmed = await private_answer(
        rig, boss, "settings", role=str(role_of(rig, carol)), role_daily_pictures=2
    )
    assert f"<@&{role_of(rig, carol)}> 2" in confirmed

    async def presses(member: dict[str, Any], times: int) -> list[dict[str, Any]]:
        message_id, generate = await generate_button(rig, member)
        answers = []
        for _ in range(times):
            answers.append(await (await rig.discord.click(member, message_id, generate)).wait_response())
        return answers

    carols = await presses(carol, 3)
    assert [a["type"] == CALLBACK_DEFERRED for a in carols] == [True, True, False]
    assert_refused(carols[2], "2 of 2 used")
    daves = await presses(dave, 2)
    assert [a["type"] == CALLBACK_DEFERRED for a in daves] == [True, False]
    assert_refused(daves[1], "1 of 1 used")

    missing = await private_answer(rig, boss, "settings", role_daily_pictures=5)
    assert "E-INPUT" in missing and "Name the role" in missing
    await private_answer(rig, boss, "settings", role=str(role_of(rig, carol)), clear="role_daily_pictures")
    assert rig.query("SELECT COUNT(*) FROM role_limits") == [(0,)]


async def test_usage_shows_a_member_their_own_and_an_admin_the_servers(rig: Rig) -> None:
    await rig.start_bot()
    boss, alice = admin(rig), rig.discord.add_member("alice")
    rig.openai.script_chat(V1)
    await rig.discord.slash_command(alice, "imagine", {"idea": "a fox", "count": 2})
    await rig.discord.wait_for(lambda: rig.query("SELECT status FROM renders") == [("done",)], message="done")
    (spent,) = rig.query(
        "SELECT (SELECT SUM(cost_usd) FROM renders) + (SELECT SUM(cost_usd) FROM chat_usage)"
    )[0]

    mine = await private_answer(rig, alice, "usage")
    assert f"Today: 2 of 25 pictures · ${spent:.2f} of $2.00" in mine
    assert "This server" not in mine and "$/" not in mine

    theirs = await private_answer(rig, boss, "usage")
    assert "**This server**" in theirs and "$0.00 of $2.00" in theirs
    assert f"Today: 2 pictures · ${spent:.2f} of $25.00" in theirs
    assert f"1. <@{alice['id']}>: 2 pictures" in theirs
