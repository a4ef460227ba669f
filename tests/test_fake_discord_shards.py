"""Tests of the loopback fake Discord's shards, driven by real discord.py sharded clients.

Why: Mural may run as several processes, each holding some shards of one bot (DESIGN §5).  These
tests prove that the fake routes like Discord -- a guild's events and interactions to shard
``(guild_id >> 22) % shard_count``, DMs to shard 0 only -- and that discord.py's own sharded
clients (one process with every shard, or one process per shard) log in, answer and resume against it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import discord
import pytest
from discord.ext import commands

from loopback.fake_discord import FakeDiscord, FakeGuild
from loopback.rig import DISCORD_TOKEN as TOKEN

pytestmark = pytest.mark.asyncio

StartClient = Callable[..., Awaitable[Any]]


class ShardedBot(commands.AutoShardedBot):
    """A sharded bot with one command that records which guild it answered for."""

    def __init__(self, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05, **options)
        self.answered: list[int | None] = []  # the guild of each /where this process answered (None: a DM)
        self.seen: list[discord.Message] = []

    async def setup_hook(self) -> None:
        @self.tree.command(name="where", description="Say where the command ran")
        async def where(interaction: discord.Interaction) -> None:
            self.answered.append(interaction.guild_id)
            await interaction.response.send_message(f"answered for {interaction.guild_id}")

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No 5 s pause before each further shard: the fake does not limit identifies."""

    async def on_message(self, message: discord.Message) -> None:
        if message.author != self.user:
            self.seen.append(message)


@pytest.fixture
def fake(loopback_discord: FakeDiscord) -> FakeDiscord:
    return loopback_discord


@pytest.fixture
def guilds(fake: FakeDiscord) -> dict[int, FakeGuild]:
    """One guild on each of 2 shards: the fake's first guild, and one added on the other shard."""
    first = fake.shard_of(fake.guild_id, 2)
    return {
        first: fake.guilds[fake.guild_id],
        1 - first: fake.add_guild("Second Guild", shard=1 - first, shard_count=2),
    }


def guild_ids(bot: discord.Client) -> set[int]:
    return {guild.id for guild in bot.guilds}


@pytest.mark.parametrize(("shard", "shard_count"), [(0, 2), (1, 2), (2, 3), (0, 1), (4, 5)])
async def test_added_guilds_land_on_the_shard_asked_for(
    fake: FakeDiscord, shard: int, shard_count: int
) -> None:
    guild = fake.add_guild("Placed", shard=shard, shard_count=shard_count)
    assert (guild.id >> 22) % shard_count == shard == fake.shard_of(guild.id, shard_count)
    assert guild.id > fake.channel_id  # still a fresh snowflake: ids keep ordering by creation


async def test_one_process_with_every_shard_gets_each_ready_and_sees_every_guild(
    fake: FakeDiscord, guilds: dict[int, FakeGuild], start_client: StartClient
) -> None:
    bot: ShardedBot = await start_client(ShardedBot(shard_count=2))
    assert guild_ids(bot) == {g.id for g in guilds.values()}
    assert set(bot.shards) == {0, 1}
    for shard_id, guild in guilds.items():
        (ready,) = fake.events_to(shard_id, "READY")
        assert ready.data["shard"] == [shard_id, 2]
        assert [g["id"] for g in ready.data["guilds"]] == [str(guild.id)]
        assert [e.data["id"] for e in fake.events_to(shard_id, "GUILD_CREATE")] == [str(guild.id)]
        found = bot.get_guild(guild.id)
        assert found is not None and found.shard_id == shard_id


async def test_a_process_per_shard_sees_its_own_guilds_and_interactions(
    fake: FakeDiscord, guilds: dict[int, FakeGuild], start_client: StartClient
) -> None:
    processes: dict[int, ShardedBot] = {
        0: await start_client(ShardedBot(shard_ids=[0], shard_count=2)),
        1: await start_client(ShardedBot(shard_ids=[1], shard_count=2), sync=False),
    }
    members = {
        shard_id: fake.add_member(f"member{shard_id}", guild_id=g.id) for shard_id, g in guilds.items()
    }
    for shard_id, bot in processes.items():
        assert guild_ids(bot) == {guilds[shard_id].id}

    for shard_id, guild in guilds.items():
        inter = await fake.slash_command(members[shard_id], "where", channel_id=guild.channel_id)
        assert (await inter.wait_response())["data"]["content"] == f"answered for {guild.id}"
        assert inter.shard_id == shard_id
    assert {s: bot.answered for s, bot in processes.items()} == {0: [guilds[0].id], 1: [guilds[1].id]}

    dm = fake.open_dm(members[1])
    inter = await fake.slash_command(members[1], "where", channel_id=int(dm["id"]))
    await inter.wait_response()
    assert inter.shard_id == 0 and processes[0].answered[-1] is None
    assert len(processes[1].answered) == 1
    assert all(e.data.get("guild_id") == str(guilds[1].id) for e in fake.events_to(1, "INTERACTION_CREATE"))


