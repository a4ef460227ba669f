"""`python -m bot check`: is this set-up able to run, without starting the bot?

One line per check, each with ✓ (fine), ⚠ (works, with less), ✗ (broken, and how to fix it) or - (not
checked, because what it needs is broken). The exit status is 1 when any line is ✗. Nothing here
prints a token or a key: the lines are built from statuses and ids, and redacted again on the way out.

The Discord calls go through discord.py's own `HTTPClient`, so they use the same base URL as the bot
(which the tests point at the loopback Discord); the OpenAI calls go through `bot.core.ai`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import discord
from discord.http import HTTPClient, Route

from bot.config import DEFAULT_IMAGE_MODEL, Settings
from bot.core.ai import ModelCatalogue, Probe
from bot.core.images import capabilities_for
from bot.logs import redact
from bot.store import SQLiteStore
from bot.store.probe import probe_postgres, target_label

OK, WARN, BAD, SKIP = "✓", "⚠", "✗", "-"

# discord.ApplicationFlags: the Message Content switch, for verified bots and for the others.
GATEWAY_MESSAGE_CONTENT = 1 << 18
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19

# What the bot does in a channel, and nothing more (an admin reads this list on the invite screen).
BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,  # see the channel a command is used in
    send_messages=True,  # versions, pictures and answers after an interaction has expired
    send_messages_in_threads=True,  # refinements and pictures in a session's thread
    create_public_threads=True,  # one thread per /prompt session
    attach_files=True,  # pictures are uploaded files, never expiring links
    embed_links=True,  # without it Discord drops the previews of links in the bot's messages
    read_message_history=True,  # fetching a picture that is replied to; answers reply to the message
)


@dataclass(frozen=True)
class Line:
    mark: str
    subject: str
    text: str

    def __str__(self) -> str:
        return f"{self.mark} {self.subject}: {self.text}"


def server_invite(application_id: int) -> str:
    return (
        f"https://discord.com/oauth2/authorize?client_id={application_id}"
        f"&scope=bot+applications.commands&permissions={BOT_PERMISSIONS.value}"
    )


def user_install(application_id: int) -> str:
    return (
        f"https://discord.com/oauth2/authorize?client_id={application_id}"
        "&integration_type=1&scope=applications.commands"
    )


# -- Discord ----------------------------------------------------------------------------------------


async def discord_checks(token: str) -> tuple[list[Line], int | None]:
    """The token (GET /users/@me) and the Message Content switch (GET /applications/@me); the
    application id for the invite links when both answered."""
    http = HTTPClient(asyncio.get_running_loop())
    try:
        try:
            me: Any = await http.static_login(token)
        except discord.LoginFailure:
            return [
                Line(
                    BAD,
                    "Discord token",
                    "refused by Discord (HTTP 401). Fix: Developer Portal → your application → Bot → "
                    "Reset Token, and put the new token in DISCORD_TOKEN",
                ),
                Line(SKIP, "Message Content intent", "not checked (needs a working token)"),
            ], None
        lines = [Line(OK, "Discord token", f"accepted: logged in as {me['username']} (id {me['id']})")]
        application: Any = await http.request(Route("GET", "/applications/@me"))
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        return [
            Line(BAD, "Discord", f"cannot be reached ({type(error).__name__}). Fix: check the network"),
            Line(SKIP, "Message Content intent", "not checked (Discord cannot be reached)"),
        ], None
    except discord.HTTPException as error:
        return [Line(BAD, "Discord", f"answered HTTP {error.status}; try again later")], None
    finally:
        await http.close()
    flags = int(application.get("flags") or 0)
    if flags & (GATEWAY_MESSAGE_CONTENT | GATEWAY_MESSAGE_CONTENT_LIMITED):
        lines.append(Line(OK, "Message Content intent", "switched on: replies in threads refine prompts"))
    else:
        lines.append(
            Line(
                WARN,
                "Message Content intent",
                "switched off: Mural cannot read replies in its threads. The Refine button, replies to "
                "Mural's messages and mentions still work. Fix: Developer Portal → your application → "
                "Bot → Privileged Gateway Intents → Message Content Intent",
            )
        )
    return lines, int(application["id"])


# -- OpenAI -----------------------------------------------------------------------------------------


def _server_line(subject: str, probe: Probe, key_setting: str, url_setting: str) -> Line:
    if probe.status == "ok":
        return Line(OK, subject, f"reachable, key accepted ({probe.detail})")
    if probe.status == "key-refused":
        return Line(
            BAD,
            subject,
            f"the key was refused ({probe.detail}). Fix: put a valid key in {key_setting} "
            "(https://platform.openai.com/api-keys)",
        )
    if probe.status == "unreachable":
        return Line(
            BAD, subject, f"cannot be reached ({probe.detail}). Fix: check the network and {url_setting}"
        )
    return Line(BAD, subject, f"answered with an error ({probe.detail}). Fix: check {url_setting}")


def _model_line(setting: str, model: str, probe: Probe, *, image: bool) -> Line:
    subject = f"{setting} {model}"
    retired_on = capabilities_for(model).retired_on if image else None
    if probe.status == "ok":
        if retired_on is not None:
            return Line(
                WARN, subject, f"served here, though retired at OpenAI since {retired_on.isoformat()}"
            )
        return Line(OK, subject, "exists")
    if probe.status == "missing":
        if retired_on is not None:
            return Line(
                BAD,
                subject,
                f"is retired (OpenAI shut it down on {retired_on.isoformat()}). "
                f"Fix: set {setting}={DEFAULT_IMAGE_MODEL}",
            )
        return Line(BAD, subject, f"does not exist on the server ({probe.detail}). Fix: change {setting}")
    return Line(BAD, subject, f"could not be looked up ({probe.status}: {probe.detail})")


async def openai_checks(settings: Settings) -> list[Line]:
    """The key on each server Mural uses, then every configured model on the server that will run it."""
    image_server = ModelCatalogue(api_key=settings.openai_api_key, base_url=settings.openai_base_url)
    separate_chat = settings.chat_base_url is not None or settings.chat_api_key is not None
    chat_server = (
        ModelCatalogue(
            api_key=settings.chat_api_key or settings.openai_api_key,
            base_url=settings.chat_base_url or settings.openai_base_url,
        )
        if separate_chat
        else image_server
    )
    try:
        image_probe = await image_server.list_models()
        lines = [_server_line("OpenAI", image_probe, "OPENAI_API_KEY", "OPENAI_BASE_URL")]
        chat_probe = image_probe
        if separate_chat:
            chat_probe = await chat_server.list_models()
            lines.append(_server_line("Chat server", chat_probe, "CHAT_API_KEY", "CHAT_BASE_URL"))
        wanted: list[tuple[str, str, ModelCatalogue, Probe, bool]] = [
            ("CHAT_MODEL", settings.chat_model, chat_server, chat_probe, False)
        ]
        if settings.vision_model:
            wanted.append(("VISION_MODEL", settings.vision_model, chat_server, chat_probe, False))
        wanted.append(("IMAGE_MODEL", settings.image_model, image_server, image_probe, True))
        wanted += [("IMAGE_MODELS", m, image_server, image_probe, True) for m in settings.image_models[1:]]
        for setting, model, server, listing, image in wanted:
            if listing.status != "ok":
                lines.append(Line(SKIP, f"{setting} {model}", "not checked (the server did not answer)"))
                continue
            probe = await server.lookup(model, listed=listing.model_ids)
            lines.append(_model_line(setting, model, probe, image=image))
        return lines
    finally:
        await image_server.close()
        if separate_chat:
            await chat_server.close()


# -- the database -----------------------------------------------------------------------------------


def _size(path: Path) -> str:
    size = path.stat().st_size if path.is_file() else 0
    return f"{size / 1024:.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


async def database_check(path: Path) -> Line:
    """Open it as the bot does (migrating it, after a backup, if it is older), then write one row."""
    subject = f"Database {path}"
    try:
        store = await SQLiteStore.open(path)
        try:
            # Opening alone may write nothing; a real write proves the file and its folder are writable.
            await store.set_meta("setup-check", "ok")
            overview = await store.overview()
            upgraded = store.upgrade_copy
        finally:
            await store.close()
    except RuntimeError as error:  # a schema newer than this Mural, or a broken migration: it says which
        return Line(BAD, subject, str(error))
    except (sqlite3.Error, OSError) as error:
        return Line(
            BAD,
            subject,
            f"cannot be opened for writing ({error}). Fix: make DATABASE_PATH a file the bot's user may "
            "write, in a folder it may write (SQLite keeps its -wal and -shm files beside it)",
        )
    upgrade = f"; migrated, the older one copied to {upgraded}" if upgraded else ""
    return Line(
        OK,
        subject,
        f"writable, schema v{overview.schema_version} (up to date{upgrade}), {_size(path)}: "
        f"{overview.sessions} sessions, {overview.versions} versions, {overview.renders} renders",
    )


# What an operator changes when PostgreSQL refused the connection, by the class of the refusal.
_REFUSALS = {
    "InvalidPasswordError": "the password was refused. Fix: correct the password in DATABASE_URL",
    "InvalidAuthorizationSpecificationError": (
        "the user may not connect. Fix: correct the user in DATABASE_URL, or allow it in pg_hba.conf"
    ),
    "InvalidCatalogNameError": (
        "the database does not exist. Fix: create it (createdb) or correct its name in DATABASE_URL"
    ),
}


async def postgres_check(settings: Settings) -> Line:
    """Reachable, which version, and Mural's schema there; nothing is changed (the bot migrates at start)."""
    assert settings.database_url is not None
    subject = f"Database PostgreSQL at {target_label(settings.database_url)}"
    probe = await probe_postgres(settings.database_url)
    if probe.status == "unreachable":
        return Line(
            BAD,
            subject,
            f"cannot be reached ({probe.detail}). Fix: start PostgreSQL, or correct the host and port in "
            "DATABASE_URL",
        )
    if probe.status == "refused":
        why = _REFUSALS.get(probe.detail, "Fix: check the user, password and database name in DATABASE_URL")
        return Line(BAD, subject, f"refused the connection ({probe.detail}): {why}")
    overview = probe.overview
    assert overview is not None
    server = f"reachable, PostgreSQL {probe.server_version}"
    if overview.schema_version > overview.latest_version:
        return Line(
            BAD,
            subject,
            f"{server}, but its schema v{overview.schema_version} is newer than this Mural's "
            f"(v{overview.latest_version}). Fix: upgrade Mural, or use another DATABASE_URL",
        )
    if not probe.migrated:
        return Line(
            BAD,
            subject,
            f"{server}, but Mural's schema is not migrated (v{overview.schema_version} of "
            f"v{overview.latest_version}). Fix: start the bot once or run `python -m bot copy-to`",
        )
    return Line(
        OK,
        subject,
        f"{server}, schema v{overview.schema_version} (up to date): {overview.sessions} sessions, "
        f"{overview.versions} versions, {overview.renders} renders",
    )


