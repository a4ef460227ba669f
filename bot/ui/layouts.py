"""What Mural's messages say, each built in one function, within Discord's limits.

Discord's limits live here, not in the core: the core keeps and renders the whole prompt, and only
these layouts clip what a message shows. Every text that can carry a member's or the model's words
goes out with mentions disabled, so a prompt that says "@everyone" is shown, never pinged.
"""

from __future__ import annotations

import unicodedata

import discord

from bot.core.errors import MuralError
from bot.core.images import RenderedImages, size_label
from bot.core.queue import JobEvent
from bot.models import Session, Version

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


def with_notice(first: str, second: str, *, after: bool = False) -> str:
    """Two texts as one message; the notice is dropped rather than break Discord's limit."""
    combined = f"{second}\n{first}" if after else f"{first}\n{second}"
    if len(combined) <= MESSAGE_LIMIT:
        return combined
    return second if not after else first


def quote_block(text: str) -> str:
    """Text shown as a block quote; escaped so the model's markdown cannot break the layout."""
    escaped = discord.utils.escape_markdown(text, as_needed=False)
    return "\n".join("> " + line if line else ">" for line in escaped.splitlines())


SHORTENED_NOTE = "-# Shortened to fit a message; 📋 Copy gives the whole prompt."


def fit_message(head: str, body: str, tail: str = "") -> str:
    """`head`, the quoted `body` and `tail` in one message, shortening the body to fit Discord's limit.

    Only what the message shows is shortened (and says so); the prompt itself is kept whole.
    """
    room = MESSAGE_LIMIT - len(head) - len(tail) - 2
    quoted = quote_block(body)
    if len(quoted) > room:
        room -= len(SHORTENED_NOTE) + 1
        tail = "\n".join(part for part in (SHORTENED_NOTE, tail) if part)
        # Shorten the raw text and quote again, so an escape or quote marker is never cut in half.
        raw = body
        while len(quoted) > room and raw:
            raw = raw[: max(0, len(raw) - max(20, len(quoted) - room))]
            quoted = quote_block(raw.rstrip() + ELLIPSIS)
    return "\n".join(part for part in (head, quoted, tail) if part)[:MESSAGE_LIMIT]


def thread_name(idea: str) -> str:
    name = one_line(idea) or "Mural prompt"
    return clip(name, THREAD_NAME_LIMIT)


def version_text(version: Version) -> str:
    head = f"**v{version.number}**"
    if version.instruction:
        head += f" · {discord.utils.escape_markdown(clip(one_line(version.instruction), 200))}"
    return fit_message(head, version.prompt)


def idea_heading(session: Session) -> str:
    """The idea and who had it, heading an /imagine picture or its failure."""
    idea = discord.utils.escape_markdown(clip(one_line(session.idea), 200))
    return f"**{idea}** — <@{session.owner_id}>"


def render_caption(session: Session, version: Version, image: RenderedImages, *, with_prompt: bool) -> str:
    """The text under a picture: who and what (with the prompt for /imagine), and any revised prompt."""
    options = image.options
    details = f"{size_label(options.size)} · {options.quality} · {options.model}"
    notes = []
    if with_prompt:
        head = idea_heading(session)
        notes.append(f"-# v{version.number} · {details}")
    else:
        head = f"**v{version.number}** for <@{session.owner_id}> · {details}"
    if image.revised_prompt:
        revised = clip(one_line(discord.utils.escape_markdown(image.revised_prompt)), 600)
        notes.append(f"-# The model revised the prompt to: {revised}")
    tail = "\n".join(notes)
    if with_prompt:
        return fit_message(head, version.prompt, tail)
    return "\n".join(part for part in (head, tail) if part)[:MESSAGE_LIMIT]


def alt_text(prompt: str) -> str:
    return clip(one_line(prompt), ALT_TEXT_LIMIT)


