"""/usage: a member's own pictures and spend against their limits; admins also see the server's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.ui import account_texts, layouts
from bot.ui.context import place_of

if TYPE_CHECKING:
    from bot.app import MuralBot

Interaction = discord.Interaction[Any]


class Account(commands.Cog):
    def __init__(self, bot: MuralBot) -> None:
        self.bot = bot

    @app_commands.command(name="usage", description="Your pictures and spend today and this month")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def usage(self, interaction: Interaction) -> None:
        permissions = interaction.permissions
        whole_server = interaction.guild_id is not None and permissions.manage_guild
        report = await self.bot.budgets.usage(
            place_of(interaction), interaction.user.id, whole_server=whole_server
        )
        await interaction.response.send_message(
            account_texts.usage_text(report), ephemeral=True, allowed_mentions=layouts.NO_PINGS
        )


async def setup(bot: MuralBot) -> None:
    await bot.add_cog(Account(bot))