async def test_guild_events_reach_only_the_shard_of_their_guild(
    fake: FakeDiscord, guilds: dict[int, FakeGuild], start_client: StartClient
) -> None:
    processes = {
        0: await start_client(ShardedBot(shard_ids=[0], shard_count=2), sync=False),
        1: await start_client(ShardedBot(shard_ids=[1], shard_count=2), sync=False),
    }
    for shard_id, guild in guilds.items():
        member = fake.add_member(f"writer{shard_id}", guild_id=guild.id)
        await fake.user_message(member, guild.channel_id, f"hello from shard {shard_id}")
    await fake.wait_for(lambda: all(bot.seen for bot in processes.values()))
    for shard_id, bot in processes.items():
        assert [m.content for m in bot.seen] == [f"hello from shard {shard_id}"]
        messages = fake.events_to(shard_id, "MESSAGE_CREATE")
        assert [e.data["guild_id"] for e in messages] == [str(guilds[shard_id].id)]


@pytest.mark.parametrize(
    ("shard_id", "shard_count", "guilds_per_shard", "close_code"),
    [
        (2, 2, 2500, 4010),  # Invalid shard: the id is not below the count
        (None, None, 1, 4011),  # Sharding required: one connection would hold both guilds
    ],
)
async def test_a_connection_discord_refuses_is_closed_with_its_code(
    fake: FakeDiscord,
    guilds: dict[int, FakeGuild],
    shard_id: int | None,
    shard_count: int | None,
    guilds_per_shard: int,
    close_code: int,
) -> None:
    fake.guilds_per_shard_limit = guilds_per_shard
    client = discord.Client(intents=discord.Intents.default(), shard_id=shard_id, shard_count=shard_count)
    try:
        with pytest.raises(discord.ConnectionClosed) as closed:
            await asyncio.wait_for(client.start(TOKEN), timeout=10)
    finally:
        await client.close()
    assert closed.value.code == close_code
    assert fake.identify_count == 0


async def test_the_recommended_shard_count_is_what_an_auto_sharded_bot_uses(
    fake: FakeDiscord, guilds: dict[int, FakeGuild], start_client: StartClient
) -> None:
    fake.recommended_shards = 2
    fake.max_concurrency = 4
    bot: ShardedBot = await start_client(ShardedBot(), sync=False)
    assert bot.shard_count == 2 and set(bot.shards) == {0, 1}
    assert fake.requests_to("GET", r"^/gateway/bot$")
    assert guild_ids(bot) == {g.id for g in guilds.values()}
    assert (await bot.fetch_session_start_limits()).max_concurrency == 4


async def test_dropping_one_shard_resumes_only_that_shard(
    fake: FakeDiscord, guilds: dict[int, FakeGuild], start_client: StartClient
) -> None:
    bot: ShardedBot = await start_client(ShardedBot(shard_count=2), sync=False)
    writer = fake.add_member("writer", guild_id=guilds[1].id)
    await fake.drop_gateway(shard=1)
    await fake.user_message(writer, guilds[1].channel_id, "sent while shard 1 was away")
    await fake.wait_for(lambda: fake.events_to(1, "RESUMED"), message="shard 1 to resume")
    await fake.wait_for(lambda: bot.seen, message="the buffered message to be replayed")
    assert [m.content for m in bot.seen] == ["sent while shard 1 was away"]
    assert fake.events_to(0, "RESUMED") == []
    assert (fake.identify_count, fake.resume_count) == (2, 1)


async def test_each_guild_keeps_its_own_members_and_permissions(
    fake: FakeDiscord, guilds: dict[int, FakeGuild], start_client: StartClient
) -> None:
    bot: ShardedBot = await start_client(ShardedBot(shard_count=2))
    other = next(g for g in guilds.values() if g.id != fake.guild_id)
    fake.set_everyone_permissions(0, guild_id=other.id)
    fake.set_bot_permissions(0, guild_id=other.id)
    outsider = fake.add_member("outsider", guild_id=other.id)

    first_channel = bot.get_channel(fake.channel_id)
    other_channel = bot.get_channel(other.channel_id)
    assert isinstance(first_channel, discord.TextChannel) and isinstance(other_channel, discord.TextChannel)
    await first_channel.send("the first guild still lets the bot speak")
    with pytest.raises(discord.Forbidden) as refused:
        await other_channel.send("muted here")
    assert refused.value.code == 50013
    with pytest.raises(LookupError, match="not a member of guild 'Mural Test Guild'"):
        await fake.slash_command(outsider, "where")  # in the first guild's "general" by default
