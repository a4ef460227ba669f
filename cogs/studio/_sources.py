"""Pictures read back from Discord: a finished render's pictures are on the message they were posted in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.core.ai import InputImage
from bot.core.errors import InvalidRequest
from bot.core.job_rows import SourcePicture
from bot.core.picture_files import input_image, read_reference
from bot.models import Render
from bot.ui import delivery

if TYPE_CHECKING:
    from bot.app import MuralBot


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
