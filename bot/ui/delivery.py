"""One way out for every message Mural sends, with the fall-backs Discord makes necessary.

Order of preference: the interaction's own response; once its token has expired (15 minutes, or
Discord answers 401/404), the channel or thread directly; when a thread refuses (archived, locked,
no permission), its parent channel with a note. Progress edits are throttled, and a picture is
re-encoded until it fits the upload limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import discord

from bot.core.images import Picture
from bot.core.imaging import FittedImage, fit_to_limit
from bot.ui.layouts import NO_PINGS, compressed_notice, thread_refused_notice, with_notice

log = logging.getLogger(__name__)

TOKEN_GONE = (401, 404)


def channel_of(client: discord.Client, interaction: discord.Interaction[Any]) -> discord.abc.Messageable:
    channel = interaction.channel
    if isinstance(channel, discord.abc.Messageable):
        return channel
    return client.get_partial_messageable(interaction.channel_id or 0, guild_id=interaction.guild_id)


async def send_in(
    client: discord.Client,
    channel: discord.abc.Messageable,
    content: str,
    *,
    reply_to: discord.Message | None = None,
    **kwargs: Any,
) -> discord.Message:
    """Send into a channel or session thread; unarchive it if needed, else fall back to its parent.

    Threads archive themselves after a day of quiet and moderators lock them; Discord refuses
    messages there (403, or 400 code 50083), but the member still deserves the answer.
    """
    reference = reply_to.to_reference(fail_if_not_exists=False) if reply_to else None
    extra: dict[str, Any] = {"reference": reference, "mention_author": False} if reference else {}
    try:
        return await channel.send(content, allowed_mentions=NO_PINGS, **extra, **kwargs)
    except discord.HTTPException as error:
        if not isinstance(channel, discord.Thread) or error.status not in (400, 403):
            raise
        failure = error
    archived = failure.code == 50083
    if archived:
        try:
            await channel.edit(archived=False)
            return await channel.send(content, allowed_mentions=NO_PINGS, **extra, **kwargs)
        except discord.HTTPException as error:
            failure = error
    log.info(
        "Thread %d refused a message (HTTP %s, code %s); using its channel",
        channel.id,
        failure.status,
        failure.code,
    )
    parent = client.get_partial_messageable(channel.parent_id, guild_id=channel.guild.id)
    _rewind(kwargs.get("file"))
    return await parent.send(
        with_notice(thread_refused_notice(channel.mention, archived=archived), content),
        allowed_mentions=NO_PINGS,
        **kwargs,
    )


def _rewind(file: discord.File | None) -> None:
    """A file that failed to send once is read again from the start on the next try."""
    if file is not None:
        file.reset()


async def respond(
    client: discord.Client,
    interaction: discord.Interaction[Any],
    content: str,
    *,
    view: discord.ui.View | None = None,
    file: discord.File | None = None,
) -> discord.Message:
    """Replace the interaction's placeholder; once its token has expired, post in the channel instead."""
    if not interaction.is_expired():
        try:
            return await interaction.edit_original_response(
                content=content, attachments=[file] if file else [], view=view, allowed_mentions=NO_PINGS
            )
        except discord.HTTPException as error:
            if error.status not in TOKEN_GONE:
                raise
            log.info(
                "Interaction token no longer valid (HTTP %s); posting to the channel instead", error.status
            )
            _rewind(file)
    extra: dict[str, Any] = {"view": view} if view else {}
    if file is not None:
        extra["file"] = file
    return await send_in(client, channel_of(client, interaction), content, **extra)


async def reply_privately(interaction: discord.Interaction[Any], content: str) -> None:
    """Answer only the member where the interaction allows it; after its token expired, in the channel."""
    try:
        if interaction.is_expired():
            raise _TokenGone
        if not interaction.response.is_done():
            await interaction.response.send_message(content, ephemeral=True, allowed_mentions=NO_PINGS)
        elif interaction.response.type in (
            discord.InteractionResponseType.deferred_channel_message,
            discord.InteractionResponseType.channel_message,
        ):
            # The "thinking…" placeholder is replaced, so nothing is left spinning.
            await interaction.edit_original_response(
                content=content, attachments=[], view=None, allowed_mentions=NO_PINGS
            )
        else:
            await interaction.followup.send(content, ephemeral=True, allowed_mentions=NO_PINGS)
        return
    except discord.HTTPException as error:
        if error.status not in TOKEN_GONE:
            raise
    except _TokenGone:
        pass
    log.info("Interaction token gone; telling member %d in the channel", interaction.user.id)
    await send_in(
        interaction.client, channel_of(interaction.client, interaction), f"<@{interaction.user.id}> {content}"
    )


class _TokenGone(Exception):
    pass


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


async def send_picture(
    send: Callable[[str, discord.File], Awaitable[discord.Message]],
    caption: str,
    image: Picture,
    limit: int,
    *,
    filename: str,
    description: str,
) -> discord.Message:
    """Send the picture within the upload limit; if Discord still says too large (413), shrink once more."""
    fitted = await asyncio.to_thread(fit_to_limit, image.data, image.extension, image.mime, limit)
    for attempt in range(2):
        text = with_notice(caption, compressed_notice(), after=True) if fitted.reencoded else caption
        try:
            return await send(text, _picture_file(fitted, filename, description))
        except discord.HTTPException as error:
            if error.status != 413 or attempt:
                raise
            log.info("Upload of %d bytes was too large; compressing further", len(fitted.data))
            fitted = await asyncio.to_thread(
                fit_to_limit, image.data, image.extension, image.mime, len(fitted.data) // 2
            )
    raise AssertionError("unreachable")


def _picture_file(fitted: FittedImage, filename: str, description: str) -> discord.File:
    return discord.File(
        io.BytesIO(fitted.data), filename=f"{filename}.{fitted.extension}", description=description
    )


class ProgressMessage:
    """Shows progress in an interaction's placeholder without ever holding up the work.

    `show` only records the wanted text; one background task applies it, at most once per
    `min_interval`, because Discord limits message edits to about five per five seconds a channel.
    """

    def __init__(self, interaction: discord.Interaction[Any], *, min_interval: float = 1.0) -> None:
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