# -- all of it --------------------------------------------------------------------------------------


async def run_checks(settings: Settings) -> list[Line]:
    lines, application_id = await discord_checks(settings.discord_token)
    lines += await openai_checks(settings)
    if settings.database_url is None:
        lines.append(await database_check(settings.database_path))
    else:
        lines.append(await postgres_check(settings))
    if application_id is not None:
        lines.append(Line(OK, "Invite to a server", server_invite(application_id)))
        lines.append(Line(OK, "Install for yourself", user_install(application_id)))
    else:
        lines.append(Line(SKIP, "Invite links", "not shown (needs a working token)"))
    return lines


def exit_status(lines: list[Line]) -> int:
    return 1 if any(line.mark == BAD for line in lines) else 0


def report(lines: list[Line], settings: Settings) -> list[str]:
    """What is printed: every line (secrets blanked out whatever a line holds), then a verdict."""
    failed = sum(line.mark == BAD for line in lines)
    verdict = f"{failed} problem(s) to fix." if failed else "All good: start the bot with `python -m bot`."
    return [redact(str(line), settings.secrets) for line in lines] + [verdict]


async def check(settings: Settings, out: Callable[[str], None] = print) -> int:
    """Run every check, print the report, and return the exit status."""
    lines = await run_checks(settings)
    for text in report(lines, settings):
        out(text)
    return exit_status(lines)
