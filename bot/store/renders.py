"""Queries on render jobs: created queued, claimed in fair order, finished, failed, cancelled, or
interrupted by a stop.

The fair order lives here, computed from the renders table alone (status, requester_id, started_at,
id), so it survives a restart and several processes could share it: round by round, each member's
oldest queued job, members whose latest job started longest ago first (members with none started
yet before them, in the order they queued).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from bot.models import QueuedTurn, Render
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

    async def mark_render_running(self, render_id: int) -> bool:
        """Start a queued job; False when it is no longer queued (cancelled, say)."""
        changed = await self._write(
            f"UPDATE renders SET status = 'running', started_at = {NOW} WHERE id = ? AND status = 'queued'",
            (render_id,),
        )
        return changed == 1

    async def queued_render_order(self) -> list[QueuedTurn]:
        """Every queued job in the fair order: the first is the next to start."""
        async with self._lock, self._db.execute(_FAIR_ORDER) as cursor:
            rows = list(await cursor.fetchall())
        return [QueuedTurn(row["id"], row["requester_id"], bool(row["busy"])) for row in rows]

    async def claim_next_render(self, candidates: Collection[int]) -> Render | None:
        """Mark running, atomically, the first job in the fair order among `candidates` whose member
        has no job running; None when there is none."""
        wanted = set(candidates)
        async with self._transaction() as db:
            async with db.execute(_FAIR_ORDER) as cursor:
                rows = list(await cursor.fetchall())
            chosen = next((row["id"] for row in rows if not row["busy"] and row["id"] in wanted), None)
            if chosen is None:
                return None
            await db.execute(
                f"UPDATE renders SET status = 'running', started_at = {NOW} WHERE id = ? AND status = 'queued'",
                (chosen,),
            )
            async with db.execute("SELECT * FROM renders WHERE id = ?", (chosen,)) as cursor:
                return record(Render, await cursor.fetchone())

    async def cancel_render(self, render_id: int) -> bool:
        """Cancel a job that is still queued; False when it already started or ended."""
        changed = await self._write(
            f"UPDATE renders SET status = 'cancelled', finished_at = {NOW} WHERE id = ? AND status = 'queued'",
            (render_id,),
        )
        return changed == 1

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


# Queued jobs numbered per member (`turn` 0 is each member's oldest), then ordered round by round;
# within a round, members with no job started yet come first (by their oldest queued job), then the
# member whose latest start is oldest. `busy`: the member has a job running, so theirs must wait.
_FAIR_ORDER = """
WITH queued AS (
    SELECT id, requester_id, ROW_NUMBER() OVER (PARTITION BY requester_id ORDER BY id) AS turn
    FROM renders WHERE status = 'queued'
), members AS (
    SELECT requester_id,
           MIN(id) AS first_queued,
           (SELECT MAX(started_at) FROM renders r
             WHERE r.requester_id = queued.requester_id AND r.started_at IS NOT NULL) AS last_started,
           EXISTS (SELECT 1 FROM renders r
                    WHERE r.requester_id = queued.requester_id AND r.status = 'running') AS busy
    FROM queued GROUP BY requester_id
)
SELECT queued.id, queued.requester_id, members.busy
FROM queued JOIN members USING (requester_id)
ORDER BY queued.turn, members.last_started IS NOT NULL, members.last_started, members.first_queued
"""
