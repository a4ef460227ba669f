"""The render queue: a fair dispatcher, bounded concurrency, one job in flight per member, Cancel.

A job is written to the store as `queued`, within its requester's budgets (checked and reserved in one
transaction), before anything else happens. A process that stops leaves its rows behind: the next
start runs the queued ones in their turn and marks the running ones `interrupted`, for their owners to
retry (their request may already have reached OpenAI). The
queue's dispatcher starts jobs while fewer than `concurrency` run: each time, the first job in the
store's fair order (round-robin across members, see `bot.store.renders`) whose member has nothing
running is claimed atomically and run in a task the queue owns. It wakes when a job is submitted,
finishes or is cancelled, and then tells every queued job its place (`JobEvent("queued", ahead=N)`)
when that changed. Whoever asked for a job awaits it and follows its events, but never lends it
their own task, so a stop cancels the queue's work and nothing else. A queued job can be cancelled
(only while the store still says queued); it is then never sent to the image service. However a job
ends — done, failed, cancelled, or interrupted by a stop — it is recorded in one place, `job_ended`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from bot.core.ai import InputImage
from bot.core.budgets import BudgetExceeded, window_at
from bot.core.errors import MuralError, SessionGone
from bot.core.images import ImageOptions, ImageService, RenderedImages
from bot.core.pacing import AcknowledgementsFirst
from bot.core.tasks import TaskOwner
from bot.models import Limits, OverLimit, Render
from bot.store import Store

log = logging.getLogger(__name__)


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
) -> None:
    """Record how a job ended, once: the one place (metrics of renders by model and status, and of their
    seconds, hook here). `seconds`: drawing it; `waited`: in the queue. Never its prompt or instruction."""
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

    def __init__(self, record: Render, request: RenderRequest, on_event: EventCallback | None) -> None:
        self.record = record
        self.request = request
        self._on_event = on_event
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
        job_ended(self.record, status, code=code, seconds=seconds, waited=waited)

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


class RenderQueue:
    def __init__(
        self,
        store: Store,
        images: ImageService,
        *,
        concurrency: int,
        ahead: AcknowledgementsFirst | None = None,
    ) -> None:
        self._store = store
        self._images = images
        self._ahead = ahead
        self._concurrency = concurrency
        self._queued: dict[int, Job] = {}  # this process's jobs not started yet, by render id
        self._running: dict[int, Job] = {}
        self._tasks = TaskOwner("render-job")
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._stopped = False

    async def reserve(self, request: RenderRequest) -> Job:
        """Record the job as queued, within the requester's budgets (BudgetExceeded, and nothing stored,
        when it does not fit); it waits to be started, so its owner can first say it was accepted."""
        job_fields = dict(
            session_id=request.session_id,
            version=request.version,
            requester_id=request.requester_id,
            channel_id=request.channel_id,
            guild_id=request.guild_id,
            model=request.options.model,
            size=request.options.size,
            quality=request.options.quality,
            prompt=request.prompt,
            n=request.options.count,
            kind=request.kind,
            source_render_id=request.source_render_id,
            source_index=request.source_index,
            instruction=request.instruction,
            with_reference=request.with_reference,
            cost_reserved=self._images.expected_cost(request.options, editing=bool(request.inputs)),
        )
        if request.limits is None:
            return Job(await self._store.create_render(**job_fields), request, None)
        window = window_at()
        reserved = await self._store.reserve_render(limits=request.limits, window=window, **job_fields)
        if isinstance(reserved, OverLimit):
            raise BudgetExceeded(reserved, window)
        return Job(reserved, request, None)

    def adopt(self, record: Render, request: RenderRequest) -> Job:
        """A job a restart found still queued: it keeps its row, its place and its reservation."""
        return Job(record, request, None)

    def start(self, job: Job, *, on_event: EventCallback | None = None) -> Job:
        """Let a reserved job take its turn; `on_event` hears its place, progress and previews."""
        job._on_event = on_event
        job._queued_at = time.monotonic()
        if self._stopped:
            job._abandon()  # stopping: its row stays queued, and the next start runs it
            return job
        self._queued[job.id] = job
        self._wake_dispatcher()
        return job

    async def submit(self, request: RenderRequest, *, on_event: EventCallback | None = None) -> Job:
        """Reserve a job and let it take its turn at once."""
        return self.start(await self.reserve(request), on_event=on_event)

    async def cancel(self, render_id: int) -> CancelOutcome:
        """Cancel a job if it is still queued (atomically, in the store); it then never starts."""
        if not await self._store.cancel_render(render_id):
            return "too-late"
        job = self._queued.pop(render_id, None)
        self._wake_dispatcher()  # everyone behind it moves up
        if job is None:
            record = await self._store.get_render(render_id)
            if record is not None:
                job_ended(record, "cancelled")
            return "cancelled-elsewhere"
        job.ended("cancelled")
        job._settle(RenderCancelled(replace(job.record, status="cancelled")))
        return "cancelled"

    async def give_up(self, record: Render, error: Exception) -> None:
        """A waiting job that cannot run any more (its picture is gone, say): failed, never sent."""
        failure = error if isinstance(error, MuralError) else MuralError(f"unexpected {type(error).__name__}")
        await self._store.fail_render(record.id, code=failure.code, error=failure.detail)
        job_ended(record, "failed", code=failure.code)

    async def remember_message(self, record: Render, *, channel_id: int, message_id: int) -> None:
        """Where a job's pictures were posted, so Edit and replies can fetch them again."""
        await self._store.set_render_message(record.id, message_id, channel_id)

    async def render_record(self, render_id: int) -> Render:
        record = await self._store.get_render(render_id)
        if record is None:
            raise SessionGone(f"render {render_id} not found")
        return record

    async def render_for_message(self, message_id: int) -> Render | None:
        return await self._store.render_for_message(message_id)

    async def interrupted_by_last_stop(self) -> list[Render]:
        """Jobs a stop cut off while running, now marked interrupted, so their owners can be told."""
        interrupted = await self._store.interrupt_running_renders()
        for record in interrupted:
            job_ended(record, "interrupted")
        return interrupted

    async def waiting_since_last_stop(self) -> list[Render]:
        """Jobs a stop left queued: they run now, in their turn (see `adopt`)."""
        return await self._store.queued_renders()

    async def shutdown(self, grace: float = 3.0) -> None:
        """Stop jobs still queued or running; their records stay unfinished, so the next start reports them."""
        self._stopped = True
        for job in self._queued.values():
            job._abandon()
        self._queued.clear()
        await self._tasks.shutdown(grace)

    # -- the dispatcher -------------------------------------------------------------------------

    def _wake_dispatcher(self) -> None:
        if self._stopped:
            return
        self._wake.set()
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = self._tasks.spawn(self._dispatch(), name="dispatcher")

    async def _dispatch(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._start_what_fits()
                await self._show_places()
            except Exception:
                log.exception("The render dispatcher failed a round; trying again")
                await asyncio.sleep(1.0)
                self._wake.set()
            await self._wake.wait()

    async def _start_what_fits(self) -> None:
        while self._queued and len(self._running) < self._concurrency:
            if self._ahead is not None:
                await self._ahead.turn()  # the acknowledgements still owed go out before a job starts
            record = await self._store.claim_next_render(list(self._queued))
            if record is None:
                return  # every queued member has a job running already
            job = self._queued.pop(record.id, None)
            if job is None:
                return  # a stop let go of it meanwhile; its row is reported by the next start
            job.record = record
            self._running[job.id] = job
            task = self._tasks.spawn(self._render(job), name=str(job.id), awaited=True)
            task.add_done_callback(lambda task, job=job: self._ended(job, task))

    async def _show_places(self) -> None:
        """Tell each queued job how many will start before it, when that changed."""
        if not self._queued:
            return
        for ahead, turn in enumerate(await self._store.queued_render_order()):
            if self._wake.is_set() and len(self._running) < self._concurrency:
                return  # a slot freed meanwhile: starting the next job comes before telling places
            job = self._queued.get(turn.render_id)
            if job is not None:
                await job._show_place(ahead, turn.busy)

    def _ended(self, job: Job, task: asyncio.Task[FinishedRender | RenderFailed]) -> None:
        self._running.pop(job.id, None)
        if task.cancelled():
            job._abandon()
        elif (error := task.exception()) is not None:
            log.error("Render job %d failed", job.id, exc_info=error)
            job._abandon()
        else:
            job._settle(task.result())
        self._wake_dispatcher()

    async def _render(self, job: Job) -> FinishedRender | RenderFailed:
        job._started_at = time.monotonic()
        await job.emit(JobEvent("rendering"))

        async def on_retry(error: MuralError, wait: float) -> None:
            await job.emit(JobEvent("retrying", retry_in=wait))

        async def on_preview(data: bytes) -> None:
            await job.emit(JobEvent("preview", preview=data))

        try:
            image = await self._images.render(
                job.request.prompt,
                job.request.options,
                requester_id=job.request.requester_id,
                inputs=job.request.inputs,
                on_preview=on_preview,
                on_retry=on_retry,
            )
        except MuralError as error:
            await self._store.fail_render(job.id, code=error.code, error=error.detail)
            job.ended("failed", error.code)
            return RenderFailed(job.record, error)
        except Exception as exc:
            error = MuralError(f"unexpected {type(exc).__name__}")
            await self._store.fail_render(job.id, code=error.code, error=error.detail)
            log.exception("Render %d failed unexpectedly", job.id)
            job.ended("failed", error.code)
            return RenderFailed(job.record, error)
        await self._store.finish_render(
            job.id,
            revised_prompt=image.revised_prompt,
            input_tokens=image.input_tokens,
            output_tokens=image.output_tokens,
            cost_usd=image.cost_usd,
            cost_estimated=image.cost_estimated,
        )
        job.ended("done")
        return FinishedRender(record=job.record, image=image)
