"""What happens to pictures: rendering, Reroll, Cancel, Copy, Rephrase safely, Refine on an /imagine picture.
Changing a picture (Edit, replies to it, Edit with Mural) is `_edits`.

A job shows its progress, previews and result in one message (a `bot.ui.delivery.Surface`); a
session's pictures land in its thread whenever it has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import discord

from bot.core.access import Place, check_owner
from bot.core.ai import InputImage
from bot.core.errors import RETRYABLE, InvalidRequest, NotAllowed, SafetyRejected
from bot.core.images import ImageOptions, picture_from_bytes
from bot.core.job_rows import request_from_row
from bot.core.jobs import FinishedRender, Job, JobEvent, RenderCancelled, RenderFailed, RenderRequest
from bot.core.picture_files import input_image
from bot.core.studio import SessionRequest
from bot.models import Render, Session, Version
from bot.ui import actions, delivery, layouts
from bot.ui.context import place_of, place_of_message, why_no_thread
from cogs.gallery import keep_posted
from cogs.studio import _cards, _versions
from cogs.studio._sources import pictures_on_discord

if TYPE_CHECKING:
    from bot.app import MuralBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction[Any]


# -- pictures ---------------------------------------------------------------------------------


async def start_imagine(
    bot: MuralBot, interaction: Interaction, request: SessionRequest, options: ImageOptions, *, review: bool
) -> None:
    """/imagine: the prompt is written (or taken as is), then drawn; with review, shown first and nothing drawn."""
    await check_budget(bot, interaction, None if review else options, editing=request.reference is not None)
    await interaction.response.defer(thinking=True)
    await _draw_new_session(bot, interaction, request, options, review=review)


async def check_budget(
    bot: MuralBot,
    requester: Interaction | discord.Message,
    options: ImageOptions | None = None,
    *,
    editing: bool = False,
) -> None:
    """Refuse privately, before the command is answered or the chat model asked anything, what the
    budgets have no room for: the pictures `options` would draw, or (None) any more spending. Quick:
    the paid call itself checks exactly."""
    await bot.budgets.check(
        _place(requester),
        _author(requester).id,
        pictures=options.count if options else 0,
        cost=bot.images.expected_cost(options, editing=editing) if options else 0.0,
        quick=True,
    )


async def _reserve(bot: MuralBot, requester: Interaction | discord.Message, request: RenderRequest) -> Job:
    """Queue a job within its requester's budgets (refused with BudgetExceeded when it does not fit)."""
    place = _place(requester)
    limits = await bot.budgets.limits(place)
    job = await bot.render_queue.reserve(replace(request, guild_id=place.guild_id, limits=limits))
    actions.note(session=request.session_id, version=request.version, job=job.id)
    return job


def _place(requester: Interaction | discord.Message) -> Place:
    return place_of(requester) if isinstance(requester, discord.Interaction) else place_of_message(requester)


def _author(requester: Interaction | discord.Message) -> discord.abc.User:
    return requester.user if isinstance(requester, discord.Interaction) else requester.author


async def _draw_new_session(
    bot: MuralBot,
    interaction: Interaction,
    request: SessionRequest,
    options: ImageOptions,
    *,
    review: bool = False,
) -> None:
    """A new one-off session drawn as the (deferred) interaction's answer, from its reference if it has one."""
    session, first = await bot.studio.start_session(request)
    actions.note(session=session.id, version=first.number)
    if review:
        await _versions.post_version(bot, session, first, interaction=interaction)
        return
    reference = request.reference and input_image(request.reference)
    job = await _reserve(bot, interaction, _generate_request(session, first, interaction, options, reference))
    await render(bot, interaction, delivery.InteractionSurface(bot, interaction), session, first, job)


def _generate_request(
    session: Session,
    version: Version,
    interaction: Interaction,
    options: ImageOptions,
    reference: InputImage | None,
) -> RenderRequest:
    return RenderRequest(
        session_id=session.id,
        version=version.number,
        prompt=version.prompt,
        requester_id=interaction.user.id,
        channel_id=interaction.channel_id or session.channel_id,
        options=options,
        inputs=(reference,) if reference else (),
        with_reference=reference is not None,
    )


async def generate(bot: MuralBot, interaction: Interaction, session_id: int, number: int) -> None:
    session, version = await bot.studio.version(session_id, number)
    await bot.access.check_may_act(session, interaction.user.id, place_of(interaction), "render its versions")
    options = await bot.render_options.choose(session.guild_id, aspect=session.aspect)
    reference = await bot.studio.reference_for(session)
    request = _generate_request(session, version, interaction, options, reference and input_image(reference))
    await _render_where_it_belongs(bot, interaction, session, version, request)


