"""Queries on sessions, their versions, and refinements in progress."""

from __future__ import annotations

from dataclasses import replace

import aiosqlite

from bot.models import Reference, Refinement, Session, SessionSummary, Version
from bot.store.database import NOW, Database, record, records


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
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO sessions (guild_id, channel_id, owner_id, origin, idea, target, style, aspect,"
                " head_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                (guild_id, channel_id, owner_id, origin, idea, target, style, aspect),
            )
            session_id = cursor.lastrowid
            assert session_id is not None, "an INSERT always sets lastrowid"
            await db.execute(
                "INSERT INTO versions (session_id, number, parent, prompt, instruction, author_id)"
                " VALUES (?, 1, NULL, ?, NULL, ?)",
                (session_id, first_prompt, owner_id),
            )
            if reference is not None:
                await db.execute(
                    "INSERT INTO reference_images (session_id, filename, mime, data) VALUES (?, ?, ?, ?)",
                    (session_id, reference.filename, reference.mime, reference.data),
                )
            if chat_usage_id is not None:
                await db.execute(
                    "UPDATE chat_usage SET session_id = ? WHERE id = ?", (session_id, chat_usage_id)
                )
            session = await self._fetch_session(db, session_id)
            version = await self._fetch_version(db, session_id, 1)
        assert session is not None and version is not None
        return session, version

    @staticmethod
    async def _fetch_session(db: aiosqlite.Connection, session_id: int) -> Session | None:
        async with db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)) as cursor:
            return record(Session, await cursor.fetchone())

    @staticmethod
    async def _fetch_version(db: aiosqlite.Connection, session_id: int, number: int) -> Version | None:
        async with db.execute(
            "SELECT * FROM versions WHERE session_id = ? AND number = ?", (session_id, number)
        ) as cursor:
            return record(Version, await cursor.fetchone())

    async def get_session(self, session_id: int) -> Session | None:
        return record(Session, await self._one("SELECT * FROM sessions WHERE id = ?", (session_id,)))

    async def session_for_thread(self, thread_id: int) -> Session | None:
        return record(Session, await self._one("SELECT * FROM sessions WHERE thread_id = ?", (thread_id,)))

    async def attach_thread(self, session_id: int, thread_id: int) -> None:
        await self._write(
            f"UPDATE sessions SET thread_id = ?, updated_at = {NOW} WHERE id = ?", (thread_id, session_id)
        )

    async def reference_for(self, session_id: int) -> Reference | None:
        row = await self._one(
            "SELECT filename, mime, data FROM reference_images WHERE session_id = ?", (session_id,)
        )
        return None if row is None else Reference(row["filename"], row["mime"], bytes(row["data"]))

    async def move_head_to_parent(self, session_id: int, number: int) -> Version | None:
        """Undo: when `number` is the head and has a parent, the parent becomes the head (and is returned).

        Checked and changed in one transaction, so two quick presses cannot undo twice from one head.
        """
        async with self._transaction() as db:
            async with db.execute(
                "SELECT v.parent FROM sessions s JOIN versions v ON v.session_id = s.id AND v.number = s.head_version"
                " WHERE s.id = ? AND s.head_version = ?",
                (session_id, number),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None or row["parent"] is None:
                return None
            await db.execute(
                f"UPDATE sessions SET head_version = ?, updated_at = {NOW} WHERE id = ?",
                (row["parent"], session_id),
            )
            return await self._fetch_version(db, session_id, row["parent"])

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
            (owner_id, limit),
        )
        summaries = []
        for row in rows:
            session = record(Session, row)
            assert session is not None
            summaries.append(
                SessionSummary(
                    session=session,
                    versions=row["version_count"],
                    pictures=row["picture_count"],
                    created_at=row["created_at"],
                    jump_channel_id=session.thread_id or session.channel_id,
                    jump_message_id=row["head_message_id"],
                )
            )
        return summaries

    async def version_for_message(self, message_id: int) -> Version | None:
        """The version a message shows, for replies to it where the session has no thread."""
        return record(Version, await self._one("SELECT * FROM versions WHERE message_id = ?", (message_id,)))

    async def get_version(self, session_id: int, number: int) -> Version | None:
        return record(
            Version,
            await self._one(
                "SELECT * FROM versions WHERE session_id = ? AND number = ?", (session_id, number)
            ),
        )

    async def lineage(self, session_id: int, number: int, limit: int) -> list[Version]:
        """Up to `limit` versions ending at `number`, following parents back, oldest first."""
        rows = await self._all(
            """
            WITH RECURSIVE chain (number, depth) AS (
                SELECT ?, 0
                UNION ALL
                SELECT v.parent, chain.depth + 1 FROM versions v JOIN chain ON v.number = chain.number
                WHERE v.session_id = ? AND v.parent IS NOT NULL AND chain.depth + 1 < ?
            )
            SELECT v.* FROM versions v JOIN chain ON v.number = chain.number
            WHERE v.session_id = ? ORDER BY chain.depth DESC
            """,
            (number, session_id, limit, session_id),
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

        The refinement that asked for it, if any, is marked done in the same transaction.
        """
        async with self._transaction() as db:
            async with db.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM versions WHERE session_id = ?", (session_id,)
            ) as cursor:
                row = await cursor.fetchone()
            number = int(row[0]) if row else 1
            await db.execute(
                "INSERT INTO versions (session_id, number, parent, prompt, instruction, author_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, number, parent, prompt, instruction, author_id),
            )
            await db.execute(
                f"UPDATE sessions SET head_version = ?, updated_at = {NOW} WHERE id = ?",
                (number, session_id),
            )
            if refinement_id is not None:
                await db.execute(
                    "UPDATE refinements SET status = 'done', version = ? WHERE id = ?",
                    (number, refinement_id),
                )
            version = await self._fetch_version(db, session_id, number)
        assert version is not None
        return version

    async def start_refinement(
        self, *, session_id: int, author_id: int, channel_id: int, instruction: str
    ) -> Refinement:
        """Record an instruction before the model is asked, so a crash mid-way can be reported."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO refinements (session_id, author_id, channel_id, instruction) VALUES (?, ?, ?, ?)",
                (session_id, author_id, channel_id, instruction),
            )
            async with db.execute("SELECT * FROM refinements WHERE id = ?", (cursor.lastrowid,)) as rows:
                created = record(Refinement, await rows.fetchone())
        assert created is not None
        return created

    async def fail_refinement(self, refinement_id: int) -> None:
        await self._write(
            "UPDATE refinements SET status = 'failed' WHERE id = ? AND status = 'pending'", (refinement_id,)
        )

    async def interrupt_pending_refinements(self) -> list[Refinement]:
        """Mark instructions a stop cut off as interrupted, and return them so their authors can be told."""
        async with self._transaction() as db:
            async with db.execute("SELECT * FROM refinements WHERE status = 'pending' ORDER BY id") as cursor:
                rows = list(await cursor.fetchall())
            await db.execute("UPDATE refinements SET status = 'interrupted' WHERE status = 'pending'")
        return [replace(item, status="interrupted") for item in records(Refinement, rows)]

    async def set_version_message(self, version_id: int, message_id: int) -> None:
        await self._write("UPDATE versions SET message_id = ? WHERE id = ?", (message_id, version_id))
