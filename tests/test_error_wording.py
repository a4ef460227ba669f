"""The core's refusals carry whom and when as data; the member reads them as Discord mentions and timestamps."""

from __future__ import annotations

import pytest

from bot.core.access import MissingRole, NotTheOwner
from bot.core.budgets import BudgetExceeded, window_at
from bot.core.errors import MuralError, SessionGone
from bot.models import OverLimit
from bot.ui.error_wording import member_message
from bot.ui.layouts import error_text

WINDOW = window_at()


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (NotTheOwner(42, "refine it"), "Only <@42>, who started this prompt, can refine it."),
        (MissingRole(7), "members with the <@&7> role use Mural"),
        (
            BudgetExceeded(OverLimit("member_daily_pictures", 5, 5), WINDOW),
            f"your pictures for today: 5 of 5 used. It resets <t:{WINDOW.day_reset}:R>.",
        ),
    ],
    ids=["owner", "role", "budget"],
)
def test_a_refusal_names_its_member_role_or_moment_in_discords_markup(error: MuralError, shown: str) -> None:
    assert shown in member_message(error) and shown in error_text(error)
    assert "<@" not in error.user_message and "<t:" not in error.user_message, "the core writes no markup"


def test_any_other_error_reads_as_its_own_message() -> None:
    assert member_message(SessionGone()) == SessionGone.user_message
