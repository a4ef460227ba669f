"""Changing a picture itself: Edit on a picture, a reply to it, and the message menu Edit with Mural. The
change is drawn by the edit endpoint from the picture, read back from Discord (`_sources`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.core.ai import InputImage
from bot.core.errors import InvalidRequest
from bot.core.images import ImageOptions
from bot.core.jobs import RenderRequest
from bot.core.picture_files import check_reference_size, read_reference
from bot.models import Render, Session, Version
from bot.ui import actions, delivery, layouts
from bot.ui.context import place_of
from bot.ui.errors import report_error
from cogs.studio._buttons import EditModal, PictureEditModal
from cogs.studio._pictures import (
    _author,
    _draw_new_session,
    _place,
    _reserve,
    check_budget,
    pressed_render,
    render,
)
from cogs.studio._sources import source_picture

if TYPE_CHECKING:
    from bot.app import MuralBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction[Any]


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
