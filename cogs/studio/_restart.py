"""After a restart: renders that waited in the queue run in their turn, on the message that showed them
waiting; renders cut off while being drawn are reported to their owners with Retry."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord

from bot.core.errors import SessionGone
from bot.core.job_rows import request_from_row
from bot.core.jobs import JobEvent, RenderRequest
from bot.models import Render
from bot.ui import delivery, layouts
from cogs.studio import _cards
from cogs.studio._pictures import render
from cogs.studio._sources import pictures_on_discord

if TYPE_CHECKING:
    from bot.app import MuralBot

log = logging.getLogger(__name__)


async def resume_waiting_renders(bot: MuralBot, records: Sequence[Render]) -> None:
    """Jobs a stop left queued run now, in their turn, each on the message that showed it waiting."""
    for record in records:
        try:
            session, version = await bot.studio.version(record.session_id, record.version)
            job = bot.render_queue.adopt(record, await _request_again(bot, record))
        except Exception as error:
            log.warning("Queued render %d cannot run after the restart", record.id, exc_info=True)
            await bot.render_queue.give_up(record, error)
            continue
        channel = bot.get_partial_messageable(record.message_channel_id or record.channel_id)
        surface = delivery.ChannelSurface(bot, channel, shown_id=record.message_id)
        waiting = layouts.progress_text(version.number, JobEvent("queued", render_id=record.id))
        try:
            # Shown before it may run: a job whose place Mural can no longer reach (a group DM, a
            # server it is not in, a deleted channel) is not drawn and paid for unseen.
            await surface.show(_cards.progress_card(waiting, cancel=record.id))
        except discord.HTTPException as error:
            log.warning(
                "Queued render %d cannot be shown after the restart (HTTP %s)", record.id, error.status
            )
            await bot.render_queue.give_up(
                record, SessionGone("its message cannot be reached after a restart")
            )
            continue
        bot.spawn(render(bot, None, surface, session, version, job), name=f"resumed-render-{record.id}")


async def _request_again(bot: MuralBot, record: Render) -> RenderRequest:
    """A stored job made whole again, its pictures read back from Discord."""
    return await request_from_row(
        record,
        studio=bot.studio,
        render_options=bot.render_options,
        render_record=bot.render_queue.render_record,
        source_picture=pictures_on_discord(bot),
    )


async def report_interrupted_renders(bot: MuralBot, renders: Sequence[Render]) -> None:
    """Tell each owner that a restart cut their render off, with a button to try again."""
    for record in renders:
        channel = bot.get_partial_messageable(record.channel_id)
        text = layouts.interrupted_render_text(record.requester_id, record.version)
        try:
            await delivery.send_in(bot, channel, view=_cards.retry_card(record, text))
        except discord.HTTPException:
            log.warning("Could not report interrupted render %d", record.id, exc_info=True)
