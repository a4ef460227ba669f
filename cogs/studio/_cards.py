"""Every card the studio shows, each built in one function: Components v2 containers within Discord's limits.

A card is one container: text blocks from `bot.ui.layouts`, a gallery of uploaded pictures
(`attachment://` names), and rows of buttons (`layouts.card` keeps each within Discord's five).
Nothing here sends; `_versions` and `_pictures` decide where a card goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bot.core.images import RenderedImages
from bot.models import Render, Session, SessionSummary, Version
from bot.ui import layouts
from cogs.studio._buttons import (
    CancelButton,
    CopyButton,
    CopyRenderButton,
    EditButton,
    GenerateButton,
    HistorySelect,
    RefineButton,
    RephraseButton,
    RerollButton,
    ThreadButton,
    UndoButton,
)


def version_card(session: Session, version: Version) -> discord.ui.LayoutView:
    """A version: its badge, the prompt as far as it fits, where it is for, and Generate · Refine · Undo · Copy."""
    ids = (session.id, version.number)
    return layouts.card(
        layouts.version_texts(session, version),
        buttons=[
            GenerateButton(*ids),
            RefineButton(*ids),
            UndoButton(*ids, disabled=version.parent is None),
            CopyButton(*ids),
        ],
    )


def picture_rows(render: Render, session: Session, count: int) -> list[list[discord.ui.Item[Any]]]:
    """Edit · Reroll · Copy, and Refine while an /imagine picture has no thread, in one row; with several
    pictures, `Edit 1`…`Edit n` in a row of their own above the rest."""
    going_on: list[discord.ui.Item[Any]] = [RerollButton(render.id), CopyRenderButton(render.id)]
    if session.origin == "imagine" and session.thread_id is None:
        going_on.append(ThreadButton(render.id))
    if count == 1:
        return [[EditButton(render.id, 1), *going_on]]
    edits: list[discord.ui.Item[Any]] = [
        EditButton(render.id, index, label=f"Edit {index}") for index in range(1, count + 1)
    ]
    return [edits, going_on]


def picture_card(
    session: Session,
    version: Version,
    render: Render,
    image: RenderedImages,
    filenames: Sequence[str],
    *,
    with_prompt: bool,
    compressed: bool = False,
) -> discord.ui.LayoutView:
    """Pictures in a gallery, what they are and for whom, and the buttons to go on from them."""
    description = layouts.alt_text(render.prompt or version.prompt)
    return layouts.card(
        layouts.picture_texts(
            session, version, render, image, with_prompt=with_prompt, compressed=compressed
        ),
        gallery=[(name, description) for name in filenames],
        rows=picture_rows(render, session, len(filenames)),
    )


def progress_card(
    text: str, preview: str | None = None, *, cancel: int | None = None
) -> discord.ui.LayoutView:
    """Where a job stands; while a picture forms, its latest preview; while it is queued, Cancel."""
    return layouts.card(
        [text],
        gallery=[(preview, "preview")] if preview else (),
        buttons=[CancelButton(cancel)] if cancel is not None else (),
    )


def cancelled_card(version_number: int) -> discord.ui.LayoutView:
    return layouts.card([layouts.cancelled_render_text(version_number)])


def failure_card(
    session: Session,
    version: Version,
    render: Render,
    texts: Sequence[str],
    *,
    retry: bool,
    copy: bool,
    rephrase: bool = False,
) -> discord.ui.LayoutView:
    """A render that failed: what went wrong, the prompt for /imagine, Retry where it can help, and
    Rephrase safely where the image model refused the prompt."""
    buttons: list[discord.ui.Item[Any]] = []
    if retry:
        buttons.append(RerollButton(render.id, label="Retry"))
    if rephrase:
        buttons.append(RephraseButton(render.id))
    if copy:
        buttons.append(CopyRenderButton(render.id))
    return layouts.card(texts, buttons=buttons)


def retry_card(render: Render, text: str) -> discord.ui.LayoutView:
    return layouts.card([text], buttons=[RerollButton(render.id, label="Retry")])


def history_card(
    owner_id: int, summaries: Sequence[SessionSummary], guild_id: int | None
) -> discord.ui.LayoutView:
    """A member's latest sessions with links, and a menu to post one here again (as many as a card and
    a menu hold)."""
    if not summaries:
        return layouts.card(["You have no sessions yet. Start one with `/prompt` or `/imagine`."])
    lines = ["### Your latest sessions"]
    options = []
    for summary in summaries[: layouts.SELECT_OPTIONS_LIMIT]:
        session = summary.session
        idea = discord.utils.escape_markdown(layouts.clip(layouts.one_line(session.idea), 80))
        where = f"https://discord.com/channels/{guild_id or '@me'}/{summary.jump_channel_id}"
        if summary.jump_message_id and summary.jump_channel_id != summary.jump_message_id:
            where += f"/{summary.jump_message_id}"
        counts = f"{summary.versions} version{'s' * (summary.versions != 1)} · {summary.pictures} picture{'s' * (summary.pictures != 1)}"
        line = f"**{idea}** · {counts} · {layouts.when(summary.created_at)} · [open]({where})"
        if sum(map(len, lines)) + len(lines) + len(line) > layouts.CARD_TEXT_LIMIT:
            break
        lines.append(line)
        options.append(
            discord.SelectOption(
                label=layouts.clip(layouts.one_line(session.idea), 100) or f"Session {session.id}",
                value=str(session.id),
                description=layouts.clip(f"v{session.head_version} · {counts}", 100),
            )
        )
    view = layouts.card(["\n".join(lines)])
    row: discord.ui.ActionRow[Any] = discord.ui.ActionRow()
    row.add_item(HistorySelect(owner_id, options))
    view.add_item(row)
    return view
