"""The prompt studio: sessions of prompt versions, started from an idea or a picture, refined, undone.

What the chat model is asked is `bot.core.prompt_templates`; the calls themselves, with the checks
before and the usage after, are `bot.core.prompt_writer`. Here is what a session does: one lock per
session, so two quick instructions never both become the same version.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass

from bot.core.access import check_owner
from bot.core.ai import InputImage, OpenAIService
from bot.core.budget_checks import Budgets
from bot.core.errors import InvalidRequest, SessionGone
from bot.core.images import ASPECTS
from bot.core.leases import Holder
from bot.core.moderation import Moderator
from bot.core.pacing import AcknowledgementsFirst
from bot.core.pricing import DEFAULT_PRICES, PriceTable
from bot.core.prompt_templates import (
    DEFAULT_TARGET,
    STYLES,
    TARGETS,
    edit_messages,
    expansion_messages,
    refinement_messages,
    rephrase_messages,
)
from bot.core.prompt_text import MAX_IDEA_CHARS, MAX_INSTRUCTION_CHARS, clean_user_text
from bot.core.prompt_writer import PromptWriter
from bot.core.tasks import TaskOwner
from bot.core.watching import NOBODY, Watcher
from bot.models import Reference, Refinement, Session, SessionSummary, Version
from bot.store import Store

HISTORY_WINDOW = 6
HISTORY_LIMIT = 10


@dataclass(frozen=True)
class SessionRequest:
    """A member's checked request for a new session: validated once, before anything is posted or spent."""

    idea: str
    owner_id: int
    guild_id: int | None
    channel_id: int
    origin: str
    target: str
    style: str | None
    aspect: str | None = None
    reference: Reference | None = None
    # The idea is the prompt, word for word: nothing is asked of the chat model.
    raw: bool = False


