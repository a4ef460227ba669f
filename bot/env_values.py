"""Reading one setting from the environment: text, a secret, a URL, a number in a range; and the error that
names a setting that is missing or malformed (one line, exit status 2, never the value itself)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, overload

URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


class ConfigError(Exception):
    """A missing or malformed setting; the message is safe to print (it never holds a value)."""

    def __init__(self, variable: str, expected: str) -> None:
        super().__init__(f"{variable}: {expected}")
        self.variable = variable
        self.expected = expected


def text(env: Mapping[str, str], name: str) -> str | None:
    """The setting without surrounding blanks; None when unset or blank."""
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def required_secret(env: Mapping[str, str], name: str, expected: str) -> str:
    value = text(env, name)
    if value is None:
        raise ConfigError(name, f"is missing; expected {expected}")
    if any(ch.isspace() for ch in value):
        raise ConfigError(name, f"contains spaces; expected {expected}")
    return value


def url(env: Mapping[str, str], name: str) -> str | None:
    value = text(env, name)
    if value is not None and not URL.match(value):
        raise ConfigError(name, "is not a URL; expected http:// or https:// followed by a host")
    return value


@overload
def number(
    env: Mapping[str, str], name: str, default: int, *, integer: Literal[True], low: float, high: float
) -> int: ...


@overload
def number(
    env: Mapping[str, str], name: str, default: float, *, integer: Literal[False], low: float, high: float
) -> float: ...


def number(
    env: Mapping[str, str], name: str, default: float, *, integer: bool, low: float, high: float
) -> float:
    raw = text(env, name)
    if raw is None:
        return default
    kind = "a whole number" if integer else "a number"
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ConfigError(name, f"is not {kind}; expected {kind} from {low:g} to {high:g}") from None
    if not low <= value <= high:
        raise ConfigError(name, f"is out of range; expected {kind} from {low:g} to {high:g}")
    return value
