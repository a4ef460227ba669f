"""Who acts and where, read off Discord's objects into the core's terms."""

from __future__ import annotations

from typing import Any

import discord

from bot.core.policy import Place


def place_of(interaction: discord.Interaction[Any]) -> Place:
    return _place(interaction.guild_id, interaction.channel_id, interaction.user)


def place_of_message(message: discord.Message) -> Place:
    return _place(message.guild.id if message.guild else None, message.channel.id, message.author)


def _place(guild_id: int | None, channel_id: int | None, who: discord.abc.User) -> Place:
    roles = frozenset(role.id for role in who.roles) if isinstance(who, discord.Member) else frozenset()
    return Place(guild_id=guild_id, channel_id=channel_id, role_ids=roles)
