"""`python -m bot [run|sync|check|backup PATH|copy-to URL]`: serve, register the slash commands, check the
set-up, back up the database, or copy it into PostgreSQL; `--help` lists the commands and every setting."""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import discord

from bot.app import build_bot
from bot.check import check
from bot.config import CATALOGUE, DATABASE_SCHEMES, ConfigError, Settings, database_password, load_settings
from bot.core.errors import StoreUnavailable
from bot.core.tasks import TaskOwner
from bot.logs import json_requested, redact, setup_logging
from bot.store.copying import CopyRefused, copy_to
from bot.store.probe import target_label
from bot.store.sqlite import backup_file

log = logging.getLogger("bot")

COPY_TO_EXAMPLE = "python -m bot copy-to postgresql://user:password@host:5432/database"

COMMANDS = (
    ("run", "connect to Discord and serve (the default)"),
    ("sync", "register the slash commands now, then exit"),
    ("check", "check the token, intent, OpenAI key and models, and the database, without starting"),
    ("backup PATH", "copy the database to a new file PATH, also while the bot runs"),
    ("copy-to URL", "copy the SQLite database into the empty PostgreSQL database at URL, and verify it"),
)


def usage() -> str:
    width = max(len(variable.name) for variable in CATALOGUE)
    lines = ["usage: python -m bot [run|sync|check|backup PATH|copy-to URL]", ""]
    lines += [f"  {name:<{width}}  {meaning}" for name, meaning in COMMANDS]
    lines += ["", "settings (from the environment or .env; the environment wins):"]
    lines += [f"  {v.name:<{width}}  {v.meaning} [default: {v.default}]" for v in CATALOGUE]
    return "\n".join(lines)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a dependency except on Windows), else asyncio's own.

    A faster loop leaves more of each pass for acknowledgements when many commands arrive at once
    (bench/ack.py runs its bots on the same loop this returns).
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def fail(message: str) -> int:
    print(f"mural: {message}", file=sys.stderr)
    return 2


def pg_dump_hint(url: str) -> str:
    """`backup` on PostgreSQL: the server's own tool does it, with an example that holds no password."""
    parts = urlsplit(url)
    user = f" --username={parts.username}" if parts.username else ""
    database = parts.path.lstrip("/") or "mural"
    return (
        "mural: backup copies the SQLite file only; with DATABASE_URL, back up PostgreSQL with its own "
        f"tool, pg_dump, e.g. `pg_dump --host={parts.hostname or 'localhost'} --port={parts.port or 5432}"
        f"{user} --format=custom --file=mural.dump {database}` (it asks for the password, or reads "
        "~/.pgpass or PGPASSWORD); restore with pg_restore"
    )


async def backup(settings: Settings, target: Path) -> int:
    if settings.database_url is not None:
        print(pg_dump_hint(settings.database_url), file=sys.stderr)
        return 1
    source = settings.database_path
    try:
        copied = await backup_file(source, target)
    except (OSError, sqlite3.Error) as error:
        print(f"mural: backup of {source} failed: {error}", file=sys.stderr)
        return 1
    if copied.integrity != "ok":
        print(f"mural: the copy at {target} failed its integrity check: {copied.integrity}", file=sys.stderr)
        return 1
    print(
        f"Backed up {source} to {target}: schema v{copied.schema_version}, {copied.sessions} sessions, "
        f"{copied.versions} versions, {copied.renders} renders; integrity ok"
    )
    return 0


