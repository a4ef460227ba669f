"""Persistence: the only package with SQL in it, behind one interface with two backends.

`Store` (in `protocol`) is what the rest of Mural depends on. `SQLiteStore` keeps everything in one file
for one process (the default); `PostgresStore` keeps it in PostgreSQL for a deployment of one or more
processes. Both are the same query groups (sessions and versions, render jobs, usage and budgets,
servers' settings, the web gallery), each its own module, over a backend module (`sqlite`, `postgres`);
the schemas are the numbered scripts in `migrations/<dialect>/`.
"""

from __future__ import annotations

from pathlib import Path

from bot.core.errors import StoreUnavailable
from bot.store.budgets import BudgetQueries
from bot.store.gallery import GalleryQueries
from bot.store.guilds import GuildQueries
from bot.store.postgres import PostgresDatabase
from bot.store.protocol import Store
from bot.store.renders import RenderQueries
from bot.store.sessions import SessionQueries
from bot.store.sqlite import SQLiteDatabase
from bot.store.usage import UsageQueries


class SQLiteStore(
    SessionQueries, RenderQueries, UsageQueries, GuildQueries, BudgetQueries, GalleryQueries, SQLiteDatabase
):
    """Everything Mural remembers, in one SQLite file; a restart loses nothing."""


class PostgresStore(
    SessionQueries, RenderQueries, UsageQueries, GuildQueries, BudgetQueries, GalleryQueries, PostgresDatabase
):
    """Everything a deployment of one or more processes remembers, in one PostgreSQL database."""


async def open_store(*, path: Path, url: str | None = None) -> Store:
    """The store a deployment uses: PostgreSQL at `url` when given, else the SQLite file at `path`."""
    if url is None:
        return await SQLiteStore.open(path)
    return await PostgresStore.open(url)


__all__ = ["PostgresStore", "SQLiteStore", "Store", "StoreUnavailable", "open_store"]
