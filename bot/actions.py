"""What happens when a member acts: the flows shared by commands, buttons, the modal and thread replies.

Buttons are `DynamicItem`s whose `custom_id` carries the session and version; each press reloads
the rest from SQLite and checks who pressed, so buttons keep working after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

import discord

from bot import ui
from bot.errors import MuralError, NotAllowed, ServiceBusy, ServiceTimeout, ServiceUnavailable, SessionGone
from bot.imaging import FittedImage, fit_to_limit
from bot.jobs import JobUpdate, RenderFailed
from bot.studio import MAX_INSTRUCTION_CHARS

if TYPE_CHECKING:
    from bot.client import MuralBot
    from bot.render import RenderedImage
    from bot.store import Refinement, Render, Session, Version

log = logging.getLogger(__name__)

RETRYABLE = (ServiceBusy, ServiceUnavailable, ServiceTimeout)


def _bot(interaction: discord.Interaction) -> MuralBot:
    return interaction.client  # type: ignore[return-value]


async def _guarded(interaction: discord.Interaction, flow: Any) -> None:
    """Run a button or modal flow; any failure reaches the member instead of vanishing in a log."""
    try:
        await flow
    except Exception as error:
        await ui.send_error(interaction, error)


async def load_version(bot: MuralBot, session_id: int, number: int) -> tuple[Session, Version]:
    session = await bot.store.get_session(session_id)
    version = await bot.store.get_version(session_id, number) if session else None
    if session is None or version is None:
        raise SessionGone(f"session {session_id} v{number} not found")
    return session, version


def ensure_owner(session: Session, user: discord.abc.User, what: str) -> None:
    if user.id != session.owner_id:
        raise NotAllowed(
            f"Only <@{session.owner_id}>, who started this prompt, can {what}. "
            "Start your own with `/prompt` or `/imagine`."
        )


# -- buttons ------------------------------------------------------------------------------------


class _VersionButton:
    """What the version buttons share: a `mural:<action>:<session>:<version>` custom_id, parsed back on press."""

    action: ClassVar[str]
    label: ClassVar[str]
    emoji: ClassVar[str]
    style: ClassVar[discord.ButtonStyle] = discord.ButtonStyle.secondary

    def __init__(self, session_id: int, version: int, *, label: str | None = None) -> None:
        button = discord.ui.Button(
            label=label or self.label,
            emoji=self.emoji,
            style=self.style,
            custom_id=f"mural:{self.action}:{session_id}:{version}",
        )
        super().__init__(button)  # type: ignore[call-arg]
        self.session_id = session_id
        self.version = version

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> Any:
        return cls(int(match["session"]), int(match["version"]))


def _template(action: str) -> str:
    return rf"mural:{action}:(?P<session>[0-9]+):(?P<version>[0-9]+)"


class GenerateButton(_VersionButton, discord.ui.DynamicItem[discord.ui.Button], template=_template("gen")):
    action, label, emoji, style = "gen", "Generate", "🎨", discord.ButtonStyle.primary

    async def callback(self, interaction: discord.Interaction) -> None:
        await _guarded(interaction, generate_pressed(interaction, self.session_id, self.version))


class RefineButton(_VersionButton, discord.ui.DynamicItem[discord.ui.Button], template=_template("refine")):
    action, label, emoji = "refine", "Refine", "✏️"

    async def callback(self, interaction: discord.Interaction) -> None:
        await _guarded(interaction, refine_pressed(interaction, self.session_id))


class CopyButton(_VersionButton, discord.ui.DynamicItem[discord.ui.Button], template=_template("copy")):
    action, label, emoji = "copy", "Copy", "📋"

    async def callback(self, interaction: discord.Interaction) -> None:
        await _guarded(interaction, copy_pressed(interaction, self.session_id, self.version))


DYNAMIC_ITEMS = (GenerateButton, RefineButton, CopyButton)


def version_view(session_id: int, version: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(GenerateButton(session_id, version))
    view.add_item(RefineButton(session_id, version))
    view.add_item(CopyButton(session_id, version))
    return view


def result_view(session_id: int, version: int, *, label: str = "Reroll") -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(GenerateButton(session_id, version, label=label))
    view.add_item(CopyButton(session_id, version))
    return view


# -- versions -----------------------------------------------------------------------------------


async def send_to_thread(
    bot: MuralBot, thread: discord.abc.Messageable, content: str, **kwargs: Any
) -> discord.Message:
    """Send into a session thread; unarchive it if needed, else fall back to its parent channel with a note.

    Threads archive themselves after a day of quiet and moderators lock them; Discord refuses
    messages there (403, or 400 code 50083), but the member still deserves the answer.
    """
    try:
        return await thread.send(content, allowed_mentions=ui.NO_PINGS, **kwargs)
    except discord.HTTPException as error:
        if not isinstance(thread, discord.Thread) or error.status not in (400, 403):
            raise
        failure = error
    archived = failure.code == 50083
    if archived:
        try:
            await thread.edit(archived=False)
            return await thread.send(content, allowed_mentions=ui.NO_PINGS, **kwargs)
        except discord.HTTPException as error:
            failure = error
    reason = (
        "it is archived and I may not reopen it"
        if archived
        else "I'm missing the **Send Messages in Threads** permission there"
    )
    log.info(
        "Thread %d refused a message (HTTP %s, code %s); using its channel",
        thread.id,
        failure.status,
        failure.code,
    )
    parent = bot.get_partial_messageable(thread.parent_id, guild_id=thread.guild.id)
    kwargs.pop("reference", None)
    return await parent.send(
        ui.with_notice(f"⚠️ I can't post in {thread.mention}: {reason}. Here it is instead:", content),
        allowed_mentions=ui.NO_PINGS,
        **kwargs,
    )


async def post_version(
    bot: MuralBot,
    channel: discord.abc.Messageable,
    version: Version,
    *,
    reply_to: discord.Message | None = None,
) -> discord.Message:
    """Post a version with its buttons and remember the message, so the session can be found again."""
    message = await send_to_thread(
        bot,
        channel,
        ui.version_text(version),
        view=version_view(version.session_id, version.number),
        reference=reply_to.to_reference(fail_if_not_exists=False) if reply_to else None,
        mention_author=False,
    )
    await bot.store.set_version_message(version.id, message.id)
    return message


@contextlib.asynccontextmanager
async def typing_if_allowed(channel: discord.abc.Messageable) -> AsyncIterator[None]:
    """Show typing while the model works; a channel that refuses typing must not stop the work."""
    indicator = channel.typing()
    try:
        await indicator.__aenter__()
    except discord.HTTPException:
        yield
        return
    try:
        yield
    finally:
        await indicator.__aexit__(None, None, None)


async def refine_in_thread(bot: MuralBot, message: discord.Message, session: Session) -> None:
    """A thread reply from the owner becomes the next version, typed-at while the model works."""
    try:
        async with typing_if_allowed(message.channel):
            version = await bot.studio.refine(
                session.id, message.content, author_id=message.author.id, channel_id=message.channel.id
            )
        await post_version(bot, message.channel, version, reply_to=message)
    except Exception as error:
        text, code = ui.describe_failure(error)
        if isinstance(error, MuralError):
            log.info("Refinement of session %d refused [%s]: %s", session.id, code, error.detail)
        else:
            log.error("Refinement of session %d failed [%s]", session.id, code, exc_info=error)
        try:
            await send_to_thread(
                bot,
                message.channel,
                text,
                reference=message.to_reference(fail_if_not_exists=False),
                mention_author=False,
            )
        except discord.HTTPException:
            log.warning("Could not tell the member about failure [%s]", code)


class RefineModal(discord.ui.Modal):
    def __init__(self, session: Session) -> None:
        super().__init__(title="Refine the prompt", timeout=600)
        self.session = session
        self.instruction = discord.ui.TextInput(
            style=discord.TextStyle.paragraph,
            placeholder="make it night, add a fox, less busy…",
            max_length=MAX_INSTRUCTION_CHARS,
            custom_id="instruction",
        )
        self.add_item(discord.ui.Label(text="What should change?", component=self.instruction))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        bot = _bot(interaction)
        await interaction.response.defer(thinking=True)
        version = await bot.studio.refine(
            self.session.id,
            self.instruction.value,
            author_id=interaction.user.id,
            channel_id=interaction.channel_id or self.session.channel_id,
        )
        message = await interaction.edit_original_response(
            content=ui.version_text(version),
            view=version_view(version.session_id, version.number),
            allowed_mentions=ui.NO_PINGS,
        )
        await bot.store.set_version_message(version.id, message.id)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await ui.send_error(interaction, error)


async def refine_pressed(interaction: discord.Interaction, session_id: int) -> None:
    session = await _bot(interaction).store.get_session(session_id)
    if session is None:
        raise SessionGone(f"session {session_id} not found")
    ensure_owner(session, interaction.user, "refine it")
    await interaction.response.send_modal(RefineModal(session))


async def copy_pressed(interaction: discord.Interaction, session_id: int, number: int) -> None:
    _, version = await load_version(_bot(interaction), session_id, number)
    prompt = version.prompt.replace("```", "'''")
    block = f"```\n{prompt}\n```"
    if len(block) <= ui.MESSAGE_LIMIT:
        await interaction.response.send_message(block, ephemeral=True, allowed_mentions=ui.NO_PINGS)
    else:
        file = discord.File(io.BytesIO(version.prompt.encode()), filename=f"prompt-v{number}.txt")
        await interaction.response.send_message(
            f"v{number} is too long for one message; here it is as a file.", file=file, ephemeral=True
        )


# -- renders ------------------------------------------------------------------------------------


async def generate_pressed(interaction: discord.Interaction, session_id: int, number: int) -> None:
    bot = _bot(interaction)
    session, version = await load_version(bot, session_id, number)
    ensure_owner(session, interaction.user, "render its versions")
    if session.thread_id and interaction.channel_id != session.thread_id:
        # v1 sits in the channel, but a session's pictures belong in its thread; progress stays private.
        await interaction.response.defer(thinking=True, ephemeral=True)
        thread = bot.get_partial_messageable(session.thread_id, guild_id=interaction.guild_id)
        await render_for_interaction(bot, interaction, session, version, post_to=thread)
        return
    await interaction.response.defer(thinking=True)
    await render_for_interaction(bot, interaction, session, version, with_prompt=session.origin == "imagine")


def _picture(fitted: FittedImage, session: Session, version: Version) -> discord.File:
    return discord.File(
        io.BytesIO(fitted.data),
        filename=f"mural-{session.id}-v{version.number}.{fitted.extension}",
        description=ui.alt_text(version.prompt),
    )


async def send_picture(
    send: Callable[[str, discord.File], Awaitable[discord.Message]],
    caption: str,
    image: RenderedImage,
    limit: int,
    session: Session,
    version: Version,
) -> discord.Message:
    """Send the picture within the upload limit; if Discord still says too large (413), shrink once more."""
    fitted = await asyncio.to_thread(fit_to_limit, image.data, image.extension, image.mime, limit)
    for attempt in range(2):
        text = (
            ui.with_notice(caption, "-# Compressed to fit this server's upload limit.", after=True)
            if fitted.reencoded
            else caption
        )
        try:
            return await send(text, _picture(fitted, session, version))
        except discord.HTTPException as error:
            if error.status != 413 or attempt:
                raise
            log.info("Upload of %d bytes was too large; compressing further", len(fitted.data))
            fitted = await asyncio.to_thread(
                fit_to_limit, image.data, image.extension, image.mime, len(fitted.data) // 2
            )
    raise AssertionError("unreachable")


async def deliver(
    bot: MuralBot,
    interaction: discord.Interaction,
    content: str,
    *,
    view: discord.ui.View | None = None,
    file: discord.File | None = None,
) -> discord.Message:
    """Replace the interaction's placeholder; once its token has expired, post in the channel instead."""
    if not interaction.is_expired():
        try:
            return await interaction.edit_original_response(
                content=content, attachments=[file] if file else [], view=view, allowed_mentions=ui.NO_PINGS
            )
        except discord.HTTPException as error:
            if error.status not in (401, 404):
                raise
            log.info(
                "Interaction token no longer valid (HTTP %s); posting to the channel instead", error.status
            )
            if file is not None:
                file.reset()
    channel = interaction.channel or bot.get_partial_messageable(interaction.channel_id or 0)
    extra: dict[str, Any] = {"view": view} if view else {}
    if file is not None:
        extra["file"] = file
    return await channel.send(content, allowed_mentions=ui.NO_PINGS, **extra)


