"""The web gallery's rules, free of Discord and of the web: who may see which pictures, and the signed
personal links that say so.

A link is `GALLERY_URL/g/<token>`. The token carries its scope's id, the member and server it was made
for, and when it expires, signed with HMAC-SHA256 under the deployment's secret; the scope itself (the
channels and threads the member could view when the link was made) is kept in the store under that id,
so a link stays short however many channels a server has, and every process accepts every link. A
token that is missing, altered or expired reads as None: the page then says 403 and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass, field
from datetime import datetime

# Pictures per page, newest first.
PAGE_SIZE = 48
# Mural's own copy of a picture: WebP, at most this many pixels on the long side.
KEPT_LONG_SIDE = 1024
MIN_SECRET_LENGTH = 32

_TOKEN = struct.Struct(">16sQQQ")  # scope id, user id, server id (0: the member's own, from a DM), expiry
_SIGNATURE_BYTES = 16


@dataclass(frozen=True)
class LinkClaims:
    """What a token says, once its signature and expiry are checked."""

    scope_id: bytes
    user_id: int
    guild_id: int | None
    expires: int  # unix seconds


@dataclass(frozen=True)
class GalleryScope:
    """What one link may show.

    `guild_id` set: that server's pictures in `channel_ids` (the channels, and threads, the member could view
    when the link was made), while its gallery is on. None (made in a DM): the member's own pictures from
    DMs, user installs and every server whose gallery is on.
    """

    scope_id: bytes
    user_id: int
    guild_id: int | None
    channel_ids: frozenset[int]
    expires: int


@dataclass(frozen=True)
class GalleryItem:
    """One picture as the gallery lists it (its bytes are fetched separately)."""

    id: int
    guild_id: int | None
    channel_id: int
    message_id: int
    owner_id: int
    owner_name: str
    prompt: str
    model: str
    size: str
    created_at: datetime
    width: int
    height: int


def new_scope_id() -> bytes:
    return secrets.token_bytes(16)


def sign_link(claims: LinkClaims, secret: str) -> str:
    """The token for a link: its claims and their signature, URL-safe, about 90 characters."""
    body = _TOKEN.pack(claims.scope_id, claims.user_id, claims.guild_id or 0, claims.expires)
    return _b64(body + _signature(body, secret))


def read_link(token: str, secret: str, *, now: float) -> LinkClaims | None:
    """The claims of a token that is intact, signed with `secret` and not expired at `now`; else None."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    body, signature = raw[: _TOKEN.size], raw[_TOKEN.size :]
    if len(body) != _TOKEN.size or not hmac.compare_digest(signature, _signature(body, secret)):
        return None
    scope_id, user_id, guild_id, expires = _TOKEN.unpack(body)
    if expires <= now:
        return None
    return LinkClaims(scope_id, user_id, guild_id or None, expires)


def jump_url(item: GalleryItem) -> str:
    """The picture's message in Discord."""
    return f"https://discord.com/channels/{item.guild_id or '@me'}/{item.channel_id}/{item.message_id}"


def _signature(body: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode(), b"mural-gallery-link\x00" + body, hashlib.sha256).digest()[
        :_SIGNATURE_BYTES
    ]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class KeptPicture:
    """Mural's own copy of one posted picture, as the store keeps it.

    `in_server`: posted in a server Mural is in, so that server's gallery may show it (while on); False
    for a DM, a group DM or a user install in a server without Mural: shown to its owner only (`guild_id`
    still names such a server, for the jump link). In a thread, `parent_id` is its channel and
    `private_thread` whether only its members see it. `webp`: at most KEPT_LONG_SIDE px on the long side.
    """

    render_id: int
    picture_index: int  # from 0, in the render's order
    guild_id: int | None
    in_server: bool
    channel_id: int
    parent_id: int | None
    private_thread: bool
    message_id: int
    owner_id: int
    owner_name: str
    prompt: str
    model: str
    size: str
    width: int
    height: int
    webp: bytes = field(repr=False)
