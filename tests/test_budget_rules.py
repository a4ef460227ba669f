"""How limits are worked out and when they reset, without Discord: narrow rules of `bot.core.budgets`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.budgets import BudgetExceeded, limits_for, window_at
from bot.models import Limits, OverLimit, ServerSettings
from bot.ui.error_wording import member_message


def test_the_most_generous_role_wins_and_zero_means_no_limit() -> None:
    operator = Limits(member_daily_pictures=10, member_daily_spend=1.0, server_daily_spend=5.0)
    server = ServerSettings(guild_id=1, daily_pictures=3, server_daily_spend=0)
    assert limits_for(operator, server, {}, []).member_daily_pictures == 3
    assert limits_for(operator, server, {7: 1, 8: 20}, [7, 8]).member_daily_pictures == 20
    assert limits_for(operator, server, {7: 1}, [7]).member_daily_pictures == 1, "a role can lower it"
    assert limits_for(operator, server, {7: 0, 8: 20}, [7, 8]).member_daily_pictures is None
    assert limits_for(operator, server, {7: 1}, []).member_daily_pictures == 3, "only roles the member has"
    assert limits_for(operator, server, {}, []).server_daily_spend is None, "0 on a server: no limit"
    assert limits_for(operator, server, {}, []).member_daily_spend == 1.0, "unset: the operator's"


@pytest.mark.parametrize(
    ("now", "day_reset", "month_reset"),
    [
        (
            datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 2, 28, 12, 0, tzinfo=UTC),
            datetime(2026, 3, 1, tzinfo=UTC),
            datetime(2026, 3, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 30, 0, 0, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 3, 8, 0, tzinfo=UTC),
            datetime(2026, 11, 4, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
        ),
    ],
)
def test_days_and_months_are_utc_and_reset_at_midnight(
    now: datetime, day_reset: datetime, month_reset: datetime
) -> None:
    window = window_at(now)
    assert window.day_reset == int(day_reset.timestamp())
    assert window.month_reset == int(month_reset.timestamp())
    assert window.day_start == now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert window.month_start == now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@pytest.mark.parametrize(
    ("over", "says"),
    [
        (OverLimit("member_daily_pictures", 5, 5), "your pictures for today: 5 of 5 used"),
        (OverLimit("member_daily_spend", 1.234, 2), "your daily budget: $1.23 of $2.00 used"),
        (OverLimit("server_daily_spend", 24.9, 25), "this server's daily budget: $24.90 of $25.00 used"),
        (
            OverLimit("server_monthly_spend", 250, 250),
            "this server's monthly budget: $250.00 of $250.00 used",
        ),
    ],
)
def test_a_refusal_names_the_limit_the_use_and_the_reset(over: OverLimit, says: str) -> None:
    window = window_at(datetime(2026, 11, 30, 12, tzinfo=UTC))
    error = BudgetExceeded(over, window)
    assert says in error.user_message and error.code == "E-BUDGET"
    reset = window.month_reset if over.limit == "server_monthly_spend" else window.day_reset
    assert error.resets_at == reset and "<t:" not in error.user_message, "the core writes no Discord markup"
    shown = member_message(error)
    assert says in shown and f"It resets <t:{reset}:R>." in shown and "Nothing was drawn or charged" in shown
