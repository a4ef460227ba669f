"""What Mural's messages say, each built in one function, within Discord's limits.

Discord's limits live here, not in the core: the core keeps and renders the whole prompt, and only
these layouts clip what a message shows. Every text that can carry a member's or the model's words
goes out with mentions disabled, so a prompt that says "@everyone" is shown, never pinged.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import discord

from bot.core.errors import MuralError
from bot.core.images import ImageOptions, RenderedImages, size_label
from bot.core.jobs import JobEvent
from bot.core.prompt_templates import TARGETS
from bot.models import Render, Session, Version
from bot.ui.error_wording import member_message

NO_PINGS = discord.AllowedMentions.none()
MESSAGE_LIMIT = 2_000
THREAD_NAME_LIMIT = 100
ALT_TEXT_LIMIT = 1_024
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """Shorten to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def one_line(text: str) -> str:
    """A label on one line, without zero-width or direction-override characters that garble the layout."""
    visible = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(visible.split())


def quote_block(text: str) -> str:
    """Text shown as a block quote; escaped so the model's markdown cannot break the layout."""
    escaped = discord.utils.escape_markdown(text, as_needed=False)
    return "\n".join("> " + line if line else ">" for line in escaped.splitlines())


SHORTENED_NOTE = "-# Shortened to fit a message; 📋 Copy gives the whole prompt."


def thread_name(idea: str) -> str:
    name = one_line(idea) or "Mural prompt"
    return clip(name, THREAD_NAME_LIMIT)


ACCENT = discord.Colour.from_rgb(232, 121, 83)
CARD_TEXT_LIMIT = 4_000  # characters over all text displays of a Components v2 message
CARD_COMPONENTS_LIMIT = 40  # components in all, nested ones included
GALLERY_LIMIT = 10  # items in a media gallery
ROW_WIDTH = 5  # an action row holds five buttons, or one menu
SELECT_OPTIONS_LIMIT = 25
# Room kept free in a card for the lines around the prompt (badge, details, notices).
_CARD_RESERVE = 600


def version_badge(version: Version) -> str:
    """`v3`, or `v3 (from v1)` when it branched from an earlier version than the one before it."""
    badge = f"v{version.number}"
    if version.parent is not None and version.parent != version.number - 1:
        badge += f" (from v{version.parent})"
    return badge


def version_heading(version: Version) -> str:
    heading = f"### {version_badge(version)}"
    if version.instruction:
        heading += f"\n-# ✏️ {discord.utils.escape_markdown(clip(one_line(version.instruction), 200))}"
    return heading


def session_details(session: Session) -> str:
    """The small line under a prompt: where it is for, its style and its shape."""
    parts = [TARGETS[session.target].label if session.target in TARGETS else session.target]
    if session.style:
        parts.append(session.style.replace("-", " "))
    if session.aspect:
        parts.append(session.aspect)
    return "-# " + " · ".join(parts)


