"""SQLite persistence: the only package with SQL in it.

`Store` is the query groups over one connection: sessions and versions, render jobs, usage and budgets, servers' settings. Each
group is its own module; the schema is the numbered scripts in `migrations/`.
"""

from __future__ import annotations

from bot.store.budgets import BudgetQueries
from bot.store.guilds import GuildQueries
from bot.store.renders import RenderQueries
from bot.store.sessions import SessionQueries
from bot.store.usage import UsageQueries


class Store(SessionQueries, RenderQueries, UsageQueries, GuildQueries, BudgetQueries):
    """Everything Mural remembers; a restart loses nothing."""


__all__ = ["Store"]
