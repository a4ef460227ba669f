"""Queries on render jobs: created queued, claimed in fair order, finished, failed, cancelled, or
interrupted by a stop.

The fair order lives here, computed from the renders table alone (status, requester_id, started_at,
id), so it survives a restart and several processes could share it: round by round, each member's
oldest queued job, members whose latest job started longest ago first (members with none started
yet before them, in the order they queued).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

import aiosqlite

from bot.models import Limits, OverLimit, QueuedTurn, Render, Window
from bot.store.budgets import over_limit
from bot.store.database import NOW, Database, record, records

# What a job is made of; everything else on a render row is filled in as it runs.
JOB_COLUMNS = (
    "session_id",
    "version",
    "requester_id",
    "channel_id",
    "guild_id",
    "model",
    "size",
    "quality",
    "prompt",
    "n",
    "kind",
    "source_render_id",
    "source_index",
    "instruction",
    "with_reference",
    "cost_reserved",
)
_INSERT_JOB = (
    "INSERT INTO renders (session_id, version, requester_id, channel_id, guild_id, model, size, quality, prompt,"
    " n, kind, source_render_id, source_index, instruction, with_reference, cost_reserved)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_JOB_DEFAULTS: Mapping[str, Any] = {"n": 1, "kind": "generate", "with_reference": False}


async def _insert_render(db: aiosqlite.Connection, job: Mapping[str, Any]) -> Render:
    unknown = set(job) - set(JOB_COLUMNS)
    if unknown:
        raise ValueError(f"not parts of a job: {sorted(unknown)}")
    values = {**_JOB_DEFAULTS, **job}
    values["with_reference"] = int(values["with_reference"])
    cursor = await db.execute(_INSERT_JOB, tuple(values.get(column) for column in JOB_COLUMNS))
    async with db.execute("SELECT * FROM renders WHERE id = ?", (cursor.lastrowid,)) as rows:
        created = record(Render, await rows.fetchone())
    assert created is not None
    return created


class RenderQueries(Database):
    async def create_render(self, **job: Any) -> Render:
        """A job recorded as queued, with everything needed to run it again (Reroll, Retry, a restart)."""
        async with self._transaction() as db:
            created = await _insert_render(db, job)
        self._count_use(
            created.guild_id, created.requester_id, pictures=created.n, spend=created.cost_reserved
        )
        return created

    async def reserve_render(self, *, limits: Limits, window: Window, **job: Any) -> Render | OverLimit:
        """Queue a job only if it fits the limits, checked and recorded in one transaction, so that
        requests at once cannot both squeeze under a limit; the job's reserved cost counts at once."""
        async with self._transaction() as db:
            over = await over_limit(
                db,
                limits,
                window,
                guild_id=job.get("guild_id"),
                user_id=job["requester_id"],
                pictures=job.get("n", 1),
                cost=job.get("cost_reserved") or 0.0,
            )
            if over is not None:
                return over
            created = await _insert_render(db, job)
        self._count_use(
            created.guild_id, created.requester_id, pictures=created.n, spend=created.cost_reserved
        )
        return created

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
        row = await self._one(
            "UPDATE renders SET status = 'done', revised_prompt = ?, input_tokens = ?, output_tokens = ?,"
            f" cost_usd = ?, cost_estimated = ?, error_code = NULL, error = NULL, finished_at = {NOW} WHERE id = ?"
            " RETURNING guild_id, requester_id, cost_reserved",
            (revised_prompt, input_tokens, output_tokens, cost_usd, int(cost_estimated), render_id),
        )
        if row is not None and cost_usd is not None and cost_usd > (row["cost_reserved"] or 0.0):
            # Dearer than reserved: the running totals count the difference (they never count down).
            extra = cost_usd - (row["cost_reserved"] or 0.0)
            self._count_use(row["guild_id"], row["requester_id"], pictures=0, spend=extra)

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

    async def interrupt_running_renders(self) -> list[Render]:
        """Mark renders a stop cut off mid-request as interrupted (the request may or may not have
        reached OpenAI, so they are not sent again unasked), and return them so owners can be told."""
        async with self._transaction() as db:
            async with db.execute("SELECT * FROM renders WHERE status = 'running' ORDER BY id") as cursor:
                rows = list(await cursor.fetchall())
            await db.execute(
                f"UPDATE renders SET status = 'interrupted', finished_at = {NOW} WHERE status = 'running'"
            )
        return [replace(render, status="interrupted") for render in records(Render, rows)]

    async def queued_renders(self) -> list[Render]:
        """Jobs still waiting for their turn (after a restart: to be run), oldest first."""
        return records(
            Render, await self._all("SELECT * FROM renders WHERE status = 'queued' ORDER BY id", ())
        )


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
