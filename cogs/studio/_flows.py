"""What happens when a member acts in the studio: the flows shared by commands, buttons, the modal and replies.

Each thing a member sees is posted by exactly one function here ("post a version", "post a
picture"), through `bot.ui.delivery`'s single way out. A session's versions and pictures belong in
its thread whenever it has one.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.core.errors import RETRYABLE, MuralError
from bot.core.images import ImageOptions
from bot.core.queue import FinishedRender, JobEvent, RenderFailed, RenderRequest
from bot.core.studio import SessionRequest, check_owner
from bot.models import Refinement, Render, Session, Version
from bot.ui import delivery, layouts
from bot.ui.errors import report_error
from cogs.studio._buttons import RefineModal, result_view, version_view

if TYPE_CHECKING:
    from bot.app import MuralBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction[Any]


# -- versions ---------------------------------------------------------------------------------


async def post_version(
    bot: MuralBot,
    version: Version,
    *,
    interaction: Interaction | None = None,
    channel: discord.abc.Messageable | None = None,
    reply_to: discord.Message | None = None,
) -> discord.Message:
    """Post a version with its buttons (as the interaction's answer, or in `channel`) and remember where."""
    text = layouts.version_text(version)
    view = version_view(version.session_id, version.number)
    if interaction is not None:
        message = await delivery.respond(bot, interaction, text, view=view)
    else:
        assert channel is not None, "a version goes to an interaction or a channel"
        message = await delivery.send_in(bot, channel, text, view=view, reply_to=reply_to)
    await bot.studio.remember_message(version, message.id)
    return message


async def start_prompt(bot: MuralBot, interaction: Interaction, request: SessionRequest) -> None:
    """/prompt: v1 as the command's answer, then a thread on it."""
    await interaction.response.defer(thinking=True)
    session, first = await bot.studio.start_session(request)
    message = await post_version(bot, first, interaction=interaction)
    await open_thread(bot, interaction, session, message)


async def open_thread(
    bot: MuralBot, interaction: Interaction, session: Session, message: discord.Message
) -> None:
    """Open the session's thread on the v1 message; say so plainly when Discord will not allow it.

    The thread is created through the channel: a message returned for an interaction is a webhook
    message without guild information, on which discord.py cannot create a thread.
    """
    channel = interaction.channel
    if not isinstance(channel, discord.TextChannel):
        await _tell_privately(
            interaction, layouts.no_thread_text(missing_permission=False, channel_kind_unsupported=True)
        )
        return
    try:
        thread = await channel.create_thread(
            name=layouts.thread_name(session.idea), message=message, auto_archive_duration=1440
        )
    except discord.HTTPException as error:
        log.info("Could not open a thread for session %d: HTTP %s", session.id, error.status)
        text = layouts.no_thread_text(missing_permission=error.status == 403, channel_kind_unsupported=False)
        await _tell_privately(interaction, text)
        return
    await bot.studio.attach_thread(session, thread.id)
    try:
        await thread.send(layouts.thread_hint(session), allowed_mentions=layouts.NO_PINGS)
    except discord.HTTPException:
        log.info("Could not post the hint in thread %d", thread.id)


async def _tell_privately(interaction: Interaction, text: str) -> None:
    """A side note for the member; when the token is gone there is no private way left, so it is dropped."""
    try:
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=layouts.NO_PINGS)
    except discord.HTTPException as error:
        log.info("Could not send a private note (HTTP %s)", error.status)


async def refine_from_message(bot: MuralBot, message: discord.Message, session: Session) -> None:
    """A reply from the owner (in the thread, or to a version message) becomes the next version."""
    try:
        async with delivery.typing_if_allowed(message.channel):
            version = await bot.studio.refine(
                session.id, message.content, author_id=message.author.id, channel_id=message.channel.id
            )
        await post_version(bot, version, channel=message.channel, reply_to=message)
    except Exception as error:
        await report_error(
            bot, message.channel, error, where=f"Refinement of session {session.id}", reply_to=message
        )


