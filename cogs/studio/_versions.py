"""What happens to prompts: new sessions, refinements, Undo, Copy, /describe, /history, reports after a restart.

Each card is built once in `_cards` and goes out through `bot.ui.delivery`'s single way out. A
session's versions belong in its thread whenever it has one.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.core.access import check_owner
from bot.core.ai import InputImage
from bot.core.errors import InvalidRequest, MuralError
from bot.core.studio import SessionRequest
from bot.models import Refinement, Session, Version
from bot.ui import actions, delivery, layouts
from bot.ui.context import NoThread, place_of, reads_replies, why_no_thread
from bot.ui.errors import report_error
from cogs.studio import _cards
from cogs.studio._buttons import RefineModal

if TYPE_CHECKING:
    from bot.app import MuralBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction[Any]


# -- versions ---------------------------------------------------------------------------------


async def post_version(
    bot: MuralBot,
    session: Session,
    version: Version,
    *,
    interaction: Interaction | None = None,
    channel: discord.abc.Messageable | None = None,
    reply_to: discord.Message | None = None,
) -> discord.Message:
    """Post a version card (as the interaction's answer, or in `channel`) and remember where it is."""
    card = _cards.version_card(session, version)
    if interaction is not None:
        message = await delivery.InteractionSurface(bot, interaction).show(card)
    else:
        assert channel is not None, "a version goes to an interaction or a channel"
        message = await delivery.send_in(bot, channel, view=card, reply_to=reply_to)
    await bot.studio.remember_message(version, message.id)
    return message


async def start_prompt(bot: MuralBot, interaction: Interaction, request: SessionRequest) -> None:
    """/prompt: v1 as the command's answer, then a thread on it."""
    await interaction.response.defer(thinking=True)
    session, first = await bot.studio.start_session(request)
    actions.note(session=session.id, version=first.number)
    message = await post_version(bot, session, first, interaction=interaction)
    await open_thread(bot, interaction, session, message)


async def start_describe(bot: MuralBot, interaction: Interaction, image: InputImage) -> None:
    """/describe: the prompt that would reproduce a picture becomes v1 of a new session, with its thread."""
    await interaction.response.defer(thinking=True)
    session, first = await bot.studio.describe(
        image,
        owner_id=interaction.user.id,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id or 0,
    )
    actions.note(session=session.id, version=first.number)
    message = await post_version(bot, session, first, interaction=interaction)
    await open_thread(bot, interaction, session, message)


async def open_thread(
    bot: MuralBot, interaction: Interaction, session: Session, message: discord.Message
) -> None:
    """Open the session's thread on its first message; where there can be none, say why once, privately.

    Without a thread the session lives on its messages: the same buttons, Refine by modal, and replies
    to its versions where the bot receives them. The thread is created through the channel: a message
    returned for an interaction is a webhook message without guild information, on which discord.py
    cannot create a thread.
    """
    reason = why_no_thread(interaction)
    channel = interaction.channel
    thread: discord.Thread | None = None
    if reason is None and isinstance(channel, discord.TextChannel):
        try:
            thread = await channel.create_thread(
                name=layouts.thread_name(session.idea), message=message, auto_archive_duration=1440
            )
        except discord.HTTPException as error:
            log.info("Could not open a thread for session %d: HTTP %s", session.id, error.status)
            reason = "permission" if error.status == 403 else "refused"
    if thread is None:
        await tell_privately(interaction, no_thread_note(bot, reason or "channel-kind"))
        return
    await bot.studio.attach_thread(session, thread.id)
    try:
        await thread.send(
            layouts.thread_hint(session, reads_messages=bot.reads_messages), allowed_mentions=layouts.NO_PINGS
        )
    except discord.HTTPException:
        log.info("Could not post the hint in thread %d", thread.id)


def no_thread_note(bot: MuralBot, reason: NoThread) -> str:
    """Why this session has no thread and how to refine it, offering replies only where the bot gets them."""
    # A DM's messages always carry their text, intent or not.
    return layouts.no_thread_text(
        reason, reads_replies=reads_replies(reason), reads_messages=bot.reads_messages or reason == "dm"
    )


async def tell_privately(interaction: Interaction, text: str) -> None:
    """A side note for the member; when the token is gone there is no private way left, so it is dropped."""
    try:
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=layouts.NO_PINGS)
    except discord.HTTPException as error:
        log.info("Could not send a private note (HTTP %s)", error.status)


async def refine_from_message(
    bot: MuralBot, message: discord.Message, session: Session, instruction: str
) -> None:
    """A message from the owner (in the thread, or a reply to a version) becomes the next version.

    Written outside the session's thread (a reply to v1 in the channel), the version still goes to the
    thread, and the member gets a short answer where they wrote, pointing to it.
    """
    action = actions.begin_message(message, "reply", session=session.id)
    elsewhere = session.thread_id is not None and message.channel.id != session.thread_id
    try:
        async with delivery.typing_if_allowed(message.channel):
            version = await bot.studio.refine(
                session.id,
                instruction,
                author_id=message.author.id,
                channel_id=session.thread_id if elsewhere and session.thread_id else message.channel.id,
            )
        actions.note(version=version.number)
        if not elsewhere:
            await post_version(bot, session, version, channel=message.channel, reply_to=message)
            actions.succeeded(action)
            return
        posted = await post_version(bot, session, version, channel=session_thread(bot, session))
        if posted.channel.id == session.thread_id:
            await delivery.send_in(
                bot,
                message.channel,
                layouts.version_in_thread_text(version, posted.jump_url),
                reply_to=message,
            )
    except Exception as error:
        await report_error(
            bot, message.channel, error, where=f"Refinement of session {session.id}", reply_to=message
        )
    else:
        actions.succeeded(action)


