"""Who acts and where, read off Discord's objects into the core's terms.

Also where a session can live: a thread needs a server channel the bot belongs to and may open
threads in; elsewhere (a DM, a group DM, a user install in a server without the bot) the session
lives on its interactions, and only where the bot is present may it post by itself.
"""

from __future__ import annotations

from typing import Any, Literal

import discord

from bot.core.access import Place

# Why a session has no thread: a DM with the bot, a group DM, a user install in a server the bot is not in,
# a channel without Create Public Threads, a channel kind without threads, or Discord refused it.
NoThread = Literal["dm", "group-dm", "user-install", "permission", "channel-kind", "refused"]


def place_of(interaction: discord.Interaction[Any]) -> Place:
    return _place(interaction.guild_id, interaction.channel_id, interaction.user)


def place_of_message(message: discord.Message) -> Place:
    return _place(message.guild.id if message.guild else None, message.channel.id, message.author)


def _place(guild_id: int | None, channel_id: int | None, who: discord.abc.User) -> Place:
    roles = frozenset(role.id for role in who.roles) if isinstance(who, discord.Member) else frozenset()
    return Place(guild_id=guild_id, channel_id=channel_id, role_ids=roles)


def bot_is_present(interaction: discord.Interaction[Any]) -> bool:
    """Whether the bot itself may post in the interaction's channel, not only answer the interaction.

    A DM with the bot: yes. A group DM: never (the bot is no recipient). A server: only where the app is
    installed in it, which a user install used in someone else's server is not (Discord answers 403).
    """
    if interaction.context.dm_channel:
        return True
    if interaction.context.private_channel:
        return False
    return interaction.is_guild_integration()


def why_no_thread(interaction: discord.Interaction[Any]) -> NoThread | None:
    """Why a session started by this interaction cannot have a thread, decided before asking Discord."""
    if interaction.context.dm_channel:
        return "dm"
    if interaction.context.private_channel:
        return "group-dm"
    if not bot_is_present(interaction):
        return "user-install"
    if not isinstance(interaction.channel, discord.TextChannel):
        return "channel-kind"
    if not interaction.app_permissions.create_public_threads:
        return "permission"
    return None


def reads_replies(reason: NoThread) -> bool:
    """Whether the bot receives replies where a session has no thread (it is absent from group DMs and
    servers it was not added to)."""
    return reason not in ("group-dm", "user-install")
