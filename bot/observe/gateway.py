"""This process's gateway connections, shard by shard.

discord.py's `is_ready()` stays true after a connection drops, so the shard events say it instead: a
shard is connected from its READY (`shard_connect`) or RESUMED (`shard_resumed`) until its next
`shard_disconnect`, and while its socket is open. The bot tells this as it dispatches those events,
in their order, before any handler runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Protocol

log = logging.getLogger(__name__)

# The gateway events that change a shard's connection, and what they change it to.
SHARD_EVENTS = {"shard_connect": True, "shard_resumed": True, "shard_disconnect": False}


class Shard(Protocol):
    """What discord.py's `ShardInfo` tells about one connection."""

    def is_closed(self) -> bool: ...

    @property
    def latency(self) -> float: ...


class Gateway:
    def __init__(self) -> None:
        self._connected: dict[int, bool] = {}

    def heard(self, event: str, shard_id: int) -> None:
        """A shard event was dispatched (others are ignored)."""
        up = SHARD_EVENTS.get(event)
        if up is None:
            return
        before = self._connected.get(shard_id)
        self._connected[shard_id] = up
        if before is True and not up:
            log.info(
                "Gateway shard %d disconnected; it reconnects by itself", shard_id, extra={"shard": shard_id}
            )
        elif before is False and up:
            log.info("Gateway shard %d connected again", shard_id, extra={"shard": shard_id})

    def connected(self, shards: Mapping[int, Shard]) -> dict[int, bool]:
        """Each shard's connection: READY or RESUMED since its last disconnect, and its socket open."""
        return {
            shard_id: self._connected.get(shard_id, False) and not shard.is_closed()
            for shard_id, shard in shards.items()
        }

    @staticmethod
    def latencies(shards: Mapping[int, Shard]) -> dict[int, float]:
        """Each shard's heartbeat latency, once it has one."""
        return {shard_id: shard.latency for shard_id, shard in shards.items() if math.isfinite(shard.latency)}

    def problem(self, expected: Iterable[int] | None, shards: Mapping[int, Shard]) -> str | None:
        """Why the gateway is not healthy ("gateway shard 1 disconnected"), or None when every shard of
        this process is connected. `expected`: the process's shard ids (None until Discord said how many)."""
        ids = sorted(expected) if expected is not None else sorted(shards)
        if not ids:
            return "gateway not connected yet"
        connected = self.connected(shards)
        for shard_id in ids:
            if not connected.get(shard_id, False):
                ever = shard_id in self._connected
                return f"gateway shard {shard_id} " + ("disconnected" if ever else "not connected yet")
        return None
