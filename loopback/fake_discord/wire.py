"""Discord's numbers and shapes that every part of the fake shares.

Permission and intent bits, message flags, component, command, interaction and channel types, the
limits Discord enforces, the JSON error Discord answers with (``ApiError``, and ``form_error`` for
its nested 400/50035 "Invalid Form Body"), and small helpers on payloads.  Nothing here holds state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1420070400000
API_PREFIX = "/api/v10"
MAX_CONTENT = 2000
MAX_THREAD_NAME = 100
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
EVENT_BUFFER_LIMIT = 2000


class Permissions:
    """Discord permission bits used by the fake (values from the Discord API documentation)."""

    CREATE_INSTANT_INVITE = 1 << 0
    ADMINISTRATOR = 1 << 3
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38
    ALL = (1 << 51) - 1

    EVERYONE_DEFAULT = (
        CREATE_INSTANT_INVITE
        | ADD_REACTIONS
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | CONNECT
        | SPEAK
        | CHANGE_NICKNAME
        | USE_APPLICATION_COMMANDS
        | CREATE_PUBLIC_THREADS
        | SEND_MESSAGES_IN_THREADS
    )
    BOT_DEFAULT = EVERYONE_DEFAULT | MANAGE_MESSAGES | MANAGE_THREADS | CREATE_PRIVATE_THREADS
    # `app_permissions` where the app answers only through its interaction (a user install in a
    # server the bot is not in, a group DM): what follow-ups may carry.
    USER_INSTALL = ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE
    # A DM with the bot: it may read, write and upload there, and nothing a server grants.
    BOT_DM = (
        VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | ADD_REACTIONS
        | USE_EXTERNAL_EMOJIS
        | MENTION_EVERYONE
    )


class Intents:
    """Gateway intent bits the fake cares about."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    DIRECT_MESSAGES = 1 << 12
    MESSAGE_CONTENT = 1 << 15
    PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


# Message flags.
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_HAS_THREAD = 1 << 5
FLAG_COMPONENTS_V2 = 1 << 15

# Components (types from Discord's component reference).
ACTION_ROW, BUTTON, TEXT_INPUT, SECTION, TEXT_DISPLAY, THUMBNAIL = 1, 2, 4, 9, 10, 11
MEDIA_GALLERY, FILE_COMPONENT, SEPARATOR, CONTAINER, LABEL, FILE_UPLOAD = 12, 13, 14, 17, 18, 19
SELECT_TYPES = (3, 5, 6, 7, 8)
V2_TOP_LEVEL = (ACTION_ROW, SECTION, TEXT_DISPLAY, MEDIA_GALLERY, FILE_COMPONENT, SEPARATOR, CONTAINER)
CONTAINER_CHILDREN = (ACTION_ROW, SECTION, TEXT_DISPLAY, MEDIA_GALLERY, FILE_COMPONENT, SEPARATOR)
MAX_V2_COMPONENTS = 40  # every component of the message, nested ones included
MAX_V2_TEXT = 4000  # characters over all text displays of the message
MAX_GALLERY_ITEMS = 10
# Files on one message, uploaded and kept together.
MAX_ATTACHMENTS = 10
MAX_LEGACY_ROWS = 5
LEGACY_FIELDS_CODE = "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2"
REFERENCE_NOT_FOUND_CODE = "UNFURLED_MEDIA_ITEM_REFERENCED_ATTACHMENT_NOT_FOUND"
ATTACHMENT_SCHEME = "attachment://"
# discord.py's File.uri: "the filename must be ASCII alphanumeric with underscores, dashes, and
# periods" -- Discord rewrites other upload names, so a reference spelled otherwise never matches.
SAFE_ATTACHMENT_NAME = re.compile(r"[A-Za-z0-9_.\-]+")

# Application command types.
CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3
COMMAND_LIMITS = {CHAT_INPUT: 100, USER_COMMAND: 15, MESSAGE_COMMAND: 15}

# Interaction types and callback types.
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
CB_PONG, CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE, CB_AUTOCOMPLETE, CB_MODAL = (
    1,
    4,
    5,
    6,
    7,
    8,
    9,
)

# Channel types.
GUILD_TEXT, DM, GROUP_DM, PUBLIC_THREAD, PRIVATE_THREAD = 0, 1, 3, 11, 12

# Interaction context types and installation types (``context`` and the keys of
# ``authorizing_integration_owners``).
CONTEXT_GUILD, CONTEXT_BOT_DM, CONTEXT_PRIVATE_CHANNEL = 0, 1, 2
GUILD_INSTALL, USER_INSTALL = "0", "1"
THREAD_TYPES = (10, PUBLIC_THREAD, PRIVATE_THREAD)


def member_object(user: dict[str, Any], roles: list[int], joined_at: str) -> dict[str, Any]:
    """A guild member object as Discord sends it."""
    return {
        "user": user,
        "roles": [str(r) for r in roles],
        "joined_at": joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "nick": None,
        "avatar": None,
        "communication_disabled_until": None,
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class ApiError(Exception):
    """Raised inside route handlers; becomes a Discord-shaped JSON error response."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            data["errors"] = self.errors
        data.update(self.extra)
        return data


def form_error(path: str, code: str, message: str) -> ApiError:
    """Build a 50035 "Invalid Form Body" error with Discord's nested ``errors`` layout."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return ApiError(400, 50035, "Invalid Form Body", errors=errors)


def missing_permissions() -> ApiError:
    return ApiError(403, 50013, "Missing Permissions")


def unknown(what: str, code: int) -> ApiError:
    return ApiError(404, code, f"Unknown {what}")


def shard_of(guild_id: int | None, shard_count: int) -> int:
    """The shard Discord routes a guild's events and interactions to; shard 0 for those without a guild."""
    return 0 if guild_id is None else (guild_id >> 22) % shard_count


def walk_components(components: list[Any]) -> Iterator[dict[str, Any]]:
    """Every component of a message or modal, depth first: rows, containers, sections, accessories."""
    for comp in components:
        if not isinstance(comp, dict):
            continue
        yield comp
        yield from walk_components(comp.get("components") or [])
        yield from walk_components([c for c in (comp.get("accessory"), comp.get("component")) if c])
