"""Queries on render jobs: created queued, marked running, finished, failed, or interrupted by a stop."""

from __future__ import annotations

from dataclasses import replace

from bot.models import Render
from bot.store.database import NOW, Database, record, records


class RenderQueries(Database):
    async def create_render(
        self,
        *,
        session_id: int,
        version: int,
        requester_id: int,
        channel_id: int,
        model: str,
        size: str,
        quality: str,
        prompt: str | None = None,
        n: int = 1,
        kind: str = "generate",
        source_render_id: int | None = None,
        source_index: int | None = None,
        instruction: str | None = None,
        with_reference: bool = False,
    ) -> Render:
        """A job recorded as queued, with everything needed to run it again (Reroll, Retry)."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO renders (session_id, version, requester_id, channel_id, model, size, quality,"
                " prompt, n, kind, source_render_id, source_index, instruction, with_reference)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    version,
                    requester_id,
                    channel_id,
                    model,
                    size,
                    quality,
                    prompt,
                    n,
                    kind,
                    source_render_id,
                    source_index,
                    instruction,
                    int(with_reference),
                ),
            )
            async with db.execute("SELECT * FROM renders WHERE id = ?", (cursor.lastrowid,)) as rows:
                created = record(Render, await rows.fetchone())
        assert created is not None
        return created

    async def mark_render_running(self, render_id: int) -> None:
        await self._write(
            f"UPDATE renders SET status = 'running', started_at = {NOW} WHERE id = ? AND status = 'queued'",
            (render_id,),
        )

    async def finish_render(
        self,
        render_id: int,
        *,
        revised_prompt: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cost_usd: float | None,
        cost_estimated: bool = False,
    ) -> None:
        await self._write(
            "UPDATE renders SET status = 'done', revised_prompt = ?, input_tokens = ?, output_tokens = ?,"
            f" cost_usd = ?, cost_estimated = ?, error_code = NULL, error = NULL, finished_at = {NOW} WHERE id = ?",
            (revised_prompt, input_tokens, output_tokens, cost_usd, int(cost_estimated), render_id),
        )

    async def set_render_message(
        self, render_id: int, message_id: int, channel_id: int | None = None
    ) -> None:
        await self._write(
            "UPDATE renders SET message_id = ?, message_channel_id = ? WHERE id = ?",
            (message_id, channel_id, render_id),
        )

    async def get_render(self, render_id: int) -> Render | None:
        return record(Render, await self._one("SELECT * FROM renders WHERE id = ?", (render_id,)))

    async def render_for_message(self, message_id: int) -> Render | None:
        """The finished render a message shows (a reply to a picture edits it)."""
        return record(
            Render,
            await self._one("SELECT * FROM renders WHERE message_id = ? AND status = 'done'", (message_id,)),
        )

    async def fail_render(self, render_id: int, *, code: str, error: str) -> None:
        await self._write(
            f"UPDATE renders SET status = 'failed', error_code = ?, error = ?, finished_at = {NOW} WHERE id = ?",
            (code, error, render_id),
        )

    async def interrupt_unfinished_renders(self) -> list[Render]:
        """Mark renders cut off by a stop as interrupted, and return them so owners can be told."""
        async with self._transaction() as db:
            async with db.execute(
                "SELECT * FROM renders WHERE status IN ('queued', 'running') ORDER BY id"
            ) as cursor:
                rows = list(await cursor.fetchall())
            await db.execute(
                f"UPDATE renders SET status = 'interrupted', finished_at = {NOW}"
                " WHERE status IN ('queued', 'running')"
            )
        return [replace(render, status="interrupted") for render in records(Render, rows)]