async def render_for_interaction(
    bot: MuralBot,
    interaction: discord.Interaction,
    session: Session,
    version: Version,
    *,
    size: str | None = None,
    quality: str | None = None,
    with_prompt: bool = False,
    post_to: discord.abc.Messageable | None = None,
) -> Render | None:
    """Render a version for a deferred interaction, showing progress, and post the picture as a file.

    The picture replaces the placeholder, or goes to `post_to` (the session's thread) with the
    placeholder turned into a pointer to it; if that channel refuses, the placeholder gets it after all.
    """
    progress = ui.ProgressMessage(interaction)

    async def on_update(update: JobUpdate) -> None:
        progress.show(ui.progress_text(version.number, update))

    try:
        finished = await bot.jobs.render(
            session_id=session.id,
            version=version.number,
            prompt=version.prompt,
            requester_id=interaction.user.id,
            channel_id=interaction.channel_id or session.channel_id,
            size=size,
            quality=quality,
            on_update=on_update,
        )
    except RenderFailed as failed:
        await progress.stop()
        error = failed.error
        view = (
            result_view(session.id, version.number, label="Retry") if isinstance(error, RETRYABLE) else None
        )
        await deliver(
            bot,
            interaction,
            f"⚠️ Couldn't render **v{version.number}**: {error.user_message} `{error.code}`",
            view=view,
        )
        return failed.record
    await progress.stop()
    image = finished.image
    caption = ui.render_caption(session, version, image, with_prompt=with_prompt)
    view = result_view(session.id, version.number)
    limit = interaction.filesize_limit
    message: discord.Message | None = None
    try:
        if post_to is not None:
            try:
                message = await send_picture(
                    lambda text, file: post_to.send(text, file=file, view=view, allowed_mentions=ui.NO_PINGS),
                    caption,
                    image,
                    limit,
                    session,
                    version,
                )
            except discord.HTTPException as error:
                log.info("Could not post render %d in the thread (HTTP %s)", finished.record.id, error.status)
                caption = ui.with_notice(
                    "⚠️ I couldn't post this in the thread (I need **Send Messages in Threads** and **Attach Files** "
                    "there), so here it is, just for you:",
                    caption,
                )
            else:
                with contextlib.suppress(discord.HTTPException):
                    await interaction.edit_original_response(
                        content=f"🖼️ v{version.number} is in the thread: {message.jump_url}"
                    )
        if message is None:
            message = await send_picture(
                lambda text, file: deliver(bot, interaction, text, view=view, file=file),
                caption,
                image,
                limit,
                session,
                version,
            )
    except discord.Forbidden:
        log.info("Render %d finished but the picture could not be uploaded (403)", finished.record.id)
        await deliver(
            bot,
            interaction,
            f"⚠️ I drew **v{version.number}** but can't upload pictures here: I'm missing the **Attach Files** "
            "permission. Ask an admin to grant it, then press Retry.",
            view=result_view(session.id, version.number, label="Retry"),
        )
        return finished.record
    await bot.store.set_render_message(finished.record.id, message.id)
    return finished.record


