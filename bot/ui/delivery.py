"""One way out for every message Mural sends, with the fall-backs Discord makes necessary.

Order of preference: the interaction's own response; once its token has expired (15 minutes, or
Discord answers 401/404), the channel or thread directly; when a thread refuses (archived, locked,
no permission), its parent channel with a note. A job shows itself on one `Surface` — progress,
previews, then the result, all in the same message — with edits throttled to what Discord allows,
and pictures re-encoded until they fit the upload limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import discord
import yarl

from bot.core.errors import MuralError
from bot.core.images import Picture
from bot.core.picture_files import FittedImage, fit_to_limit
from bot.core.tasks import TaskOwner
from bot.ui.context import bot_is_present
from bot.ui.layouts import NO_PINGS, notice_card, thread_refused_notice

log = logging.getLogger(__name__)

T = TypeVar("T")

TOKEN_GONE = (401, 404)
# Discord's code for a message sent to, or edited in, an archived thread.
ARCHIVED_THREAD = 50083
# Discord allows about five message edits per five seconds in a channel.
EDIT_INTERVAL = 1.0


def channel_of(client: discord.Client, interaction: discord.Interaction[Any]) -> discord.abc.Messageable:
    channel = interaction.channel
    if isinstance(channel, discord.abc.Messageable):
        return channel
    return client.get_partial_messageable(interaction.channel_id or 0, guild_id=interaction.guild_id)


def _rewind(files: Sequence[discord.File]) -> None:
    """Files that failed to send once are read again from the start on the next try."""
    for file in files:
        file.reset()


def _message_fields(
    content: str | None, view: discord.ui.LayoutView | None, files: Sequence[discord.File]
) -> dict[str, Any]:
    """A Components v2 card carries no content; a plain message carries no v2 card."""
    fields: dict[str, Any] = {"allowed_mentions": NO_PINGS}
    if content is not None:
        fields["content"] = content
    if view is not None:
        fields["view"] = view
    if files:
        fields["files"] = list(files)
    return fields


async def send_in(
    client: discord.Client,
    channel: discord.abc.Messageable,
    content: str | None = None,
    *,
    view: discord.ui.LayoutView | None = None,
    files: Sequence[discord.File] = (),
    reply_to: discord.Message | None = None,
) -> discord.Message:
    """Send into a channel or session thread; reopen the thread if needed, else fall back to its parent.

    Threads archive themselves after a day of quiet and moderators lock them; Discord refuses
    messages there (403, or 400 code 50083), but the member still deserves the answer.
    """
    fields = _message_fields(content, view, files)
    if reply_to is not None:
        fields.update(reference=reply_to.to_reference(fail_if_not_exists=False), mention_author=False)
    try:
        return await _in_open_thread(client, channel, lambda: channel.send(**fields), files)
    except ThreadShut as shut:
        return await send_beside(client, shut, content, view=view, files=files)


class ThreadShut(Exception):
    """A thread refused a message or an edit (archived and locked, or no permission) and stays shut to Mural."""

    def __init__(self, thread: discord.Thread, *, archived: bool) -> None:
        super().__init__(f"thread {thread.id} refused the message")
        self.thread = thread
        self.archived = archived


def _refused_by_thread(error: discord.HTTPException) -> bool:
    return error.code == ARCHIVED_THREAD or error.status == 403


async def _thread_behind(client: discord.Client, channel: Any) -> discord.Thread | None:
    """The thread a message went to, when it is one (a partial channel is looked up: its parent is needed)."""
    if isinstance(channel, discord.Thread):
        return channel
    channel_id = getattr(channel, "id", None)
    if channel_id is None or isinstance(channel, discord.TextChannel | discord.DMChannel):
        return None
    cached = client.get_channel(channel_id)
    if cached is not None:
        return cached if isinstance(cached, discord.Thread) else None
    try:
        fetched = await client.fetch_channel(channel_id)
    except discord.HTTPException:
        return None
    return fetched if isinstance(fetched, discord.Thread) else None


async def _in_open_thread(
    client: discord.Client,
    channel: Any,
    attempt: Callable[[], Awaitable[T]],
    files: Sequence[discord.File],
) -> T:
    """Send or edit with `attempt`; when a thread refuses because it is archived, reopen it where Mural may
    (a locked thread needs Manage Threads) and try once more. Raises ThreadShut when it stays shut."""
    try:
        return await attempt()
    except discord.HTTPException as error:
        if not _refused_by_thread(error):
            raise
        thread = await _thread_behind(client, channel)
        if thread is None:
            raise
        failure = error
    archived = failure.code == ARCHIVED_THREAD
    if archived:
        try:
            await thread.edit(archived=False)
        except discord.HTTPException as error:
            failure = error
        else:
            _rewind(files)
            try:
                return await attempt()
            except discord.HTTPException as error:
                if not _refused_by_thread(error):
                    raise
                failure = error
    log.info(
        "Thread %d refused a message (HTTP %s, code %s); using its channel",
        thread.id,
        failure.status,
        failure.code,
    )
    raise ThreadShut(thread, archived=archived)


async def send_beside(
    client: discord.Client,
    shut: ThreadShut,
    content: str | None = None,
    *,
    view: discord.ui.LayoutView | None = None,
    files: Sequence[discord.File] = (),
) -> discord.Message:
    """What a shut thread refused, in its parent channel, after a note that says why it is there."""
    parent = client.get_partial_messageable(shut.thread.parent_id, guild_id=shut.thread.guild.id)
    _rewind(files)
    # The note goes first, on its own: a card cannot carry text beside it.
    await parent.send(
        thread_refused_notice(shut.thread.mention, archived=shut.archived, locked=shut.thread.locked),
        allowed_mentions=NO_PINGS,
    )
    return await parent.send(**_message_fields(content, view, files))


async def reply_privately(interaction: discord.Interaction[Any], content: str) -> None:
    """Answer only the member where the interaction allows it; after its token expired, in the channel."""
    try:
        if interaction.is_expired():
            raise TokenGone
        if not interaction.response.is_done():
            await interaction.response.send_message(content, ephemeral=True, allowed_mentions=NO_PINGS)
        elif interaction.response.type in (
            discord.InteractionResponseType.deferred_channel_message,
            discord.InteractionResponseType.channel_message,
        ):
            # The placeholder (maybe already a card) is replaced, so nothing is left spinning.
            await interaction.edit_original_response(
                content=None, view=notice_card(content), attachments=[], allowed_mentions=NO_PINGS
            )
        else:
            await interaction.followup.send(content, ephemeral=True, allowed_mentions=NO_PINGS)
        return
    except discord.HTTPException as error:
        if error.status not in TOKEN_GONE:
            raise
    except TokenGone:
        pass
    if not bot_is_present(interaction):
        log.info(
            "Interaction token gone where the bot cannot post; member %d is not told", interaction.user.id
        )
        return
    log.info("Interaction token gone; telling member %d in the channel", interaction.user.id)
    await send_in(
        interaction.client, channel_of(interaction.client, interaction), f"<@{interaction.user.id}> {content}"
    )


def _reason(error: BaseException) -> str:
    if isinstance(error, discord.HTTPException):
        return f"HTTP {error.status}, code {error.code}"
    return type(error).__name__


class TokenGone(discord.ClientException):
    """The interaction can no longer be answered (its 15 minutes are over) and the bot may not post in
    its channel by itself (a user install in a server without the bot, a group DM)."""


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


# -- surfaces: the one message a job shows itself in ----------------------------------------------


class Surface:
    """One message that shows a job from start to end: progress, previews, the result.

    `show` replaces what the message shows (a card and its files); the first call creates the
    message where needed. Subclasses say where the message lives.
    """

    message: discord.Message | None = None

    async def show(self, view: discord.ui.LayoutView, files: Sequence[discord.File] = ()) -> discord.Message:
        raise NotImplementedError


class InteractionSurface(Surface):
    """The interaction's own response (its deferred placeholder); the channel once the token is gone, the
    thread's parent channel when the thread it is in was shut meanwhile."""

    def __init__(self, client: discord.Client, interaction: discord.Interaction[Any]) -> None:
        self._client = client
        self._interaction = interaction
        self._fallback: ChannelSurface | None = None

    async def show(self, view: discord.ui.LayoutView, files: Sequence[discord.File] = ()) -> discord.Message:
        if self._fallback is None:
            interaction = self._interaction
            if not interaction.is_expired():
                try:
                    self.message = await _in_open_thread(
                        self._client,
                        interaction.channel,
                        lambda: interaction.edit_original_response(
                            content=None, view=view, attachments=list(files), allowed_mentions=NO_PINGS
                        ),
                        files,
                    )
                    return self.message
                except ThreadShut as shut:
                    self._fallback = ChannelSurface(self._client, channel_of(self._client, interaction))
                    self.message = await self._fallback.move_beside(shut, view, files)
                    return self.message
                except discord.HTTPException as error:
                    if error.status not in TOKEN_GONE:
                        raise
                    if not bot_is_present(interaction):
                        raise TokenGone(
                            "the interaction expired where the bot may only answer through it"
                        ) from error
                    log.info(
                        "Interaction token no longer valid (HTTP %s); going on in the channel", error.status
                    )
                    _rewind(files)
            elif not bot_is_present(interaction):
                # A user install or a group DM: the bot has no way into the channel by itself.
                raise TokenGone("the interaction expired where the bot may only answer through it")
            # A message the member already saw is edited on through the channel, not posted again.
            shown = self.message if self.message is not None and not self.message.flags.ephemeral else None
            self._fallback = ChannelSurface(
                self._client,
                channel_of(self._client, interaction),
                shown_id=shown.id if shown else None,
            )
        self.message = await self._fallback.show(view, files)
        return self.message


