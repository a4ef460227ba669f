"""/imagine: idea → prompt → picture in one step."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import actions
from bot.render import size_label
from bot.studio import MAX_IDEA_CHARS, clean_user_text

if TYPE_CHECKING:
    from bot.client import MuralBot


def build_imagine_command(bot: MuralBot) -> app_commands.Command:
    """The command is built at load time because its size and quality choices come from the configured model."""
    renderer = bot.renderer
    sizes = [app_commands.Choice(name=size_label(size), value=size) for size in renderer.size_choices]
    qualities = [
        app_commands.Choice(name=quality.title(), value=quality) for quality in renderer.quality_choices
    ]

    @app_commands.command(
        name="imagine", description="Turn an idea into a picture: I write the prompt, then draw it"
    )
    @app_commands.guild_only()
    @app_commands.describe(
        idea="What you want to see, in your own words",
        size=f"Picture size (default: {size_label(renderer.default_size)})",
        quality=f"Higher quality takes longer and costs more (default: {renderer.default_quality})",
    )
    @app_commands.choices(size=sizes[:25], quality=qualities[:25])
    async def imagine(
        interaction: discord.Interaction,
        idea: app_commands.Range[str, 1, MAX_IDEA_CHARS],
        size: str | None = None,
        quality: str | None = None,
    ) -> None:
        # Refused privately before anything is posted: an empty idea is not worth a public message.
        idea = clean_user_text(idea, limit=MAX_IDEA_CHARS, what="idea")
        bot.renderer.check_options(size, quality)
        await interaction.response.defer(thinking=True)
        session, first = await bot.studio.start_session(
            idea=idea,
            owner_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id or 0,
            origin="imagine",
        )
        await actions.render_for_interaction(
            bot, interaction, session, first, size=size, quality=quality, with_prompt=True
        )

    return imagine


class Imagine(commands.Cog):
    def __init__(self, bot: MuralBot) -> None:
        self.bot = bot
        self.command = build_imagine_command(bot)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.command)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.command.name)


async def setup(bot: MuralBot) -> None:
    await bot.add_cog(Imagine(bot))
