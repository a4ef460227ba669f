"""Queries on each server's own settings (/settings)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.models import ServerSettings
from bot.store.base import Database, record

SETTING_COLUMNS = (
    "image_model",
    "image_size",
    "image_quality",
    "session_access",
    "required_role_id",
    "moderation",
    "audit_channel_id",
    "daily_pictures",
    "daily_spend",
    "server_daily_spend",
    "server_monthly_spend",
    "gallery",
)

_SAVE_SETTINGS = (
    f"INSERT INTO guild_settings (guild_id, {', '.join(SETTING_COLUMNS)})"
    f" VALUES (?, {', '.join('?' for _ in SETTING_COLUMNS)})"
    " ON CONFLICT (guild_id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in SETTING_COLUMNS)
    + ", updated_at = NOW()"
)


class GuildQueries(Database):
    async def server_settings(self, guild_id: int) -> ServerSettings:
        row = await self._one("SELECT * FROM guild_settings WHERE guild_id = ?", guild_id)
        return record(ServerSettings, row) or ServerSettings(guild_id=guild_id)

    async def change_server_settings(self, guild_id: int, changes: dict[str, Any]) -> ServerSettings:
        """Apply `changes` (setting → value, None clears) in one transaction and return the result."""
        unknown = set(changes) - set(SETTING_COLUMNS)
        if unknown:
            raise ValueError(f"not server settings: {sorted(unknown)}")
        async with self._transaction() as tx:
            # Two admins at once (in any processes) take turns, so neither's change is lost.
            await self._serialize(tx, f"settings:{guild_id}")
            row = await tx.one("SELECT * FROM guild_settings WHERE guild_id = ?", guild_id)
            current = record(ServerSettings, row) or ServerSettings(guild_id=guild_id)
            merged = replace(current, **changes)
            await tx.run(
                _SAVE_SETTINGS,
                guild_id,
                *(getattr(merged, column) for column in SETTING_COLUMNS),
            )
            await self._settings_changed(tx, guild_id)
        return merged

    async def all_server_rules(self) -> tuple[dict[int, ServerSettings], dict[int, dict[int, int]]]:
        """Every server's stored settings, and every server's role limits (read once at start)."""
        settings = {
            int(row["guild_id"]): record(ServerSettings, row)
            for row in await self._all("SELECT * FROM guild_settings")
        }
        role_limits: dict[int, dict[int, int]] = {}
        for row in await self._all("SELECT guild_id, role_id, daily_pictures FROM role_limits"):
            role_limits.setdefault(int(row["guild_id"]), {})[int(row["role_id"])] = int(row["daily_pictures"])
        return {guild: stored for guild, stored in settings.items() if stored is not None}, role_limits