class ChannelSurface(Surface):
    """A message of the bot's own in a channel or thread (created on first show, then edited); when the
    thread is shut to Mural meanwhile, a new message in its parent channel, edited from then on."""

    def __init__(
        self,
        client: discord.Client,
        channel: discord.abc.Messageable,
        *,
        reply_to: discord.Message | None = None,
        shown_id: int | None = None,
    ) -> None:
        self._client = client
        self._channel = channel
        self._reply_to = reply_to
        self._shown_id = shown_id

    async def show(self, view: discord.ui.LayoutView, files: Sequence[discord.File] = ()) -> discord.Message:
        try:
            if self.message is None and self._shown_id is not None:
                shown_id, self._shown_id = self._shown_id, None
                edited = await self._edit_shown(shown_id, view, files)
                if edited is not None:
                    self.message = edited
                    return edited
            if self.message is None:
                self.message = await send_in(
                    self._client, self._channel, view=view, files=files, reply_to=self._reply_to
                )
            else:
                message = self.message
                self.message = await _in_open_thread(
                    self._client,
                    message.channel,
                    lambda: message.edit(view=view, attachments=list(files), allowed_mentions=NO_PINGS),
                    files,
                )
        except ThreadShut as shut:
            return await self.move_beside(shut, view, files)
        return self.message

    async def move_beside(
        self, shut: ThreadShut, view: discord.ui.LayoutView, files: Sequence[discord.File]
    ) -> discord.Message:
        """Show in the shut thread's parent channel from now on, after the note that says why."""
        self.message = await send_beside(self._client, shut, view=view, files=files)
        self._channel = self.message.channel
        self._reply_to = None
        return self.message

    async def _edit_shown(
        self, shown_id: int, view: discord.ui.LayoutView, files: Sequence[discord.File]
    ) -> discord.Message | None:
        """Edit on a message shown before (a restart resumes its job there); None when it cannot be."""
        partial = getattr(self._channel, "get_partial_message", None)
        if partial is None:
            return None
        try:
            return await _in_open_thread(
                self._client,
                self._channel,
                lambda: partial(shown_id).edit(view=view, attachments=list(files), allowed_mentions=NO_PINGS),
                files,
            )
        except discord.HTTPException as error:
            log.info("Could not edit message %d through its channel (HTTP %s)", shown_id, error.status)
            _rewind(files)
            return None