async def open_refine_modal(bot: MuralBot, interaction: Interaction, session_id: int) -> None:
    session = await bot.studio.session(session_id)
    check_owner(session, interaction.user.id, "refine it")
    await interaction.response.send_modal(RefineModal(session.id))


async def refine_from_modal(
    bot: MuralBot, interaction: Interaction, session_id: int, instruction: str
) -> None:
    """The Refine modal: the new version goes to the session's thread when it has one, else answers here."""
    session = await bot.studio.session(session_id)
    check_owner(session, interaction.user.id, "refine it")
    if session.thread_id and interaction.channel_id != session.thread_id:
        await interaction.response.defer(thinking=True, ephemeral=True)
        version = await bot.studio.refine(
            session.id, instruction, author_id=interaction.user.id, channel_id=session.thread_id
        )
        thread = bot.get_partial_messageable(session.thread_id, guild_id=interaction.guild_id)
        message = await post_version(bot, version, channel=thread)
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(
                content=layouts.version_in_thread_text(version, message.jump_url)
            )
        return
    await interaction.response.defer(thinking=True)
    version = await bot.studio.refine(
        session.id,
        instruction,
        author_id=interaction.user.id,
        channel_id=interaction.channel_id or session.channel_id,
    )
    await post_version(bot, version, interaction=interaction)


async def copy_prompt(bot: MuralBot, interaction: Interaction, session_id: int, number: int) -> None:
    """The bare prompt, privately: a code block, or a file when it is too long for one message."""
    _, version = await bot.studio.version(session_id, number)
    block = layouts.copy_text(version)
    if block is not None:
        await interaction.response.send_message(block, ephemeral=True, allowed_mentions=layouts.NO_PINGS)
        return
    file = discord.File(io.BytesIO(version.prompt.encode()), filename=f"prompt-v{number}.txt")
    await interaction.response.send_message(
        layouts.copy_file_note(version), file=file, ephemeral=True, allowed_mentions=layouts.NO_PINGS
    )


# -- pictures ---------------------------------------------------------------------------------


async def start_imagine(
    bot: MuralBot, interaction: Interaction, request: SessionRequest, options: ImageOptions
) -> None:
    """/imagine: the prompt is written, then drawn, and the picture answers the command."""
    await interaction.response.defer(thinking=True)
    session, first = await bot.studio.start_session(request)
    await render_for_interaction(bot, interaction, session, first, options, with_prompt=True)


async def generate(bot: MuralBot, interaction: Interaction, session_id: int, number: int) -> None:
    session, version = await bot.studio.version(session_id, number)
    check_owner(session, interaction.user.id, "render its versions")
    options = bot.images.options()
    if session.thread_id and interaction.channel_id != session.thread_id:
        # v1 sits in the channel, but a session's pictures belong in its thread; progress stays private.
        await interaction.response.defer(thinking=True, ephemeral=True)
        thread = bot.get_partial_messageable(session.thread_id, guild_id=interaction.guild_id)
        await render_for_interaction(bot, interaction, session, version, options, post_to=thread)
        return
    await interaction.response.defer(thinking=True)
    await render_for_interaction(
        bot, interaction, session, version, options, with_prompt=session.origin == "imagine"
    )


async def render_for_interaction(
    bot: MuralBot,
    interaction: Interaction,
    session: Session,
    version: Version,
    options: ImageOptions,
    *,
    with_prompt: bool = False,
    post_to: discord.abc.Messageable | None = None,
) -> Render:
    """Render a version for a deferred interaction, showing progress, and post the picture as a file.

    The picture replaces the placeholder, or goes to `post_to` (the session's thread) with the
    placeholder turned into a pointer to it; if that channel refuses, the placeholder gets it after all.
    """
    progress = delivery.ProgressMessage(interaction)

    async def on_event(event: JobEvent) -> None:
        progress.show(layouts.progress_text(version.number, event))

    request = RenderRequest(
        session_id=session.id,
        version=version.number,
        prompt=version.prompt,
        requester_id=interaction.user.id,
        channel_id=interaction.channel_id or session.channel_id,
        options=options,
    )
    try:
        finished = await bot.jobs.render(request, on_event=on_event)
    except RenderFailed as failed:
        await progress.stop()
        await post_render_failure(bot, interaction, session, version, failed.error, with_prompt=with_prompt)
        return failed.record
    await progress.stop()
    await post_picture(bot, interaction, session, version, finished, with_prompt=with_prompt, post_to=post_to)
    return finished.record


