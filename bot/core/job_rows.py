"""A job made whole again from its row: the one way any process runs a job it did not queue itself
(after a restart, a job a process that died left behind) and Reroll repeats one.

The row holds everything but pictures: the options, the prompt as sent, which picture an edit starts
from. Where that picture lives is for the caller to say (`SourcePicture`: on Discord, the message it was
posted in), so the core stays free of Discord.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.core.ai import InputImage
from bot.core.jobs import RenderRequest
from bot.core.picture_files import input_image
from bot.core.render_options import RenderOptions
from bot.core.studio import Studio
from bot.models import Render

# The bytes of picture `index` (1 for the first) of a finished render.
SourcePicture = Callable[[Render, int], Awaitable[InputImage]]
RenderLookup = Callable[[int], Awaitable[Render]]


async def request_from_row(
    record: Render,
    *,
    studio: Studio,
    render_options: RenderOptions,
    render_record: RenderLookup,
    source_picture: SourcePicture,
) -> RenderRequest:
    """The job `record` as it was asked for: the same version, prompt, options (under today's moderation)
    and pictures it starts from (the edited picture, or the session's reference)."""
    session, version = await studio.version(record.session_id, record.version)
    options = await render_options.repeat(
        session.guild_id, model=record.model, size=record.size, quality=record.quality, count=record.n
    )
    inputs: tuple[InputImage, ...] = ()
    if record.kind == "edit" and record.source_render_id is not None:
        source = await render_record(record.source_render_id)
        inputs = (await source_picture(source, record.source_index or 1),)
    elif record.with_reference:
        reference = await studio.reference_for(session)
        inputs = (input_image(reference),) if reference else ()
    return RenderRequest(
        session_id=session.id,
        version=version.number,
        prompt=record.prompt or version.prompt,
        requester_id=record.requester_id,
        channel_id=record.channel_id,
        options=options,
        kind=record.kind,
        inputs=inputs,
        source_render_id=record.source_render_id,
        source_index=record.source_index,
        instruction=record.instruction,
        with_reference=record.with_reference and bool(inputs),
        guild_id=record.guild_id,
    )
