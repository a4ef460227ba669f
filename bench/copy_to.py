"""`python -m bot copy-to`: how long moving a SQLite database into PostgreSQL takes.

Run from the repository root: `.venv/bin/python -m bench.copy_to [versions] [server_url]` (defaults 10,000
and the machine's PostgreSQL, postgresql://postgres@127.0.0.1:5432/postgres). A SQLite database is filled
through the store as the bot fills it: sessions of 10 versions each, a render for every other version
(an edit of it for every tenth), a chat call per version, some servers' settings; then it is copied
into a new database on the server (made for the run and dropped afterwards), verification included,
as `copy_to` does for the command. Tests never assert on these numbers.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bot.store import SQLiteStore
from bot.store.copying import copy_to

VERSIONS_PER_SESSION = 10


async def fill(path: Path, versions: int) -> None:
    store = await SQLiteStore.open(path)
    try:
        for number in range(versions // VERSIONS_PER_SESSION):
            owner, guild = 1000 + number % 97, 10 + number % 13
            session, _ = await store.create_session(
                guild_id=guild,
                channel_id=20,
                owner_id=owner,
                origin="prompt",
                idea=f"idea {number}",
                target="openai",
                style=None,
                first_prompt=f"A detailed prompt number {number}, " + "with many words " * 30,
            )
            await store.attach_thread(session.id, 10**17 + number)
            for version in range(2, VERSIONS_PER_SESSION + 1):
                added = await store.add_version(
                    session.id,
                    parent=version - 1,
                    prompt=f"Version {version} of {number}, " + "refined further " * 30,
                    instruction="more light",
                    author_id=owner,
                )
                await store.set_version_message(added.id, 10**18 + added.id)
                await store.record_chat_usage(
                    session_id=session.id,
                    guild_id=guild,
                    user_id=owner,
                    purpose="refine",
                    model="gpt-5-mini",
                    input_tokens=900,
                    output_tokens=300,
                    estimated=False,
                    cost_usd=0.00081,
                )
                if version % 2:
                    continue
                render = await store.create_render(
                    session_id=session.id,
                    version=version,
                    requester_id=owner,
                    channel_id=20,
                    guild_id=guild,
                    model="gpt-image-2",
                    size="1024x1024",
                    quality="medium",
                    cost_reserved=0.07,
                )
                await store.finish_render(
                    render.id,
                    revised_prompt=None,
                    input_tokens=60,
                    output_tokens=1056,
                    cost_usd=0.0319,
                    cost_estimated=False,
                )
                await store.set_render_message(render.id, 2 * 10**18 + render.id, 20)
                if version == VERSIONS_PER_SESSION:
                    await store.create_render(
                        session_id=session.id,
                        version=version,
                        requester_id=owner,
                        channel_id=20,
                        guild_id=guild,
                        model="gpt-image-2",
                        size="1024x1024",
                        quality="low",
                        kind="edit",
                        source_render_id=render.id,
                        source_index=1,
                        instruction="a red sky",
                    )
        for guild in range(10, 23):
            await store.change_server_settings(guild, {"daily_pictures": 20, "daily_spend": 1.5})
            await store.set_role_limit(guild, 500 + guild, 40)
        await store.safety_salt()
    finally:
        await store.close()


async def run(versions: int, server: str) -> None:
    name = f"mural_bench_{secrets.token_hex(4)}"
    target = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "mural.db"
            started = time.perf_counter()
            await fill(path, versions)
            filled = time.perf_counter() - started
            size = path.stat().st_size / 1024 / 1024
            report = await copy_to(path, target)
        rows = sum(copied.rows for copied in report.tables)
        print(f"filled SQLite in {filled:.1f} s ({size:.1f} MB)")
        print("  ".join(f"{copied.table} {copied.rows}" for copied in report.tables))
        print(
            f"copy-to: {report.seconds:.2f} s for {rows} rows ({rows / report.seconds:,.0f} rows/s), "
            "migration and verification included"
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    versions = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    server = sys.argv[2] if len(sys.argv) > 2 else "postgresql://postgres@127.0.0.1:5432/postgres"
    asyncio.run(run(versions, server))


if __name__ == "__main__":
    main()
