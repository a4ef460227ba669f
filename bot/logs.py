"""Logging set-up: one stream handler whose every line, tracebacks included, has secrets blanked out."""

from __future__ import annotations

import logging
from collections.abc import Iterable

# openai 3.x sends through httpx2/httpcore2; the older names cover an environment with plain httpx.
NOISY_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "openai")


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


def setup_logging(level: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The HTTP clients under openai log a line per request at INFO: at INFO the log should read as what
    # Mural did, so they speak only of problems unless the operator asked for DEBUG.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(quiet)
