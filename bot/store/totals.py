"""Running totals of today's and this month's use, kept beside the rows so that a budget check before a
command is acknowledged needs no trip to the database.

They are read once from the rows (`bot.store.budgets` warms them) and then counted up as this process
records jobs and chat calls. They never count down (a failed or cancelled job, a render cheaper than
its reservation) and know nothing of other processes sharing the database, so they are only ever
used to say "well within every limit": whatever they cannot say that of is decided by the rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class RunningTotals:
    day_start: datetime
    month_start: datetime
    # (server or None for DMs, member) -> [pictures, dollars] today
    members: defaultdict[tuple[int | None, int], list[float]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0.0])
    )
    server_day: defaultdict[int, float] = field(default_factory=lambda: defaultdict(float))
    server_month: defaultdict[int, float] = field(default_factory=lambda: defaultdict(float))

    def count(self, guild_id: int | None, user_id: int, *, pictures: int, spend: float) -> None:
        """Something recorded just now."""
        used = self.members[(guild_id, user_id)]
        used[0] += pictures
        used[1] += spend
        if guild_id is not None:
            self.server_day[guild_id] += spend
            self.server_month[guild_id] += spend

    def used(self, guild_id: int | None, user_id: int) -> tuple[int, float, float, float]:
        """Member pictures and dollars today, server dollars today and this month (0 outside a server)."""
        pictures, spend = self.members.get((guild_id, user_id), (0, 0.0))
        if guild_id is None:
            return int(pictures), spend, 0.0, 0.0
        return int(pictures), spend, self.server_day.get(guild_id, 0.0), self.server_month.get(guild_id, 0.0)
