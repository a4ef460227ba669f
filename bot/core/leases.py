"""Who holds a job: this process, for as long as it keeps renewing its lease.

Every process has its own `Holder` id. Jobs and instructions it records carry that id and a lease that
it renews every third of `RENDER_LEASE_SECONDS` while it lives. A lease that lapsed tells the other
processes sharing the database that its holder died: its queued jobs were never sent (they run
elsewhere), its running ones may have been (they become interrupted, with Retry). On SQLite one process
is alone, so at its start everything left over is its own to recover (`shared` is False).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Holder:
    seconds: float = 60.0
    # Whether other processes may share the database (PostgreSQL).
    shared: bool = False
    id: str = field(default_factory=lambda: secrets.token_hex(8))

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    def until(self) -> datetime:
        """When a lease renewed now lapses."""
        return self.now() + timedelta(seconds=self.seconds)

    @property
    def renew_every(self) -> float:
        return self.seconds / 3

    def lapsed_before(self) -> datetime | None:
        """What a start or a recovery may take over: leases that lapsed before now, where processes share
        the database; everything (None) where this process is alone."""
        return self.now() if self.shared else None
