"""Queries on what was spent: chat calls' tokens and cost (renders keep theirs on the render row)."""

from __future__ import annotations

from bot.store.base import Database


class UsageQueries(Database):
    async def record_chat_usage(
        self,
        *,
        session_id: int | None,
        guild_id: int | None,
        user_id: int,
        purpose: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        estimated: bool,
        cost_usd: float | None,
    ) -> int:
        row = await self._one(
            "INSERT INTO chat_usage (session_id, guild_id, user_id, purpose, model, input_tokens,"
            " output_tokens, estimated, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            session_id,
            guild_id,
            user_id,
            purpose,
            model,
            input_tokens,
            output_tokens,
            estimated,
            cost_usd,
        )
        assert row is not None
        usage_id = int(row["id"])
        await self._count_use(guild_id, user_id, pictures=0, spend=cost_usd)
        return usage_id
