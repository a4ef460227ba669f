"""The studio cog: /prompt, /imagine, replies that refine, and every version and picture button.

Thin on purpose: parse options, check them through the core, then hand over to `_flows`. The cog
registers its own restart-proof buttons and reports work a stop interrupted when it loads.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.images import capabilities_for, quality_choices, size_label
from bot.core.studio import MAX_IDEA_CHARS, STYLES, TARGETS
from cogs.studio import _flows
from cogs.studio._buttons import DYNAMIC_ITEMS, STUDIO_COG

if TYPE_CHECKING:
    from bot.app import MuralBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction[Any]

TARGET_CHOICES = [app_commands.Choice(name=target.label, value=key) for key, target in TARGETS.items()]
STYLE_CHOICES = [app_commands.Choice(name=key.replace("-", " ").title(), value=key) for key in STYLES]
REFINABLE_MESSAGE_TYPES = (discord.MessageType.default, discord.MessageType.reply)
AUTOCOMPLETE_LIMIT = 25


class StudioCog(commands.Cog, name=STUDIO_COG):
    def __init__(self, bot: MuralBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*DYNAMIC_ITEMS)
        if self.bot.sync_only:
            return
        cut_off = await self.bot.studio.interrupted_by_last_stop()
        if cut_off:
            log.warning(
                "%d refinement(s) were interrupted by the last stop; telling their authors", len(cut_off)
            )
            self.bot.spawn(
                _flows.report_interrupted_refinements(self.bot, cut_off),
                name="report-interrupted-refinements",
            )
        interrupted = await self.bot.jobs.interrupted_by_last_stop()
        if interrupted:
            log.warning(
                "%d render(s) were interrupted by the last stop; telling their owners", len(interrupted)
            )
            self.bot.spawn(
                _flows.report_interrupted_renders(self.bot, interrupted), name="report-interrupted-renders"
            )

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*DYNAMIC_ITEMS)

    # -- commands -----------------------------------------------------------------------------

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
        interaction: Interaction,
        idea: app_commands.Range[str, 1, MAX_IDEA_CHARS],
        target: str | None = None,
        style: str | None = None,
    ) -> None:
        # Checked before anything is posted: a refusal stays private.
        request = self.bot.studio.new_session_request(
            idea=idea,
            owner_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id or 0,
            target=target,
            style=style,
        )
        await _flows.start_prompt(self.bot, interaction, request)

    @app_commands.command(
        name="imagine", description="Turn an idea into a picture: I write the prompt, then draw it"
    )
    @app_commands.guild_only()
    @app_commands.describe(
        idea="What you want to see, in your own words",
        size="Picture size (default: the server's)",
        quality="Higher quality takes longer and costs more (default: the server's)",
    )
    async def imagine(
        self,
        interaction: Interaction,
        idea: app_commands.Range[str, 1, MAX_IDEA_CHARS],
        size: str | None = None,
        quality: str | None = None,
    ) -> None:
        # Checked before anything is posted or spent: a refusal stays private.
        options = self.bot.images.options(size=size, quality=quality)
        request = self.bot.studio.new_session_request(
            idea=idea,
            owner_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id or 0,
            origin="imagine",
        )
        await _flows.start_imagine(self.bot, interaction, request, options)

    @imagine.autocomplete("size")
    async def size_choices(self, interaction: Interaction, typed: str) -> list[app_commands.Choice[str]]:
        """The sizes of the model this render will use, so a server's own model can drop in."""
        defaults = self.bot.images.defaults
        sizes = capabilities_for(defaults.model).sizes
        return _matching([(size_label(size), size) for size in sizes], typed, default=defaults.size)

    @imagine.autocomplete("quality")
    async def quality_choices(self, interaction: Interaction, typed: str) -> list[app_commands.Choice[str]]:
        defaults = self.bot.images.defaults
        qualities = quality_choices(capabilities_for(defaults.model))
        return _matching(
            [(quality.title(), quality) for quality in qualities], typed, default=defaults.quality
        )

    # -- replies --------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """The owner's message in a session thread, or reply to a version message, refines the prompt."""
        if message.author.bot or message.guild is None:
            return
        if message.type not in REFINABLE_MESSAGE_TYPES or not message.content.strip():
            return
        studio = self.bot.studio
        if isinstance(message.channel, discord.Thread):
            session = await studio.session_for_thread(message.channel.id)
        elif message.reference is not None and message.reference.message_id is not None:
            # Without a thread (Create Public Threads refused), replies to the version message refine.
            session = await studio.session_for_message(message.reference.message_id)
            if session is not None and session.thread_id is not None:
                return
        else:
            return
        if session is None or message.author.id != session.owner_id:
            return
        await _flows.refine_from_message(self.bot, message, session)

    # -- buttons and the modal (StudioActions) --------------------------------------------------

    async def generate_pressed(self, interaction: Interaction, session_id: int, version: int) -> None:
        await _flows.generate(self.bot, interaction, session_id, version)

    async def refine_pressed(self, interaction: Interaction, session_id: int) -> None:
        await _flows.open_refine_modal(self.bot, interaction, session_id)

    async def copy_pressed(self, interaction: Interaction, session_id: int, version: int) -> None:
        await _flows.copy_prompt(self.bot, interaction, session_id, version)

    async def refine_submitted(self, interaction: Interaction, session_id: int, instruction: str) -> None:
        await _flows.refine_from_modal(self.bot, interaction, session_id, instruction)


def _matching(choices: list[tuple[str, str]], typed: str, *, default: str) -> list[app_commands.Choice[str]]:
    """Choices whose label or value contains what was typed; the default first."""
    typed = typed.strip().lower()
    ordered = sorted(choices, key=lambda choice: choice[1] != default)
    return [
        app_commands.Choice(name=label, value=value)
        for label, value in ordered
        if typed in label.lower() or typed in value.lower()
    ][:AUTOCOMPLETE_LIMIT]
