"""What happens to pictures: rendering, Reroll, Edit and replies that change a picture, references,
Edit with Mural, Refine on an /imagine picture.

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
from bot.core.job_rows import SourcePicture, request_from_row
from bot.core.jobs import FinishedRender, Job, JobEvent, RenderCancelled, RenderFailed, RenderRequest
from bot.core.picture_files import check_reference_size, input_image, read_reference
from bot.core.studio import SessionRequest
from bot.models import Render, Session, Version
from bot.ui import actions, delivery, layouts
from bot.ui.context import place_of, place_of_message, why_no_thread
from bot.ui.errors import report_error
from cogs.studio import _cards, _versions
from cogs.studio._buttons import EditModal, PictureEditModal

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
        await bot.render_queue.remember_message(record, channel_id=message.channel.id, message_id=message.id)
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


# -- edits: change the picture itself ---------------------------------------------------------


async def open_edit_modal(bot: MuralBot, interaction: Interaction, render_id: int, picture: int) -> None:
    record = await pressed_render(bot, render_id)
    session = await bot.studio.session(record.session_id)
    await bot.access.check_may_act(session, interaction.user.id, place_of(interaction), "edit its pictures")
    await interaction.response.send_modal(EditModal(render_id, picture))


def _edit_request(
    session: Session,
    version: Version,
    requester: Interaction | discord.Message,
    options: ImageOptions,
    prompt: str,
    source: InputImage,
    source_render_id: int,
    source_index: int,
    instruction: str | None,
) -> RenderRequest:
    author = requester.user if isinstance(requester, discord.Interaction) else requester.author
    return RenderRequest(
        session_id=session.id,
        version=version.number,
        prompt=prompt,
        requester_id=author.id,
        channel_id=requester.channel.id if requester.channel else session.channel_id,
        options=ImageOptions(model=options.model, size=options.size, quality=options.quality, count=1),
        kind="edit",
        inputs=(source,),
        source_render_id=source_render_id,
        source_index=source_index,
        instruction=instruction,
    )


def pictures_on_discord(bot: MuralBot) -> SourcePicture:
    """Where a finished render's pictures are: on the message they were posted in."""

    async def read(record: Render, index: int) -> InputImage:
        return await source_picture(bot, record, index, None)

    return read


async def source_picture(
    bot: MuralBot, record: Render, index: int, shown: discord.Message | None
) -> InputImage:
    """The bytes of picture `index` of a finished render, read back from its message on Discord."""
    message = shown if shown is not None and shown.id == record.message_id else None
    if message is None:
        if record.message_id is None:
            raise InvalidRequest("That picture was never posted, so there is nothing to edit.")
        channel = bot.get_partial_messageable(record.message_channel_id or record.channel_id)
        try:
            message = await channel.fetch_message(record.message_id)
        except (discord.Forbidden, discord.NotFound) as error:
            # Deleted, or where Mural cannot read by itself (a group DM, a server it was not added to).
            raise InvalidRequest(
                "I can't read that picture's message from here, so I can't start from it. "
                "Press Edit on the picture itself instead."
            ) from error
    pictures = delivery.pictures_in(message)
    if not 1 <= index <= len(pictures):
        raise InvalidRequest("That picture is no longer on its message, so it cannot be edited.")
    picture = pictures[index - 1]
    return input_image(read_reference(picture.filename, await bot.http.get_from_cdn(picture.url)))


async def edit_picture(
    bot: MuralBot,
    requester: Interaction | discord.Message,
    surface: delivery.Surface,
    record: Render,
    index: int,
    change: str,
    shown: discord.Message | None,
    options: ImageOptions,
) -> None:
    """Change one picture by an instruction: the chat model writes the edit prompt, the edit endpoint
    draws it with `options` (see `_edit_options`)."""
    session, version = await bot.studio.version(record.session_id, record.version)
    author, place = _author(requester), _place(requester)
    await bot.access.check_may_act(session, author.id, place, "edit its pictures")
    source = await source_picture(bot, record, index, shown)
    prompt = await bot.studio.edit_prompt(
        session, record.prompt or version.prompt, change, user_id=author.id, channel_id=place.channel_id
    )
    request = _edit_request(session, version, requester, options, prompt, source, record.id, index, change)
    job = await _reserve(bot, requester, request)
    interaction = requester if isinstance(requester, discord.Interaction) else None
    await render(bot, interaction, surface, session, version, job)


async def edit_submitted(
    bot: MuralBot, interaction: Interaction, render_id: int, index: int, change: str
) -> None:
    """The Edit modal: the result is a new picture card in the same place."""
    record = await pressed_render(bot, render_id)
    options = await _edit_options(bot, interaction, record)
    await interaction.response.defer(thinking=True)
    surface = delivery.InteractionSurface(bot, interaction)
    await edit_picture(bot, interaction, surface, record, index, change, interaction.message, options)


async def _edit_options(
    bot: MuralBot, requester: Interaction | discord.Message, record: Render
) -> ImageOptions:
    """An edit of a picture draws with that picture's options, once the budgets have room for it."""
    options = await bot.render_options.repeat(
        record.guild_id, model=record.model, size=record.size, quality=record.quality
    )
    await check_budget(bot, requester, options, editing=True)
    return options


async def edit_from_reply(bot: MuralBot, message: discord.Message, record: Render, change: str) -> None:
    """A reply to a picture changes that picture; the result answers the reply."""
    action = actions.begin_message(
        message, "reply-edit", session=record.session_id, version=record.version, render=record.id
    )
    try:
        if record.n > 1:
            # A reply cannot say which of several pictures it means; the numbered buttons can.
            raise InvalidRequest(layouts.which_picture_text(record.n))
        options = await _edit_options(bot, message, record)
        surface = delivery.ChannelSurface(bot, message.channel, reply_to=message)
        await edit_picture(bot, message, surface, record, 1, change, None, options)
    except Exception as error:
        await report_error(bot, message.channel, error, where=f"Edit of render {record.id}", reply_to=message)
    else:
        actions.succeeded(action)


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


# -- Edit with Mural (a message's own picture) -------------------------------------------------


async def open_picture_edit(interaction: Interaction, message: discord.Message) -> None:
    """The message menu: find its picture, check it cheaply, and ask what should change."""
    pictures = delivery.pictures_in(message)
    if not pictures:
        raise InvalidRequest(
            "That message has no picture I can edit. Use it on a message with a PNG, JPEG or WebP image."
        )
    if pictures[0].size is not None:
        check_reference_size(pictures[0].filename, pictures[0].size)
    await interaction.response.send_modal(PictureEditModal(pictures[0]))


async def picture_edit_submitted(
    bot: MuralBot, interaction: Interaction, source: delivery.PictureSource, change: str
) -> None:
    """The picture becomes the reference of a new session; the change is drawn from it and posted here."""
    options = await bot.render_options.choose(interaction.guild_id)
    await check_budget(bot, interaction, options, editing=True)
    await interaction.response.defer(thinking=True)
    reference = read_reference(source.filename, await bot.http.get_from_cdn(source.url))
    request = bot.studio.new_session_request(
        idea=change,
        owner_id=interaction.user.id,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id or 0,
        origin="imagine",
        raw=True,
        reference=reference,
    )
    await _draw_new_session(bot, interaction, request, options)


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