def progress_text(version_number: int, update: JobEvent) -> str:
    if update.stage == "queued":
        if update.own_render_running:
            return f"⏳ v{version_number} is queued behind your render that is still running."
        ahead = (
            f"{update.ahead} render{'s' if update.ahead != 1 else ''} ahead" if update.ahead else "next up"
        )
        return f"⏳ v{version_number} is queued ({ahead})."
    if update.stage == "retrying":
        wait = f" in {update.retry_in:.0f}s" if update.retry_in else ""
        return f"⏳ OpenAI is busy; retrying v{version_number}{wait}…"
    return f"🎨 Rendering v{version_number}…"


def error_text(error: MuralError) -> str:
    return f"⚠️ {error.user_message} `{error.code}`"


def render_failure_text(session: Session, version: Version, error: MuralError, *, with_prompt: bool) -> str:
    """A render that failed; for /imagine, the prompt that was written (and paid for) stays visible."""
    problem = f"⚠️ Couldn't render **v{version.number}**: {error.user_message} `{error.code}`"
    if not with_prompt:
        return problem
    return fit_message(idea_heading(session), version.prompt, problem)


def upload_refused_text(version: Version) -> str:
    return (
        f"⚠️ I drew **v{version.number}** but can't upload pictures here: I'm missing the **Attach Files** "
        "permission. Ask an admin to grant it, then press Retry."
    )


def thread_refused_picture_notice() -> str:
    return (
        "⚠️ I couldn't post this in the thread (I need **Send Messages in Threads** and **Attach Files** "
        "there), so here it is, just for you:"
    )


def picture_in_thread_text(version: Version, jump_url: str) -> str:
    return f"🖼️ v{version.number} is in the thread: {jump_url}"


def version_in_thread_text(version: Version, jump_url: str) -> str:
    return f"✏️ v{version.number} is in the thread: {jump_url}"


def thread_hint(session: Session) -> str:
    return f"Reply here to refine the prompt: each message from <@{session.owner_id}> becomes a new version."


def no_thread_text(*, missing_permission: bool, channel_kind_unsupported: bool) -> str:
    """Why a session has no thread, and how to refine it anyway."""
    if channel_kind_unsupported:
        return (
            "I can't open a thread in this kind of channel, so refine with the ✏️ Refine button "
            "or reply to the prompt message."
        )
    missing = " I need the **Create Public Threads** permission here." if missing_permission else ""
    return (
        f"I couldn't open a thread for this prompt.{missing} You can still refine it with the ✏️ Refine "
        "button, or by replying to the prompt message."
    )


def thread_refused_notice(thread_mention: str, *, archived: bool) -> str:
    reason = (
        "it is archived and I may not reopen it"
        if archived
        else "I'm missing the **Send Messages in Threads** permission there"
    )
    return f"⚠️ I can't post in {thread_mention}: {reason}. Here it is instead:"


def interrupted_refinement_text(author_id: int, instruction: str, head_version: int) -> str:
    quoted = discord.utils.escape_markdown(clip(one_line(instruction), 200))
    return (
        f"⚠️ <@{author_id}>, I restarted while working on “{quoted}”, so it was not applied. "
        f"The prompt is still at **v{head_version}**: send it again, or press Refine."
    )


def interrupted_render_text(requester_id: int, version: int) -> str:
    return (
        f"⚠️ <@{requester_id}>, your render of **v{version}** was interrupted when I restarted. "
        "Press Retry to render it again."
    )


def copy_text(version: Version) -> str | None:
    """The bare prompt in a code block, or None when it is too long for one message (send a file)."""
    prompt = version.prompt.replace("```", "'''")
    block = f"```\n{prompt}\n```"
    return block if len(block) <= MESSAGE_LIMIT else None


def copy_file_note(version: Version) -> str:
    return f"v{version.number} is too long for one message; here it is as a file."


def compressed_notice() -> str:
    return "-# Compressed to fit this server's upload limit."