async def post_render_failure(
    bot: MuralBot,
    interaction: Interaction,
    session: Session,
    version: Version,
    error: MuralError,
    *,
    with_prompt: bool,
) -> None:
    """A failed render keeps what was made: the prompt (with Copy) for /imagine, and Retry where it can help."""
    retry = "Retry" if isinstance(error, RETRYABLE) else None
    view = result_view(session.id, version.number, generate=retry, copy=with_prompt)
    text = layouts.render_failure_text(session, version, error, with_prompt=with_prompt)
    await delivery.respond(bot, interaction, text, view=view)


async def post_picture(
    bot: MuralBot,
    interaction: Interaction,
    session: Session,
    version: Version,
    finished: FinishedRender,
    *,
    with_prompt: bool,
    post_to: discord.abc.Messageable | None,
) -> None:
    """Post a finished picture as an uploaded file with its caption and buttons, and remember where."""
    image = finished.image
    caption = layouts.render_caption(session, version, image, with_prompt=with_prompt)
    view = result_view(session.id, version.number)
    limit = interaction.filesize_limit
    picture = {
        "filename": f"mural-{session.id}-v{version.number}",
        "description": layouts.alt_text(version.prompt),
    }
    message: discord.Message | None = None
    try:
        if post_to is not None:
            try:
                message = await delivery.send_picture(
                    lambda text, file: delivery.send_in(bot, post_to, text, file=file, view=view),
                    caption,
                    image.pictures[0],
                    limit,
                    **picture,
                )
            except discord.HTTPException as error:
                log.info("Could not post render %d in the thread (HTTP %s)", finished.record.id, error.status)
                caption = layouts.with_notice(layouts.thread_refused_picture_notice(), caption)
            else:
                with contextlib.suppress(discord.HTTPException):
                    await interaction.edit_original_response(
                        content=layouts.picture_in_thread_text(version, message.jump_url)
                    )
        if message is None:
            message = await delivery.send_picture(
                lambda text, file: delivery.respond(bot, interaction, text, view=view, file=file),
                caption,
                image.pictures[0],
                limit,
                **picture,
            )
    except discord.Forbidden:
        log.info("Render %d finished but the picture could not be uploaded (403)", finished.record.id)
        await delivery.respond(
            bot,
            interaction,
            layouts.upload_refused_text(version),
            view=result_view(session.id, version.number, generate="Retry"),
        )
        return
    await bot.jobs.remember_message(finished.record, channel_id=message.channel.id, message_id=message.id)


# -- after a restart --------------------------------------------------------------------------


async def report_interrupted_refinements(bot: MuralBot, refinements: list[Refinement]) -> None:
    """Tell each author that a restart cut off their instruction; the session is as it was before it."""
    for refinement in refinements:
        try:
            session = await bot.studio.session(refinement.session_id)
        except MuralError:
            continue
        channel = bot.get_partial_messageable(refinement.channel_id)
        text = layouts.interrupted_refinement_text(
            refinement.author_id, refinement.instruction, session.head_version
        )
        try:
            await delivery.send_in(bot, channel, text, view=version_view(session.id, session.head_version))
        except discord.HTTPException:
            log.warning("Could not report interrupted refinement %d", refinement.id, exc_info=True)


async def report_interrupted_renders(bot: MuralBot, renders: list[Render]) -> None:
    """Tell each owner that a restart cut their render off, with a button to try again."""
    for render in renders:
        channel = bot.get_partial_messageable(render.channel_id)
        text = layouts.interrupted_render_text(render.requester_id, render.version)
        try:
            await delivery.send_in(
                bot, channel, text, view=result_view(render.session_id, render.version, generate="Retry")
            )
        except discord.HTTPException:
            log.warning("Could not report interrupted render %d", render.id, exc_info=True)
