"""/settings: a server's own choices, for members with Manage Server.

With no options it shows the settings; each option given changes one. Every change is checked by the
core, applies at once, is confirmed privately, and is written to the audit channel when the
server has one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.access import DEFAULT_ACCESS, SESSION_ACCESS
from bot.core.budgets import dollars
from bot.core.errors import InvalidRequest
from bot.core.moderation import DEFAULT_MODERATION, MODERATION_LEVELS, FlagReport
from bot.models import ServerSettings
from bot.ui import gallery_texts, layouts

if TYPE_CHECKING:
    from bot.app import MuralBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction[Any]

ACCESS_CHOICES = [app_commands.Choice(name=label, value=value) for value, label in SESSION_ACCESS.items()]
MODERATION_CHOICES = [app_commands.Choice(name=level, value=level) for level in MODERATION_LEVELS]
ON_OFF = [app_commands.Choice(name=state, value=state) for state in ("on", "off")]
CLEARABLE = {
    "model": "image_model",
    "size": "image_size",
    "quality": "image_quality",
    "required_role": "required_role_id",
    "audit_channel": "audit_channel_id",
    "daily_pictures": "daily_pictures",
    "daily_spend": "daily_spend",
    "server_daily_spend": "server_daily_spend",
    "server_monthly_spend": "server_monthly_spend",
}
ROLE_LIMIT = "role_daily_pictures"
CLEAR_CHOICES = [
    app_commands.Choice(name=name.replace("_", " "), value=name) for name in (*CLEARABLE, ROLE_LIMIT)
]
MAX_PICTURES = 100_000
MAX_DOLLARS = 1_000_000
LABELS = {
    "image_model": "image model",
    "image_size": "default size",
    "image_quality": "default quality",
    "session_access": "who may refine and generate",
    "required_role_id": "required role",
    "moderation": "moderation",
    "audit_channel_id": "audit channel",
    "daily_pictures": "pictures per member per day",
    "daily_spend": "spend per member per day",
    "server_daily_spend": "server spend per day",
    "server_monthly_spend": "server spend per month",
    "gallery": "the gallery",
}


class Admin(commands.Cog):
    def __init__(self, bot: MuralBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.moderator.on_flagged = self.report_flag

    async def cog_unload(self) -> None:
        self.bot.moderator.on_flagged = None

    async def report_flag(self, report: FlagReport) -> None:
        """One audit line per stopped request: who, where, which categories; the text itself only at strict."""
        where = f" in <#{report.channel_id}>" if report.channel_id else ""
        line = (
            f"🚫 Moderation stopped a request by <@{report.user_id}>{where}: {', '.join(report.categories)}."
        )
        if report.level == "strict" and report.text:
            # Quoting escapes the text, which can double it: what is shown is clipped to fit one message.
            quoted = layouts.quote_block(layouts.clip(report.text, 1_500))
            line += "\n" + layouts.clip(quoted, layouts.MESSAGE_LIMIT - len(line) - 10)
        await self.audit(await self.bot.server_rules.settings(report.guild_id), line)

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
        daily_pictures="Pictures each member may make per day (0: no limit)",
        daily_spend="Dollars each member may spend per day (0: no limit)",
        server_daily_spend="Dollars the whole server may spend per day (0: no limit)",
        server_monthly_spend="Dollars the whole server may spend per month (0: no limit)",
        role="A role to give its own daily picture limit (with role_daily_pictures, or clear)",
        role_daily_pictures="Pictures per day for members with that role (0: no limit)",
        clear="Go back to the bot's default for one setting (role daily pictures: for the role given)",
        gallery="Show this server's pictures on the web gallery, each member only what they can see here",
    )
    @app_commands.choices(
        access=ACCESS_CHOICES, moderation=MODERATION_CHOICES, clear=CLEAR_CHOICES, gallery=ON_OFF
    )
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
        daily_pictures: app_commands.Range[int, 0, MAX_PICTURES] | None = None,
        daily_spend: app_commands.Range[float, 0.0, float(MAX_DOLLARS)] | None = None,
        server_daily_spend: app_commands.Range[float, 0.0, float(MAX_DOLLARS)] | None = None,
        server_monthly_spend: app_commands.Range[float, 0.0, float(MAX_DOLLARS)] | None = None,
        role: discord.Role | None = None,
        role_daily_pictures: app_commands.Range[int, 0, MAX_PICTURES] | None = None,
        clear: str | None = None,
        gallery: str | None = None,
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
                ("daily_pictures", daily_pictures),
                ("daily_spend", daily_spend),
                ("server_daily_spend", server_daily_spend),
                ("server_monthly_spend", server_monthly_spend),
                ("gallery", None if gallery is None else gallery == "on"),
            )
            if value is not None
        }
        if clear is not None and clear != ROLE_LIMIT:
            changes[CLEARABLE[clear]] = None
        role_change = _role_change(role, role_daily_pictures, clearing=clear == ROLE_LIMIT)
        if not changes and role_change is None:
            current = await self.bot.server_rules.settings(interaction.guild_id)
            await interaction.response.send_message(
                await self.describe(current), ephemeral=True, allowed_mentions=layouts.NO_PINGS
            )
            return
        updated = await self.bot.settings_changes.change(interaction.guild_id, changes)
        done = [LABELS[column] for column in changes]
        if role_change is not None:
            await self.bot.settings_changes.set_role_limit(interaction.guild_id, *role_change)
            done.append(f"the daily pictures of <@&{role_change[0]}>")
        summary = ", ".join(done)
        await interaction.response.send_message(
            f"✅ Changed {summary}; it applies now.\n{await self.describe(updated)}",
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
            for model in self.bot.render_options.allowed_models
            if typed.lower() in model.lower()
        ][:25]

    async def describe(self, settings: ServerSettings) -> str:
        """The server's settings, each with where it comes from (this server, or the bot's default)."""
        defaults = self.bot.render_options.defaults_for(settings)

        def origin(value: object) -> str:
            return "" if value is not None else " *(default)*"

        role = f"<@&{settings.required_role_id}>" if settings.required_role_id else "none: everyone"
        audit = f"<#{settings.audit_channel_id}>" if settings.audit_channel_id else "none"
        access = settings.session_access or DEFAULT_ACCESS
        lines = [
            "**Mural on this server**",
            f"Image model: `{defaults.model}`{origin(settings.image_model)}"
            f" (offered: {', '.join(self.bot.render_options.allowed_models)})",
            f"Default size: `{defaults.size}`{origin(settings.image_size)}",
            f"Default quality: `{defaults.quality}`{origin(settings.image_quality)}",
            f"Who may refine and generate: {SESSION_ACCESS[access]}{origin(settings.session_access)}",
            f"Required role: {role}",
            f"Moderation: `{settings.moderation or DEFAULT_MODERATION}`{origin(settings.moderation)}"
            + (
                ""
                if self.bot.moderator.available
                else " (unavailable: the OpenAI server has no moderation endpoint)"
            ),
            f"Audit channel: {audit}",
            gallery_texts.setting_line(settings.gallery, served=self.bot.gallery.enabled),
            *await self.limit_lines(settings),
        ]
        return layouts.clip("\n".join(lines), layouts.MESSAGE_LIMIT - 300)

    async def limit_lines(self, settings: ServerSettings) -> list[str]:
        """The budgets, each with where it comes from, and the roles with their own picture limit."""
        operator = self.bot.budgets.operator_limits
        role_limits = await self.bot.server_rules.role_limits(settings.guild_id)
        lines = [
            f"Pictures per member per day: {_amount(settings.daily_pictures, operator.member_daily_pictures)}",
            f"Spend per member per day: {_amount(settings.daily_spend, operator.member_daily_spend, money=True)}",
            "Server spend per day: "
            + _amount(settings.server_daily_spend, operator.server_daily_spend, money=True),
            "Server spend per month: "
            + _amount(settings.server_monthly_spend, operator.server_monthly_spend, money=True),
        ]
        if role_limits:
            roles = ", ".join(
                f"<@&{role}> {pictures or 'no limit'}" for role, pictures in sorted(role_limits.items())
            )
            lines.append(f"Role picture limits per day (the highest of a member's roles wins): {roles}")
        return lines

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


def _amount(own: float | None, default: float | None, *, money: bool = False) -> str:
    """A limit as the server sees it: its own value, or the bot's default marked as such; 0/None: none."""
    value = default if own is None else (own or None)
    shown = "no limit" if value is None else (dollars(value) if money else f"{int(value)}")
    return f"{shown}{' *(default)*' if own is None else ''}"


def _role_change(
    role: discord.Role | None, pictures: int | None, *, clearing: bool
) -> tuple[int, int | None] | None:
    """(role id, its daily pictures or None to remove it) when the command changes a role's limit."""
    if role is None:
        if pictures is not None or clearing:
            raise InvalidRequest("Name the role too: `role` with `role_daily_pictures` (or `clear`).")
        return None
    if pictures is None and not clearing:
        raise InvalidRequest("Give the role's `role_daily_pictures` (0: no limit), or `clear` it.")
    return role.id, None if clearing else pictures


async def setup(bot: MuralBot) -> None:
    await bot.add_cog(Admin(bot))
