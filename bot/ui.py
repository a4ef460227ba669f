"""What Mural's messages look like, within Discord's limits, and how errors reach a member.

Every text that can carry a member's or the model's words goes out with mentions disabled, so a
prompt that says "@everyone" is shown, never pinged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import unicodedata
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.errors import MuralError
from bot.jobs import JobUpdate
from bot.render import size_label

if TYPE_CHECKING:
    from bot.render import RenderedImage
    from bot.store import Session, Version

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
MESSAGE_LIMIT = 2_000
THREAD_NAME_LIMIT = 100
ALT_TEXT_LIMIT = 1_024
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """Shorten to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def one_line(text: str) -> str:
    """A label on one line, without zero-width or direction-override characters that garble the layout."""
    visible = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(visible.split())


def with_notice(first: str, second: str, *, after: bool = False) -> str:
    """Two texts as one message; the notice is dropped rather than break Discord's limit."""
    combined = f"{second}\n{first}" if after else f"{first}\n{second}"
    if len(combined) <= MESSAGE_LIMIT:
        return combined
    return second if not after else first


def quote_block(text: str) -> str:
    """Text shown as a block quote; escaped so the model's markdown cannot break the layout."""
    escaped = discord.utils.escape_markdown(text, as_needed=False)
    return "\n".join("> " + line if line else ">" for line in escaped.splitlines())


def fit_message(head: str, body: str, tail: str = "") -> str:
    """`head`, the quoted `body` and `tail` in one message, shortening the body to fit Discord's limit."""
    room = MESSAGE_LIMIT - len(head) - len(tail) - 2
    quoted = quote_block(body)
    if len(quoted) > room:
        # Shorten the raw text and quote again, so an escape or quote marker is never cut in half.
        raw = body
        while len(quoted) > room and raw:
            raw = raw[: max(0, len(raw) - max(20, len(quoted) - room))]
            quoted = quote_block(raw.rstrip() + ELLIPSIS)
    return "\n".join(part for part in (head, quoted, tail) if part)[:MESSAGE_LIMIT]


def thread_name(idea: str) -> str:
    name = one_line(idea) or "Mural prompt"
    return clip(name, THREAD_NAME_LIMIT)


def version_text(version: Version) -> str:
    head = f"**v{version.number}**"
    if version.instruction:
        head += f" · {discord.utils.escape_markdown(clip(one_line(version.instruction), 200))}"
    return fit_message(head, version.prompt)


def render_caption(session: Session, version: Version, image: RenderedImage, *, with_prompt: bool) -> str:
    """The text under a picture: who and what (with the prompt for /imagine), and any revised prompt."""
    details = f"{size_label(image.size)} · {image.quality} · {image.model}"
    notes = []
    if with_prompt:
        idea = discord.utils.escape_markdown(clip(one_line(session.idea), 200))
        head = f"**{idea}** — <@{session.owner_id}>"
        notes.append(f"-# v{version.number} · {details}")
    else:
        head = f"**v{version.number}** for <@{session.owner_id}> · {details}"
    if image.revised_prompt:
        revised = clip(one_line(discord.utils.escape_markdown(image.revised_prompt)), 600)
        notes.append(f"-# The model revised the prompt to: {revised}")
    tail = "\n".join(notes)
    if with_prompt:
        return fit_message(head, version.prompt, tail)
    return "\n".join(part for part in (head, tail) if part)[:MESSAGE_LIMIT]


def alt_text(prompt: str) -> str:
    return clip(one_line(prompt), ALT_TEXT_LIMIT)


def progress_text(version_number: int, update: JobUpdate) -> str:
    if update.stage == "queued":
        if update.own_render_running:
            return f"⏳ v{version_number} is queued behind your render that is still running."
        ahead = (
            f"{update.ahead} render{'s' if update.ahead != 1 else ''} ahead" if update.ahead else "next up"
        )
        return f"⏳ v{version_number} is queued ({ahead})."
    if update.stage == "retrying":
        wait = f" in {update.retry_in:.0f}s" if update.retry_in else ""
        return f"⏳ OpenAI is busy; retrying v{version_number}{wait}…"
    return f"🎨 Rendering v{version_number}…"


def error_text(error: MuralError) -> str:
    return f"⚠️ {error.user_message} `{error.code}`"


def describe_failure(error: BaseException) -> tuple[str, str]:
    """(text for the member, code for the log) for any exception that reached an interaction."""
    if isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError):
        error = error.__cause__ or error
    if isinstance(error, MuralError):
        return error_text(error), error.code
    if isinstance(error, app_commands.NoPrivateMessage):
        return "⚠️ Use this command in a server channel.", "E-DM"
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"⚠️ Slow down: try again in {error.retry_after:.0f}s.", "E-COOLDOWN"
    if isinstance(error, app_commands.MissingPermissions):
        return "⚠️ You need the Manage Server permission for that.", "E-PERMS"
    if isinstance(error, app_commands.BotMissingPermissions):
        missing = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
        return f"⚠️ I'm missing a permission here: {missing}. Ask an admin to grant it.", "E-BOT-PERMS"
    if isinstance(error, app_commands.CheckFailure):
        return "⚠️ You can't use that here.", "E-CHECK"
    if isinstance(error, discord.Forbidden):
        return (
            "⚠️ Discord refused my request: I'm missing a permission in this channel "
            "(Send Messages, Send Messages in Threads, Attach Files or Create Public Threads).",
            "E-DISCORD-403",
        )
    incident = "E-BUG-" + secrets.token_hex(3)
    return f"⚠️ Something went wrong on my side. Please try again. `{incident}`", incident


async def send_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member what went wrong, privately when possible, and log it under the same code."""
    text, code = describe_failure(error)
    if code.startswith("E-BUG") or code.startswith("E-DISCORD"):
        log.error("Interaction failed [%s]", code, exc_info=error)
    else:
        log.info("Interaction refused [%s]: %s", code, error)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)
        elif interaction.response.type in (
            discord.InteractionResponseType.deferred_channel_message,
            discord.InteractionResponseType.channel_message,
        ):
            # The "thinking…" placeholder is replaced, so nothing is left spinning.
            await interaction.edit_original_response(
                content=text, attachments=[], view=None, allowed_mentions=NO_PINGS
            )
        else:
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)
    except discord.HTTPException:
        log.warning("Could not deliver the error message [%s]", code, exc_info=True)


class ProgressMessage:
    """Shows progress in an interaction's placeholder without ever holding up the work.

    `show` only records the wanted text; one background task applies it, at most once per
    `min_interval`, because Discord limits message edits to about five per five seconds a channel.
    """

    def __init__(self, interaction: discord.Interaction, *, min_interval: float = 1.0) -> None:
        self._interaction = interaction
        self._min_interval = min_interval
        self._wanted: str | None = None
        self._shown: str | None = None
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def show(self, text: str) -> None:
        if self._stopped.is_set():
            return
        self._wanted = text
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._apply(), name="mural-progress")

    async def _apply(self) -> None:
        while (
            self._wanted != self._shown and not self._stopped.is_set() and not self._interaction.is_expired()
        ):
            text = self._wanted
            try:
                await self._interaction.edit_original_response(content=text, allowed_mentions=NO_PINGS)
            except discord.HTTPException:
                log.info("Progress edit failed; no more progress for this interaction", exc_info=True)
                return
            self._shown = text
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._min_interval)

    async def stop(self) -> None:
        """Let an edit in flight land, then stop, so progress never overwrites the result that follows."""
        self._stopped.set()
        if self._task is not None:
            await self._task