def prompt_block(prompt: str, room: int = CARD_TEXT_LIMIT - _CARD_RESERVE) -> str:
    """The prompt as a quote, as much as fits in `room`; the whole text is one Copy away."""
    quoted = quote_block(prompt)
    if len(quoted) <= room:
        return quoted
    room -= len(SHORTENED_NOTE) + 1
    # Quoting only ever lengthens the text, so no more than `room` raw characters can fit.
    raw = prompt[:room]
    quoted = quote_block(raw.rstrip() + ELLIPSIS)
    while len(quoted) > room and raw:
        # Shorten the raw text in proportion and quote again, so an escape or quote marker is never cut
        # in half and the prompt keeps as much of the room as it can.
        raw = raw[: min(len(raw) - 1, len(raw) * room // len(quoted))]
        quoted = quote_block(raw.rstrip() + ELLIPSIS)
    return f"{quoted}\n{SHORTENED_NOTE}"


def version_texts(session: Session, version: Version) -> list[str]:
    """The text blocks of a version card: badge, prompt, details."""
    return [version_heading(version), prompt_block(version.prompt), session_details(session)]


def picture_details(options: ImageOptions) -> str:
    return f"{options.model} · {size_label(options.size)} · {options.quality}"


def picture_subject(render: Render, version: Version) -> str:
    """Which version or which edit a picture is."""
    if render.kind == "edit":
        change = discord.utils.escape_markdown(clip(one_line(render.instruction or ""), 200))
        return f"Edit of v{version.number}: “{change}”"
    return f"v{version.number}"


def picture_texts(
    session: Session,
    version: Version,
    render: Render,
    image: RenderedImages,
    *,
    with_prompt: bool,
    compressed: bool = False,
) -> list[str]:
    """The caption of a picture card: what it is and for whom, the prompt for /imagine (in the room the
    other lines leave: a long idea and revised prompt can take more than the reserve), model details."""
    notes = [f"-# {picture_details(image.options)}"]
    if image.revised_prompt:
        # Clipped before it is escaped: the revised prompt can be 32,000 characters, and only 600 show.
        revised = discord.utils.escape_markdown(clip(one_line(image.revised_prompt), 600))
        notes.append(f"-# The model revised the prompt to: {revised}")
    if compressed:
        notes.append(compressed_notice())
    caption = [f"**{picture_subject(render, version)}** for <@{render.requester_id}>", "\n".join(notes)]
    if not (with_prompt and render.kind == "generate"):
        return caption
    heading = idea_heading(session)
    room = min(CARD_TEXT_LIMIT - 2 * _CARD_RESERVE, CARD_TEXT_LIMIT - len(heading) - sum(map(len, caption)))
    return [heading, prompt_block(version.prompt, room), *caption]


def idea_heading(session: Session) -> str:
    """The idea and who had it, heading an /imagine picture or its failure."""
    idea = discord.utils.escape_markdown(clip(one_line(session.idea), 200))
    return f"**{idea}** — <@{session.owner_id}>"


def alt_text(prompt: str) -> str:
    return clip(one_line(prompt), ALT_TEXT_LIMIT)


def progress_text(version_number: int, update: JobEvent) -> str:
    if update.stage == "preview":
        return f"🎨 v{version_number} is taking shape…"
    if update.stage == "queued":
        # `ahead` renders start before this one, so it is #ahead+1 in the queue.
        place = f" (#{update.ahead + 1} in the queue)" if update.ahead else ""
        if update.own_render_running:
            return f"⏳ v{version_number} is queued behind your render that is still running{place}."
        return f"⏳ v{version_number} is queued{place or ' (next up)'}."
    if update.stage == "retrying":
        wait = f" in {update.retry_in:.0f}s" if update.retry_in else ""
        return f"⏳ OpenAI is busy; retrying v{version_number}{wait}…"
    return f"🎨 Rendering v{version_number}…"


def error_text(error: MuralError) -> str:
    """What went wrong and its code, in one message even when the error quotes a member's long words."""
    code = f" `{error.code}`"
    return f"⚠️ {clip(member_message(error), MESSAGE_LIMIT - len(code) - 10)}{code}"


def render_failure_texts(
    session: Session, version: Version, error: MuralError, *, with_prompt: bool, editing: bool = False
) -> list[str]:
    """A render that failed; for /imagine, the prompt that was written (and paid for) stays visible."""
    what = f"an edit of **v{version.number}**" if editing else f"**v{version.number}**"
    problem = f"⚠️ Couldn't render {what}: {clip(member_message(error), _CARD_RESERVE - 100)} `{error.code}`"
    if not with_prompt:
        return [problem]
    return [idea_heading(session), prompt_block(version.prompt, CARD_TEXT_LIMIT - 2 * _CARD_RESERVE), problem]


def upload_refused_text(version: Version) -> str:
    return (
        f"⚠️ I drew **v{version.number}** but can't upload pictures here: I'm missing the **Attach Files** "
        "permission. Ask an admin to grant it, then press Retry."
    )


def picture_in_thread_text(version: Version, jump_url: str) -> str:
    return f"🖼️ v{version.number} is in the thread: {jump_url}"


def no_picture_in_thread_text(version: Version, jump_url: str) -> str:
    return f"⚠️ No picture of v{version.number} this time; the thread says why: {jump_url}"


def version_in_thread_text(version: Version, jump_url: str) -> str:
    return f"✏️ v{version.number} is in the thread: {jump_url}"


def thread_hint(session: Session, *, reads_messages: bool = True) -> str:
    """The thread's first message: how to talk to the prompt, and to the pictures.

    Without the Message Content intent the bot sees only messages that reply to it or mention it, so
    the hint says so instead of promising that every message counts.
    """
    if not reads_messages:
        return (
            f"Reply here to refine the prompt, <@{session.owner_id}>: I can only read messages that "
            "**reply to one of mine** or **mention me**, so reply to a version (keep its @ on) or start with "
            "my mention, or press ✏️ Refine. **Reply to a picture** to change that picture itself; "
            "**Undo** goes back a version."
        )
    return (
        f"Reply here to refine the prompt: each message from <@{session.owner_id}> becomes a new version. "
        "**Reply to a picture** to change that picture itself; **Undo** goes back a version."
    )


def which_picture_text(count: int) -> str:
    return f"That message has {count} pictures: press **Edit 1**…**Edit {count}** on it to pick the one to change."


def undo_text(version: Version) -> str:
    return f"↩️ Back to {version_badge(version)}: your next message continues from it."


def thread_opened_text(jump_url: str) -> str:
    return f"🧵 This picture's session is in {jump_url}: refine the prompt there, or reply to a picture to edit it."


NO_THREAD_REASONS = {
    "dm": "No thread here (a DM)",
    "group-dm": "No thread here (a group DM, where I can only answer commands and buttons)",
    "user-install": "No thread here (I'm not a member of this server, so I answer only through your commands)",
    "permission": "I couldn't open a thread for this prompt: I need the **Create Public Threads** permission here",
    "channel-kind": "I can't open a thread in this kind of channel",
    "refused": "I couldn't open a thread for this prompt",
}


def no_thread_text(reason: str, *, reads_replies: bool = True, reads_messages: bool = True) -> str:
    """Why a session has no thread, and how to refine it anyway (told once, privately).

    Replies are offered only where the bot receives them; without the Message Content intent only replies
    that keep their @ (which mentions the bot) arrive with their text.
    """
    how = "refine with the ✏️ Refine button"
    if reads_replies and reads_messages:
        how += " or by replying to the prompt message"
    elif reads_replies:
        how += " or by replying to the prompt message with its @ on (I only read replies that mention me)"
    return f"{NO_THREAD_REASONS[reason]}: {how}. Generate, Undo and Copy work as usual."


def thread_refused_notice(thread_mention: str, *, archived: bool, locked: bool = False) -> str:
    if archived:
        reason = "it is archived and I may not reopen it"
    elif locked:
        reason = "a moderator locked it"
    else:
        reason = "I'm missing the **Send Messages in Threads** permission there"
    return f"⚠️ I can't post in {thread_mention}: {reason}. Here it is instead:"


def interrupted_refinement_text(author_id: int, instruction: str, head_version: int) -> str:
    quoted = discord.utils.escape_markdown(clip(one_line(instruction), 200))
    return (
        f"⚠️ <@{author_id}>, I restarted while working on “{quoted}”, so it was not applied. "
        f"The prompt is still at **v{head_version}**: send it again, or press Refine."
    )


def cancelled_render_text(version_number: int) -> str:
    return f"✖️ v{version_number} was cancelled before it started; nothing was sent and nothing spent."


def cancel_too_late_text(version_number: int) -> str:
    return (
        f"v{version_number} has already been sent to the image service and can't be stopped now; "
        "it will arrive as usual."
    )


def already_cancelled_text(version_number: int) -> str:
    return f"v{version_number} is already cancelled."


def not_your_render_text(requester_id: int) -> str:
    return f"Only <@{requester_id}>, who asked for this render, can cancel it."


def interrupted_render_text(requester_id: int, version: int) -> str:
    return (
        f"⚠️ <@{requester_id}>, your render of **v{version}** was interrupted when I restarted. "
        "Press Retry to render it again."
    )


def copy_text(prompt: str) -> str | None:
    """The bare prompt in a code block, or None when it is too long for one message (send a file)."""
    prompt = prompt.replace("```", "'''")
    block = f"```\n{prompt}\n```"
    return block if len(block) <= MESSAGE_LIMIT else None


def copy_file_note() -> str:
    return "This prompt is too long for one message; here it is as a file."


def compressed_notice() -> str:
    return "-# Compressed to fit this server's upload limit."


def when(moment: datetime) -> str:
    """A time as a Discord timestamp, which each member sees in their own time zone."""
    return f"<t:{int(moment.timestamp())}:R>"


def card(
    texts: Sequence[str],
    *,
    gallery: Sequence[tuple[str, str]] = (),
    buttons: Sequence[discord.ui.Item[Any]] = (),
    rows: Sequence[Sequence[discord.ui.Item[Any]]] = (),
) -> discord.ui.LayoutView:
    """One Components v2 container: the pictures (`attachment://` name, description), the texts, then the
    buttons: `rows` of them, or `buttons` as one row. A row wider than Discord allows goes on in the next."""
    view = discord.ui.LayoutView(timeout=None)
    container: discord.ui.Container[discord.ui.LayoutView] = discord.ui.Container(accent_colour=ACCENT)
    if gallery:
        container.add_item(
            discord.ui.MediaGallery(
                *(
                    discord.MediaGalleryItem(f"attachment://{name}", description=clip(text, 256))
                    for name, text in gallery[:GALLERY_LIMIT]
                )
            )
        )
    for text in _within_text_limit([text for text in texts if text]):
        container.add_item(discord.ui.TextDisplay(text))
    for row in (*rows, buttons):
        for part in action_rows(row):
            container.add_item(discord.ui.ActionRow(*part))
    view.add_item(container)
    return view


def action_rows(items: Sequence[discord.ui.Item[Any]]) -> list[list[discord.ui.Item[Any]]]:
    """`items` in order, as rows that Discord accepts: at most five buttons, or one menu, in each."""
    rows: list[list[discord.ui.Item[Any]]] = []
    width = ROW_WIDTH
    for item in items:
        if width + item.width > ROW_WIDTH:
            rows.append([])
            width = 0
        rows[-1].append(item)
        width += item.width
    return rows


def _within_text_limit(texts: list[str]) -> list[str]:
    """The texts, the longest shortened until they fit a card together: the builders size theirs to fit,
    this only keeps a slip from turning into a refused message after the pictures were paid for."""
    while (excess := sum(map(len, texts)) - CARD_TEXT_LIMIT) > 0 and max(map(len, texts)) > 1:
        longest = max(range(len(texts)), key=lambda index: len(texts[index]))
        texts[longest] = clip(texts[longest], max(1, len(texts[longest]) - excess))
    return texts


def notice_card(text: str) -> discord.ui.LayoutView:
    """A plain sentence as a card (an error or a pointer that replaces a card)."""
    return card([text])