class Progress:
    """Shows a job's progress on its surface without ever holding up the work.

    `show` only records the wanted card; one background task (owned by `tasks`) applies it, at most
    once per `EDIT_INTERVAL`, because Discord limits message edits. `finish` lets an edit in flight
    land, then shows the result, so progress never overwrites it.
    """

    def __init__(
        self,
        surface: Surface,
        *,
        tasks: TaskOwner,
        interval: float = EDIT_INTERVAL,
        on_shown: Callable[[discord.Message], Awaitable[None]] | None = None,
    ) -> None:
        self.surface = surface
        self._tasks = tasks
        self._interval = interval
        # Told where the job shows itself, once it does (a restart edits that message on).
        self._on_shown = on_shown
        self._wanted: tuple[discord.ui.LayoutView, Sequence[discord.File]] | None = None
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.edits = 0

    def show(self, view: discord.ui.LayoutView, files: Sequence[discord.File] = ()) -> None:
        if self._stopped.is_set():
            return
        self._wanted = (view, files)
        if self._task is None or self._task.done():
            self._task = self._tasks.spawn(self._apply(), name="progress", awaited=True)

    async def _apply(self) -> None:
        while self._wanted is not None and not self._stopped.is_set():
            view, files = self._wanted
            self._wanted = None
            try:
                await self.surface.show(view, files)
            except (discord.HTTPException, TokenGone) as error:
                # Expected (a deleted message, an expired token, a stop under way): the result still
                # gets its own delivery, so one line without a traceback says enough.
                log.info("Progress edit failed (%s); no more progress for this job", _reason(error))
                return
            self.edits += 1
            if self.edits == 1 and self._on_shown is not None and self.surface.message is not None:
                try:
                    await self._on_shown(self.surface.message)
                except MuralError as error:
                    # Only a restart needs to know (to edit that message on); the job and its progress go on.
                    log.warning("Could not record where a job shows its progress [%s]", error.code)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._interval)

    async def finish(self) -> None:
        """Stop showing progress; an edit already on its way lands first."""
        self._stopped.set()
        if self._task is not None:
            await self._task


