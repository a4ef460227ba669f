"""`python -m bot` runs Mural; `python -m bot sync` registers the slash commands now and exits."""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import sys
from collections.abc import Callable

import aiohttp
import discord

from bot.app import build_bot
from bot.config import ConfigError, Settings, load_settings
from bot.logs import setup_logging

log = logging.getLogger("bot")

USAGE = "usage: python -m bot [run|sync]\n  run   connect to Discord and serve (default)\n  sync  register slash commands now, then exit"


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
            # Not a tracked bot task: closing cancels those, and must not cancel itself.
            shutdown: list[asyncio.Task[None]] = []
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, lambda: shutdown.append(loop.create_task(bot.close())))
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
        print(USAGE)
        return 0
    command = args[0] if args else "run"
    if command not in ("run", "sync") or len(args) > 1:
        return fail(f"unknown command {' '.join(args)!r}\n{USAGE}")
    try:
        settings = load_settings()
    except ConfigError as error:
        return fail(f"configuration error: {error}")
    setup_logging(settings.log_level, settings.secrets)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(serve(settings, sync_only=command == "sync"))
    except KeyboardInterrupt:
        # Ctrl-C before the signal handlers are installed (while logging in): still no traceback.
        return 130


if __name__ == "__main__":
    sys.exit(main())
