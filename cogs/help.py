"""/help: what Mural does, each command and button, this place's defaults, and how to report a problem.

Private, and available wherever Mural is (servers, DMs, user installs). The command list is read off the
bot's own command tree, so a new command shows up here without anyone remembering to add it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.access import DEFAULT_ACCESS, SESSION_ACCESS
from bot.core.moderation import DEFAULT_MODERATION
from bot.ui import account_texts, layouts
from bot.ui.context import place_of
from cogs.studio._buttons import PICTURE_BUTTONS, VERSION_BUTTONS

if TYPE_CHECKING:
    from bot.app import MuralBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction[Any]

# A message menu command has no description of its own on Discord; what /help says about each.
MENU_HINTS = {"Edit with Mural": "change the picture on any message, from its **Apps** menu"}


class HelpCog(commands.Cog, name="Help"):
    def __init__(self, bot: MuralBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="help", description="What Mural does, its commands and buttons, and the defaults here"
    )
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def help(self, interaction: Interaction) -> None:
        texts = account_texts.help_texts(
            commands=self.command_lines(),
            version_buttons=[(b.emoji, b.label, b.hint) for b in VERSION_BUTTONS],
            picture_buttons=[(b.emoji, b.label, b.hint) for b in PICTURE_BUTTONS],
            defaults=await self.default_lines(interaction) + await self.limit_lines(interaction),
            where="This server" if interaction.guild_id else "Outside a server (the bot's defaults)",
            reads_messages=self.bot.reads_messages,
        )
        await interaction.response.send_message(
            view=layouts.card(texts), ephemeral=True, allowed_mentions=layouts.NO_PINGS
        )

    def command_lines(self) -> list[tuple[str, str]]:
        """Every slash command and message menu the bot registers, in one line each."""
        lines: list[tuple[str, str]] = []
        for command in sorted(self.bot.tree.get_commands(), key=lambda c: (c.__class__.__name__, c.name)):
            if isinstance(command, app_commands.ContextMenu):
                lines.append(
                    (f"**{command.name}**", MENU_HINTS.get(command.name, "from a message's Apps menu"))
                )
                continue
            what = command.description
            if command.guild_only:
                what += " (servers only, for admins)" if command.default_permissions else " (servers only)"
            lines.append((f"`/{command.name}`", what))
        return lines

    async def default_lines(self, interaction: Interaction) -> list[str]:
        """The server's settings over the operator's defaults (outside a server, the operator's)."""
        settings = await self.bot.server_rules.settings(interaction.guild_id)
        return account_texts.help_defaults(
            self.bot.render_options.defaults_for(settings),
            moderation=settings.moderation or DEFAULT_MODERATION,
            access=SESSION_ACCESS[settings.session_access or DEFAULT_ACCESS],
            required_role_id=settings.required_role_id,
        )

    async def limit_lines(self, interaction: Interaction) -> list[str]:
        """The daily limits and budgets that apply to this member here."""
        return account_texts.help_limits(await self.bot.budgets.limits(place_of(interaction)))


async def setup(bot: MuralBot) -> None:
    await bot.add_cog(HelpCog(bot))