def fit_pictures(
    pictures: Sequence[Picture], limit: int, *, stem: str
) -> tuple[list[FittedImage], list[str]]:
    """Each picture within its share of the upload limit, and the file names they go by."""
    share = max(1, limit // max(1, len(pictures)))
    fitted = [fit_to_limit(picture.data, picture.extension, picture.mime, share) for picture in pictures]
    names = [f"{stem}-{index}.{image.extension}" for index, image in enumerate(fitted, start=1)]
    return fitted, names


def picture_files(
    fitted: Sequence[FittedImage], names: Sequence[str], description: str
) -> list[discord.File]:
    return [
        discord.File(io.BytesIO(image.data), filename=name, description=description)
        for image, name in zip(fitted, names, strict=True)
    ]


@dataclass(frozen=True)
class PictureSource:
    """A picture on a Discord message: its name, where to download it, and its size when Discord says."""

    filename: str
    url: str
    size: int | None = None


def pictures_in(message: discord.Message) -> list[PictureSource]:
    """The pictures a message shows, in order: its image attachments, then those in Components v2 galleries."""
    found = [
        PictureSource(attachment.filename, attachment.url, attachment.size)
        for attachment in message.attachments
        if (attachment.content_type or "").startswith("image/")
    ]
    for item in _gallery_items(message.components):
        url = item.media.url
        found.append(PictureSource(yarl.URL(url).name or "picture.png", url))
    return found


def _gallery_items(components: Sequence[Any]) -> list[discord.MediaGalleryItem]:
    items: list[discord.MediaGalleryItem] = []
    for component in components:
        if isinstance(component, discord.MediaGalleryComponent):
            items.extend(component.items)
        items.extend(_gallery_items(getattr(component, "children", None) or []))
    return items
