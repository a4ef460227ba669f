"""The render queue: jobs that own their work, bounded concurrency, one job in flight per member.

A job is written to the store as `queued` before anything else happens, so a process that dies
mid-render leaves a row that the next start marks `interrupted` and reports to its owner. Each job
runs in a task the queue owns; whoever asked for it awaits the job and follows its events, but
never lends it their own task, so a stop cancels the queue's work and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.core.ai import InputImage
from bot.core.errors import MuralError, SessionGone
from bot.core.images import ImageOptions, ImageService, RenderedImages
from bot.core.pacing import AcknowledgementsFirst
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
            cost_estimated=image.cost_estimated,
        )
        return FinishedRender(record=job.record, image=image)
