"""GALLERY_*: whether a web gallery is served (its port), where, the links' base URL and lifetime, and the
secret that signs them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.core.gallery import MIN_SECRET_LENGTH
from bot.env_values import URL, ConfigError, number, text

DEFAULT_GALLERY_HOST = "127.0.0.1"
DEFAULT_GALLERY_LINK_SECONDS = 86_400
# Ten years: a link longer-lived than that is a mistake.
MAX_GALLERY_LINK_SECONDS = 10 * 365 * 86_400


def gallery_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The `Settings` fields of the gallery: unset GALLERY_PORT means no gallery and no port opened; the base
    URL defaults to where it listens."""
    port = (
        None
        if text(env, "GALLERY_PORT") is None
        else number(env, "GALLERY_PORT", 0, integer=True, low=1, high=65_535)
    )
    host = text(env, "GALLERY_HOST") or DEFAULT_GALLERY_HOST
    if any(ch.isspace() for ch in host) or "/" in host:
        raise ConfigError("GALLERY_HOST", "is not a host; expected an address such as 127.0.0.1 or 0.0.0.0")
    base_url = text(env, "GALLERY_URL")
    if base_url is not None:
        if not URL.match(base_url):
            raise ConfigError(
                "GALLERY_URL",
                "is not a URL; expected http:// or https:// followed by a host, e.g. https://mural.example",
            )
        base_url = base_url.rstrip("/")
    elif port is not None:
        base_url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    seconds = number(
        env,
        "GALLERY_LINK_SECONDS",
        DEFAULT_GALLERY_LINK_SECONDS,
        integer=True,
        low=1,
        high=MAX_GALLERY_LINK_SECONDS,
    )
    secret = text(env, "GALLERY_SECRET")
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            "GALLERY_SECRET",
            f"is too short; expected at least {MIN_SECRET_LENGTH} random characters, or leave it empty",
        )
    return {
        "gallery_port": port,
        "gallery_host": host,
        "gallery_url": base_url,
        "gallery_link_seconds": seconds,
        "gallery_secret": secret,
    }
