"""Queries on what members and servers used, for budgets and /usage.

A window (today, this month; UTC) is counted from the rows themselves: pictures of jobs queued,
running or done; dollars of chat calls plus, for each job, its cost once known and its reserved
estimate until then. A job cut off while running counts its reserved cost (OpenAI may have billed it);
failed and cancelled jobs count nothing. Member figures are per place: one server, or DMs (no server).
"""

from __future__ import annotations

import aiosqlite

from bot.models import Limits, MemberSpent, OverLimit, Spent, Window
from bot.store.database import Database

# Dollars are compared with this much slack, so that rounding never refuses what exactly fits.
_CENT_FRACTION = 1e-9

_RENDERS_SPENT = """
SELECT COALESCE(SUM(CASE WHEN status IN ('queued', 'running', 'done') THEN n ELSE 0 END), 0) AS pictures,
       COALESCE(SUM(CASE
           WHEN status = 'done' THEN COALESCE(cost_usd, cost_reserved, 0)
           WHEN status IN ('queued', 'running') THEN COALESCE(cost_reserved, 0)
           WHEN status = 'interrupted' AND started_at IS NOT NULL THEN COALESCE(cost_reserved, 0)
           ELSE 0 END), 0) AS spend
FROM renders
WHERE created_at >= ? AND guild_id IS ? AND (? IS NULL OR requester_id = ?)
"""

_CHAT_SPENT = """
SELECT COALESCE(SUM(cost_usd), 0) AS spend
FROM chat_usage
WHERE created_at >= ? AND guild_id IS ? AND (? IS NULL OR user_id = ?)
"""

_TOP_MEMBERS = """
WITH used AS (
    SELECT requester_id AS user_id,
           CASE WHEN status IN ('queued', 'running', 'done') THEN n ELSE 0 END AS pictures,
           CASE
               WHEN status = 'done' THEN COALESCE(cost_usd, cost_reserved, 0)
               WHEN status IN ('queued', 'running') THEN COALESCE(cost_reserved, 0)
               WHEN status = 'interrupted' AND started_at IS NOT NULL THEN COALESCE(cost_reserved, 0)
               ELSE 0 END AS spend
    FROM renders WHERE guild_id = ? AND created_at >= ?
    UNION ALL
    SELECT user_id, 0, COALESCE(cost_usd, 0) FROM chat_usage WHERE guild_id = ? AND created_at >= ?
)
SELECT user_id, SUM(pictures) AS pictures, SUM(spend) AS spend
FROM used GROUP BY user_id
ORDER BY spend DESC, pictures DESC, user_id
LIMIT ?
"""


async def spent_in(
    db: aiosqlite.Connection, since: str, *, guild_id: int | None, user_id: int | None
) -> Spent:
    """Pictures and dollars since `since`, in a server (or DMs), by one member or by all."""
    async with db.execute(_RENDERS_SPENT, (since, guild_id, user_id, user_id)) as cursor:
        renders = await cursor.fetchone()
    async with db.execute(_CHAT_SPENT, (since, guild_id, user_id, user_id)) as cursor:
        chat = await cursor.fetchone()
    assert renders is not None and chat is not None
    return Spent(pictures=int(renders["pictures"]), spend=float(renders["spend"]) + float(chat["spend"]))


def _breaks(used: float, allowed: float | None, adding: float) -> bool:
    if allowed is None:
        return False
    return used >= allowed - _CENT_FRACTION or used + adding > allowed + _CENT_FRACTION


async def over_limit(
    db: aiosqlite.Connection,
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
    if limits.member_daily_pictures is not None or limits.member_daily_spend is not None:
        mine = await spent_in(db, window.day_start, guild_id=guild_id, user_id=user_id)
        allowed_pictures = limits.member_daily_pictures
        if pictures and allowed_pictures is not None and mine.pictures + pictures > allowed_pictures:
            return OverLimit("member_daily_pictures", mine.pictures, allowed_pictures)
        if _breaks(mine.spend, limits.member_daily_spend, cost):
            return OverLimit("member_daily_spend", mine.spend, limits.member_daily_spend or 0.0)
    if guild_id is None:
        return None  # DMs have no server budget
    for limit, since, allowed in (
        ("server_daily_spend", window.day_start, limits.server_daily_spend),
        ("server_monthly_spend", window.month_start, limits.server_monthly_spend),
    ):
        if allowed is None:
            continue
        server = await spent_in(db, since, guild_id=guild_id, user_id=None)
        if _breaks(server.spend, allowed, cost):
            return OverLimit(limit, server.spend, allowed)
    return None


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
    ) -> OverLimit | None:
        """`over_limit` on its own, for calls that reserve nothing (chat) or before a job is made."""
        async with self._lock:
            return await over_limit(
                self._db, limits, window, guild_id=guild_id, user_id=user_id, pictures=pictures, cost=cost
            )

    async def spent(self, since: str, *, guild_id: int | None, user_id: int | None) -> Spent:
        async with self._lock:
            return await spent_in(self._db, since, guild_id=guild_id, user_id=user_id)

    async def top_members(self, guild_id: int, since: str, limit: int = 5) -> list[MemberSpent]:
        """The members who used a server most since `since`, by dollars then pictures."""
        rows = await self._all(_TOP_MEMBERS, (guild_id, since, guild_id, since, limit))
        return [MemberSpent(int(row["user_id"]), int(row["pictures"]), float(row["spend"])) for row in rows]

    async def role_limits(self, guild_id: int) -> dict[int, int]:
        """Each role's own daily picture limit on a server (0: no limit)."""
        rows = await self._all(
            "SELECT role_id, daily_pictures FROM role_limits WHERE guild_id = ?", (guild_id,)
        )
        return {int(row["role_id"]): int(row["daily_pictures"]) for row in rows}

    async def set_role_limit(self, guild_id: int, role_id: int, daily_pictures: int | None) -> None:
        """Give a role its own daily picture limit, or (None) take it away."""
        if daily_pictures is None:
            await self._write(
                "DELETE FROM role_limits WHERE guild_id = ? AND role_id = ?", (guild_id, role_id)
            )
            return
        await self._write(
            "INSERT INTO role_limits (guild_id, role_id, daily_pictures) VALUES (?, ?, ?)"
            " ON CONFLICT (guild_id, role_id) DO UPDATE SET daily_pictures = excluded.daily_pictures",
            (guild_id, role_id, daily_pictures),
        )