async def open_refine_modal(bot: MuralBot, interaction: Interaction, session_id: int) -> None:
    session = await bot.studio.session(session_id)
    await bot.access.check_may_act(session, interaction.user.id, place_of(interaction), "refine it")
    await interaction.response.send_modal(RefineModal(session.id))


def elsewhere_than_thread(session: Session, interaction: Interaction) -> bool:
    """Pressed outside the session's thread (v1 sits in the channel), so the answer belongs in the thread."""
    return bool(session.thread_id) and interaction.channel_id != session.thread_id


def session_thread(bot: MuralBot, session: Session) -> discord.abc.Messageable:
    assert session.thread_id is not None
    return bot.get_partial_messageable(session.thread_id, guild_id=session.guild_id)


async def refine_from_modal(
    bot: MuralBot, interaction: Interaction, session_id: int, instruction: str
) -> None:
    """The Refine modal: the new version goes to the session's thread when it has one, else answers here."""
    session = await bot.studio.session(session_id)
    await bot.access.check_may_act(session, interaction.user.id, place_of(interaction), "refine it")
    if elsewhere_than_thread(session, interaction):
        assert session.thread_id is not None
        await interaction.response.defer(thinking=True, ephemeral=True)
        version = await bot.studio.refine(
            session.id, instruction, author_id=interaction.user.id, channel_id=session.thread_id
        )
        actions.note(version=version.number)
        message = await post_version(bot, session, version, channel=session_thread(bot, session))
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
    actions.note(version=version.number)
    await post_version(bot, session, version, interaction=interaction)


async def undo(bot: MuralBot, interaction: Interaction, session_id: int, number: int) -> None:
    """Undo: the head goes back to the parent, said where the session lives; nothing is deleted."""
    parent = await bot.studio.undo(session_id, number, user_id=interaction.user.id)
    session = await bot.studio.session(session_id)
    text = layouts.undo_text(parent)
    if elsewhere_than_thread(session, interaction):
        await interaction.response.send_message(text, ephemeral=True)
        with contextlib.suppress(discord.HTTPException):
            await delivery.send_in(bot, session_thread(bot, session), text)
        return
    await interaction.response.send_message(text, allowed_mentions=layouts.NO_PINGS)


async def copy_text(interaction: Interaction, prompt: str, filename: str) -> None:
    """The bare prompt, privately: a code block, or a file when it is too long for one message."""
    block = layouts.copy_text(prompt)
    if block is not None:
        await interaction.response.send_message(block, ephemeral=True, allowed_mentions=layouts.NO_PINGS)
        return
    file = discord.File(io.BytesIO(prompt.encode()), filename=filename)
    await interaction.response.send_message(
        layouts.copy_file_note(), file=file, ephemeral=True, allowed_mentions=layouts.NO_PINGS
    )


async def copy_version(bot: MuralBot, interaction: Interaction, session_id: int, number: int) -> None:
    _, version = await bot.studio.version(session_id, number)
    await copy_text(interaction, version.prompt, f"prompt-v{number}.txt")


# -- /history -----------------------------------------------------------------------------------


async def history(bot: MuralBot, interaction: Interaction) -> None:
    summaries = await bot.studio.recent_sessions(interaction.user.id)
    card = _cards.history_card(interaction.user.id, summaries, interaction.guild_id)
    await interaction.response.send_message(view=card, ephemeral=True)


async def repost(bot: MuralBot, interaction: Interaction, owner_id: int, session_id: int) -> None:
    """Post a session's current version here again, with working buttons."""
    session = await bot.studio.session(session_id)
    actions.note(session=session.id, version=session.head_version)
    check_owner(session, interaction.user.id, "post it again")
    if owner_id != interaction.user.id:
        raise InvalidRequest("That menu belongs to someone else's history.")
    _, head = await bot.studio.version(session.id, session.head_version)
    await interaction.response.send_message(
        view=_cards.version_card(session, head), allowed_mentions=layouts.NO_PINGS
    )
    message = await interaction.original_response()
    await bot.studio.remember_message(head, message.id)


# -- after a restart --------------------------------------------------------------------------


async def report_interrupted_refinements(bot: MuralBot, refinements: list[Refinement]) -> None:
    """Tell each author that a restart cut off their instruction; the session is as it was before it."""
    for refinement in refinements:
        try:
            session, head = await bot.studio.version(
                refinement.session_id, (await bot.studio.session(refinement.session_id)).head_version
            )
        except MuralError:
            continue
        channel = bot.get_partial_messageable(refinement.channel_id)
        text = layouts.interrupted_refinement_text(
            refinement.author_id, refinement.instruction, session.head_version
        )
        try:
            await delivery.send_in(bot, channel, text)
            await post_version(bot, session, head, channel=channel)
        except discord.HTTPException:
            log.warning("Could not report interrupted refinement %d", refinement.id, exc_info=True)
