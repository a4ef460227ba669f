"""Keeping acknowledgements ahead of the work they start, on the one event loop they share."""

from __future__ import annotations

import asyncio
import collections


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