async def _render_where_it_belongs(
    bot: MuralBot, interaction: Interaction, session: Session, version: Version, request: RenderRequest
) -> None:
    """A session's pictures land in its thread (the member gets a private pointer), else answer here.

    The job is queued before the press is answered, so a refusal (a budget) stays private."""
    job = await _reserve(bot, interaction, request)
    elsewhere = _versions.elsewhere_than_thread(session, interaction)
    try:
        await interaction.response.defer(thinking=True, ephemeral=elsewhere)
    except BaseException:
        await bot.render_queue.cancel(job.id)  # nobody would see it: it must not run or count
        raise
    if elsewhere:
        surface = delivery.ChannelSurface(bot, _versions.session_thread(bot, session))
        message = await render(bot, interaction, surface, session, version, job)
        # The private placeholder points at what the thread shows now: the picture, or why there is none.
        shown = message or surface.message
        if shown is not None:
            pointer = layouts.picture_in_thread_text if message else layouts.no_picture_in_thread_text
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(content=pointer(version, shown.jump_url))
        return
    await render(bot, interaction, delivery.InteractionSurface(bot, interaction), session, version, job)


async def render(
    bot: MuralBot,
    interaction: Interaction | None,
    surface: delivery.Surface,
    session: Session,
    version: Version,
    job: Job,
    *,
    limit: int | None = None,
) -> discord.Message | None:
    """Run a reserved job on `surface`: its place, progress and previews as they come, then the
    pictures, or what went wrong."""

    async def remember_where(message: discord.Message) -> None:
        await bot.render_queue.remember_message(
            job.record, channel_id=message.channel.id, message_id=message.id
        )

    progress = delivery.Progress(surface, tasks=bot.background, on_shown=remember_where)
    editing = job.request.kind == "edit"
    upload_limit = limit or (
        interaction.filesize_limit if interaction else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
    )

    async def on_event(event: JobEvent) -> None:
        text = layouts.progress_text(version.number, event)
        if event.preview is None:
            cancel = event.render_id if event.stage == "queued" else None
            progress.show(_cards.progress_card(text, cancel=cancel))
            return
        fitted, names = await asyncio.to_thread(
            delivery.fit_pictures, [picture_from_bytes(event.preview)], upload_limit, stem="preview"
        )
        progress.show(_cards.progress_card(text, names[0]), delivery.picture_files(fitted, names, "preview"))

    try:
        finished = await bot.render_queue.start(job, on_event=on_event).result()
    except RenderCancelled:
        actions.note(shown="cancelled")
        await progress.finish()
        await surface.show(_cards.cancelled_card(version.number))
        return None
    except RenderFailed as failed:
        actions.note(shown=failed.error.code)
        await progress.finish()
        with_prompt = session.origin == "imagine" and not editing
        texts = layouts.render_failure_texts(
            session, version, failed.error, with_prompt=with_prompt, editing=editing
        )
        card = _cards.failure_card(
            session,
            version,
            failed.record,
            texts,
            retry=isinstance(failed.error, RETRYABLE),
            copy=with_prompt,
            rephrase=isinstance(failed.error, SafetyRejected) and not editing,
        )
        await surface.show(card)
        return None
    await progress.finish()
    return await post_pictures(bot, surface, session, version, finished, upload_limit)


async def post_pictures(
    bot: MuralBot,
    surface: delivery.Surface,
    session: Session,
    version: Version,
    finished: FinishedRender,
    limit: int,
) -> discord.Message | None:
    """The finished pictures as uploaded files in one card, within the upload limit, remembered for Edit."""
    image, record = finished.image, finished.record
    stem = f"mural-{session.id}-{record.id}"
    with_prompt = session.origin == "imagine" and record.kind == "generate"
    for attempt in range(2):
        fitted, names = await asyncio.to_thread(delivery.fit_pictures, image.pictures, limit, stem=stem)
        card = _cards.picture_card(
            session,
            version,
            record,
            image,
            names,
            with_prompt=with_prompt,
            compressed=any(f.reencoded for f in fitted),
        )
        files = delivery.picture_files(fitted, names, layouts.alt_text(record.prompt or version.prompt))
        try:
            message = await surface.show(card, files)
        except discord.Forbidden:
            log.info("Render %d finished but the pictures could not be uploaded (403)", record.id)
            actions.note(shown="E-DISCORD-403")
            await surface.show(_cards.retry_card(record, layouts.upload_refused_text(version)))
            return None
        except discord.HTTPException as error:
            if error.status != 413 or attempt:
                raise
            log.info("Upload of render %d was too large; compressing further", record.id)
            limit = sum(len(f.data) for f in fitted) // 2
            continue
        await bot.render_queue.posted(finished, channel_id=message.channel.id, message_id=message.id)
        keep_posted(bot, message, record, image.pictures, record.prompt or version.prompt)
        return message
    return None


async def pressed_render(bot: MuralBot, render_id: int) -> Render:
    """The render a button or modal acts on; the member's action names its session and version."""
    record = await bot.render_queue.render_record(render_id)
    actions.note(session=record.session_id, version=record.version, render=record.id)
    return record


