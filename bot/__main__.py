"""`python -m bot [run|sync|check|backup PATH]`: serve, register the slash commands, check the set-up, or
back up the database; `--help` lists the commands and every setting."""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import discord

from bot.app import build_bot
from bot.check import check
from bot.config import CATALOGUE, ConfigError, Settings, load_settings
from bot.core.tasks import TaskOwner
from bot.logs import setup_logging
from bot.store.sqlite import backup_file

log = logging.getLogger("bot")

COMMANDS = (
    ("run", "connect to Discord and serve (the default)"),
    ("sync", "register the slash commands now, then exit"),
    ("check", "check the token, intent, OpenAI key and models, and the database, without starting"),
    ("backup PATH", "copy the database to a new file PATH, also while the bot runs"),
)


def usage() -> str:
    width = max(len(variable.name) for variable in CATALOGUE)
    lines = ["usage: python -m bot [run|sync|check|backup PATH]", ""]
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


async def backup(settings: Settings, target: Path) -> int:
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


async def serve(settings: Settings, *, sync_only: bool) -> int:
    try:
        bot = await build_bot(settings, sync_only=sync_only)
    except (sqlite3.Error, OSError, RuntimeError) as error:
        return fail(f"DATABASE_PATH: cannot open the database ({error})")
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
    if command not in ("run", "sync", "check", "backup") or (command != "backup" and len(args) > 1):
        return fail(f"unknown command {' '.join(args)!r}\n{usage()}")
    try:
        settings = load_settings()
    except ConfigError as error:
        return fail(f"configuration error: {error}")
    # check and backup print what they found; the log only adds what goes wrong (a pre-upgrade copy).
    quiet = command in ("check", "backup") and settings.log_level != "DEBUG"
    setup_logging("WARNING" if quiet else settings.log_level, settings.secrets)
    for warning in settings.warnings:
        log.warning("%s", warning)
    if command == "check":
        work = check(settings)
    elif command == "backup":
        work = backup(settings, Path(args[1]).expanduser())
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
