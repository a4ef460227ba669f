"""Tests of the fake Discord's places beyond the bot's server, and of the Message Content intent.

Why: Mural's studio runs in DMs, in group DMs and as a user-installed app, and without the Message
Content intent; its tests trust the fake to shape those interactions and to refuse what Discord
refuses there. A small real discord.py bot checks each behaviour here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from loopback.fake_discord import FakeDiscord, Intents, Permissions
from loopback.rig import DISCORD_TOKEN as TOKEN

pytestmark = pytest.mark.asyncio


class PlacesBot(commands.Bot):
    """Answers `/where` anywhere it is offered, then tries to post in the channel by itself."""

    def __init__(self, *, message_content: bool = True) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        self.ran: list[discord.Interaction] = []
        self.posts: list[discord.Message | discord.HTTPException] = []
        self.seen: list[discord.Message] = []

    async def setup_hook(self) -> None:
        @self.tree.command(name="where", description="Say where this ran")
        @app_commands.allowed_installs(guilds=True, users=True)
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
        async def where(interaction: discord.Interaction) -> None:
            self.ran.append(interaction)
            await interaction.response.send_message("here")
            assert isinstance(interaction.channel, discord.abc.Messageable)
            try:
                self.posts.append(await interaction.channel.send("posted by the bot itself"))
            except discord.HTTPException as error:
                self.posts.append(error)
            await interaction.followup.send("a follow-up")

        @self.tree.command(name="server", description="Only in servers")
        @app_commands.guild_only()
        async def server(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("server")

    async def on_message(self, message: discord.Message) -> None:
        if message.author != self.user:
            self.seen.append(message)


StartBot = Callable[..., Awaitable[PlacesBot]]


@pytest.fixture
def fake(loopback_discord: FakeDiscord) -> FakeDiscord:
    return loopback_discord


@pytest.fixture
def start_bot(start_client: Callable[..., Awaitable[Any]]) -> StartBot:
    async def _start(bot: PlacesBot | None = None, *, sync: bool = True) -> PlacesBot:
        return await start_client(bot or PlacesBot(), sync=sync)

    return _start


async def ran_where(
    fake: FakeDiscord, bot: PlacesBot, user: dict[str, Any], channel: dict[str, Any], **kw: Any
):
    """Run /where in `channel`; the discord.py interaction, the fake's record, and what posting did."""
    inter = await fake.slash_command(user, "where", channel_id=int(channel["id"]), **kw)
    await inter.wait_followup(1)
    return bot.ran[-1], inter, bot.posts[-1]


