"""Background work that is owned: every task is kept, named, cancellable, and its failure is logged.

The bot, the render queue and the studio each own one `TaskOwner`; shutting one down cancels only
the work it started, never the task of whoever asked for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class TaskOwner:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str, awaited: bool = False) -> asyncio.Task[T]:
        """Start `coro` as a task this owner keeps until it ends.

        Its failure is logged here, unless `awaited`: then whoever awaits it owns the error.
        """
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if not awaited:
            task.add_done_callback(_log_failure)
        return task

    async def shutdown(self, grace: float = 3.0) -> None:
        """Cancel everything still running and wait up to `grace` seconds for it to unwind."""
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("Background task %s failed", task.get_name(), exc_info=task.exception())
