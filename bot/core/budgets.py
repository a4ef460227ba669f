"""Budgets: what a member and a server may spend, worked out before any paid call.

Limits come from the operator (the environment), then the server (/settings), then, for the daily
picture limit, the member's roles: the most generous role override wins, since roles grant. Days and
months are UTC, so "resets" is the same moment for every member of a server. The counting and the
atomic check live in the store (`bot.store.budgets`); this module decides the limits and words a refusal.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.errors import MuralError
from bot.models import Limits, MemberSpent, OverLimit, ServerSettings, Spent, Window


def window_at(now: datetime | None = None) -> Window:
    """Today and this month (UTC) as of `now`, and when each resets."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    next_month = month + timedelta(days=calendar.monthrange(month.year, month.month)[1])
    return Window(
        day_start=day,
        month_start=month,
        day_reset=int((day + timedelta(days=1)).timestamp()),
        month_reset=int(next_month.timestamp()),
    )


def _setting(server: float | None, operator: float | None) -> float | None:
    """A server's own value over the operator's; 0 (stored for "no limit") means none."""
    if server is None:
        return operator
    return server or None


def limits_for(
    operator: Limits, settings: ServerSettings, role_limits: Mapping[int, int], role_ids: Collection[int]
) -> Limits:
    """One member's limits in one server (or, with default settings, in DMs)."""
    pictures = _setting(settings.daily_pictures, operator.member_daily_pictures)
    overrides = [role_limits[role] for role in role_ids if role in role_limits]
    if overrides:
        pictures = None if 0 in overrides else max(overrides)
    return Limits(
        member_daily_pictures=None if pictures is None else int(pictures),
        member_daily_spend=_setting(settings.daily_spend, operator.member_daily_spend),
        server_daily_spend=_setting(settings.server_daily_spend, operator.server_daily_spend),
        server_monthly_spend=_setting(settings.server_monthly_spend, operator.server_monthly_spend),
    )


def dollars(amount: float) -> str:
    return f"${amount:,.2f}"


# How each limit reads to a member, and whether it resets daily.
_LIMIT_TEXT = {
    "member_daily_pictures": ("your pictures for today", True),
    "member_daily_spend": ("your daily budget", True),
    "server_daily_spend": ("this server's daily budget", True),
    "server_monthly_spend": ("this server's monthly budget", False),
}


class BudgetExceeded(MuralError):
    code = "E-BUDGET"

    def __init__(self, over: OverLimit, window: Window) -> None:
        what, daily = _LIMIT_TEXT[over.limit]
        resets = window.day_reset if daily else window.month_reset
        if over.limit == "member_daily_pictures":
            used = f"{int(over.used)} of {int(over.allowed)}"
        else:
            used = f"{dollars(over.used)} of {dollars(over.allowed)}"
        # The member reads when it resets as a Discord timestamp (bot/ui/error_wording.py); the core
        # writes no Discord markup, so this message, complete without it, is the fallback.
        super().__init__(
            f"{over.limit} reached ({used})",
            user_message=f"That would go over {what}: {used} used. Nothing was drawn or charged.",
        )
        self.over = over
        self.what = what
        self.used = used
        self.resets_at = resets


@dataclass(frozen=True)
class UsageReport:
    """What /usage shows: a member's use against their limits, and for admins the server's."""

    limits: Limits
    window: Window
    member_today: Spent
    member_month: Spent
    server_today: Spent | None = None
    server_month: Spent | None = None
    top_members: tuple[MemberSpent, ...] = ()
