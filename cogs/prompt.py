"""/prompt and refinement by thread reply."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import actions, ui
from bot.studio import DEFAULT_TARGET, MAX_IDEA_CHARS, STYLES, TARGETS, clean_user_text

if TYPE_CHECKING:
    from bot.client import MuralBot
    from bot.store import Session

log = logging.getLogger(__name__)

TARGET_CHOICES = [app_commands.Choice(name=target.label, value=key) for key, target in TARGETS.items()]
STYLE_CHOICES = [app_commands.Choice(name=key.replace("-", " ").title(), value=key) for key in STYLES]
REFINABLE_MESSAGE_TYPES = (discord.MessageType.default, discord.MessageType.reply)


class Prompt(commands.Cog):
    def __init__(self, bot: MuralBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="prompt", description="Turn an idea into a detailed image prompt, refined in a thread"
    )
    @app_commands.guild_only()
    @app_commands.describe(
        idea="What you want to see, in your own words",
        target="Where you will use the prompt (default: OpenAI images)",
        style="A style preset to steer the look",
    )
    @app_commands.choices(target=TARGET_CHOICES, style=STYLE_CHOICES)
    async def prompt(
        self,
        interaction: discord.Interaction,
        idea: app_commands.Range[str, 1, MAX_IDEA_CHARS],
        target: str | None = None,
        style: str | None = None,
    ) -> None:
        # Refused privately before anything is posted: an empty idea is not worth a public message.
        idea = clean_user_text(idea, limit=MAX_IDEA_CHARS, what="idea")
        self.bot.studio.check_options(target or DEFAULT_TARGET, style)
        await interaction.response.defer(thinking=True)
        session, first = await self.bot.studio.start_session(
            idea=idea,
            owner_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id or 0,
            target=target or DEFAULT_TARGET,
            style=style,
        )
        message = await interaction.edit_original_response(
            content=ui.version_text(first),
            view=actions.version_view(session.id, first.number),
            allowed_mentions=ui.NO_PINGS,
        )
        await self.bot.store.set_version_message(first.id, message.id)
        await self.open_thread(interaction, session, message)

    async def open_thread(
        self, interaction: discord.Interaction, session: Session, message: discord.Message
    ) -> None:
        """Open the session's thread on the v1 message; say so plainly when Discord will not allow it."""
        channel = interaction.channel
        if not isinstance(channel, discord.TextChannel):
            await interaction.followup.send(
                "I can't open a thread in this kind of channel, so refine with the ✏️ Refine button.",
                ephemeral=True,
            )
            return
        try:
            thread = await channel.create_thread(
                name=ui.thread_name(session.idea), message=message, auto_archive_duration=1440
            )
        except discord.HTTPException as error:
            log.info("Could not open a thread for session %d: HTTP %s", session.id, error.status)
            missing = " I need the **Create Public Threads** permission here." if error.status == 403 else ""
            await interaction.followup.send(
                f"I couldn't open a thread for this prompt.{missing} You can still refine it with the ✏️ Refine button.",
                ephemeral=True,
            )
            return
        await self.bot.store.attach_thread(session.id, thread.id)
        try:
            await thread.send(
                f"Reply here to refine the prompt: each message from <@{session.owner_id}> becomes a new version.",
                allowed_mentions=ui.NO_PINGS,
            )
        except discord.HTTPException:
            log.info("Could not post the hint in thread %d", thread.id)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.guild is None or not isinstance(message.channel, discord.Thread):
            return
        if message.type not in REFINABLE_MESSAGE_TYPES or not message.content.strip():
            return
        session = await self.bot.store.session_for_thread(message.channel.id)
        if session is None or message.author.id != session.owner_id:
            return
        await actions.refine_in_thread(self.bot, message, session)


async def setup(bot: MuralBot) -> None:
    await bot.add_cog(Prompt(bot))
