"""Logging set-up: one stream handler whose every line, tracebacks included, has secrets blanked out.

`LOG_FORMAT=text` (the default) writes a line per event for people; `LOG_FORMAT=json` writes one JSON
object per line for a log shipper (`time` in ISO 8601 UTC, `level`, `logger`, `message`, and `code`,
`shard` and `traceback` where they apply), and then everything else the process would write goes
through logging too: warnings, uncaught exceptions, and whatever is printed to standard output or
error, so that every line is one object.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from dotenv import dotenv_values

# openai 3.x sends through httpx2/httpcore2; the older names cover an environment with plain httpx.
NOISY_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "openai")
LOG_FORMATS = ("text", "json")

# A code as Mural's lines carry it ("refused [E-INPUT]", "failed [E-BUG-1a2b3c]").
_CODE = re.compile(r"\[(E-[A-Z0-9]+(?:-[A-Za-z0-9]+)*)\]")
# discord.py's gateway lines ("Shard ID 1 has connected to Gateway", "reconnect for shard ID 1").
_SHARD = re.compile(r"\b[Ss]hard ID (\d+)\b")


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


class RedactingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt, datefmt="%Y-%m-%d %H:%M:%S")
        self._secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; every text in it redacted like a text line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if (code := code_of(record, message)) is not None:
            entry["code"] = code
        if (shard := shard_of(record, message)) is not None:
            entry["shard"] = shard
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in entry.items():
            if isinstance(value, str):
                entry[key] = redact(value, self._secrets)
        return json.dumps(entry, ensure_ascii=False, default=str)


def code_of(record: logging.LogRecord, message: str) -> str | None:
    """The code a member was shown (or an operator should look for) that the record is about, if any."""
    code = getattr(record, "code", None)
    if isinstance(code, str):
        return code
    action = getattr(record, "mural_action", None)
    outcome = getattr(action, "outcome", None)
    if isinstance(outcome, str) and outcome.startswith("E-"):
        return outcome
    found = _CODE.search(message)
    return found[1] if found else None


def shard_of(record: logging.LogRecord, message: str) -> int | None:
    """The gateway shard the record is about: given by Mural's own lines, or named by discord.py's."""
    shard = getattr(record, "shard", None)
    if isinstance(shard, int):
        return shard
    found = _SHARD.search(message) if record.name.startswith("discord") else None
    return int(found[1]) if found else None


class _LoggedStream(io.TextIOBase):
    """Standard output or error in json mode: each line written becomes one log record."""

    def __init__(self, logger: logging.Logger, level: int, original: Any) -> None:
        super().__init__()
        self._logger = logger
        self._level = level
        self._original = original
        self._pending = ""
        self._inside = threading.local()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._original.fileno()

    def write(self, text: str) -> int:
        if getattr(self._inside, "active", False):
            # Logging itself complaining (a handler's error): straight out, never round again.
            return self._original.write(text)
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            self._emit(line)

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        self._inside.active = True
        try:
            self._logger.log(self._level, "%s", line.rstrip())
        finally:
            self._inside.active = False


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    logging.getLogger("bot").critical("Uncaught %s: %s", kind.__name__, error, exc_info=(kind, error, trace))


def _log_uncaught_in_thread(arguments: threading.ExceptHookArgs) -> None:
    if arguments.exc_type is SystemExit or arguments.exc_value is None:
        return
    name = arguments.thread.name if arguments.thread else "?"
    logging.getLogger("bot").critical(
        "Uncaught %s in thread %s",
        arguments.exc_type.__name__,
        name,
        exc_info=(arguments.exc_type, arguments.exc_value, arguments.exc_traceback),
    )


def _log_unraisable(unraisable: Any) -> None:
    error = unraisable.exc_value
    logging.getLogger("bot").warning(
        "%s: %r",
        unraisable.err_msg or "Exception ignored in",
        unraisable.object,
        exc_info=(type(error), error, unraisable.exc_traceback) if error is not None else None,
    )


def _route_everything_through_logging(stdout: Any, stderr: Any) -> None:
    """json mode: what would bypass the handler (warnings, uncaught exceptions, prints) goes through it."""
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    sys.unraisablehook = _log_unraisable
    for name, level, original in (("stdout", logging.INFO, stdout), ("stderr", logging.ERROR, stderr)):
        logger = logging.getLogger(name)
        # Whatever the log level, a line the process prints is never dropped.
        logger.setLevel(logging.DEBUG)
        setattr(sys, name, _LoggedStream(logger, level, original))


def setup_logging(level: str, secrets: Iterable[str], *, log_format: str = "text") -> None:
    stream = sys.stderr
    if isinstance(stream, _LoggedStream):  # set up twice in one process (json mode already on)
        stream = stream._original
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(secrets))
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The HTTP clients under openai log a line per request at INFO: at INFO the log should read as what
    # Mural did, so they speak only of problems unless the operator asked for DEBUG.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(quiet)
    if log_format == "json" and not isinstance(sys.stdout, _LoggedStream):
        _route_everything_through_logging(sys.stdout, stream)


def keep_secret(value: str) -> None:
    """Blank out a secret learned after logging began (one the store generated and keeps: the safety
    salt, the gallery's signing secret), in every line from now on."""
    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        if isinstance(formatter, RedactingFormatter | JsonFormatter) and value not in formatter._secrets:
            formatter._secrets = (*formatter._secrets, value)


def json_requested(dotenv_path: str | os.PathLike[str] = ".env") -> bool:
    """Whether LOG_FORMAT asks for json, read before the settings are (to say why they are wrong)."""
    value = os.environ.get("LOG_FORMAT")
    if value is None and Path(dotenv_path).is_file():
        value = dotenv_values(dotenv_path).get("LOG_FORMAT")
    return (value or "").strip().lower() == "json"