async def reroll(bot: MuralBot, interaction: Interaction, render_id: int) -> None:
    """The same job again: the same version (or the same edit of the same picture) with the same options.
    On a render that failed or was interrupted, the button says Retry, and so does the log."""
    record = await pressed_render(bot, render_id)
    if record.status in ("failed", "interrupted"):
        actions.note(name="retry")
    session, version = await bot.studio.version(record.session_id, record.version)
    await bot.access.check_may_act(
        session, interaction.user.id, place_of(interaction), "render its pictures again"
    )
    again = await request_from_row(
        record,
        studio=bot.studio,
        render_options=bot.render_options,
        render_record=bot.render_queue.render_record,
        source_picture=pictures_on_discord(bot),
    )
    # The same job, asked for by whoever pressed, answered where they pressed.
    request = replace(
        again, requester_id=interaction.user.id, channel_id=interaction.channel_id or session.channel_id
    )
    await _render_where_it_belongs(bot, interaction, session, version, request)


async def cancel_render(bot: MuralBot, interaction: Interaction, render_id: int) -> None:
    """Cancel on a queued job's card: its owner's alone; once the job is running, too late."""
    record = await pressed_render(bot, render_id)
    if interaction.user.id != record.requester_id:
        raise NotAllowed(layouts.not_your_render_text(record.requester_id))
    outcome = await bot.render_queue.cancel(render_id)
    if outcome == "cancelled":
        await interaction.response.defer()  # the job's own message turns into the cancelled card
    elif outcome == "cancelled-elsewhere":
        await interaction.response.edit_message(view=_cards.cancelled_card(record.version))
    else:
        current = await bot.render_queue.render_record(render_id)
        text = (
            layouts.already_cancelled_text(record.version)
            if current.status == "cancelled"
            else layouts.cancel_too_late_text(record.version)
        )
        await interaction.response.send_message(text, ephemeral=True)


async def open_session_thread(bot: MuralBot, interaction: Interaction, render_id: int) -> None:
    """`Refine` on an /imagine picture: a thread on the picture, its prompt as v1, the picture as where it stands."""
    record = await pressed_render(bot, render_id)
    session, head = await bot.studio.version(
        record.session_id, (await bot.studio.session(record.session_id)).head_version
    )
    check_owner(session, interaction.user.id, "refine it")
    if session.thread_id is not None:
        await interaction.response.send_message(
            layouts.thread_opened_text(f"<#{session.thread_id}>"),
            ephemeral=True,
            allowed_mentions=layouts.NO_PINGS,
        )
        return
    reason = why_no_thread(interaction)
    if reason is not None:
        # No thread can open here: the prompt comes back as a version card, with Refine, through this press.
        await interaction.response.defer(thinking=True)
        await _versions.post_version(bot, session, head, interaction=interaction)
        await _versions.tell_privately(interaction, _versions.no_thread_note(bot, reason))
        return
    channel = interaction.channel
    message = interaction.message
    if not isinstance(channel, discord.TextChannel) or message is None:
        raise InvalidRequest(_versions.no_thread_note(bot, "channel-kind"))
    await interaction.response.defer(thinking=True, ephemeral=True)
    try:
        thread = await channel.create_thread(
            name=layouts.thread_name(session.idea), message=message, auto_archive_duration=1440
        )
    except discord.HTTPException as error:
        reason = "permission" if error.status == 403 else "refused"
        raise InvalidRequest(_versions.no_thread_note(bot, reason)) from error
    await bot.studio.attach_thread(session, thread.id)
    session = await bot.studio.session(session.id)
    await delivery.send_in(bot, thread, layouts.thread_hint(session, reads_messages=bot.reads_messages))
    await _versions.post_version(bot, session, head, channel=thread)
    await interaction.edit_original_response(content=layouts.thread_opened_text(thread.jump_url))


async def copy_render(bot: MuralBot, interaction: Interaction, render_id: int) -> None:
    render = await pressed_render(bot, render_id)
    prompt = render.prompt
    if prompt is None:
        prompt = (await bot.studio.version(render.session_id, render.version))[1].prompt
    await _versions.copy_text(interaction, prompt, f"prompt-{render_id}.txt")


async def rephrase(bot: MuralBot, interaction: Interaction, render_id: int) -> None:
    """`Rephrase safely` on a refused picture: a compliant variant of its prompt becomes the next version."""
    record = await pressed_render(bot, render_id)
    session = await bot.studio.session(record.session_id)
    await bot.access.check_may_act(session, interaction.user.id, place_of(interaction), "rephrase it")
    elsewhere = _versions.elsewhere_than_thread(session, interaction)
    await interaction.response.defer(thinking=True, ephemeral=elsewhere)
    version = await bot.studio.rephrase_safely(
        session.id, record.version, author_id=interaction.user.id, channel_id=interaction.channel_id or 0
    )
    actions.note(version=version.number)
    if elsewhere:
        message = await _versions.post_version(
            bot, session, version, channel=_versions.session_thread(bot, session)
        )
        await interaction.edit_original_response(
            content=layouts.version_in_thread_text(version, message.jump_url)
        )
        return
    await _versions.post_version(bot, session, version, interaction=interaction)
