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
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from bot.core.budgets import BudgetExceeded, window_at
from bot.core.errors import MuralError, SessionGone, StoreUnavailable
from bot.core.images import ImageService
from bot.core.jobs import (
    CancelOutcome,
    EventCallback,
    FinishedRender,
    Job,
    JobEvent,
    RenderCancelled,
    RenderFailed,
    RenderRequest,
    job_ended,
)
from bot.core.leases import Holder
from bot.core.pacing import AcknowledgementsFirst
from bot.core.tasks import TaskOwner
from bot.core.watching import NOBODY, Watcher
from bot.models import OverLimit, Render
from bot.store import Store
from bot.store.protocol import JOBS_TOPIC

log = logging.getLogger(__name__)


# Where processes share the database, how often the dispatcher looks again without being woken: a
# notification is a wake-up, never the only way a change is seen.
POLL_SECONDS = 5.0
# Waits between tries to record a finished job while the database is away (about two minutes in all).
RECORD_RETRIES: tuple[float | None, ...] = (0.5, 1, 2, 4, 8, 15, 30, 60, None)

Recovery = Callable[[], Awaitable[None]]


class RenderQueue:
    def __init__(
        self,
        store: Store,
        images: ImageService,
        *,
        concurrency: int,
        ahead: AcknowledgementsFirst | None = None,
        holder: Holder | None = None,
        watcher: Watcher = NOBODY,
    ) -> None:
        self._store = store
        self._images = images
        self._watcher = watcher  # hears how each job ended, its pictures posted and what it cost
        self._ahead = ahead
        self._concurrency = concurrency
        self.holder = holder or Holder(shared=store.shared)
        self._queued: dict[int, Job] = {}  # this process's jobs not started yet, by render id
        self._running: dict[int, Job] = {}
        self._tasks = TaskOwner("render-job")
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._stopped = False
        self._store_away = False
        # Takes over what a process that died left behind (see `keep_leases`).
        self._recover: Recovery | None = None
        store.listen(JOBS_TOPIC, lambda _payload: self._wake_dispatcher())

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
            held_by=self.holder.id,
            lease_until=self.holder.until(),
        )
        if request.limits is None:
            return Job(await self._store.create_render(**job_fields), request, None, watcher=self._watcher)
        window = window_at()
        reserved = await self._store.reserve_render(limits=request.limits, window=window, **job_fields)
        if isinstance(reserved, OverLimit):
            raise BudgetExceeded(reserved, window)
        return Job(reserved, request, None, watcher=self._watcher)

    def adopt(self, record: Render, request: RenderRequest) -> Job:
        """A job found still queued (after a restart, or left by a process that died): it keeps its row,
        its place and its reservation."""
        return Job(record, request, None, watcher=self._watcher)

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
                job_ended(record, "cancelled", watcher=self._watcher)
            return "cancelled-elsewhere"
        job.ended("cancelled")
        job._settle(RenderCancelled(replace(job.record, status="cancelled")))
        return "cancelled"

    async def give_up(self, record: Render, error: Exception) -> None:
        """A waiting job that cannot run any more (its picture is gone, say): failed, never sent."""
        failure = error if isinstance(error, MuralError) else MuralError(f"unexpected {type(error).__name__}")
        await self._store.fail_render(record.id, code=failure.code, error=failure.detail)
        job_ended(record, "failed", code=failure.code, watcher=self._watcher)

    async def remember_message(self, record: Render, *, channel_id: int, message_id: int) -> None:
        """Where a job's pictures were posted, so Edit and replies can fetch them again."""
        await self._store.set_render_message(record.id, message_id, channel_id)

    async def posted(self, finished: FinishedRender, *, channel_id: int, message_id: int) -> None:
        """A finished job's pictures were posted there: remembered for Edit and replies, and timed from
        the job's start."""
        await self.remember_message(finished.record, channel_id=channel_id, message_id=message_id)
        if finished.started_at is not None:
            self._watcher.pictures_posted(finished.record.model, time.monotonic() - finished.started_at)

    async def render_record(self, render_id: int) -> Render:
        record = await self._store.get_render(render_id)
        if record is None:
            raise SessionGone(f"render {render_id} not found")
        return record

    async def render_for_message(self, message_id: int) -> Render | None:
        return await self._store.render_for_message(message_id)

    async def interrupted_by_last_stop(self) -> list[Render]:
        """Jobs a stop cut off while running, now marked interrupted, so their owners can be told: every
        one where this process is alone; where processes share the database, only those whose holder's
        lease lapsed (a live process's renders are its own)."""
        interrupted = await self._store.interrupt_running_renders(lapsed_before=self.holder.lapsed_before())
        for record in interrupted:
            job_ended(record, "interrupted", watcher=self._watcher)
        return interrupted

    async def waiting_since_last_stop(self) -> list[Render]:
        """Jobs a stop left queued, now this process's: they run in their turn (see `adopt`). Where
        processes share the database, only those nobody live holds."""
        return await self._store.adopt_queued_renders(
            self.holder.id, lease_until=self.holder.until(), lapsed_before=self.holder.lapsed_before()
        )

    def keep_leases(self, recover: Recovery) -> None:
        """Renew this process's leases while it lives and, where processes share the database, run
        `recover` each time: what a start does with what a stop left (interrupted renders and
        instructions told, queued renders run), for what a process that died left."""
        self._recover = recover
        if self._keeper is None or self._keeper.done():
            self._keeper = self._tasks.spawn(self._keep(), name="leases")

    async def shutdown(self, grace: float = 3.0) -> None:
        """Stop jobs still queued or running. Running ones stay running in the store, so the next start
        (or another process, once the lease lapses) reports them; queued ones are handed back for any
        process to run."""
        self._stopped = True
        for job in self._queued.values():
            job._abandon()
        self._queued.clear()
        await self._tasks.shutdown(grace)
        try:
            released = await self._store.release_queued_renders(self.holder.id)
        except Exception as error:
            # They stay held until the lease lapses; then another process (or the next start) takes them.
            log.warning("Could not hand back queued renders at the stop (%s)", type(error).__name__)
        else:
            if released:
                log.info("Handed back %d queued render(s) for another process or the next start", released)

    # -- leases ---------------------------------------------------------------------------------

    async def _keep(self) -> None:
        while not self._stopped:
            await asyncio.sleep(self.holder.renew_every)
            try:
                await self._store.renew_leases(self.holder.id, lease_until=self.holder.until())
                if self.holder.shared and self._recover is not None:
                    await self._recover()
            except MuralError as error:
                log.warning("Could not renew this process's leases [%s]; trying again", error.code)
            except Exception:
                log.exception("Renewing leases failed; trying again")

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
            except StoreUnavailable as error:
                # One line per outage, not one a second: the store says when it is back.
                if not self._store_away:
                    log.warning("The render queue waits for the database [%s]: %s", error.code, error.detail)
                self._store_away = True
                await asyncio.sleep(1.0)
                self._wake.set()
                continue
            except Exception:
                log.exception("The render dispatcher failed a round; trying again")
                await asyncio.sleep(1.0)
                self._wake.set()
            if self._store_away:
                log.info("The render queue reaches the database again")
                self._store_away = False
            if self.holder.shared and self._queued:
                # Another process's job ending frees a slot here too; its notification may be lost.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            else:
                await self._wake.wait()

    async def _start_what_fits(self) -> None:
        while self._queued and len(self._running) < self._concurrency:
            if self._ahead is not None:
                await self._ahead.turn()  # the acknowledgements still owed go out before a job starts
            record = await self._store.claim_next_render(
                list(self._queued),
                holder=self.holder.id,
                lease_until=self.holder.until(),
                concurrency=self._concurrency if self.holder.shared else None,
                now=self.holder.now(),
            )
            if record is None:
                return  # every queued member has a job running, or the next in turn is another's
            job = self._queued.pop(record.id, None)
            if job is None:
                return  # a stop let go of it meanwhile; its row is reported by the next start
            job.record = record
            self._running[job.id] = job
            task = self._tasks.spawn(self._render(job), name=str(job.id), awaited=True)
            task.add_done_callback(lambda task, job=job: self._ended(job, task))

    async def _show_places(self) -> None:
        """Tell each queued job how many will start before it, when that changed; a job of this process
        that is no longer queued in the store was cancelled elsewhere (another process's Cancel)."""
        if not self._queued:
            return
        order = await self._store.queued_render_order()
        await self._settle_cancelled_elsewhere({turn.render_id for turn in order})
        for ahead, turn in enumerate(order):
            if self._wake.is_set() and len(self._running) < self._concurrency:
                return  # a slot freed meanwhile: starting the next job comes before telling places
            job = self._queued.get(turn.render_id)
            if job is not None:
                await job._show_place(ahead, turn.busy)

    async def _settle_cancelled_elsewhere(self, still_queued: set[int]) -> None:
        for render_id in [job_id for job_id in self._queued if job_id not in still_queued]:
            record = await self._store.get_render(render_id)
            if record is None or record.status != "cancelled":
                continue
            job = self._queued.pop(render_id, None)
            if job is not None:
                job._settle(RenderCancelled(record))

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

    async def _record(self, job: Job, outcome: str, write: Callable[[], Awaitable[None]]) -> None:
        """Record how a job ended, trying again while the database is away (the picture is paid for
        and its member waits for it: it is delivered either way, and a record that never lands leaves
        the job running, for a later start to report)."""
        for wait in RECORD_RETRIES:
            try:
                await write()
                return
            except StoreUnavailable:
                if wait is None:
                    log.error(
                        "Render %d ended %s, but the database never came back to record it", job.id, outcome
                    )
                    return
                await asyncio.sleep(wait)

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
            await self._record(
                job, "failed", lambda: self._store.fail_render(job.id, code=error.code, error=error.detail)
            )
            job.ended("failed", error.code)
            return RenderFailed(job.record, error)
        except Exception as exc:
            error = MuralError(f"unexpected {type(exc).__name__}")
            await self._record(
                job, "failed", lambda: self._store.fail_render(job.id, code=error.code, error=error.detail)
            )
            log.exception("Render %d failed unexpectedly", job.id)
            job.ended("failed", error.code)
            return RenderFailed(job.record, error)
        await self._record(
            job,
            "done",
            lambda: self._store.finish_render(
                job.id,
                revised_prompt=image.revised_prompt,
                input_tokens=image.input_tokens,
                output_tokens=image.output_tokens,
                cost_usd=image.cost_usd,
                cost_estimated=image.cost_estimated,
            ),
        )
        if image.cost_usd:
            self._watcher.spent("image", image.cost_usd)
        job.ended("done")
        return FinishedRender(record=job.record, image=image, started_at=job._started_at)