async def test_a_dm_with_the_bot_has_no_server_and_the_bot_may_post_there(
    fake: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot(PlacesBot(message_content=False))
    alice = fake.add_member("alice")
    dm = fake.open_dm(alice)
    assert fake.open_dm(alice) is dm  # one DM channel per person, as on Discord

    interaction, inter, posted = await ran_where(fake, bot, alice, dm)
    assert inter.payload["context"] == 1 and "guild_id" not in inter.payload and "member" not in inter.payload
    assert inter.payload["authorizing_integration_owners"] == {"0": "0"}
    assert interaction.guild is None and interaction.context.dm_channel
    assert isinstance(interaction.channel, discord.DMChannel) and interaction.user.id == int(alice["id"])
    assert isinstance(posted, discord.Message) and fake.messages[posted.id]["channel_id"] == dm["id"]

    # DM messages reach the bot with their text even without the Message Content intent.
    await fake.user_message(alice, int(dm["id"]), "a quiet lake")
    (seen,) = await fake.wait_for(lambda: bot.seen)
    assert seen.content == "a quiet lake" and seen.guild is None


async def test_a_group_dm_is_reached_only_through_a_user_install(
    fake: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    alice, bob = fake.add_member("alice"), fake.add_member("bob")
    group = fake.add_group_dm(alice, bob)

    interaction, inter, posted = await ran_where(fake, bot, alice, group)
    assert inter.payload["context"] == 2
    assert inter.payload["authorizing_integration_owners"] == {"1": alice["id"]}
    assert interaction.context.private_channel and interaction.is_user_integration()
    assert isinstance(interaction.channel, discord.GroupChannel)
    assert isinstance(posted, discord.Forbidden) and posted.code == 50001  # Missing Access
    assert fake.text_of(inter.original) == "here" and len(inter.followups) == 1

    await fake.user_message(bob, int(group["id"]), "the bot is not in here")
    await asyncio.sleep(0.1)
    assert bot.seen == []
    with pytest.raises(ValueError, match="user install"):
        await fake.slash_command(alice, "where", channel_id=int(group["id"]), install="guild")


async def test_a_user_install_in_a_server_without_the_bot_answers_only_through_the_interaction(
    fake: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    alice = fake.add_member("alice")
    elsewhere = fake.add_foreign_channel("their-server")

    interaction, inter, posted = await ran_where(fake, bot, alice, elsewhere)
    assert inter.payload["context"] == 0 and inter.payload["guild_id"] == str(fake.foreign_guild_id)
    assert not interaction.is_guild_integration() and interaction.is_user_integration()
    assert interaction.app_permissions.value == Permissions.USER_INSTALL
    assert isinstance(posted, discord.Forbidden) and posted.code == 50001
    assert fake.text_of(inter.followups[0]) == "a follow-up"
    assert not any(s["id"] == elsewhere["id"] for s in fake._guild_create_payload()["channels"])

    await fake.user_message(alice, int(elsewhere["id"]), "the bot is not in this server")
    await asyncio.sleep(0.1)
    assert bot.seen == []


async def test_commands_are_offered_only_in_the_contexts_and_installs_they_allow(
    fake: FakeDiscord, start_bot: StartBot
) -> None:
    await start_bot()
    alice = fake.add_member("alice")
    with pytest.raises(LookupError, match="not offered here"):
        await fake.slash_command(alice, "server", channel_id=int(fake.open_dm(alice)["id"]))
    with pytest.raises(LookupError, match="not offered here"):
        await fake.slash_command(alice, "server", install="user")  # a guild install only, by default
    inter = await fake.slash_command(alice, "where", install="user")
    assert inter.payload["authorizing_integration_owners"] == {"1": alice["id"]}


async def test_no_thread_can_start_in_a_dm(fake: FakeDiscord, start_bot: StartBot) -> None:
    bot = await start_bot()
    dm = fake.open_dm(fake.add_member("alice"))
    route = discord.http.Route("POST", "/channels/{channel_id}/threads", channel_id=int(dm["id"]))
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.request(route, json={"name": "a thread", "type": 11})
    assert refused.value.status == 400 and refused.value.code == 50003


async def test_without_message_content_only_replies_to_the_bot_and_mentions_keep_their_text(
    fake: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot(PlacesBot(message_content=False))
    alice = fake.add_member("alice")
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    mine = await channel.send("a version")

    await fake.user_message(alice, fake.channel_id, "just talking")
    await fake.user_message(alice, fake.channel_id, "a reply with its @ on", reply_to=mine.id)
    await fake.user_message(
        alice, fake.channel_id, "a reply with @ off", reply_to=mine.id, mention_author=False
    )
    await fake.user_message(alice, fake.channel_id, f"<@{fake.bot_user['id']}> with a mention")
    await fake.wait_for(lambda: len(bot.seen) == 4)
    assert [m.content for m in bot.seen] == [
        "",
        "a reply with its @ on",
        "",
        f"<@{bot.user.id}> with a mention",
    ]
    assert bot.user in bot.seen[1].mentions


async def test_a_disallowed_message_content_intent_closes_the_gateway_with_4014(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with FakeDiscord(token=TOKEN, allowed_privileged_intents=0) as server:
        server.patch(monkeypatch)
        bot = PlacesBot(message_content=True)
        async with bot:
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(bot.start(TOKEN), 10)
            # What a bot can read before connecting: neither message-content flag (bits 18, 19) is set.
            assert bot.application is not None
            flags = bot.application.flags
            assert not flags.gateway_message_content and not flags.gateway_message_content_limited
        assert Intents.MESSAGE_CONTENT & ~server.allowed_privileged_intents
