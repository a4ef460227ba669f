"""/settings: a server's own choices, for members with Manage Server.

With no options it shows the settings; each option given changes one. Every change is checked by the
core's policy, applies at once, is confirmed privately, and is written to the audit channel when the
server has one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.policy import DEFAULT_ACCESS, DEFAULT_MODERATION, MODERATION_LEVELS, SESSION_ACCESS, FlagReport
from bot.models import ServerSettings
from bot.ui import layouts

if TYPE_CHECKING:
    from bot.app import MuralBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction[Any]

ACCESS_CHOICES = [app_commands.Choice(name=label, value=value) for value, label in SESSION_ACCESS.items()]
MODERATION_CHOICES = [app_commands.Choice(name=level, value=level) for level in MODERATION_LEVELS]
CLEARABLE = {
    "model": "image_model",
    "size": "image_size",
    "quality": "image_quality",
    "required_role": "required_role_id",
    "audit_channel": "audit_channel_id",
}
CLEAR_CHOICES = [app_commands.Choice(name=name.replace("_", " "), value=name) for name in CLEARABLE]
LABELS = {
    "image_model": "image model",
    "image_size": "default size",
    "image_quality": "default quality",
    "session_access": "who may refine and generate",
    "required_role_id": "required role",
    "moderation": "moderation",
    "audit_channel_id": "audit channel",
}


class Admin(commands.Cog):
    def __init__(self, bot: MuralBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.policy.on_flagged = self.report_flag

    async def cog_unload(self) -> None:
        self.bot.policy.on_flagged = None

    async def report_flag(self, report: FlagReport) -> None:
        """One audit line per stopped request: who, where, which categories; the text itself only at strict."""
        where = f" in <#{report.channel_id}>" if report.channel_id else ""
        line = (
            f"🚫 Moderation stopped a request by <@{report.user_id}>{where}: {', '.join(report.categories)}."
        )
        if report.level == "strict" and report.text:
            line += "\n" + layouts.quote_block(layouts.clip(report.text, 1_500))
        await self.audit(await self.bot.policy.settings(report.guild_id), line)

    @app_commands.command(name="settings", description="See or change how Mural works on this server")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.checks.has_permissions(manage_guild=True)
    @app_commands.describe(
        model="The image model pictures are drawn with (from those this bot offers)",
        size="Default picture size",
        quality="Default picture quality",
        access="Who may refine and generate in a session",
        required_role="Only members with this role may use Mural",
        moderation="How strictly requests are checked before anything is drawn",
        audit_channel="Where changes and refused requests are written down",
        clear="Go back to the bot's default for one setting",
    )
    @app_commands.choices(access=ACCESS_CHOICES, moderation=MODERATION_CHOICES, clear=CLEAR_CHOICES)
    async def settings(
        self,
        interaction: Interaction,
        model: str | None = None,
        size: str | None = None,
        quality: str | None = None,
        access: str | None = None,
        required_role: discord.Role | None = None,
        moderation: str | None = None,
        audit_channel: discord.TextChannel | None = None,
        clear: str | None = None,
    ) -> None:
        assert interaction.guild_id is not None  # guild_only
        changes: dict[str, Any] = {
            column: value
            for column, value in (
                ("image_model", model),
                ("image_size", size.lower() if size else None),
                ("image_quality", quality.lower() if quality else None),
                ("session_access", access),
                ("required_role_id", required_role.id if required_role else None),
                ("moderation", moderation),
                ("audit_channel_id", audit_channel.id if audit_channel else None),
            )
            if value is not None
        }
        if clear is not None:
            changes[CLEARABLE[clear]] = None
        if not changes:
            current = await self.bot.policy.settings(interaction.guild_id)
            await interaction.response.send_message(self.describe(current), ephemeral=True)
            return
        updated = await self.bot.policy.change(interaction.guild_id, changes)
        summary = ", ".join(LABELS[column] for column in changes)
        await interaction.response.send_message(
            f"✅ Changed {summary}; it applies now.\n{self.describe(updated)}",
            ephemeral=True,
            allowed_mentions=layouts.NO_PINGS,
        )
        log.info(
            "Settings of server %d changed by %d: %s", interaction.guild_id, interaction.user.id, summary
        )
        await self.audit(updated, f"⚙️ <@{interaction.user.id}> changed {summary}.")

    @settings.autocomplete("model")
    async def model_choices(self, interaction: Interaction, typed: str) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=model, value=model)
            for model in self.bot.policy.allowed_models
            if typed.lower() in model.lower()
        ][:25]

    def describe(self, settings: ServerSettings) -> str:
        """The server's settings, each with where it comes from (this server, or the bot's default)."""
        defaults = self.bot.policy.defaults_for(settings)

        def origin(value: object) -> str:
            return "" if value is not None else " *(default)*"

        role = f"<@&{settings.required_role_id}>" if settings.required_role_id else "none: everyone"
        audit = f"<#{settings.audit_channel_id}>" if settings.audit_channel_id else "none"
        access = settings.session_access or DEFAULT_ACCESS
        lines = [
            "**Mural on this server**",
            f"Image model: `{defaults.model}`{origin(settings.image_model)}"
            f" (offered: {', '.join(self.bot.policy.allowed_models)})",
            f"Default size: `{defaults.size}`{origin(settings.image_size)}",
            f"Default quality: `{defaults.quality}`{origin(settings.image_quality)}",
            f"Who may refine and generate: {SESSION_ACCESS[access]}{origin(settings.session_access)}",
            f"Required role: {role}",
            f"Moderation: `{settings.moderation or DEFAULT_MODERATION}`{origin(settings.moderation)}"
            + (
                ""
                if self.bot.policy.moderation_available
                else " (unavailable: the OpenAI server has no moderation endpoint)"
            ),
            f"Audit channel: {audit}",
        ]
        return "\n".join(lines)

    async def audit(self, settings: ServerSettings, text: str) -> None:
        """One line in the server's audit channel, if it has one; a refusal there never stops the change."""
        if settings.audit_channel_id is None:
            return
        channel = self.bot.get_partial_messageable(settings.audit_channel_id, guild_id=settings.guild_id)
        try:
            await channel.send(text, allowed_mentions=layouts.NO_PINGS)
        except discord.HTTPException as error:
            log.warning(
                "Could not write to the audit channel of server %d (HTTP %s)", settings.guild_id, error.status
            )


async def setup(bot: MuralBot) -> None:
    await bot.add_cog(Admin(bot))
