"""Queries on render jobs: created queued, claimed in fair order, finished, failed, cancelled, or
interrupted by a stop; held by a process under a lease while it lives.

The fair order lives here, computed from the renders table alone (status, requester_id, started_at,
id), so it survives a restart and every process sharing the database sees the same one: round by
round, each member's oldest queued job, members whose latest job started longest ago first (members
with none started yet before them, in the order they queued).

A job is held by the process that queued it (`held_by`, renewed in `lease_until` while it lives). A
claim takes the first job in the fair order whose member has nothing running, only if this process
holds it and fewer than `concurrency` jobs run in the whole deployment; claims take turns (one
lock), so each job is claimed once. A lapsed lease says what happened to a process that died: its
queued jobs were never sent (another process adopts and runs them), its running ones may have been
(they become interrupted, for their owners to retry).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.models import Limits, OverLimit, QueuedTurn, Render, Window
from bot.store.base import Database, Row, Tx, parse_time, record, records
from bot.store.budgets import budget_keys, over_limit
from bot.store.protocol import JOBS_TOPIC

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
    "held_by",
    "lease_until",
)
_INSERT_JOB = f"INSERT INTO renders ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' for _ in JOB_COLUMNS)}) RETURNING *"
_JOB_DEFAULTS: Mapping[str, Any] = {"n": 1, "kind": "generate", "with_reference": False}
# Claims take turns on this key, so the count of running jobs and the choice of the next are one decision.
_QUEUE_KEY = "render-queue"


async def _insert_render(tx: Tx, job: Mapping[str, Any]) -> Render:
    unknown = set(job) - set(JOB_COLUMNS)
    if unknown:
        raise ValueError(f"not parts of a job: {sorted(unknown)}")
    values = {**_JOB_DEFAULTS, **job}
    values["with_reference"] = bool(values["with_reference"])
    created = record(Render, await tx.one(_INSERT_JOB, *(values.get(column) for column in JOB_COLUMNS)))
    assert created is not None
    return created


class RenderQueries(Database):
    async def create_render(self, **job: Any) -> Render:
        """A job recorded as queued, with everything needed to run it again (Reroll, Retry, a restart)."""
        async with self._transaction() as tx:
            created = await _insert_render(tx, job)
            await self._notify(tx, JOBS_TOPIC, "queued")
        await self._count_use(
            created.guild_id, created.requester_id, pictures=created.n, spend=created.cost_reserved
        )
        return created

    async def reserve_render(self, *, limits: Limits, window: Window, **job: Any) -> Render | OverLimit:
        """Queue a job only if it fits the limits, checked and recorded in one transaction that takes turns
        with every other reservation for the same member or server (in any process), so that requests at
        once cannot both squeeze under a limit; the job's reserved cost counts at once."""
        guild_id, user_id = job.get("guild_id"), job["requester_id"]
        async with self._transaction() as tx:
            await self._serialize(tx, *budget_keys(guild_id, user_id))
            over = await over_limit(
                tx,
                limits,
                window,
                guild_id=guild_id,
                user_id=user_id,
                pictures=job.get("n", 1),
                cost=job.get("cost_reserved") or 0.0,
            )
            if over is not None:
                return over
            created = await _insert_render(tx, job)
            await self._notify(tx, JOBS_TOPIC, "queued")
        await self._count_use(
            created.guild_id, created.requester_id, pictures=created.n, spend=created.cost_reserved
        )
        return created

    async def queued_render_order(self) -> list[QueuedTurn]:
        """Every queued job in the fair order: the first is the next to start."""
        rows = await self._all(_FAIR_ORDER)
        return [QueuedTurn(int(row["id"]), int(row["requester_id"]), bool(row["busy"])) for row in rows]

    async def claim_next_render(
        self,
        candidates: Collection[int],
        *,
        holder: str | None = None,
        lease_until: datetime | None = None,
        concurrency: int | None = None,
        now: datetime | None = None,
    ) -> Render | None:
        """Mark running, atomically, the first job in the fair order whose member has no job running, if
        it is one of `candidates` (the jobs this process holds) and, with `concurrency`, fewer than that
        many jobs run with a live lease in the whole deployment; None otherwise. The attempt is recorded
        before the job is sent anywhere (`attempts`), so a lapsed lease on it means "maybe sent"."""
        wanted = set(candidates)
        async with self._transaction() as tx:
            await self._serialize(tx, _QUEUE_KEY)
            if concurrency is not None:
                # Running jobs whose holder died count until their lease lapses (then they are interrupted).
                live = await tx.one("SELECT COUNT(*) AS running FROM renders WHERE status = 'running'")
                if live is not None and int(live["running"]) >= concurrency:
                    return None
            chosen = _next_in_turn(await tx.all(_FAIR_ORDER), wanted, holder, now)
            if chosen is None:
                return None
            return record(
                Render,
                await tx.one(
                    "UPDATE renders SET status = 'running', started_at = NOW(), attempts = attempts + 1,"
                    " held_by = COALESCE(?, held_by), lease_until = COALESCE(?, lease_until)"
                    " WHERE id = ? AND status = 'queued' RETURNING *",
                    holder,
                    lease_until,
                    chosen,
                ),
            )

    async def cancel_render(self, render_id: int) -> bool:
        """Cancel a job that is still queued; False when it already started or ended."""
        async with self._transaction() as tx:
            changed = await tx.run(
                "UPDATE renders SET status = 'cancelled', finished_at = NOW(), held_by = NULL, lease_until = NULL"
                " WHERE id = ? AND status = 'queued'",
                render_id,
            )
            if changed:
                await self._notify(tx, JOBS_TOPIC, "cancelled")
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
        async with self._transaction() as tx:
            row = await tx.one(
                "UPDATE renders SET status = 'done', revised_prompt = ?, input_tokens = ?, output_tokens = ?,"
                " cost_usd = ?, cost_estimated = ?, error_code = NULL, error = NULL, finished_at = NOW(),"
                " held_by = NULL, lease_until = NULL WHERE id = ? RETURNING guild_id, requester_id, cost_reserved",
                revised_prompt,
                input_tokens,
                output_tokens,
                cost_usd,
                cost_estimated,
                render_id,
            )
            await self._notify(tx, JOBS_TOPIC, "done")
        reserved = 0.0 if row is None or row["cost_reserved"] is None else float(row["cost_reserved"])
        if row is not None and cost_usd is not None and cost_usd > reserved:
            # Dearer than reserved: the running totals count the difference (they never count down).
            await self._count_use(
                row["guild_id"], int(row["requester_id"]), pictures=0, spend=cost_usd - reserved
            )

    async def set_render_message(
        self, render_id: int, message_id: int, channel_id: int | None = None
    ) -> None:
        await self._run(
            "UPDATE renders SET message_id = ?, message_channel_id = ? WHERE id = ?",
            message_id,
            channel_id,
            render_id,
        )

    async def get_render(self, render_id: int) -> Render | None:
        return record(Render, await self._one("SELECT * FROM renders WHERE id = ?", render_id))

    async def render_for_message(self, message_id: int) -> Render | None:
        """The finished render a message shows (a reply to a picture edits it)."""
        return record(
            Render,
            await self._one("SELECT * FROM renders WHERE message_id = ? AND status = 'done'", message_id),
        )

    async def fail_render(self, render_id: int, *, code: str, error: str) -> None:
        async with self._transaction() as tx:
            await tx.run(
                "UPDATE renders SET status = 'failed', error_code = ?, error = ?, finished_at = NOW(),"
                " held_by = NULL, lease_until = NULL WHERE id = ?",
                code,
                error,
                render_id,
            )
            await self._notify(tx, JOBS_TOPIC, "failed")

    async def interrupt_running_renders(self, *, lapsed_before: datetime | None = None) -> list[Render]:
        """Mark renders a stop cut off mid-request as interrupted (the request may or may not have
        reached OpenAI, so they are not sent again unasked), and return them so owners can be told.

        With `lapsed_before`, only those whose holder stopped renewing its lease before then (a live
        process's renders are its own); without, every running one (one process alone)."""
        async with self._transaction() as tx:
            if lapsed_before is None:
                rows = await tx.all(
                    "UPDATE renders SET status = 'interrupted', finished_at = NOW(), held_by = NULL,"
                    " lease_until = NULL WHERE status = 'running' RETURNING *"
                )
            else:
                rows = await tx.all(
                    "UPDATE renders SET status = 'interrupted', finished_at = NOW(), held_by = NULL,"
                    " lease_until = NULL WHERE status = 'running' AND (lease_until IS NULL OR lease_until < ?)"
                    " RETURNING *",
                    lapsed_before,
                )
            if rows:
                await self._notify(tx, JOBS_TOPIC, "interrupted")
        return sorted(
            (replace(render, status="interrupted") for render in records(Render, rows)), key=lambda r: r.id
        )

    async def queued_renders(self) -> list[Render]:
        """Jobs still waiting for their turn (after a restart: to be run), oldest first."""
        return records(Render, await self._all("SELECT * FROM renders WHERE status = 'queued' ORDER BY id"))

    async def adopt_queued_renders(
        self, holder: str, *, lease_until: datetime, lapsed_before: datetime | None = None
    ) -> list[Render]:
        """Take over queued jobs nobody holds: released by a clean stop, or (`lapsed_before`) held by a
        process that stopped renewing its lease before then; without it, every queued job (one process
        alone, after a restart). Oldest first."""
        if lapsed_before is None:
            rows = await self._all(
                "UPDATE renders SET held_by = ?, lease_until = ? WHERE status = 'queued' RETURNING *",
                holder,
                lease_until,
            )
        else:
            rows = await self._all(
                "UPDATE renders SET held_by = ?, lease_until = ? WHERE status = 'queued'"
                " AND (held_by IS NULL OR (held_by <> ? AND (lease_until IS NULL OR lease_until < ?))) RETURNING *",
                holder,
                lease_until,
                holder,
                lapsed_before,
            )
        return sorted(records(Render, rows), key=lambda render: render.id)

    async def renew_leases(self, holder: str, *, lease_until: datetime) -> None:
        """This process lives: its queued and running jobs and its instructions stay its own until then."""
        async with self._transaction() as tx:
            await tx.run(
                "UPDATE renders SET lease_until = ? WHERE held_by = ? AND status IN ('queued', 'running')",
                lease_until,
                holder,
            )
            await tx.run(
                "UPDATE refinements SET lease_until = ? WHERE held_by = ? AND status = 'pending'",
                lease_until,
                holder,
            )

    async def release_queued_renders(self, holder: str) -> int:
        """A clean stop hands its queued jobs back: any process (or this one after its restart) runs them."""
        async with self._transaction() as tx:
            released = await tx.run(
                "UPDATE renders SET held_by = NULL, lease_until = NULL WHERE held_by = ? AND status = 'queued'",
                holder,
            )
            if released:
                await self._notify(tx, JOBS_TOPIC, "released")
        return released

    async def count_jobs(self) -> dict[str, int]:
        """How many jobs are queued and running in the whole deployment."""
        rows = await self._all(
            "SELECT status, COUNT(*) AS jobs FROM renders WHERE status IN ('queued', 'running') GROUP BY status"
        )
        counts = {"queued": 0, "running": 0}
        counts.update({str(row["status"]): int(row["jobs"]) for row in rows})
        return counts


