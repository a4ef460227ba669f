"""The render queue: bounded concurrency, one render in flight per member, records that outlive a stop.

A render is written to SQLite as `queued` before anything else happens, so a process that dies
mid-render leaves a row that the next start marks `interrupted` and reports to its owner.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.errors import MuralError
from bot.render import RenderedImage, Renderer
from bot.store import Render, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobUpdate:
    """Progress worth showing a member: `queued` (with how many renders are ahead), `rendering`, `retrying`."""

    stage: str
    ahead: int = 0
    own_render_running: bool = False
    retry_in: float | None = None


UpdateCallback = Callable[[JobUpdate], Awaitable[None]]


@dataclass(frozen=True)
class FinishedRender:
    record: Render
    image: RenderedImage


class RenderFailed(Exception):
    """A render that ended in an error; the record is already marked failed."""

    def __init__(self, record: Render, error: MuralError) -> None:
        super().__init__(error.detail)
        self.record = record
        self.error = error


class RenderQueue:
    def __init__(self, store: Store, renderer: Renderer, *, concurrency: int) -> None:
        self._store = store
        self._renderer = renderer
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting: list[int] = []
        self._active: set[asyncio.Task[object]] = set()
        self._member_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    async def _run_in_slot(
        self, record: Render, prompt: str, notify: Callable[[JobUpdate], Awaitable[None]]
    ) -> RenderedImage:
        """Wait for one of the render slots (saying how many are ahead), render, and record the outcome."""
        self._waiting.append(record.id)
        try:
            if self._slots.locked():
                await notify(JobUpdate("queued", ahead=self._waiting.index(record.id)))
            await self._slots.acquire()
        finally:
            self._waiting.remove(record.id)
        try:
            await self._store.mark_render_running(record.id)
            await notify(JobUpdate("rendering"))

            async def on_retry(error: MuralError, wait: float) -> None:
                await notify(JobUpdate("retrying", retry_in=wait))

            try:
                image = await self._renderer.render(
                    prompt,
                    requester_id=record.requester_id,
                    size=record.size,
                    quality=record.quality,
                    on_retry=on_retry,
                )
            except MuralError as error:
                await self._store.fail_render(record.id, code=error.code, error=error.detail)
                raise RenderFailed(record, error) from error
            except Exception as exc:
                error = MuralError(f"unexpected {type(exc).__name__}")
                await self._store.fail_render(record.id, code=error.code, error=error.detail)
                log.exception("Render %d failed unexpectedly", record.id)
                raise RenderFailed(record, error) from exc
            await self._store.finish_render(
                record.id,
                revised_prompt=image.revised_prompt,
                input_tokens=image.input_tokens,
                output_tokens=image.output_tokens,
                cost_usd=image.cost_usd,
            )
            return image
        finally:
            self._slots.release()

    async def shutdown(self, grace: float = 3.0) -> None:
        """Stop renders still running; their records stay unfinished, so the next start reports them."""
        tasks = [task for task in self._active if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)

    def _member_lock(self, member_id: int) -> asyncio.Lock:
        lock = self._member_locks.get(member_id)
        if lock is None:
            lock = asyncio.Lock()
            self._member_locks[member_id] = lock
        return lock

    async def render(
        self,
        *,
        session_id: int,
        version: int,
        prompt: str,
        requester_id: int,
        channel_id: int,
        size: str | None = None,
        quality: str | None = None,
        on_update: UpdateCallback | None = None,
    ) -> FinishedRender:
        """Queue, run and record one render; raises RenderFailed with the bot's error on failure."""
        renderer = self._renderer
        record = await self._store.create_render(
            session_id=session_id,
            version=version,
            requester_id=requester_id,
            channel_id=channel_id,
            model=renderer.model,
            size=size or renderer.default_size,
            quality=quality or renderer.default_quality,
        )

        async def notify(update: JobUpdate) -> None:
            if on_update is None:
                return
            try:
                await on_update(update)
            except Exception:
                # Progress is a courtesy; a failed edit must not cost the member their picture.
                log.warning("Progress update for render %d failed", record.id, exc_info=True)

        member_lock = self._member_lock(requester_id)
        current = asyncio.current_task()
        if current is not None:
            self._active.add(current)
        try:
            if member_lock.locked():
                await notify(JobUpdate("queued", own_render_running=True))
            async with member_lock:
                image = await self._run_in_slot(record, prompt, notify)
        finally:
            self._active.discard(current)
        return FinishedRender(record=record, image=image)
