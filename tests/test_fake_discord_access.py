"""The loopback Discord's channel access and deletions: overwrites computed as Discord computes them, private
channels and threads, and message deletions (one, and a moderator's bulk purge) reaching the bot.

Why: the gallery shows a member only what they may view in Discord, and forgets a picture once its message
is deleted. A fake without overwrites, private threads or deletion events could not prove either.
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest

from loopback.fake_discord import FakeDiscord, Permissions
from loopback.fake_discord.access import MEMBER_OVERWRITE, ROLE_OVERWRITE, overwritten
from tests.test_fake_discord import FixtureBot, StartBot, alice, bot, fake, start_bot, text_channel

__all__ = ["alice", "bot", "fake", "start_bot"]  # fixtures shared with the fake's main tests

GUILD, ROLE, OTHER_ROLE, USER = 1, 2, 3, 4
VIEW, SEND, ATTACH = Permissions.VIEW_CHANNEL, Permissions.SEND_MESSAGES, Permissions.ATTACH_FILES
BASE = VIEW | SEND | ATTACH
# Create Private Threads is not among the fake's @everyone defaults: a member who starts one is given it.
MAY_START_PRIVATE_THREADS = Permissions.EVERYONE_DEFAULT | Permissions.CREATE_PRIVATE_THREADS


def thread_starter(fake: FakeDiscord) -> dict[str, Any]:
    return fake.add_member("ann", permissions=MAY_START_PRIVATE_THREADS)


def overwrite(target: int, kind: int, *, allow: int = 0, deny: int = 0) -> dict[str, Any]:
    return {"id": str(target), "type": kind, "allow": str(allow), "deny": str(deny)}


@pytest.mark.parametrize(
    ("overwrites", "expected"),
    [
        ([], BASE),
        ([overwrite(GUILD, ROLE_OVERWRITE, deny=VIEW)], 0),
        ([overwrite(GUILD, ROLE_OVERWRITE, deny=VIEW), overwrite(ROLE, ROLE_OVERWRITE, allow=VIEW)], BASE),
        (
            [overwrite(ROLE, ROLE_OVERWRITE, allow=VIEW), overwrite(USER, MEMBER_OVERWRITE, deny=VIEW)],
            0,
        ),
        # Roles together: every role's deny first, then every role's allow, so an allow wins over a deny.
        (
            [overwrite(ROLE, ROLE_OVERWRITE, deny=SEND), overwrite(OTHER_ROLE, ROLE_OVERWRITE, allow=SEND)],
            BASE,
        ),
        # Without Send Messages, no Attach Files either.
        ([overwrite(GUILD, ROLE_OVERWRITE, deny=SEND)], VIEW),
        ([overwrite(ROLE, ROLE_OVERWRITE, deny=SEND)], VIEW),
        # A role not the member's does nothing.
        ([overwrite(99, ROLE_OVERWRITE, deny=VIEW)], BASE),
    ],
)
def test_overwrites_apply_in_discords_order(overwrites: list[dict[str, Any]], expected: int) -> None:
    assert (
        overwritten(BASE, overwrites, guild_id=GUILD, role_ids={ROLE, OTHER_ROLE}, user_id=USER) == expected
    )


def test_without_view_channel_only_server_wide_permissions_stay() -> None:
    hidden = [overwrite(GUILD, ROLE_OVERWRITE, deny=VIEW)]
    nickname = Permissions.CHANGE_NICKNAME
    assert overwritten(BASE | nickname, hidden, guild_id=GUILD, role_ids=set(), user_id=USER) == nickname


def test_administrators_pass_every_overwrite() -> None:
    denied = [overwrite(GUILD, ROLE_OVERWRITE, deny=VIEW), overwrite(USER, MEMBER_OVERWRITE, deny=VIEW)]
    admin = BASE | Permissions.ADMINISTRATOR
    assert overwritten(admin, denied, guild_id=GUILD, role_ids=set(), user_id=USER) == Permissions.ALL


@pytest.mark.asyncio
async def test_discord_py_computes_the_same_permissions_from_what_the_fake_sends(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    bob = fake.add_member("bob", permissions=Permissions.EVERYONE_DEFAULT)
    bob_role = int(fake.members[int(bob["id"])]["roles"][0])
    secret = fake.add_private_channel("secret", alice)
    fake.set_channel_overwrite(int(secret["id"]), bob_role, allow=VIEW, deny=SEND)
    channel_id = int(secret["id"])
    await fake.wait_for(
        lambda: (
            isinstance(bot.get_channel(channel_id), discord.TextChannel)
            and len(text_channel(bot, channel_id).overwrites) == 4
        ),
        message="the channel and its overwrites in the bot's cache",
    )
    guild = bot.get_guild(fake.guild_id)
    assert guild is not None
    # discord.py also strips voice permissions from a text channel; Discord's own computation does not.
    voice = discord.Permissions.voice().value
    for user in (alice, bob, fake.add_member("carol"), fake.bot_user):
        uid = int(user["id"])
        member = guild.get_member(uid) or await guild.fetch_member(uid)
        seen_by_discord_py = text_channel(bot, channel_id).permissions_for(member).value
        assert seen_by_discord_py == fake.permissions_for(uid, channel_id=channel_id) & ~voice, user[
            "username"
        ]
    assert not fake.permissions_for(int(bob["id"]), channel_id=channel_id) & SEND


@pytest.mark.asyncio
async def test_a_member_cannot_act_in_a_channel_hidden_from_them(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    outsider = fake.add_member("outsider")
    secret = int(fake.add_private_channel("secret", alice)["id"])
    with pytest.raises(LookupError, match="cannot view"):
        await fake.user_message(outsider, secret, "let me in")
    with pytest.raises(LookupError, match="cannot view"):
        await fake.slash_command(outsider, "ping", channel_id=secret)
    await fake.user_message(alice, secret, "hello in here")
    inter = await fake.slash_command(alice, "ping", channel_id=secret)
    await inter.wait_response()
    assert int(inter.payload["member"]["permissions"]) == fake.permissions_for(
        int(alice["id"]), channel_id=secret
    )


@pytest.mark.asyncio
async def test_the_bot_gets_no_messages_and_no_access_where_it_cannot_view(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    hidden = fake.add_text_channel("hidden")
    hidden_id = int(hidden["id"])
    fake.set_channel_overwrite(hidden_id, fake.guild_id, allow=VIEW | SEND)
    fake.set_channel_overwrite(hidden_id, fake.bot_role_id, deny=VIEW)
    await fake.wait_for(lambda: bot.get_channel(hidden_id) is not None, message="the channel in the cache")
    await fake.user_message(alice, hidden_id, "the bot must not read this")
    await fake.user_message(alice, fake.channel_id, "but this")
    await fake.wait_for(lambda: bot.seen, message="the message in general")
    assert [m.content for m in bot.seen] == ["but this"]
    with pytest.raises(discord.Forbidden):
        await text_channel(bot, hidden_id).send("nor write here")


@pytest.mark.asyncio
async def test_a_private_thread_is_seen_by_its_members_and_moderators_only(
    fake: FakeDiscord, bot: FixtureBot
) -> None:
    bob, carol = fake.add_member("bob"), fake.add_member("carol")
    moderator = fake.add_member("mod", permissions=Permissions.MANAGE_THREADS)
    thread = await fake.create_thread(thread_starter(fake), fake.channel_id, "just us", private=True)
    thread_id = int(thread["id"])
    assert thread["type"] == 12
    await fake.add_thread_member(thread_id, bob)
    await fake.user_message(bob, thread_id, "bob was invited")
    with pytest.raises(LookupError, match="cannot view"):
        await fake.user_message(carol, thread_id, "carol was not")
    assert fake.can_view(int(moderator["id"]), thread_id)
    assert not fake.can_view(int(carol["id"]), thread_id)
    await fake.remove_thread_member(thread_id, bob)
    assert not fake.can_view(int(bob["id"]), thread_id)


@pytest.mark.asyncio
async def test_a_private_thread_needs_create_private_threads_and_no_message(
    fake: FakeDiscord, bot: FixtureBot
) -> None:
    dave = fake.add_member("dave")  # @everyone's permissions only: no Create Private Threads
    with pytest.raises(ValueError, match="50013"):
        await fake.create_thread(dave, fake.channel_id, "mine", private=True)
    starter = await text_channel(bot, fake.channel_id).send("a starter")
    with pytest.raises(ValueError, match="from a message"):
        await fake.create_thread(
            fake.owner_user, fake.channel_id, "mine", message_id=starter.id, private=True
        )


@pytest.mark.asyncio
async def test_the_bot_asks_who_is_in_a_thread(fake: FakeDiscord, bot: FixtureBot) -> None:
    ann, bob = thread_starter(fake), fake.add_member("bob")
    thread = await fake.create_thread(ann, fake.channel_id, "just us", private=True)
    cached = await fake.wait_for(
        lambda: bot.get_channel(int(thread["id"])), message="the thread in the cache"
    )
    assert isinstance(cached, discord.Thread) and cached.type is discord.ChannelType.private_thread
    assert (await cached.fetch_member(int(ann["id"]))).id == int(ann["id"])
    with pytest.raises(discord.NotFound) as unknown:
        await cached.fetch_member(int(bob["id"]))
    assert unknown.value.code == 10007


@pytest.mark.asyncio
async def test_others_joining_a_thread_reach_the_bot_only_with_the_members_intent(
    fake: FakeDiscord, bot: FixtureBot
) -> None:
    thread = await fake.create_thread(thread_starter(fake), fake.channel_id, "just us", private=True)
    before = len(fake.gateway_events)
    await fake.add_thread_member(int(thread["id"]), fake.add_member("bob"))
    await fake.add_thread_member(int(thread["id"]), fake.bot_user)
    updates = [e for e in fake.gateway_events[before:] if e.name == "THREAD_MEMBERS_UPDATE"]
    assert [[m["user_id"] for m in e.data["added_members"]] for e in updates] == [[fake.bot_user["id"]]]


class DeletionBot(FixtureBot):
    """Records the deletions discord.py reports (raw: whether or not the message was cached)."""

    def __init__(self) -> None:
        super().__init__()
        self.deleted: list[tuple[int, int]] = []  # (channel, message)
        self.bulk: list[tuple[int, set[int]]] = []

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        self.deleted.append((payload.channel_id, payload.message_id))

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        self.bulk.append((payload.channel_id, set(payload.message_ids)))


@pytest.mark.asyncio
async def test_a_member_deletes_their_own_message_and_a_moderator_anyones(
    fake: FakeDiscord, start_bot: StartBot, alice: dict[str, Any]
) -> None:
    bot = await start_bot(DeletionBot())
    assert isinstance(bot, DeletionBot)
    moderator = fake.add_member("mod", permissions=Permissions.MANAGE_MESSAGES)
    own = await fake.user_message(alice, fake.channel_id, "mine")
    posted = await text_channel(bot, fake.channel_id).send("the bot's picture")
    with pytest.raises(ValueError, match="50013"):
        await fake.delete_message(alice, posted.id)
    await fake.delete_message(alice, int(own["id"]))
    await fake.delete_message(moderator, posted.id)
    await fake.wait_for(lambda: len(bot.deleted) == 2, message="two MESSAGE_DELETE")
    assert bot.deleted == [(fake.channel_id, int(own["id"])), (fake.channel_id, posted.id)]
    assert posted.id not in fake.messages
    with pytest.raises(LookupError):
        await fake.delete_message(moderator, posted.id)


@pytest.mark.asyncio
async def test_a_moderators_purge_is_one_bulk_deletion(
    fake: FakeDiscord, start_bot: StartBot, alice: dict[str, Any]
) -> None:
    bot = await start_bot(DeletionBot())
    assert isinstance(bot, DeletionBot)
    moderator = fake.add_member("mod", permissions=Permissions.MANAGE_MESSAGES)
    channel = text_channel(bot, fake.channel_id)
    posted = [await channel.send(f"picture {n}") for n in range(3)]
    with pytest.raises(ValueError, match="50013"):
        await fake.delete_messages(alice, fake.channel_id, [m.id for m in posted])
    with pytest.raises(ValueError, match="50035"):
        await fake.delete_messages(moderator, fake.channel_id, [posted[0].id])
    deleted = await fake.delete_messages(moderator, fake.channel_id, [m.id for m in posted[:2]])
    assert deleted == [posted[0].id, posted[1].id]
    await fake.wait_for(lambda: bot.bulk, message="MESSAGE_DELETE_BULK")
    assert bot.bulk == [(fake.channel_id, {posted[0].id, posted[1].id})]
    assert bot.deleted == []
    assert posted[2].id in fake.messages


@pytest.mark.asyncio
async def test_messages_older_than_two_weeks_are_not_bulk_deleted(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    moderator = fake.add_member("mod", permissions=Permissions.MANAGE_MESSAGES)
    recent = await text_channel(bot, fake.channel_id).send("recent")
    ancient = 1 << 22  # a snowflake from Discord's first millisecond
    with pytest.raises(ValueError, match="50034"):
        await fake.delete_messages(moderator, fake.channel_id, [recent.id, ancient])
    await asyncio.sleep(0)
    assert recent.id in fake.messages