class Studio:
    """Sessions of prompt versions, created and refined through the chat model."""

    def __init__(
        self,
        store: Store,
        ai: OpenAIService,
        *,
        history_window: int = HISTORY_WINDOW,
        ahead: AcknowledgementsFirst | None = None,
        prices: PriceTable = DEFAULT_PRICES,
        moderator: Moderator | None = None,
        budgets: Budgets | None = None,
        holder: Holder | None = None,
        watcher: Watcher = NOBODY,
    ) -> None:
        self._store = store
        # This process, holding the instructions it works on (see `bot.core.leases`).
        self._holder = holder or Holder(shared=store.shared)
        self._writer = PromptWriter(
            store, ai, ahead=ahead, prices=prices, moderator=moderator, budgets=budgets, watcher=watcher
        )
        self._history_window = history_window
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._tasks = TaskOwner("refinement")

    async def shutdown(self, grace: float = 3.0) -> None:
        """Stop refinements in flight; they stay recorded as pending, so the next start reports them."""
        await self._tasks.shutdown(grace)

    def lock_for(self, session_id: int) -> asyncio.Lock:
        """One lock per session, so two quick instructions never both become the same version."""
        lock = self._locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[session_id] = lock
        return lock

    # -- reading sessions ---------------------------------------------------------------------

    async def session(self, session_id: int) -> Session:
        session = await self._store.get_session(session_id)
        if session is None:
            raise SessionGone(f"session {session_id} not found")
        return session

    async def version(self, session_id: int, number: int) -> tuple[Session, Version]:
        session = await self.session(session_id)
        version = await self._store.get_version(session_id, number)
        if version is None:
            raise SessionGone(f"session {session_id} v{number} not found")
        return session, version

    async def session_for_thread(self, thread_id: int) -> Session | None:
        return await self._store.session_for_thread(thread_id)

    async def session_for_message(self, message_id: int) -> Session | None:
        """The session whose version a message shows (replies to it refine where there is no thread)."""
        version = await self._store.version_for_message(message_id)
        return None if version is None else await self._store.get_session(version.session_id)

    async def remember_message(self, version: Version, message_id: int) -> None:
        """Where a version was posted, so a reply to that message finds its session."""
        await self._store.set_version_message(version.id, message_id)

    async def attach_thread(self, session: Session, thread_id: int) -> None:
        await self._store.attach_thread(session.id, thread_id)

    async def interrupted_by_last_stop(self) -> list[Refinement]:
        """Refinements a stop cut off, now marked interrupted, so their authors can be told (where processes
        share the database, only those whose holder's lease lapsed)."""
        return await self._store.interrupt_pending_refinements(lapsed_before=self._holder.lapsed_before())

    # -- new sessions -------------------------------------------------------------------------

    @staticmethod
    def new_session_request(
        *,
        idea: str,
        owner_id: int,
        guild_id: int | None,
        channel_id: int,
        origin: str = "prompt",
        target: str | None = None,
        style: str | None = None,
        aspect: str | None = None,
        reference: Reference | None = None,
        raw: bool = False,
    ) -> SessionRequest:
        """Check a member's request; refused with a clear message before anything is posted or spent."""
        target = target or DEFAULT_TARGET
        if target not in TARGETS:
            raise InvalidRequest(f"Unknown target {target!r}; choose one of {', '.join(TARGETS)}.")
        if style is not None and style not in STYLES:
            raise InvalidRequest(f"Unknown style {style!r}; choose one of {', '.join(STYLES)}.")
        if aspect is not None and aspect not in ASPECTS:
            raise InvalidRequest(f"Unknown aspect {aspect!r}; choose one of {', '.join(ASPECTS)}.")
        return SessionRequest(
            idea=clean_user_text(idea, limit=MAX_IDEA_CHARS, what="idea"),
            owner_id=owner_id,
            guild_id=guild_id,
            channel_id=channel_id,
            origin=origin,
            target=target,
            style=style,
            aspect=aspect,
            reference=reference,
            raw=raw,
        )

    async def start_session(self, request: SessionRequest) -> tuple[Session, Version]:
        """Expand the idea into a prompt (or take it verbatim when raw) and store it as v1 of a new session."""
        reference = request.reference
        await self._writer.screen(
            request.guild_id,
            request.owner_id,
            request.channel_id,
            [request.idea],
            InputImage(reference.filename, reference.data, reference.mime) if reference else None,
        )
        prompt, usage_id = request.idea, None
        if not request.raw:
            prompt, usage_id = await self._writer.write(
                expansion_messages(request.idea, request.target, request.style),
                purpose="expand",
                user_id=request.owner_id,
                guild_id=request.guild_id,
                session_id=None,
            )
        return await self._store.create_session(
            guild_id=request.guild_id,
            channel_id=request.channel_id,
            owner_id=request.owner_id,
            origin=request.origin,
            idea=request.idea,
            target=request.target,
            style=request.style,
            aspect=request.aspect,
            reference=request.reference,
            first_prompt=prompt,
            chat_usage_id=usage_id,
        )

    async def describe(
        self, image: InputImage, *, owner_id: int, guild_id: int | None, channel_id: int
    ) -> tuple[Session, Version]:
        """A vision model writes the prompt that would reproduce a picture; it becomes v1 of a new session."""
        await self._writer.screen(guild_id, owner_id, channel_id, [], image)
        prompt, usage_id = await self._writer.describe(image, user_id=owner_id, guild_id=guild_id)
        return await self._store.create_session(
            guild_id=guild_id,
            channel_id=channel_id,
            owner_id=owner_id,
            origin="prompt",
            idea=f"described: {image.filename}",
            target=DEFAULT_TARGET,
            style=None,
            first_prompt=prompt,
            chat_usage_id=usage_id,
        )

    async def reference_for(self, session: Session) -> Reference | None:
        return await self._store.reference_for(session.id)

    async def recent_sessions(self, owner_id: int, limit: int = HISTORY_LIMIT) -> list[SessionSummary]:
        return await self._store.recent_sessions(owner_id, limit)

    async def rephrase_safely(
        self, session_id: int, number: int, *, author_id: int, channel_id: int
    ) -> Version:
        """After a safety refusal: the chat model writes a compliant variant of `number` as a new version."""
        async with self.lock_for(session_id):
            session, version = await self.version(session_id, number)
            prompt, _ = await self._writer.write(
                rephrase_messages(session, version),
                purpose="rephrase",
                user_id=author_id,
                guild_id=session.guild_id,
                session_id=session.id,
            )
            return await self._store.add_version(
                session.id,
                parent=version.number,
                prompt=prompt,
                instruction="rephrased to stay within the content rules",
                author_id=author_id,
            )

    # -- undo and edits -----------------------------------------------------------------------

    async def undo(self, session_id: int, number: int, *, user_id: int) -> Version:
        """Move the head back to `number`'s parent; the next refinement branches from there. Nothing is deleted."""
        async with self.lock_for(session_id):
            session = await self.session(session_id)
            check_owner(session, user_id, "undo its versions")
            if number != session.head_version:
                raise InvalidRequest(
                    f"v{number} is not the current version (v{session.head_version} is), so there is "
                    "nothing to undo from it."
                )
            parent = await self._store.move_head_to_parent(session_id, number)
            if parent is None:
                raise InvalidRequest(f"v{number} is the first version; there is nothing before it.")
            return parent

    async def edit_prompt(
        self, session: Session, prompt: str, instruction: str, *, user_id: int, channel_id: int | None = None
    ) -> str:
        """Turn a member's change ("make the sky darker") into an edit prompt, with the picture's prompt as context."""
        instruction = clean_user_text(instruction, limit=MAX_INSTRUCTION_CHARS, what="change")
        await self._writer.screen(session.guild_id, user_id, channel_id, [instruction])
        edit_prompt, _ = await self._writer.write(
            edit_messages(prompt, instruction),
            purpose="edit",
            user_id=user_id,
            guild_id=session.guild_id,
            session_id=session.id,
        )
        return edit_prompt

    # -- refinement ---------------------------------------------------------------------------

    async def refine(self, session_id: int, instruction: str, *, author_id: int, channel_id: int) -> Version:
        """Apply an instruction to the session's head version and store the result as the new head.

        The instruction is recorded first, so one cut off by a crash is reported after the restart.
        The work runs in a task the studio owns; a stop cancels it, never the caller's task.
        """
        instruction = clean_user_text(instruction, limit=MAX_INSTRUCTION_CHARS, what="instruction")
        task = self._tasks.spawn(
            self._refine(session_id, instruction, author_id=author_id, channel_id=channel_id),
            name=f"session-{session_id}",
            awaited=True,
        )
        return await asyncio.shield(task)

    async def _refine(self, session_id: int, instruction: str, *, author_id: int, channel_id: int) -> Version:
        async with self.lock_for(session_id):
            session = await self.session(session_id)
            await self._writer.screen(session.guild_id, author_id, channel_id, [instruction])
            lineage = await self._store.lineage(session.id, session.head_version, self._history_window + 1)
            if not lineage:
                raise SessionGone(f"session {session_id} has no version {session.head_version}")
            pending = await self._store.start_refinement(
                session_id=session.id,
                author_id=author_id,
                channel_id=channel_id,
                instruction=instruction,
                held_by=self._holder.id,
                lease_until=self._holder.until(),
            )
            try:
                prompt, _ = await self._writer.write(
                    refinement_messages(session, lineage, instruction),
                    purpose="refine",
                    user_id=author_id,
                    guild_id=session.guild_id,
                    session_id=session.id,
                )
            except Exception:
                await self._store.fail_refinement(pending.id)
                raise
            return await self._store.add_version(
                session.id,
                parent=session.head_version,
                prompt=prompt,
                instruction=instruction,
                author_id=author_id,
                refinement_id=pending.id,
            )
