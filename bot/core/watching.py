"""What the core tells whoever watches it work: a job's end, its pictures posted, money spent.

The core says so where the work happens (`job_ended`, the render queue, the prompt writer) and never
knows who listens: `bot/observe/` turns it into metrics when they are switched on. A bot without
them is watched by `NOBODY`, which does nothing. A watcher's methods are called on the event loop,
on the hot path of every job: they must be quick and must never raise.
"""

from __future__ import annotations

from typing import Literal, Protocol

SpendKind = Literal["chat", "image"]


class Watcher(Protocol):
    def job_ended(self, model: str, status: str) -> None:
        """A render or edit ended: `done`, `failed`, `cancelled` or `interrupted`."""
        ...

    def pictures_posted(self, model: str, seconds: float) -> None:
        """A job's pictures were posted, `seconds` after the job started to be drawn."""
        ...

    def spent(self, kind: SpendKind, dollars: float) -> None:
        """A paid call's cost was recorded (chat: prompt writing and describing; image: renders, edits)."""
        ...


class _Nobody:
    def job_ended(self, model: str, status: str) -> None:
        pass

    def pictures_posted(self, model: str, seconds: float) -> None:
        pass

    def spent(self, kind: SpendKind, dollars: float) -> None:
        pass


NOBODY: Watcher = _Nobody()
