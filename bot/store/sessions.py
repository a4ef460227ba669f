"""Queries on sessions, their versions, and refinements in progress."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot.models import Reference, Refinement, Session, SessionSummary, Version
from bot.store.base import Database, Tx, parse_time, record, records


class SessionQueries(Database):
    async def create_session(
        self,
        *,
        guild_id: int | None,
        channel_id: int,
        owner_id: int,
        origin: str,
        idea: str,
        target: str,
        style: str | None,
        first_prompt: str,
        aspect: str | None = None,
        reference: Reference | None = None,
        chat_usage_id: int | None = None,
    ) -> tuple[Session, Version]:
        """A new session with its v1, written together so neither exists without the other.

        `chat_usage_id` is the chat call that wrote v1, recorded before the session existed.
        """
        async with self._transaction() as tx:
            row = await tx.one(
                "INSERT INTO sessions (guild_id, channel_id, owner_id, origin, idea, target, style, aspect,"
                " head_version, last_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 1) RETURNING *",
                guild_id,
                channel_id,
                owner_id,
                origin,
                idea,
                target,
                style,
                aspect,
            )
            session = record(Session, row)
            assert session is not None, "INSERT … RETURNING always returns the row"
            version = record(
                Version,
                await tx.one(
                    "INSERT INTO versions (session_id, number, parent, prompt, instruction, author_id)"
                    " VALUES (?, 1, NULL, ?, NULL, ?) RETURNING *",
                    session.id,
                    first_prompt,
                    owner_id,
                ),
            )
            if reference is not None:
                await tx.run(
                    "INSERT INTO reference_images (session_id, filename, mime, data) VALUES (?, ?, ?, ?)",
                    session.id,
                    reference.filename,
                    reference.mime,
                    reference.data,
                )
            if chat_usage_id is not None:
                await tx.run("UPDATE chat_usage SET session_id = ? WHERE id = ?", session.id, chat_usage_id)
        assert version is not None
        return session, version

    @staticmethod
    async def _fetch_version(tx: Tx, session_id: int, number: int) -> Version | None:
        return record(
            Version,
            await tx.one("SELECT * FROM versions WHERE session_id = ? AND number = ?", session_id, number),
        )

    async def get_session(self, session_id: int) -> Session | None:
        return record(Session, await self._one("SELECT * FROM sessions WHERE id = ?", session_id))

    async def session_for_thread(self, thread_id: int) -> Session | None:
        return record(Session, await self._one("SELECT * FROM sessions WHERE thread_id = ?", thread_id))

    async def attach_thread(self, session_id: int, thread_id: int) -> None:
        await self._run(
            "UPDATE sessions SET thread_id = ?, updated_at = NOW() WHERE id = ?", thread_id, session_id
        )

    async def reference_for(self, session_id: int) -> Reference | None:
        row = await self._one(
            "SELECT filename, mime, data FROM reference_images WHERE session_id = ?", session_id
        )
        return None if row is None else Reference(row["filename"], row["mime"], bytes(row["data"]))

    async def move_head_to_parent(self, session_id: int, number: int) -> Version | None:
        """Undo: when `number` is the head and has a parent, the parent becomes the head (and is returned).

        One statement that checks and changes, so two quick presses (in any processes) cannot undo twice
        from one head: the second finds the head moved.
        """
        async with self._transaction() as tx:
            row = await tx.one(
                "UPDATE sessions SET updated_at = NOW(), head_version ="
                " (SELECT v.parent FROM versions v WHERE v.session_id = sessions.id AND v.number = sessions.head_version)"
                " WHERE id = ? AND head_version = ? AND EXISTS (SELECT 1 FROM versions v"
                " WHERE v.session_id = sessions.id AND v.number = sessions.head_version AND v.parent IS NOT NULL)"
                " RETURNING head_version",
                session_id,
                number,
            )
            if row is None:
                return None
            return await self._fetch_version(tx, session_id, int(row["head_version"]))

    async def recent_sessions(self, owner_id: int, limit: int) -> list[SessionSummary]:
        """A member's latest sessions with how many versions and pictures each has, newest first."""
        rows = await self._all(
            """
            SELECT s.*,
                   (SELECT COUNT(*) FROM versions v WHERE v.session_id = s.id) AS version_count,
                   (SELECT COALESCE(SUM(r.n), 0) FROM renders r
                     WHERE r.session_id = s.id AND r.status = 'done') AS picture_count,
                   (SELECT v.message_id FROM versions v
                     WHERE v.session_id = s.id AND v.number = s.head_version) AS head_message_id
            FROM sessions s WHERE s.owner_id = ? ORDER BY s.id DESC LIMIT ?
            """,
            owner_id,
            limit,
        )
        summaries = []
        for row in rows:
            session = record(Session, row)
            assert session is not None
            summaries.append(
                SessionSummary(
                    session=session,
                    versions=int(row["version_count"]),
                    pictures=int(row["picture_count"]),
                    created_at=parse_time(row["created_at"]) or datetime.now(UTC),
                    jump_channel_id=session.thread_id or session.channel_id,
                    jump_message_id=row["head_message_id"],
                )
            )
        return summaries

    async def version_for_message(self, message_id: int) -> Version | None:
        """The version a message shows, for replies to it where the session has no thread."""
        return record(Version, await self._one("SELECT * FROM versions WHERE message_id = ?", message_id))

    async def get_version(self, session_id: int, number: int) -> Version | None:
        return record(
            Version,
            await self._one("SELECT * FROM versions WHERE session_id = ? AND number = ?", session_id, number),
        )

    async def lineage(self, session_id: int, number: int, limit: int) -> list[Version]:
        """Up to `limit` versions ending at `number`, following parents back, oldest first."""
        rows = await self._all(
            """
            WITH RECURSIVE chain (number, depth) AS (
                SELECT CAST(? AS INTEGER), 0
                UNION ALL
                SELECT v.parent, chain.depth + 1 FROM versions v JOIN chain ON v.number = chain.number
                WHERE v.session_id = ? AND v.parent IS NOT NULL AND chain.depth + 1 < ?
            )
            SELECT v.* FROM versions v JOIN chain ON v.number = chain.number
            WHERE v.session_id = ? ORDER BY chain.depth DESC
            """,
            number,
            session_id,
            limit,
            session_id,
        )
        return records(Version, rows)

    async def add_version(
        self,
        session_id: int,
        *,
        parent: int,
        prompt: str,
        instruction: str,
        author_id: int,
        refinement_id: int | None = None,
    ) -> Version:
        """Store the next version (numbers only grow, even after an undo) and make it the head.

        The number is taken from the session row by the same statement that moves the head, so two
        writers at once (two processes, two quick replies) take turns on the row and get two numbers;
        the refinement that asked for it, if any, is marked done in the same transaction.
        """
        async with self._transaction() as tx:
            row = await tx.one(
                "UPDATE sessions SET last_version = last_version + 1, head_version = last_version + 1,"
                " updated_at = NOW() WHERE id = ? RETURNING last_version",
                session_id,
            )
            if row is None:
                raise LookupError(f"session {session_id} does not exist")
            number = int(row["last_version"])
            version = record(
                Version,
                await tx.one(
                    "INSERT INTO versions (session_id, number, parent, prompt, instruction, author_id)"
                    " VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
                    session_id,
                    number,
                    parent,
                    prompt,
                    instruction,
                    author_id,
                ),
            )
            if refinement_id is not None:
                await tx.run(
                    "UPDATE refinements SET status = 'done', version = ?, held_by = NULL, lease_until = NULL"
                    " WHERE id = ?",
                    number,
                    refinement_id,
                )
        assert version is not None
        return version

    async def start_refinement(
        self,
        *,
        session_id: int,
        author_id: int,
        channel_id: int,
        instruction: str,
        held_by: str | None = None,
        lease_until: datetime | None = None,
    ) -> Refinement:
        """Record an instruction before the model is asked, so a crash mid-way can be reported; held by
        this process (`held_by`) until `lease_until`, renewed while it lives."""
        row = await self._one(
            "INSERT INTO refinements (session_id, author_id, channel_id, instruction, held_by, lease_until)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
            session_id,
            author_id,
            channel_id,
            instruction,
            held_by,
            lease_until,
        )
        created = record(Refinement, row)
        assert created is not None
        return created

    async def fail_refinement(self, refinement_id: int) -> None:
        await self._run(
            "UPDATE refinements SET status = 'failed', held_by = NULL, lease_until = NULL"
            " WHERE id = ? AND status = 'pending'",
            refinement_id,
        )

    async def interrupt_pending_refinements(
        self, *, lapsed_before: datetime | None = None
    ) -> list[Refinement]:
        """Mark instructions a stop cut off as interrupted, and return them so their authors can be told.

        With `lapsed_before`, only those whose holder stopped renewing its lease before then (a live
        process's work in progress is left alone); without, every pending one (one process alone).
        """
        async with self._transaction() as tx:
            if lapsed_before is None:
                rows = await tx.all(
                    "UPDATE refinements SET status = 'interrupted', held_by = NULL, lease_until = NULL"
                    " WHERE status = 'pending' RETURNING *"
                )
            else:
                rows = await tx.all(
                    "UPDATE refinements SET status = 'interrupted', held_by = NULL, lease_until = NULL"
                    " WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < ?) RETURNING *",
                    lapsed_before,
                )
        return sorted(
            (replace(item, status="interrupted") for item in records(Refinement, rows)), key=lambda r: r.id
        )

    async def set_version_message(self, version_id: int, message_id: int) -> None:
        await self._run("UPDATE versions SET message_id = ? WHERE id = ?", message_id, version_id)