async def report_interrupted_refinements(bot: MuralBot, refinements: list[Refinement]) -> None:
    """Tell each author that a restart cut off their instruction; the session is as it was before it."""
    for refinement in refinements:
        session = await bot.store.get_session(refinement.session_id)
        if session is None:
            continue
        channel = bot.get_partial_messageable(refinement.channel_id)
        quoted = discord.utils.escape_markdown(ui.clip(ui.one_line(refinement.instruction), 200))
        try:
            await channel.send(
                f"⚠️ <@{refinement.author_id}>, I restarted while working on “{quoted}”, so it was not applied. "
                f"The prompt is still at **v{session.head_version}**: send it again, or press Refine.",
                view=version_view(session.id, session.head_version),
                allowed_mentions=ui.NO_PINGS,
            )
        except discord.HTTPException:
            log.warning("Could not report interrupted refinement %d", refinement.id, exc_info=True)


async def report_interrupted_renders(bot: MuralBot, renders: list[Render]) -> None:
    """Tell each owner that a restart cut their render off, with a button to try again."""
    for render in renders:
        channel = bot.get_partial_messageable(render.channel_id)
        try:
            await channel.send(
                f"⚠️ <@{render.requester_id}>, your render of **v{render.version}** was interrupted "
                "when I restarted. Press Retry to render it again.",
                view=result_view(render.session_id, render.version, label="Retry"),
                allowed_mentions=ui.NO_PINGS,
            )
        except discord.HTTPException:
            log.warning("Could not report interrupted render %d", render.id, exc_info=True)
