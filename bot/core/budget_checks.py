"""Budgets applied to one member in one place: their limits, the check before any paid call, /usage.

The rules (whose limit wins, when a day resets, how a refusal reads) are `bot.core.budgets`; the
counting and the atomic check are the store's. This is where the two meet for a member.
"""

from __future__ import annotations

from dataclasses import replace

from bot.core.access import Place
from bot.core.budgets import BudgetExceeded, UsageReport, limits_for, window_at
from bot.core.server_rules import ServerRules
from bot.models import Limits, ServerSettings
from bot.store import Store


class Budgets:
    def __init__(self, store: Store, rules: ServerRules, *, operator_limits: Limits | None = None) -> None:
        self._store = store
        self._rules = rules
        # The operator's budgets, every server's defaults; none in narrow tests.
        self.operator_limits = operator_limits or Limits()

    async def limits(self, place: Place) -> Limits:
        """A member's limits where they act: the operator's, the server's, their roles'."""
        if place.guild_id is None:
            return limits_for(self.operator_limits, ServerSettings(guild_id=0), {}, place.role_ids)
        rules = await self._rules.of(place.guild_id)
        return limits_for(self.operator_limits, rules.settings, rules.role_limits, place.role_ids)

    async def check(
        self, place: Place, user_id: int, *, pictures: int = 0, cost: float = 0.0, quick: bool = False
    ) -> None:
        """Refuse, before anything is spent, what would go over a limit (a job's own reservation is
        checked again, atomically, when it is queued). `quick` before a command is acknowledged: what
        this process counted as well within passes at once, and the paid call checks exactly."""
        window = window_at()
        over = await self._store.check_limits(
            await self.limits(place),
            window,
            guild_id=place.guild_id,
            user_id=user_id,
            pictures=pictures,
            cost=cost,
            quick=quick,
        )
        if over is not None:
            raise BudgetExceeded(over, window)

    async def usage(self, place: Place, user_id: int, *, whole_server: bool) -> UsageReport:
        """A member's pictures and spend today and this month; with `whole_server`, the server's too."""
        window = window_at()
        store = self._store
        mine_today = await store.spent(window.day_start, guild_id=place.guild_id, user_id=user_id)
        mine_month = await store.spent(window.month_start, guild_id=place.guild_id, user_id=user_id)
        report = UsageReport(await self.limits(place), window, mine_today, mine_month)
        if not whole_server or place.guild_id is None:
            return report
        return replace(
            report,
            server_today=await store.spent(window.day_start, guild_id=place.guild_id, user_id=None),
            server_month=await store.spent(window.month_start, guild_id=place.guild_id, user_id=None),
            top_members=tuple(await store.top_members(place.guild_id, window.month_start)),
        )
