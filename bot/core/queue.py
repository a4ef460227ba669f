"""The render queue: jobs that own their work, bounded concurrency, one job in flight per member.

A job is written to the store as `queued` before anything else happens, so a process that dies
mid-render leaves a row that the next start marks `interrupted` and reports to its owner. Each job
runs in a task the queue owns; whoever asked for it awaits the job and follows its events, but
never lends it their own task, so a stop cancels the queue's work and nothing else.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.core.ai import InputImage
from bot.core.errors import MuralError, SessionGone
from bot.core.images import ImageOptions, ImageService, RenderedImages
from bot.core.tasks import TaskOwner
from bot.models import Render
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobEvent:
    """Progress worth showing a member: `queued` (with how many jobs are ahead), `rendering`, `retrying`,
    `preview` (a partial picture as it forms)."""

    stage: str
    ahead: int = 0
    own_render_running: bool = False
    retry_in: float | None = None
    preview: bytes | None = field(default=None, repr=False)


EventCallback = Callable[[JobEvent], Awaitable[None]]


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


@dataclass(frozen=True)
class FinishedRender:
    record: Render
    image: RenderedImages


class RenderFailed(Exception):
    """A render that ended in an error; the record is already marked failed."""

    def __init__(self, record: Render, error: MuralError) -> None:
        super().__init__(error.detail)
        self.record = record
        self.error = error


class Job:
    """One queued render: its stored record, the queue's task running it, and who hears its events."""

    def __init__(self, record: Render, request: RenderRequest, on_event: EventCallback | None) -> None:
        self.record = record
        self.request = request
        self._on_event = on_event
        self._task: asyncio.Task[FinishedRender | RenderFailed] | None = None

    @property
    def id(self) -> int:
        return self.record.id

    async def emit(self, event: JobEvent) -> None:
        if self._on_event is None:
            return
        try:
            await self._on_event(event)
        except Exception:
            # Progress is a courtesy; a failed edit must not cost the member their picture.
            log.warning("Progress update for job %d failed", self.id, exc_info=True)

    async def result(self) -> FinishedRender:
        """Wait for the job; raises RenderFailed with the bot's error when it failed."""
        assert self._task is not None, "a job is started by the queue that made it"
        # Shielded: a caller that gives up waiting does not cancel work the queue owns.
        outcome = await asyncio.shield(self._task)
        if isinstance(outcome, RenderFailed):
            raise outcome
        return outcome


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
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting: list[int] = []
        self._tasks = TaskOwner("render-job")
        self._member_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    async def submit(self, request: RenderRequest, *, on_event: EventCallback | None = None) -> Job:
        """Record the job as queued and start it in a task the queue owns."""
        record = await self._store.create_render(
            session_id=request.session_id,
            version=request.version,
            requester_id=request.requester_id,
            channel_id=request.channel_id,
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
        )
        job = Job(record, request, on_event)
        job._task = self._tasks.spawn(self._run(job), name=str(record.id))
        return job

    async def render(
        self, request: RenderRequest, *, on_event: EventCallback | None = None
    ) -> FinishedRender:
        """Submit a job and wait for its outcome."""
        job = await self.submit(request, on_event=on_event)
        return await job.result()

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
        """Jobs a stop cut off, now marked interrupted, so their owners can be told."""
        return await self._store.interrupt_unfinished_renders()

    async def shutdown(self, grace: float = 3.0) -> None:
        """Stop jobs still queued or running; their records stay unfinished, so the next start reports them."""
        await self._tasks.shutdown(grace)

    def _member_lock(self, member_id: int) -> asyncio.Lock:
        lock = self._member_locks.get(member_id)
        if lock is None:
            lock = asyncio.Lock()
            self._member_locks[member_id] = lock
        return lock

    async def _run(self, job: Job) -> FinishedRender | RenderFailed:
        if self._ahead is not None:
            await self._ahead.turn()  # the acknowledgements still owed go out before this job starts
        member_lock = self._member_lock(job.request.requester_id)
        if member_lock.locked():
            await job.emit(JobEvent("queued", own_render_running=True))
        async with member_lock:
            self._waiting.append(job.id)
            try:
                if self._slots.locked():
                    await job.emit(JobEvent("queued", ahead=self._waiting.index(job.id)))
                await self._slots.acquire()
            finally:
                self._waiting.remove(job.id)
            try:
                return await self._render(job)
            finally:
                self._slots.release()

    async def _render(self, job: Job) -> FinishedRender | RenderFailed:
        await self._store.mark_render_running(job.id)
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
            return RenderFailed(job.record, error)
        except Exception as exc:
            error = MuralError(f"unexpected {type(exc).__name__}")
            await self._store.fail_render(job.id, code=error.code, error=error.detail)
            log.exception("Render %d failed unexpectedly", job.id)
            return RenderFailed(job.record, error)
        await self._store.finish_render(
            job.id,
            revised_prompt=image.revised_prompt,
            input_tokens=image.input_tokens,
            output_tokens=image.output_tokens,
            cost_usd=image.cost_usd,
        )
        return FinishedRender(record=job.record, image=image)


