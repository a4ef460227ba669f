"""Queries on what members and servers used, for budgets and /usage.

A window (today, this month; UTC) is counted from the rows themselves, through the `spending` view
(migration 0007), which says once what counts. Member figures are per place: one server, or DMs.
"""

from __future__ import annotations

from datetime import datetime

from bot.models import Limits, MemberSpent, OverLimit, Spent, Window
from bot.store.base import Database, Tx
from bot.store.totals import RunningTotals

# Dollars are compared with this much slack, so that rounding never refuses what exactly fits.
_CENT_FRACTION = 1e-9

# Everything one budget check needs, in one statement (the `spending` view defines what counts): the
# member's pictures and dollars today, and, in a server, its dollars today and this month.
_USED_IN_SERVER = """
SELECT COALESCE(SUM(CASE WHEN user_id = ? AND created_at >= ? THEN pictures END), 0) AS member_pictures,
       COALESCE(SUM(CASE WHEN user_id = ? AND created_at >= ? THEN spend END), 0) AS member_spend,
       COALESCE(SUM(CASE WHEN created_at >= ? THEN spend END), 0) AS server_day,
       COALESCE(SUM(spend), 0) AS server_month
FROM spending
WHERE guild_id = ? AND created_at >= ?
"""
# Outside servers (DMs, group DMs, user installs) only the member's own use counts.
_USED_OUTSIDE_SERVERS = """
SELECT COALESCE(SUM(CASE WHEN created_at >= ? THEN pictures END), 0) AS member_pictures,
       COALESCE(SUM(CASE WHEN created_at >= ? THEN spend END), 0) AS member_spend
FROM spending
WHERE guild_id IS NULL AND user_id = ? AND created_at >= ?
"""

_SPENT_BY_EVERYONE = """
SELECT COALESCE(SUM(pictures), 0) AS pictures, COALESCE(SUM(spend), 0) AS spend
FROM spending
WHERE created_at >= ? AND guild_id IS ?
"""
_SPENT_BY_MEMBER = _SPENT_BY_EVERYONE + " AND user_id = ?"

# The running totals (see `bot.store.totals`): each member's today and month, per place.
_EVERYONE_SINCE = """
SELECT guild_id, user_id,
       SUM(CASE WHEN created_at >= ? THEN pictures ELSE 0 END) AS pictures,
       SUM(CASE WHEN created_at >= ? THEN spend ELSE 0 END) AS spend,
       SUM(spend) AS month_spend
FROM spending
WHERE created_at >= ?
GROUP BY guild_id, user_id
"""

_TOP_MEMBERS = """
SELECT user_id, SUM(pictures) AS pictures, SUM(spend) AS spend
FROM spending
WHERE guild_id = ? AND created_at >= ?
GROUP BY user_id
ORDER BY SUM(spend) DESC, SUM(pictures) DESC, user_id
LIMIT ?
"""

# Servers at or past `share` of their monthly limit this month (operator's default or their own).
_NEAR_MONTHLY_LIMIT = """
SELECT spending.guild_id, SUM(spending.spend) AS spend, MAX(guild_settings.server_monthly_spend) AS own_limit
FROM spending LEFT JOIN guild_settings ON guild_settings.guild_id = spending.guild_id
WHERE spending.guild_id IS NOT NULL AND spending.created_at >= ?
GROUP BY spending.guild_id
"""


def budget_keys(guild_id: int | None, user_id: int) -> tuple[str, ...]:
    """What a reservation takes turns on: the member's budget here, and the server's."""
    member = f"budget:member:{guild_id}:{user_id}"
    return (f"budget:server:{guild_id}", member) if guild_id is not None else (member,)


async def _used_by(
    tx: Tx, window: Window, *, guild_id: int | None, user_id: int
) -> tuple[int, float, float, float]:
    day, month = window.day_start, window.month_start
    if guild_id is None:
        row = await tx.one(_USED_OUTSIDE_SERVERS, day, day, user_id, month)
        assert row is not None
        return int(row["member_pictures"]), float(row["member_spend"]), 0.0, 0.0
    row = await tx.one(_USED_IN_SERVER, user_id, day, user_id, day, day, guild_id, month)
    assert row is not None
    return (
        int(row["member_pictures"]),
        float(row["member_spend"]),
        float(row["server_day"]),
        float(row["server_month"]),
    )


def _breaks(used: float, allowed: float | None, adding: float) -> bool:
    if allowed is None:
        return False
    return used >= allowed - _CENT_FRACTION or used + adding > allowed + _CENT_FRACTION


def _decide(
    limits: Limits,
    used: tuple[int, float, float, float],
    *,
    guild_id: int | None,
    pictures: int,
    cost: float,
) -> OverLimit | None:
    """The first limit that `pictures` more pictures costing `cost` would break, given what is used
    (member pictures and dollars today, server dollars today and this month)."""
    member_pictures, member_spend, server_day, server_month = used
    allowed_pictures = limits.member_daily_pictures
    if pictures and allowed_pictures is not None and member_pictures + pictures > allowed_pictures:
        return OverLimit("member_daily_pictures", member_pictures, allowed_pictures)
    checks = (
        ("member_daily_spend", member_spend, limits.member_daily_spend),
        ("server_daily_spend", server_day, limits.server_daily_spend if guild_id else None),
        ("server_monthly_spend", server_month, limits.server_monthly_spend if guild_id else None),
    )
    for limit, spent, allowed in checks:
        if allowed is not None and _breaks(float(spent), allowed, cost):
            return OverLimit(limit, float(spent), allowed)
    return None