def _next_in_turn(rows: list[Row], wanted: set[int], holder: str | None, now: datetime | None) -> int | None:
    """The job to start: the first in the fair order whose member has nothing running and which this
    process holds (one of `wanted`). None when that first is held by another live process: it is that
    one's turn, and it starts it (so fairness holds across processes). Jobs nobody live holds, or this
    process holds but has not taken up yet, do not stop the turn; they are adopted and run soon."""
    for row in rows:
        if row["busy"]:
            continue
        job = int(row["id"])
        if job in wanted:
            return job
        held_by, lease = row["held_by"], parse_time(row["lease_until"])
        if held_by is not None and held_by != holder and lease is not None and (now is None or lease >= now):
            return None
    return None


# Queued jobs numbered per member (`turn` 0 is each member's oldest), then ordered round by round;
# within a round, members with no job started yet come first (by their oldest queued job), then the
# member whose latest start is oldest. `busy`: the member has a job running, so theirs must wait.
# `members` is MATERIALIZED: computed once, not again for every queued job (PostgreSQL would otherwise
# fold it into the join and, misjudging a fresh table's size, run it per row: 30 ms instead of 1).
_FAIR_ORDER = """
WITH queued AS (
    SELECT id, requester_id, held_by, lease_until,
           ROW_NUMBER() OVER (PARTITION BY requester_id ORDER BY id) AS turn
    FROM renders WHERE status = 'queued'
), members AS MATERIALIZED (
    SELECT requester_id,
           MIN(id) AS first_queued,
           (SELECT MAX(started_at) FROM renders r
             WHERE r.requester_id = queued.requester_id AND r.started_at IS NOT NULL) AS last_started,
           EXISTS (SELECT 1 FROM renders r
                    WHERE r.requester_id = queued.requester_id AND r.status = 'running') AS busy
    FROM queued GROUP BY requester_id
)
SELECT queued.id, queued.requester_id, queued.held_by, queued.lease_until, members.busy
FROM queued JOIN members USING (requester_id)
ORDER BY queued.turn, members.last_started IS NOT NULL, members.last_started, members.first_queued, queued.id
"""
