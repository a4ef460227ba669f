"""Queries on what members and servers used, for budgets and /usage.

A window (today, this month; UTC) is counted from the rows themselves: pictures of jobs queued,
running or done; dollars of chat calls plus, for each job, its cost once known and its reserved
estimate until then. A job cut off while running counts its reserved cost (OpenAI may have billed it);
failed and cancelled jobs count nothing. Member figures are per place: one server, or DMs (no server).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.models import Limits, MemberSpent, OverLimit, Spent, Window
from bot.store.database import Database
from bot.store.totals import RunningTotals

# Dollars are compared with this much slack, so that rounding never refuses what exactly fits.
_CENT_FRACTION = 1e-9

_COST = """CASE
    WHEN status = 'done' THEN COALESCE(cost_usd, cost_reserved, 0)
    WHEN status IN ('queued', 'running') THEN COALESCE(cost_reserved, 0)
    WHEN status = 'interrupted' AND started_at IS NOT NULL THEN COALESCE(cost_reserved, 0)
    ELSE 0 END"""

_RENDERS_SPENT = (
    """
SELECT COALESCE(SUM(CASE WHEN status IN ('queued', 'running', 'done') THEN n ELSE 0 END), 0) AS pictures,
       COALESCE(SUM("""
    + _COST
    + """), 0) AS spend
FROM renders
WHERE created_at >= ? AND guild_id IS ? AND (? IS NULL OR requester_id = ?)
"""
)

_CHAT_SPENT = """
SELECT COALESCE(SUM(cost_usd), 0) AS spend
FROM chat_usage
WHERE created_at >= ? AND guild_id IS ? AND (? IS NULL OR user_id = ?)
"""

# Everything the budget checks of several members need, in one statement (one row per member asked):
# a check runs before a command is acknowledged, and each statement is a round trip through the
# event loop, so the checks of commands arriving together share one.
_USAGE_OF_ASKED = (
    """
SELECT asked.k AS k,
  (SELECT COALESCE(SUM(CASE WHEN status IN ('queued', 'running', 'done') THEN n ELSE 0 END), 0)
     FROM renders WHERE requester_id = asked.member AND created_at >= asked.day AND guild_id IS asked.guild
  ) AS member_pictures,
  (SELECT COALESCE(SUM("""
    + _COST
    + """), 0)
     FROM renders WHERE requester_id = asked.member AND created_at >= asked.day AND guild_id IS asked.guild)
  + (SELECT COALESCE(SUM(cost_usd), 0)
     FROM chat_usage WHERE user_id = asked.member AND created_at >= asked.day AND guild_id IS asked.guild
  ) AS member_spend,
  (SELECT COALESCE(SUM("""
    + _COST
    + """), 0)
     FROM renders WHERE asked.guild IS NOT NULL AND guild_id = asked.guild AND created_at >= asked.day)
  + (SELECT COALESCE(SUM(cost_usd), 0)
     FROM chat_usage WHERE asked.guild IS NOT NULL AND guild_id = asked.guild AND created_at >= asked.day
  ) AS server_day,
  (SELECT COALESCE(SUM("""
    + _COST
    + """), 0)
     FROM renders WHERE asked.guild IS NOT NULL AND guild_id = asked.guild AND created_at >= asked.month)
  + (SELECT COALESCE(SUM(cost_usd), 0)
     FROM chat_usage WHERE asked.guild IS NOT NULL AND guild_id = asked.guild AND created_at >= asked.month
  ) AS server_month
FROM asked
"""
)
_ASKED_ROW = "(?, ?, ?, ?, ?)"
# Rows per statement: five parameters each, well under SQLite's limit on parameters.
_MOST_ASKED = 100


def _usage_query(rows: int) -> str:
    """The usage statement for `rows` members, their place and window as parameters."""
    return (
        "WITH asked (k, member, guild, day, month) AS (VALUES "
        + ", ".join([_ASKED_ROW] * rows)
        + ")"
        + _USAGE_OF_ASKED
    )


_ONE_ASKED = _usage_query(1)


@dataclass(frozen=True)
class _Asked:
    user_id: int
    guild_id: int | None
    window: Window

    def parameters(self, key: int) -> tuple[Any, ...]:
        return (key, self.user_id, self.guild_id, self.window.day_start, self.window.month_start)


# The running totals (see `bot.store.totals`), read from the rows: each member's today, each server's
# today and this month.
_MEMBERS_TODAY = (
    """
SELECT guild_id, member, SUM(pictures) AS pictures, SUM(spend) AS spend FROM (
    SELECT guild_id, requester_id AS member,
           CASE WHEN status IN ('queued', 'running', 'done') THEN n ELSE 0 END AS pictures,
           """
    + _COST
    + """ AS spend
    FROM renders WHERE created_at >= :day
    UNION ALL
    SELECT guild_id, user_id, 0, COALESCE(cost_usd, 0) FROM chat_usage WHERE created_at >= :day
) GROUP BY guild_id, member
"""
)
_SERVERS_NOW = (
    """
