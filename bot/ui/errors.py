"""The one owner of errors a member can meet: an ordered table from error to text, code and log level.

Commands (through the tree), buttons and modals (`send_error`) and thread replies (`report_error`)
all consult the same table, log the same way, and deliver through the same fall-backs, so a member
always hears what went wrong and the code they quote is in the log next to the details: on the line
that ends their action (`bot.ui.actions`), with the traceback where something is broken.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands

from bot.core.errors import MuralError
from bot.ui import actions, delivery
from bot.ui.layouts import error_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    text: str
    code: str
    level: int


def _bot_permissions(error: BaseException) -> str:
    assert isinstance(error, app_commands.BotMissingPermissions)
    missing = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
    return f"⚠️ I'm missing a permission here: {missing}. Ask an admin to grant it."


def _cooldown(error: BaseException) -> str:
    assert isinstance(error, app_commands.CommandOnCooldown)
    return f"⚠️ Slow down: try again in {error.retry_after:.0f}s."


def _mural(error: BaseException) -> str:
    assert isinstance(error, MuralError)
    return error_text(error)


_FORBIDDEN = (
    "⚠️ Discord refused my request: I'm missing a permission in this channel "
    "(Send Messages, Send Messages in Threads, Attach Files or Create Public Threads)."
)

# First match wins, so subclasses come before the classes they refine. A code of None means the
# error's own code (MuralError); "E-BUG" gets a fresh incident number each time.
ERROR_TABLE: tuple[tuple[type[BaseException], str | None, Callable[[BaseException], str] | str, int], ...] = (
    (MuralError, None, _mural, logging.INFO),
    (app_commands.NoPrivateMessage, "E-DM", "⚠️ Use this command in a server channel.", logging.INFO),
    (app_commands.CommandOnCooldown, "E-COOLDOWN", _cooldown, logging.INFO),
    (
        app_commands.MissingPermissions,
        "E-PERMS",
        "⚠️ You need the Manage Server permission for that.",
        logging.INFO,
    ),
    (app_commands.BotMissingPermissions, "E-BOT-PERMS", _bot_permissions, logging.INFO),
    (app_commands.CheckFailure, "E-CHECK", "⚠️ You can't use that here.", logging.INFO),
    (discord.Forbidden, "E-DISCORD-403", _FORBIDDEN, logging.ERROR),
    (
        delivery.TokenGone,
        "E-EXPIRED",
        "⚠️ This took longer than Discord lets me answer here (15 minutes). Please try again.",
        logging.WARNING,
    ),
    (BaseException, "E-BUG", "⚠️ Something went wrong on my side. Please try again.", logging.ERROR),
)


def unwrap(error: BaseException) -> BaseException:
    """The error a command raised, not discord.py's wrapper around it."""
    if isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError):
        return error.__cause__ or error
    return error


def describe(error: BaseException) -> Failure:
    """What the member is told, under which code, and how loudly it is logged."""
    error = unwrap(error)
    for kind, code, text, level in ERROR_TABLE:
        if isinstance(error, kind):
            message = text(error) if callable(text) else text
            if code is None:
                assert isinstance(error, MuralError)
                code = error.code
            if code == "E-BUG":
                code = "E-BUG-" + secrets.token_hex(3)
            if not isinstance(error, MuralError):
                message = f"{message} `{code}`"
            return Failure(message, code, level)
    raise AssertionError("the table ends with BaseException")


def log_failure(failure: Failure, error: BaseException, where: str) -> None:
    """One line for an expected refusal; the traceback only where something is broken."""
    error = unwrap(error)
    if failure.level >= logging.ERROR:
        log.log(failure.level, "%s failed [%s]", where, failure.code, exc_info=error)
    else:
        detail = error.detail if isinstance(error, MuralError) else str(error)
        log.log(failure.level, "%s refused [%s]: %s", where, failure.code, detail)


def end_action(action: actions.Action | None, failure: Failure, error: BaseException, where: str) -> None:
    """The failure is the outcome of the member's action: one line with its code (and the refusal's
    reason or the traceback); a failure outside any action, or after it ended, gets a line of its own."""
    if action is None or action.finished:
        log_failure(failure, error, where)
        return
    error = unwrap(error)
    if failure.level >= logging.ERROR:
        actions.finish(action, failure.code, level=failure.level, error=error)
    else:
        reason = error.detail if isinstance(error, MuralError) else str(error)
        actions.finish(action, failure.code, level=failure.level, reason=reason)


async def send_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Tell the member what went wrong, privately when the interaction still allows it."""
    failure = describe(error)
    end_action(actions.of(interaction), failure, error, f"Interaction by {interaction.user.id}")
    try:
        await delivery.reply_privately(interaction, failure.text)
    except discord.HTTPException:
        log.warning("Could not deliver the error message [%s]", failure.code, exc_info=True)


async def report_error(
    client: discord.Client,
    channel: discord.abc.Messageable,
    error: BaseException,
    *,
    where: str,
    reply_to: discord.Message | None = None,
) -> None:
    """Tell a member in a channel (a thread reply that failed), answering their message; the code ends
    the action being handled, or their message's own (a reply refused before any work began)."""
    failure = describe(error)
    action = actions.current()
    if action is None and reply_to is not None:
        action = actions.begin_message(reply_to, "reply")
    end_action(action, failure, error, where)
    try:
        await delivery.send_in(client, channel, failure.text, reply_to=reply_to)
    except discord.HTTPException:
        log.warning("Could not tell the member about failure [%s]", failure.code)