async def over_limit(
    tx: Tx,
    limits: Limits,
    window: Window,
    *,
    guild_id: int | None,
    user_id: int,
    pictures: int,
    cost: float,
) -> OverLimit | None:
    """The first limit that `pictures` more pictures costing `cost` would break, or None.

    Run inside the transaction that records the job, so that the check and the reservation are one.
    """
    if limits == Limits():
        return None
    used = await _used_by(tx, window, guild_id=guild_id, user_id=user_id)
    return _decide(limits, used, guild_id=guild_id, pictures=pictures, cost=cost)


class BudgetQueries(Database):
    async def check_limits(
        self,
        limits: Limits,
        window: Window,
        *,
        guild_id: int | None,
        user_id: int,
        pictures: int,
        cost: float,
        quick: bool = False,
    ) -> OverLimit | None:
        """`over_limit` outside a transaction, for calls that reserve nothing (chat) or before a job is
        made. A `quick` check (before a command is acknowledged) lets through what this process's running
        totals count as well within every limit, without reading the rows; it refuses only what the
        rows refuse."""
        if limits == Limits():
            return None
        totals = self._totals
        if totals is None or (totals.day_start, totals.month_start) != (window.day_start, window.month_start):
            self._count_use_from_rows_soon(window)
        elif (
            quick
            and _decide(
                limits, totals.used(guild_id, user_id), guild_id=guild_id, pictures=pictures, cost=cost
            )
            is None
        ):
            return None  # well within every limit, by this process's own count
        # Near a limit, exact, or not counted yet: the rows decide.
        used = await _used_by(self._single, window, guild_id=guild_id, user_id=user_id)
        return _decide(limits, used, guild_id=guild_id, pictures=pictures, cost=cost)

    def _count_use_from_rows_soon(self, window: Window) -> None:
        """Read the running totals for a new day or month, once however many checks ask."""
        if self._totals_reader is None or self._totals_reader.done():
            self._totals_reader = self._background.spawn(self.count_use_from_rows(window), name="totals")

    async def count_use_from_rows(self, window: Window) -> None:
        """Start the running totals for `window` from the rows (at start, and for each new day)."""
        day, month = window.day_start, window.month_start
        rows = await self._all(_EVERYONE_SINCE, day, day, month)
        totals = RunningTotals(window.day_start, window.month_start)
        for row in rows:
            guild_id, spend = row["guild_id"], float(row["spend"])
            guild_id = None if guild_id is None else int(guild_id)
            totals.members[(guild_id, int(row["user_id"]))] = [int(row["pictures"]), spend]
            if guild_id is not None:
                totals.server_day[guild_id] += spend
                totals.server_month[guild_id] += float(row["month_spend"])
        # Nothing was recorded between reading the rows and this (no await since the lock was let go).
        self._totals = totals

    async def spent(self, since: datetime, *, guild_id: int | None, user_id: int | None) -> Spent:
        if user_id is None:
            row = await self._one(_SPENT_BY_EVERYONE, since, guild_id)
        else:
            row = await self._one(_SPENT_BY_MEMBER, since, guild_id, user_id)
        assert row is not None
        return Spent(pictures=int(row["pictures"]), spend=float(row["spend"]))

    async def top_members(self, guild_id: int, since: datetime, limit: int = 5) -> list[MemberSpent]:
        """The members who used a server most since `since`, by dollars then pictures."""
        rows = await self._all(_TOP_MEMBERS, guild_id, since, limit)
        return [MemberSpent(int(row["user_id"]), int(row["pictures"]), float(row["spend"])) for row in rows]

    async def role_limits(self, guild_id: int) -> dict[int, int]:
        """Each role's own daily picture limit on a server (0: no limit)."""
        rows = await self._all("SELECT role_id, daily_pictures FROM role_limits WHERE guild_id = ?", guild_id)
        return {int(row["role_id"]): int(row["daily_pictures"]) for row in rows}

    async def set_role_limit(self, guild_id: int, role_id: int, daily_pictures: int | None) -> None:
        """Give a role its own daily picture limit, or (None) take it away."""
        async with self._transaction() as tx:
            if daily_pictures is None:
                await tx.run("DELETE FROM role_limits WHERE guild_id = ? AND role_id = ?", guild_id, role_id)
            else:
                await tx.run(
                    "INSERT INTO role_limits (guild_id, role_id, daily_pictures) VALUES (?, ?, ?)"
                    " ON CONFLICT (guild_id, role_id) DO UPDATE SET daily_pictures = excluded.daily_pictures",
                    guild_id,
                    role_id,
                    daily_pictures,
                )
            await self._settings_changed(tx, guild_id)

    async def servers_near_monthly_limit(
        self, since: datetime, default_limit: float | None, share: float
    ) -> int:
        """How many servers have used `share` (0.9: 90 %) or more of their monthly limit since `since`."""
        near = 0
        for row in await self._all(_NEAR_MONTHLY_LIMIT, since):
            own = row["own_limit"]
            allowed = default_limit if own is None else (float(own) or None)
            if allowed and float(row["spend"]) >= share * allowed:
                near += 1
        return near