SELECT guild_id, SUM(CASE WHEN created_at >= :day THEN spend ELSE 0 END) AS day, SUM(spend) AS month FROM (
    SELECT guild_id, created_at, """
    + _COST
    + """ AS spend
    FROM renders WHERE guild_id IS NOT NULL AND created_at >= :month
    UNION ALL
    SELECT guild_id, created_at, COALESCE(cost_usd, 0) FROM chat_usage
    WHERE guild_id IS NOT NULL AND created_at >= :month
) GROUP BY guild_id
"""
)

_TOP_MEMBERS = (
    """
WITH used AS (
    SELECT requester_id AS user_id,
           CASE WHEN status IN ('queued', 'running', 'done') THEN n ELSE 0 END AS pictures,
           """
    + _COST
    + """ AS spend
    FROM renders WHERE guild_id = ? AND created_at >= ?
    UNION ALL
    SELECT user_id, 0, COALESCE(cost_usd, 0) FROM chat_usage WHERE guild_id = ? AND created_at >= ?
)
SELECT user_id, SUM(pictures) AS pictures, SUM(spend) AS spend
FROM used GROUP BY user_id
ORDER BY spend DESC, pictures DESC, user_id
LIMIT ?
"""
)


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
    if limits == Limits():
        return None
    (used,) = await db.execute_fetchall(_ONE_ASKED, _Asked(user_id, guild_id, window).parameters(0))
    return _decide(limits, _numbers(used), guild_id=guild_id, pictures=pictures, cost=cost)


def _numbers(row: aiosqlite.Row) -> tuple[int, float, float, float]:
    return (
        int(row["member_pictures"]),
        float(row["member_spend"]),
        float(row["server_day"]),
        float(row["server_month"]),
    )


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
        made; checks asked for together are read together. A `quick` check (before a command is
        acknowledged) lets through what this process's running totals count as well within every
        limit, without reading the rows; it refuses only what the rows refuse."""
        if limits == Limits():
            return None
        totals = self._totals
        if totals is None or (totals.day_start, totals.month_start) != (window.day_start, window.month_start):
            self._warm_totals_soon(window)
        elif quick and (
            _decide(limits, totals.used(guild_id, user_id), guild_id=guild_id, pictures=pictures, cost=cost)
            is None
        ):
            return None  # well within every limit, by this process's own count
        # Near a limit, or not counted yet: the rows decide.
        used = await self._usage_soon(_Asked(user_id, guild_id, window))
        return _decide(limits, _numbers(used), guild_id=guild_id, pictures=pictures, cost=cost)

    def _warm_totals_soon(self, window: Window) -> None:
        """Read the running totals for `window` from the rows, once however many checks ask."""
        if self._totals_reader is None or self._totals_reader.done():
            self._totals_reader = asyncio.create_task(self._warm_totals(window), name="mural-totals")

    async def count_use_from_rows(self, window: Window) -> None:
        """Start the running totals for `window` now (they are otherwise read on the first check)."""
        await self._warm_totals(window)

    async def _warm_totals(self, window: Window) -> None:
        place = {"day": window.day_start, "month": window.month_start}
        async with self._lock:
            members = await self._db.execute_fetchall(_MEMBERS_TODAY, place)
            servers = await self._db.execute_fetchall(_SERVERS_NOW, place)
        totals = RunningTotals(window.day_start, window.month_start)
        for row in members:
            totals.members[(row["guild_id"], int(row["member"]))] = [
                int(row["pictures"]),
                float(row["spend"]),
            ]
        for row in servers:
            totals.server_day[int(row["guild_id"])] = float(row["day"])
            totals.server_month[int(row["guild_id"])] = float(row["month"])
        # Nothing was recorded between reading the rows and this (no await since the lock was let go).
        self._totals = totals

    async def _usage_soon(self, asked: _Asked) -> aiosqlite.Row:
        """One member's usage, read with every other member's asked for meanwhile."""
        answer: asyncio.Future[aiosqlite.Row] = asyncio.get_running_loop().create_future()
        self._usage_asked.append((asked, answer))
        if self._usage_reader is None or self._usage_reader.done():
            self._usage_reader = asyncio.create_task(self._read_usage(), name="mural-usage-reader")
        return await answer

    async def _read_usage(self) -> None:
        while self._usage_asked:
            batch = self._usage_asked[:_MOST_ASKED]
            del self._usage_asked[:_MOST_ASKED]
            parameters = [value for key, (asked, _) in enumerate(batch) for value in asked.parameters(key)]
            try:
                async with self._lock:
                    rows = await self._db.execute_fetchall(_usage_query(len(batch)), parameters)
            except Exception as error:
                for _, answer in batch:
                    if not answer.done():
                        answer.set_exception(error)
                continue
            for row in rows:
                answer = batch[row["k"]][1]
                if not answer.done():
                    answer.set_result(row)

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
