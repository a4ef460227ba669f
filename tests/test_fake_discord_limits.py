"""The loopback Discord refuses what Discord refuses at the edges a member can reach: eleven files on one
message, a modal label over 45 characters, a text box placeholder over 100. Sent as raw requests, so the
fake's own check is what answers (discord.py checks some of these itself first)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import discord
import pytest

from loopback.fake_discord import FakeDiscord
from loopback.rig import DISCORD_TOKEN as TOKEN
from tests.test_fake_discord import FixtureBot, alice, bot, fake, start_bot

pytestmark = pytest.mark.asyncio
__all__ = ["alice", "bot", "fake", "start_bot"]  # fixtures shared with the fake's main tests


async def _post_files(fake: FakeDiscord, count: int) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("payload_json", json.dumps({"content": "files"}), content_type="application/json")
    for n in range(count):
        form.add_field(f"files[{n}]", b"x", filename=f"f{n}.txt", content_type="text/plain")
    url = f"{fake.http_url}/api/v10/channels/{fake.channel_id}/messages"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=form, headers={"Authorization": f"Bot {TOKEN}"}) as response,
    ):
        return response.status, await response.json()


async def test_ten_files_fit_one_message_and_eleven_do_not(fake: FakeDiscord, bot: FixtureBot) -> None:
    status, message = await _post_files(fake, 10)
    assert status == 200 and len(message["attachments"]) == 10
    status, error = await _post_files(fake, 11)
    assert status == 400 and "attachments" in error["errors"]


def _modal(label: str, placeholder: str) -> dict[str, Any]:
    box = {"type": 4, "custom_id": "box", "style": 2, "placeholder": placeholder}
    return {
        "type": 9,
        "data": {
            "custom_id": "edit",
            "title": "Edit",
            "components": [{"type": 18, "label": label, "component": box}],
        },
    }


@pytest.mark.parametrize(
    ("label", "placeholder", "field"),
    [("x" * 45, "y" * 100, None), ("x" * 46, "fine", "label"), ("fine", "y" * 101, "placeholder")],
)
async def test_a_modal_over_discords_lengths_is_refused(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any], label: str, placeholder: str, field: str | None
) -> None:
    pressed: list[discord.Interaction] = []

    @bot.tree.command(name="long", description="is answered by the test")
    async def long(interaction: discord.Interaction) -> None:
        pressed.append(interaction)

    await bot.tree.sync()
    interaction = await fake.slash_command(alice, "long", {})
    await fake.wait_for(lambda: pressed)
    url = f"{fake.http_url}/api/v10/interactions/{interaction.id}/{interaction.token}/callback"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=_modal(label, placeholder)) as response,
    ):
        status, body = response.status, await response.read()
    if field is None:
        assert status == 204
        return
    assert status == 400 and field in json.dumps(json.loads(body)["errors"])
