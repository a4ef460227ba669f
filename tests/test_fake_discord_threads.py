"""The loopback Discord's thread rules, as Discord applies them since its 2023 change to locked threads.

Why: a fake that reopened a locked thread on send, or let a message in an archived thread be edited,
hid the bug where a picture delivered into a locked, archived thread ended in E-BUG.
"""

from __future__ import annotations

from typing import Any

import discord
import pytest

from loopback.fake_discord import FakeDiscord, Permissions
from tests.test_fake_discord import FixtureBot, alice, bot, fake, start_bot, text_channel

pytestmark = pytest.mark.asyncio
__all__ = ["alice", "bot", "fake", "start_bot"]  # fixtures shared with the fake's main tests


async def _thread(fake: FakeDiscord, bot: FixtureBot) -> tuple[discord.Message, discord.Thread]:
    """A thread the bot opened on its own message, with one message of the bot's in it."""
    channel = text_channel(bot, fake.channel_id)
    starter = await channel.send("Prompt: a lighthouse")
    thread = await channel.create_thread(name="a lighthouse", message=starter)
    inside = await thread.send("v1 inside")
    return inside, thread


def _shut(fake: FakeDiscord, thread: discord.Thread, *, archived: bool, locked: bool) -> None:
    fake.channels[thread.id]["thread_metadata"].update(archived=archived, locked=locked)


async def test_a_message_reopens_an_archived_thread_that_is_not_locked(
    fake: FakeDiscord, bot: FixtureBot
) -> None:
    _, thread = await _thread(fake, bot)
    _shut(fake, thread, archived=True, locked=False)
    await thread.send("back again")
    assert fake.channels[thread.id]["thread_metadata"]["archived"] is False


async def test_a_locked_archived_thread_refuses_a_message_even_from_a_moderator(
    fake: FakeDiscord, bot: FixtureBot
) -> None:
    _, thread = await _thread(fake, bot)
    _shut(fake, thread, archived=True, locked=True)
    assert fake.permissions_for(bot.user.id) & Permissions.MANAGE_THREADS  # type: ignore[union-attr]
    with pytest.raises(discord.HTTPException) as refused:
        await thread.send("let me in")
    assert (refused.value.status, refused.value.code) == (400, 50083)
    assert fake.channels[thread.id]["thread_metadata"]["archived"] is True


async def test_an_open_locked_thread_takes_messages_only_from_those_who_manage_threads(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    _, thread = await _thread(fake, bot)
    _shut(fake, thread, archived=False, locked=True)
    await thread.send("a moderator may")
    with pytest.raises(ValueError, match="50013"):
        await fake.user_message(alice, thread.id, "a member may not")
    fake.set_bot_permissions(Permissions.BOT_DEFAULT & ~Permissions.MANAGE_THREADS)
    with pytest.raises(discord.Forbidden) as refused:
        await thread.send("nor may the bot without Manage Threads")
    assert refused.value.code == 50013


async def test_nothing_in_an_archived_thread_can_be_edited_until_it_is_reopened(
    fake: FakeDiscord, bot: FixtureBot
) -> None:
    inside, thread = await _thread(fake, bot)
    _shut(fake, thread, archived=True, locked=False)
    with pytest.raises(discord.HTTPException) as refused:
        await inside.edit(content="edited")
    assert (refused.value.status, refused.value.code) == (400, 50083)
    await thread.edit(archived=False)
    edited = await inside.edit(content="edited")
    assert edited.content == "edited"


async def test_a_locked_thread_cannot_be_reopened_without_manage_threads(
    fake: FakeDiscord, bot: FixtureBot
) -> None:
    _, thread = await _thread(fake, bot)
    _shut(fake, thread, archived=True, locked=True)
    fake.set_bot_permissions(Permissions.BOT_DEFAULT & ~Permissions.MANAGE_THREADS)
    with pytest.raises(discord.Forbidden):
        await thread.edit(archived=False)
    assert fake.channels[thread.id]["thread_metadata"]["archived"] is True


async def test_an_interaction_answer_in_a_locked_archived_thread_is_refused_like_a_message(
    fake: FakeDiscord, bot: FixtureBot, alice: dict[str, Any]
) -> None:
    """A deferred answer that turns into a message inside a thread obeys the thread's rules."""
    _, thread = await _thread(fake, bot)
    answered: list[discord.Interaction] = []

    @bot.tree.command(name="later", description="answers after a defer")
    async def later(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        answered.append(interaction)

    await bot.tree.sync()
    await fake.slash_command(alice, "later", {}, channel_id=thread.id)
    (interaction,) = await fake.wait_for(lambda: answered)
    _shut(fake, thread, archived=True, locked=True)
    with pytest.raises(discord.HTTPException) as refused:
        await interaction.edit_original_response(content="the result")
    assert refused.value.code == 50083
    with pytest.raises(discord.HTTPException) as followup:
        await interaction.followup.send("another message")
    assert followup.value.code == 50083