def url_problem(url: str) -> str | None:
    """Why `url` is not a PostgreSQL URL copy-to can use; None when it is. Never repeats the URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        return "is not a URL"
    if parts.scheme not in DATABASE_SCHEMES:
        return "is not a PostgreSQL URL"
    if not parts.hostname and "host=" not in parts.query:
        return "names no host"
    return None


async def copy_into_postgres(settings: Settings, url: str) -> int:
    """`copy-to URL`: the SQLite database into an empty PostgreSQL one, verified; the counts per table."""
    secrets = (*settings.secrets, database_password(url) or "")

    def say(text: str, *, error: bool = False) -> None:
        print(redact(text, secrets), file=sys.stderr if error else None)

    try:
        report = await copy_to(settings.database_path, url)
    except CopyRefused as error:
        say(f"mural: copy-to refused: {error}", error=True)
        return 1
    except StoreUnavailable as error:
        say(
            f"mural: copy-to: {error.detail}; check that it runs and the URL (user, password, database)",
            error=True,
        )
        return 1
    except (sqlite3.Error, OSError, RuntimeError) as error:
        say(f"mural: copy-to: cannot read the SQLite database {settings.database_path} ({error})", error=True)
        return 1
    say(f"Copied {settings.database_path} into PostgreSQL at {target_label(url)} (rows per table):")
    width = max(len(copied.table) for copied in report.tables)
    for copied in report.tables:
        say(f"  {copied.table:<{width}}  {copied.rows:>9}")
    say(
        f"verified: the same row count and checksum in every table ({report.seconds:.1f} s). "
        "Now start the bot with DATABASE_URL set to this database."
    )
    return 0


def database_unavailable(error: StoreUnavailable) -> int:
    """PostgreSQL did not answer or refused at start: one line, like Discord out of reach; a restart may do."""
    print(
        f"mural: DATABASE_URL: {error.detail}; check that PostgreSQL runs and that DATABASE_URL names it "
        "(host, port, user, password, database)",
        file=sys.stderr,
    )
    return 1


async def serve(settings: Settings, *, sync_only: bool) -> int:
    try:
        bot = await build_bot(settings, sync_only=sync_only)
    except StoreUnavailable as error:
        return database_unavailable(error)
    except asyncpg.PostgresError as error:
        # Reached, but a statement was refused (say, no right to create the tables): its class says which.
        print(
            f"mural: DATABASE_URL: PostgreSQL refused to set up the schema ({type(error).__name__}); "
            "grant the user in DATABASE_URL the CREATE privilege on that database's schema",
            file=sys.stderr,
        )
        return 1
    except (sqlite3.Error, OSError, RuntimeError) as error:
        setting = "DATABASE_URL" if settings.database_url else "DATABASE_PATH"
        return fail(f"{setting}: cannot open the database ({error})")
    try:
        async with bot:
            if sync_only:
                await bot.login(settings.discord_token)
                return 0 if bot.synced_commands else 1
            loop = asyncio.get_running_loop()
            # Not a task of the bot's own: closing cancels those, and must not cancel itself.
            signals = TaskOwner("signal")
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, lambda: signals.spawn(bot.close(), name="close"))
            await bot.start(settings.discord_token)
    except StoreUnavailable as error:
        return database_unavailable(error)
    except (aiohttp.ClientConnectionError, TimeoutError) as error:
        print(
            f"mural: cannot reach Discord ({type(error).__name__}); check the network and try again",
            file=sys.stderr,
        )
        return 1
    except discord.LoginFailure:
        return fail(
            "DISCORD_TOKEN was rejected by Discord; copy the bot token again from the Developer Portal"
        )
    except discord.PrivilegedIntentsRequired:
        return fail(
            "Discord refused the Message Content intent; switch it on under Bot → Privileged Gateway Intents "
            "in the Developer Portal"
        )
    finally:
        await bot.close()
    log.info("Stopped cleanly")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command = args[0] if args else "run"
    if command == "backup" and len(args) != 2:
        return fail("backup needs one PATH, the new file to write: python -m bot backup PATH")
    if command == "copy-to":
        # The URL holds a password: it is never repeated, not even when it is wrong.
        if len(args) != 2:
            return fail(
                f"copy-to needs one URL, the empty PostgreSQL database to copy into: {COPY_TO_EXAMPLE}"
            )
        if (problem := url_problem(args[1])) is not None:
            return fail(f"copy-to: the URL {problem}; expected {COPY_TO_EXAMPLE}")
    elif command not in ("run", "sync", "check", "backup") or (command != "backup" and len(args) > 1):
        return fail(f"unknown command {' '.join(args)!r}\n{usage()}")
    try:
        settings = load_settings()
    except ConfigError as error:
        if json_requested():  # LOG_FORMAT=json: this line too is one JSON object
            setup_logging("INFO", (), log_format="json")
        return fail(f"configuration error: {error}")
    # check, backup and copy-to print what they found; the log only adds what goes wrong (a pre-upgrade copy).
    quiet = command in ("check", "backup", "copy-to") and settings.log_level != "DEBUG"
    secrets = settings.secrets
    if command == "copy-to" and (password := database_password(args[1])):
        secrets = (*secrets, password)
    setup_logging("WARNING" if quiet else settings.log_level, secrets, log_format=settings.log_format)
    for warning in settings.warnings:
        log.warning("%s", warning)
    if command == "check":
        work = check(settings)
    elif command == "backup":
        work = backup(settings, Path(args[1]).expanduser())
    elif command == "copy-to":
        work = copy_into_postgres(settings, args[1])
    else:
        work = serve(settings, sync_only=command == "sync")
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(work)
    except KeyboardInterrupt:
        # Ctrl-C before the signal handlers are installed (while logging in): still no traceback.
        return 130


if __name__ == "__main__":
    sys.exit(main())