class AcknowledgementsFirst:
    """Work that members' commands start waits until the commands received so far are acknowledged.

    Every acknowledgement goes out through the one event loop, and so does the work a deferral
    starts (building a chat or image request is milliseconds of CPU each). When many commands
    arrive at once, work started by the first ones would otherwise run ahead of the others'
    acknowledgements. So work asks for its `turn()`: it is let through only while no
    acknowledgement is owed, one piece of work per pass of the loop, so a command that arrives
    meanwhile waits behind at most one. Patience is bounded: an acknowledgement owed longer than
    `patience` seconds (never coming, or Discord's deadline near) stops holding work back, and
    no work waits longer than that.
    """

    def __init__(self, *, patience: float = 1.0) -> None:
        self._patience = patience
        self._owed: dict[int, float] = {}  # interaction id -> when it arrived (loop time), oldest first
        self._waiting: collections.deque[tuple[asyncio.Future[None], float]] = collections.deque()
        self._wake_pending = False
        self._timer: asyncio.TimerHandle | None = None

    @property
    def owed(self) -> int:
        return len(self._owed)

    def received(self, interaction_id: int) -> None:
        """An interaction arrived: its acknowledgement is owed."""
        self._owed[interaction_id] = asyncio.get_running_loop().time()

    def acknowledged(self, interaction_id: int) -> None:
        """Its first answer went out (or failed): it no longer holds work back."""
        if self._owed.pop(interaction_id, None) is not None and not self._owed and self._waiting:
            self._wake_soon()

    async def turn(self) -> None:
        """Return once no acknowledgement is owed and the work queued before this has had its turn."""
        if not self._owed and not self._waiting:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiting.append((waiter, loop.time()))
        self._wake_soon()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake_soon()  # it was let through as it was cancelled: pass the turn on
            raise

    def _wake_soon(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            asyncio.get_running_loop().call_soon(self._wake)

    def _wake(self) -> None:
        self._wake_pending = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._owed:  # oldest first: forget acknowledgements owed for too long
            oldest, arrived = next(iter(self._owed.items()))
            if now - arrived < self._patience:
                break
            del self._owed[oldest]
        while self._waiting and self._waiting[0][0].done():
            self._waiting.popleft()  # cancelled while waiting
        if not self._waiting:
            return
        waiter, since = self._waiting[0]
        if self._owed and now - since < self._patience:
            # Look again when the oldest owed acknowledgement or the first waiter runs out of patience.
            deadline = min(next(iter(self._owed.values())), since) + self._patience
            self._timer = loop.call_at(deadline, self._wake_soon)
            return
        self._waiting.popleft()
        waiter.set_result(None)
        if self._waiting:
            self._wake_soon()  # the next one on the next pass of the loop, after what arrived meanwhile
