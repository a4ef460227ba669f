"""A render job: what it is made of (`RenderRequest`), what its waiter hears (`JobEvent`) and gets
(`FinishedRender`, `RenderFailed`, `RenderCancelled`), the handle the queue and the waiter share (`Job`),
and the one place a job's end is recorded (`job_ended`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from bot.core.ai import InputImage
from bot.core.errors import MuralError
from bot.core.images import ImageOptions, RenderedImages
from bot.core.watching import NOBODY, Watcher
from bot.models import Limits, Render

log = logging.getLogger("bot.core.queue")


@dataclass(frozen=True)
class JobEvent:
    """Progress worth showing a member: `queued` (with how many jobs start before it in the fair order,
    sent again whenever that changes), `rendering`, `retrying`, `preview` (a partial picture as it forms)."""

    stage: str
    ahead: int = 0
    own_render_running: bool = False
    retry_in: float | None = None
    preview: bytes | None = field(default=None, repr=False)
    render_id: int | None = None  # filled in by the job (a queued card's Cancel acts on it)


EventCallback = Callable[[JobEvent], Awaitable[None]]

JobStatus = Literal["done", "failed", "cancelled", "interrupted"]


def job_ended(
    record: Render,
    status: JobStatus,
    *,
    code: str | None = None,
    seconds: float | None = None,
    waited: float | None = None,
    watcher: Watcher = NOBODY,
) -> None:
    """Record how a job ended, once: the one place, for the log and for `watcher` (renders by model and
    status). `seconds`: drawing it; `waited`: in the queue. Never its prompt or instruction."""
    watcher.job_ended(record.model, status)
    outcome = f"{status} [{code}]" if code else status
    timing = []
    if seconds is not None:
        timing.append(f"drawn in {seconds:.2f}s")
    if waited is not None:
        timing.append(f"queued {waited:.2f}s")
    if status == "interrupted":
        timing.append("cut off by a stop")
    log.info(
        "Render %d %s: %s of session %d v%d for user %d, %s %s %s x%d%s",
        record.id,
        outcome,
        record.kind,
        record.session_id,
        record.version,
        record.requester_id,
        record.model,
        record.size,
        record.quality,
        record.n,
        ", " + ", ".join(timing) if timing else "",
    )


@dataclass(frozen=True)
class RenderRequest:
    """One job: draw `prompt` (from `inputs`, through the edit endpoint, when there are any)."""

    session_id: int
    version: int
    prompt: str
    requester_id: int
    channel_id: int
    options: ImageOptions
    kind: str = "generate"
    inputs: tuple[InputImage, ...] = ()
    source_render_id: int | None = None
    source_index: int | None = None
    instruction: str | None = None
    with_reference: bool = False
    guild_id: int | None = None
    # The requester's budgets, checked atomically as the job is queued; None: no budget (tests, restarts).
    limits: Limits | None = None


@dataclass(frozen=True)
class FinishedRender:
    record: Render
    image: RenderedImages
    # When it was claimed to be drawn (time.monotonic()), for the time until its pictures are posted.
    started_at: float | None = field(default=None, repr=False, compare=False)


class RenderCancelled(Exception):
    """A job its owner cancelled while it was queued: nothing was sent, nothing spent."""

    def __init__(self, record: Render) -> None:
        super().__init__(f"render {record.id} was cancelled")
        self.record = record


# What pressing Cancel did: cancelled (the job's own waiter shows it), cancelled a job this process
# does not hold, or too late (it is no longer queued).
CancelOutcome = Literal["cancelled", "cancelled-elsewhere", "too-late"]


class RenderFailed(Exception):
    """A render that ended in an error; the record is already marked failed."""

    def __init__(self, record: Render, error: MuralError) -> None:
        super().__init__(error.detail)
        self.record = record
        self.error = error


class Job:
    """One queued render: its stored record, the outcome its waiter awaits, and who hears its events."""

    def __init__(
        self,
        record: Render,
        request: RenderRequest,
        on_event: EventCallback | None,
        *,
        watcher: Watcher = NOBODY,
    ) -> None:
        self.record = record
        self.request = request
        self._on_event = on_event
        self._watcher = watcher
        self._outcome: asyncio.Future[FinishedRender | RenderFailed | RenderCancelled] = (
            asyncio.get_running_loop().create_future()
        )
        self._place: tuple[int, bool] | None = None  # the last place in the queue shown
        self._queued_at: float | None = None  # when it took its turn (`start`)
        self._started_at: float | None = None  # when it was claimed to be drawn

    def ended(self, status: JobStatus, code: str | None = None) -> None:
        """Record how it ended (`job_ended`) with how long it was drawn and how long it waited."""
        now = time.monotonic()
        started, queued = self._started_at, self._queued_at
        seconds = None if started is None else now - started
        waited = None if queued is None else (started or now) - queued
        job_ended(self.record, status, code=code, seconds=seconds, waited=waited, watcher=self._watcher)

    @property
    def id(self) -> int:
        return self.record.id

    async def emit(self, event: JobEvent) -> None:
        if self._on_event is None:
            return
        try:
            await self._on_event(replace(event, render_id=self.id))
        except Exception:
            # Progress is a courtesy; a failed edit must not cost the member their picture.
            log.warning("Progress update for job %d failed", self.id, exc_info=True)

    async def result(self) -> FinishedRender:
        """Wait for the job; raises RenderFailed with the bot's error when it failed, RenderCancelled
        when its owner cancelled it."""
        # Shielded: a caller that gives up waiting does not cancel work the queue owns.
        outcome = await asyncio.shield(self._outcome)
        if isinstance(outcome, (RenderFailed, RenderCancelled)):
            raise outcome
        return outcome

    async def _show_place(self, ahead: int, own_render_running: bool) -> None:
        if self._place != (ahead, own_render_running):
            self._place = (ahead, own_render_running)
            await self.emit(JobEvent("queued", ahead=ahead, own_render_running=own_render_running))

    def _settle(self, outcome: FinishedRender | RenderFailed | RenderCancelled) -> None:
        if not self._outcome.done():
            self._outcome.set_result(outcome)

    def _abandon(self) -> None:
        """A stop: whoever waits is cancelled, as the queue's work is."""
        if not self._outcome.done():
            self._outcome.cancel()
