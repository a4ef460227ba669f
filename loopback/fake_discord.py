"""A loopback fake of Discord's gateway and REST API v10 for driving an unmodified discord.py bot.

Why this exists: Mural's behaviour lives in the conversation between discord.py and Discord (slash
commands, deferrals, followups with files, threads, buttons, modals, reconnects).  Mocking discord.py
internals would test our mocks; instead this module runs a small aiohttp server on 127.0.0.1 that
speaks enough of the real wire protocol that a stock ``commands.Bot`` logs in, syncs its command
tree and handles interactions exactly as it would against discord.com.  The only patching is
pointing discord.py at the fake's URLs (see :meth:`FakeDiscord.patch` / :meth:`FakeDiscord.patched`).

Payload shapes follow discord.py 2.7.1's own parsers (``state.py``, ``interactions.py``,
``webhook/async_.py``, ``types/*.py``), which are the ground truth for what the client accepts.

Quick start (everything runs in the test's own event loop)::

    fake = FakeDiscord(token="test-token")
    await fake.start()
    with fake.patched():                      # or fake.patch(monkeypatch) under pytest
        task = asyncio.create_task(bot.start("test-token"))
        await fake.wait_until_ready()
        await bot.tree.sync()                 # slash_command() only runs synced commands
        alice = fake.add_member("alice")
        inter = await fake.slash_command(alice, "prompt", {"idea": "a beach"})
        body = await inter.wait_response()
        ...
        await bot.close()
        await task
    await fake.close()

Public API of :class:`FakeDiscord`
----------------------------------
Construction and lifecycle
    ``FakeDiscord(token="test-token", *, interaction_deadline=3.0, require_synced_commands=True,
    bot_permissions=None, everyone_permissions=None, allowed_privileged_intents=MESSAGE_CONTENT)``;
    ``await fake.start()``, ``await fake.close()``; ``fake.http_url``, ``fake.ws_url``;
    ``fake.patch(monkeypatch)`` and the ``fake.patched()`` context manager patch
    ``discord.http.Route.BASE``, ``discord.webhook.async_.Route.BASE`` (in 2.7.1 the same class
    object, patched and restored in a safe order anyway) and ``DiscordWebSocket.DEFAULT_GATEWAY``.
Identity
    ``application_id``, ``bot_user`` (dict), ``owner_user`` (the application owner, also the guild
    owner and a member), ``guild_id``, ``channel_id`` (the text channel "general"), ``guild_name``.
World building
    ``add_member(name, *, permissions=None, bot=False) -> user dict``;
    ``add_text_channel(name) -> channel dict``; ``set_bot_permissions(bits)``,
    ``set_everyone_permissions(bits)`` (a member's permissions are the union of their roles);
    ``create_thread(user, channel_id, name, *, message_id=None) -> thread dict`` (user-made thread);
    places beyond the bot's server: ``open_dm(user)`` (the DM with the bot, type 1),
    ``add_group_dm(*users)`` (type 3, the bot not in it), ``add_foreign_channel(name)`` (a text
    channel in ``foreign_guild_id``, a server the bot is not a member of).
Driving the bot (each dispatches on the gateway and returns immediately)
    ``await slash_command(user, "name [group] [sub]", {option: value}, channel_id=None)``;
    ``await autocomplete(user, "name [group] [sub]", {option: value}, focused="option",
    channel_id=None)`` (type 4: the user is typing ``options[focused]``, a str, default ``""``;
    read the bot's answer with ``await inter.wait_response()`` then ``inter.choices``);
    ``await click(user, message_id, custom_id=None, *, label=None, values=None)`` (by custom_id,
    or by the label a member reads on a button; buttons and selects anywhere in the message,
    containers and sections included);
    ``await submit_modal(user, custom_id, {field_custom_id: value}, *, files=None, channel_id=None,
    message_id=None)`` (``files={upload_custom_id: [(filename, bytes), ...]}`` fills File Upload
    components);
    ``await message_command(user, "Context Menu Name", message_id, *, channel_id=None)`` and
    ``await user_command(user, "Context Menu Name", target_user_or_id, *, channel_id=None)``
    (context menu commands, types 3 and 2; ``inter.target_id`` is the target);
    ``await user_message(user, channel_id, content, *, files=None, reply_to=None, mention_author=True)
    -> message dict`` (a reply pings its author unless ``mention_author=False``, as the client's "@ on").
    All but the last return a :class:`FakeInteraction`.  ``slash_command``, ``message_command`` take
    ``install="guild"|"user"`` (default: ``"user"`` where only a user install reaches, else ``"guild"``);
    clicks and modal submits run under the install of the interaction that made their message.
    Interactions carry ``context`` (0 server, 1 DM with the bot, 2 group DM),
    ``authorizing_integration_owners`` (``{"0": guild id or "0" in a DM}`` or ``{"1": user id}``) and
    ``app_permissions`` (the bot's in its server; in a DM with it ``Permissions.BOT_DM``; where only
    the interaction reaches, ``Permissions.USER_INSTALL``); DM interactions carry ``user``, not ``member``.
Gateway control
    ``await wait_until_ready(timeout=10)`` (a live session got READY + GUILD_CREATE or RESUMED);
    ``await drop_gateway(code=4000, resumable=True)`` -- events dispatched while the client is away
    are buffered and replayed on RESUME; ``resumable=False`` invalidates the session (op 9) and
    discord.py re-identifies after its own fixed 5 s ``before_identify`` sleep;
    ``identify_count``, ``resume_count``, ``presence_updates``.
    Gateway frames are plain-text JSON (discord.py only inflates binary frames); op 8
    REQUEST_GUILD_MEMBERS is answered with one GUILD_MEMBERS_CHUNK.
Observation
    ``requests`` (list of :class:`RecordedRequest`), ``requests_to(method, path_regex)``,
    ``messages`` (id -> payload, bot/webhook/user messages incl. ephemeral ones),
    ``channels`` (id -> payload incl. threads), ``messages_in(channel_id)`` (ordered by id),
    ``registered_commands`` (``[None]`` global, ``[guild_id]`` guild bulk-overwrite lists, with ids),
    ``interactions`` (list of :class:`FakeInteraction`), ``attachment_bytes(url_or_id)``;
    reading a message the way a member does (each takes an id, a payload or a discord.py
    ``Message``): ``text_of(message) -> str`` (content, embed texts, then every text display in
    document order, one per line), ``buttons_of(message) -> [{"label", "custom_id", "disabled",
    "style", "url", "id"}]`` (document order), ``attachments_of(message)`` (every attachment,
    including those its components display and Discord leaves out of ``attachments``);
    ``await wait_for(predicate, timeout=10, message=None)``; ``internal_errors`` (tracebacks of
    bugs in the fake itself; such requests are answered 400 so discord.py fails fast).
Fault injection
    ``fail_next(method, path_regex, status, *, code=0, message=None, times=1, retry_after=0.05,
    is_global=False)`` -- the next matching REST request(s) get a Discord JSON error; a 429 carries
    a ``retry_after`` body plus ``Retry-After``/``X-RateLimit-*``/``Via`` headers so discord.py waits
    and retries instead of treating it as a Cloudflare ban.

Strictness (each is something real Discord does and a real bug would trip over)
    * bot REST routes need ``Authorization: Bot <token>`` (401); webhook/interaction routes don't;
    * a second callback for an interaction -> 400/40060; a callback later than
      ``interaction_deadline`` seconds -> 404/10062; followups or ``@original`` before any
      callback -> 404/10015;
    * content over 2,000 characters -> 400/50035; empty message -> 400/50006; duplicate component
      custom_ids or custom_id over 100 -> 400/50035; thread names over 100 -> 400/50035;
    * starting a thread from a message not in that channel -> 404/10008, twice -> 400/160004;
    * missing bot permissions (send, attach files, create threads, read history, manage messages)
      -> 403/50013; editing someone else's message -> 403/50005; ephemeral messages can't be
      fetched through channel routes;
    * sessions without the MESSAGE_CONTENT intent get blank content (unless the bot is
      mentioned, which a reply with its @ on does, or is the author; DMs always keep theirs);
      disallowed privileged intents close the gateway with 4014, a wrong token with 4004; the
      application's flags (``GET /oauth2/applications/@me``) carry bit 19 only when the intent is allowed;
    * commands are offered only where their ``contexts`` and ``integration_types`` allow
      (LookupError otherwise; unset means every context unless ``dm_permission`` is false, and a
      guild install only);
    * the bot's REST calls to a group DM or to a server it is not in -> 403/50001 Missing Access;
      no permission checks in a DM with the bot, but no threads there (400/50003); messages there
      reach the gateway without ``guild_id``/``member`` (DIRECT_MESSAGES intent), those of group
      DMs and foreign servers never;
    * slash commands must be synced first (``require_synced_commands``) and their options are
      validated against the synced definition; clicks need an existing enabled component; modal
      submits need a modal the bot actually opened, with required fields filled.
    * autocomplete needs a synced option marked ``autocomplete: true``; the focused value is sent
      unvalidated as a string, other options are validated, required ones may be missing, and
      ``resolved`` is never sent (entity options arrive as bare ids, as on Discord).  Its only
      valid callback is type 8 with at most 25 choices, names 1-100 characters, string values at
      most 100 (else 400/50035); any other callback type -> 400/40043, as is type 8 for any other
      interaction; autocomplete tokens have no webhook (followups -> 404/10015).
    * after a deferred (type 5) response the first followup *replaces* the loading message and
      keeps the deferral's ephemerality, as Discord does (a type 5 ignores IS_COMPONENTS_V2; the
      followup or ``@original`` edit sets it).
    * legacy messages (no IS_COMPONENTS_V2 flag; 32768 = ``MessageFlags.components_v2``): content
      up to 2,000 characters; ``components`` are at most 5 top-level action rows, each 1-5
      buttons or one select (else 400/50035: ``UNION_TYPE_CHOICES``, ``BASE_TYPE_MAX_LENGTH``,
      ``BASE_TYPE_BAD_LENGTH``, ``COMPONENT_LAYOUT_WIDTH_EXCEEDED``); buttons need a custom_id (a
      url for links, style 5).
    * Components v2 messages (flags & 32768, on any create/edit route, JSON or multipart), all
      400/50035 with these inner codes: ``content``, ``embeds``, ``sticker_ids`` or ``poll`` ->
      ``MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2``; top level takes 1, 9, 10, 12, 13, 14,
      17, a container 1, 9, 10, 12, 13, 14, a section 1-3 text displays plus a button or thumbnail
      accessory (thumbnails nowhere else), else ``UNION_TYPE_CHOICES``/``BASE_TYPE_BAD_LENGTH``;
      more than 40 components counting every nested one (accessories too) or more than 4,000
      characters over all text displays -> ``BASE_TYPE_MAX_LENGTH`` at ``components``; a gallery
      of 0 or more than 10 items -> ``BASE_TYPE_BAD_LENGTH``; a File component not pointing at
      ``attachment://`` or a media URL that is neither that nor http(s) -> ``URL_TYPE_INVALID_URL``;
      ``attachment://name`` naming no attachment of the message after the request (new uploads
      plus kept ones on edits), or a name Discord would rewrite (anything but ASCII letters,
      digits, ``_.-``) -> ``UNFURLED_MEDIA_ITEM_REFERENCED_ATTACHMENT_NOT_FOUND``.  Stored media
      become the attachment (``url``, ``proxy_url``, ``content_type``, ``attachment_id``,
      ``loading_state`` 2; File components get ``name``/``size``) and referenced attachments
      leave the message's ``attachments``, as on Discord.  Components without an ``id`` (or 0)
      are numbered 1, 2, ... depth first, skipping ids already used.
    * edits: the v2 flag can be set but never cleared (``flags`` without it ->
      ``MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG``); upgrading a message to v2 needs its content,
      embeds and old attachments cleared in that same edit (``content=None, embed=None,
      attachments=[...new files only]`` in discord.py), else the legacy-fields code above; an
      edit without ``attachments`` keeps every attachment, with ``attachments`` only the listed
      ones (discord.py lists ``Message.attachments``, which lacks those the components show).
    * application commands: slash names are lowercase (letters, digits, ``-_'``, 1-32) with a
      1-100 character description; user/message context menus (types 2/3) take 1-32 characters
      with capitals and spaces, no description and no options (400/50035); at most 100 slash, 15
      user and 15 message commands per scope (400/50035, 400/30032).  Context menu interactions carry
      ``target_id`` and ``resolved`` (``messages`` or ``users``/``members``); replies to them are
      message type 23 with ``interaction_metadata.target_message_id``/``target_user``.
    * modals: top level takes action rows (text inputs/selects), text displays and labels; a File
      Upload (type 19) only inside a label.  Submitted uploads are ephemeral attachments in
      ``data.resolved.attachments`` and the component's ``values`` are their ids; ``min_values``
      (default 1, 0 when not required) and ``max_values`` (default 1) are enforced.

REST routes (under ``/api/v10``; anything else is a recorded 404 ``{"message", "code": 0}``)
    ``GET /users/@me``, ``/users/{id}``, ``/gateway``, ``/gateway/bot``, ``/oauth2/applications/@me``;
    ``GET|PUT /applications/{app}/commands`` and ``.../guilds/{guild}/commands`` (bulk overwrite,
    ids stable per name); ``GET /guilds/{id}``, ``.../channels``, ``.../members/{id}``,
    ``.../threads/active``; ``GET|PATCH /channels/{id}``; ``GET|POST /channels/{id}/messages``;
    ``GET|PATCH|DELETE /channels/{id}/messages/{id}``; ``POST .../messages/{id}/threads``;
    ``POST /channels/{id}/threads``; ``GET .../threads/archived/public``; ``PUT .../thread-members/
    {@me|id}``; ``PUT .../reactions/{emoji}/@me``; ``POST /channels/{id}/typing`` (204);
    ``POST /interactions/{id}/{token}/callback`` (types 1, 4, 5, 6, 7, 8, 9; JSON or multipart; with
    ``with_response=1`` it answers ``{"interaction": {...}, "resource": {"type", "message"?}}``);
    ``POST /webhooks/{app}/{token}`` (``wait``, ``thread_id``; ``with_components`` is accepted and
    not needed, as for every application-owned webhook) and ``GET|PATCH|DELETE
    /webhooks/{app}/{token}/messages/{@original|id}``.  Uploads (``payload_json`` + ``files[N]``)
    become attachments ``{id, filename, size, content_type, url, proxy_url}`` served by the fake.

Events the bot causes over REST are echoed on the gateway like Discord does: MESSAGE_CREATE /
UPDATE / DELETE (non-ephemeral only, with ``guild_id`` and ``member``), THREAD_CREATE
(``newly_created``), THREAD_UPDATE / CHANNEL_UPDATE on channel PATCH; plus GUILD_MEMBER_ADD,
GUILD_ROLE_* and CHANNEL_CREATE from the world-building helpers.  Events are filtered by the
identified intents (GUILDS, GUILD_MESSAGES, GUILD_MEMBERS).

Limitations: one guild the bot is in (plus one it is not) and no channel permission overwrites;
no voice, forums, group-DM or foreign-server REST reads for users,
sharding, zlib compression, presences, webhooks other than interaction webhooks, or token
expiry; reactions are only recorded on the message; attachments (and so media items) have no
width/height or placeholder; external media URLs are stored un-unfurled (``loading_state`` 0);
``attachment://`` in embeds is not resolved and such attachments stay in ``attachments``;
duplicate component ``id`` values are not refused; a modal may be submitted again after a
successful submit; only one bot application; autocomplete choice values are not checked against
the focused option's type; ``GET /attachments/...`` (the CDN) is not recorded in ``requests``;
5xx injected with ``fail_next`` are retried by discord.py with 1 s+ sleeps.  The outer 400/50035
(what discord.py's ``HTTPException.code`` shows) is certain for every rule above; the inner
codes ``MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2``,
``MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG``, ``UNFURLED_MEDIA_ITEM_REFERENCED_ATTACHMENT_NOT_FOUND``
and ``COMPONENT_LAYOUT_WIDTH_EXCEEDED`` are Discord's, the others (and all the messages' wording
except the legacy-fields one) are the fake's best guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import itertools
import json
import mimetypes
import re
import secrets
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import yarl
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

__all__ = [
    "FakeDiscord",
    "FakeInteraction",
    "Intents",
    "Permissions",
    "RecordedRequest",
    "UploadedFile",
]

T = TypeVar("T")

# Where the REST request being handled points (see `FakeDiscord._place`): a DM with the bot has
# no server permissions to check.
_REQUEST_PLACE: contextvars.ContextVar[str] = contextvars.ContextVar("request_place", default="guild")

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


def _member_object(user: dict[str, Any], roles: list[int], joined_at: str) -> dict[str, Any]:
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


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class UploadedFile:
    """One ``files[N]`` part of a multipart request, exactly as the bot uploaded it."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One REST request the bot made (everything under ``/api/v10``, including 404s).

    ``path`` is the part after ``/api/v10``; ``json`` is the JSON body or the multipart
    ``payload_json`` part; ``status`` is the status the fake answered with.
    """

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    headers: CIMultiDict[str]
    status: int = 0
    at: float = 0.0


class _ApiError(Exception):
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


def _form_error(path: str, code: str, message: str) -> _ApiError:
    """Build a 50035 "Invalid Form Body" error with Discord's nested ``errors`` layout."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return _ApiError(400, 50035, "Invalid Form Body", errors=errors)


def _missing_permissions() -> _ApiError:
    return _ApiError(403, 50013, "Missing Permissions")


def _unknown(what: str, code: int) -> _ApiError:
    return _ApiError(404, code, f"Unknown {what}")


@dataclass
class _FailureRule:
    method: str
    pattern: re.Pattern[str]
    status: int
    code: int
    message: str
    remaining: int
    retry_after: float
    is_global: bool


class _Snowflakes:
    """Monotonic snowflake-like ids, so ordering by id is ordering by creation like on Discord."""

    def __init__(self) -> None:
        self._last = 0
        self._increment = itertools.count()

    def next(self) -> int:
        candidate = ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._increment) & 0xFFF)
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate


@dataclass
class _ModalForm:
    """What a member typed and uploaded into a modal, and what submitting it produced."""

    values: dict[str, Any]
    files: dict[str, Sequence[tuple[str, bytes]]]
    channel_id: int
    used: set[str] = field(default_factory=set)
    used_files: set[str] = field(default_factory=set)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(eq=False)
class _Connection:
    """One websocket; a session may move between connections when it resumes."""

    ws: web.WebSocketResponse
    session: _Session | None = None
    dropped: bool = False


@dataclass(eq=False)
class _Session:
    """A gateway session: sequence numbers and a replay buffer that survive a dropped socket."""

    session_id: str
    intents: int
    conn: _Connection | None = None
    seq: int = 0
    buffer: list[tuple[int, str]] = field(default_factory=list)
    ready: bool = False
    dead: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def live(self) -> bool:
        return (
            not self.dead
            and self.ready
            and self.conn is not None
            and not self.conn.ws.closed
            and not self.conn.dropped
        )


class FakeInteraction:
    """An interaction the fake dispatched, and everything the bot answered to it.

    ``responses`` holds the raw callback bodies (``{"type": ..., "data": ...}``), ``followups`` the
    message payloads created through the interaction webhook, ``original`` the "original response"
    message (for component interactions answered with type 6/7 that is the clicked message),
    ``choices`` the suggestions an autocomplete interaction was answered with (type 8).
    """

    def __init__(self, fake: FakeDiscord, payload: dict[str, Any], user: dict[str, Any]) -> None:
        self._fake = fake
        self.payload = payload
        self.id: int = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.user = user
        self.channel_id: int = int(payload["channel_id"])
        message = payload.get("message")
        self.message_id: int | None = int(message["id"]) if message else None
        self.responses: list[dict[str, Any]] = []
        self.dispatched_at: float = time.monotonic()
        self.responded_at: float | None = None
        self.modal: dict[str, Any] | None = None
        self._original_id: int | None = None
        self._followups: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"<FakeInteraction id={self.id} type={self.type} responses={len(self.responses)}>"

    @property
    def data(self) -> dict[str, Any]:
        return self.payload.get("data", {})

    @property
    def followups(self) -> list[dict[str, Any]]:
        return list(self._followups)

    @property
    def original(self) -> dict[str, Any] | None:
        if self._original_id is None:
            return None
        return self._fake.messages.get(self._original_id)

    @property
    def target_id(self) -> int | None:
        """The message or user a context menu command was used on (None for other interactions)."""
        target = self.data.get("target_id")
        return int(target) if target is not None else None

    @property
    def response_type(self) -> int | None:
        return self.responses[0]["type"] if self.responses else None

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        """The ``{"name", "value"}`` choices of a type 8 answer (None before it or for other answers)."""
        if self.response_type != CB_AUTOCOMPLETE:
            return None
        return copy.deepcopy((self.responses[0].get("data") or {}).get("choices") or [])

    @property
    def focused(self) -> dict[str, Any] | None:
        """The option marked ``focused`` in an autocomplete interaction's data (None otherwise)."""
        options = self.data.get("options") or []
        while options:
            hit = next((o for o in options if o.get("focused")), None)
            if hit is not None:
                return hit
            options = next((o.get("options") or [] for o in options if o.get("type") in (1, 2)), [])
        return None

    @property
    def response_latency(self) -> float | None:
        """Seconds between dispatching the interaction and receiving the callback (None if none)."""
        if self.responded_at is None:
            return None
        return self.responded_at - self.dispatched_at

    @property
    def deferred(self) -> bool:
        return self.response_type in (CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE)

    @property
    def ephemeral(self) -> bool:
        """Whether the user-visible reply is ephemeral.

        Decided by the callback's ``data.flags`` (which also covers ``defer(ephemeral=True)``);
        if the callback carried no flags (e.g. a deferred update), by the first followup.
        """
        if self.responses:
            data = self.responses[0].get("data") or {}
            if "flags" in data:
                return bool(int(data["flags"] or 0) & FLAG_EPHEMERAL)
        if self._followups:
            return bool(int(self._followups[0].get("flags", 0)) & FLAG_EPHEMERAL)
        return False

    async def wait_response(self, timeout: float = 5) -> dict[str, Any]:  # noqa: ASYNC109 - part of the agreed test API
        """Wait for the first callback body."""
        await self._fake.wait_for(
            lambda: self.responses, timeout=timeout, message=f"no callback for interaction {self.id}"
        )
        return self.responses[0]

    async def wait_followup(self, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:  # noqa: ASYNC109 - part of the agreed test API
        """Wait until at least ``count`` followup messages exist; returns them all."""
        await self._fake.wait_for(
            lambda: len(self._followups) >= count,
            timeout=timeout,
            message=f"interaction {self.id}: expected {count} followup(s)",
        )
        return self.followups


Handler = Callable[..., Awaitable[web.StreamResponse]]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool


class FakeDiscord:
    """In-process fake Discord (gateway + REST v10); see the module docstring for the full API."""

    def __init__(
        self,
        token: str = "test-token",
        *,
        interaction_deadline: float | None = 3.0,
        require_synced_commands: bool = True,
        bot_permissions: int | None = None,
        everyone_permissions: int | None = None,
        allowed_privileged_intents: int = Intents.MESSAGE_CONTENT,
        heartbeat_interval_ms: int = 41250,
        guild_name: str = "Mural Test Guild",
    ) -> None:
        self.token = token
        self.interaction_deadline = interaction_deadline
        self.require_synced_commands = require_synced_commands
        self.allowed_privileged_intents = allowed_privileged_intents
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.guild_name = guild_name

        self._ids = _Snowflakes()
        self.application_id: int = self._ids.next()
        self.guild_id: int = self._ids.next()
        self.channel_id: int = self._ids.next()
        self.bot_user: dict[str, Any] = self._make_user("Mural", bot=True, user_id=self.application_id)
        self.owner_user: dict[str, Any] = self._make_user("owner")

        self.users: dict[int, dict[str, Any]] = {}
        self.members: dict[int, dict[str, Any]] = {}
        self.roles: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.registered_commands: dict[int | None, list[dict[str, Any]]] = {}
        self.requests: list[RecordedRequest] = []
        self.interactions: list[FakeInteraction] = []
        self.presence_updates: list[dict[str, Any]] = []
        self.identify_count = 0
        self.resume_count = 0
        self.internal_errors: list[str] = []

        self._attachments: dict[int, tuple[str, bytes]] = {}
        self._all_attachments: dict[int, list[dict[str, Any]]] = {}  # message id -> incl. referenced
        self._thread_members: dict[int, set[int]] = {}
        self._interactions_by_id: dict[int, FakeInteraction] = {}
        self._interactions_by_token: dict[str, FakeInteraction] = {}
        self._opened_modals: list[tuple[FakeInteraction, dict[str, Any]]] = []
        self._failures: list[_FailureRule] = []
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        self._changed = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes: list[_Route] = []
        self._joined_at = _now_iso()
        self.foreign_guild_id: int | None = None

        everyone = everyone_permissions if everyone_permissions is not None else Permissions.EVERYONE_DEFAULT
        self.roles[self.guild_id] = self._make_role("@everyone", everyone, role_id=self.guild_id, position=0)
        self.bot_role_id = self._ids.next()
        self.roles[self.bot_role_id] = self._make_role(
            "Mural",
            bot_permissions if bot_permissions is not None else Permissions.BOT_DEFAULT,
            role_id=self.bot_role_id,
            position=1,
            managed=True,
            tags={"bot_id": str(self.application_id)},
        )
        self._add_member_record(self.bot_user, [self.bot_role_id])
        self._add_member_record(self.owner_user, [])
        self.channels[self.channel_id] = self._make_text_channel("general", self.channel_id, position=0)
        self._register_routes()

    # ------------------------------------------------------------------ lifecycle

    @property
    def http_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeDiscord.start() has not been awaited")
        return f"http://127.0.0.1:{self._port}"

    @property
    def ws_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeDiscord.start() has not been awaited")
        return f"ws://127.0.0.1:{self._port}/"

    async def start(self) -> None:
        """Bind to a random port on 127.0.0.1 and start serving."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway_handler)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._attachment_handler)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest_handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        """Close every gateway socket (code 1001) and stop the server."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        for conn in list(self._connections):
            conn.dropped = True
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"fake discord shutting down")
        for session in self._sessions.values():
            session.dead = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _patch_targets(self) -> list[tuple[Any, str, Any]]:
        import discord.gateway
        import discord.http
        import discord.webhook.async_

        api = f"{self.http_url}{API_PREFIX}"
        return [
            (discord.http.Route, "BASE", api),
            (discord.webhook.async_.Route, "BASE", api),
            (discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(self.ws_url)),
        ]

    def patch(self, monkeypatch: Any) -> None:
        """Point discord.py at this fake using pytest's ``monkeypatch`` (undone at teardown)."""
        for obj, attr, value in self._patch_targets():
            monkeypatch.setattr(obj, attr, value)

    @contextlib.contextmanager
    def patched(self) -> Iterator[FakeDiscord]:
        """Point discord.py at this fake for the duration of the ``with`` block, without pytest."""
        saved: list[tuple[Any, str, Any]] = []
        try:
            for obj, attr, value in self._patch_targets():
                saved.append((obj, attr, getattr(obj, attr)))
                setattr(obj, attr, value)
            yield self
        finally:
            # Reverse order matters: both Route targets are the same class in discord.py 2.7.
            for obj, attr, old in reversed(saved):
                setattr(obj, attr, old)

    # ------------------------------------------------------------------ waiting

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 10,  # noqa: ASYNC109 - part of the agreed test API
        *,
        message: str | None = None,
    ) -> T:
        """Wait until ``predicate()`` is truthy and return its value.

        Re-checks on every fake state change and every 20 ms (so predicates about the bot's own
        cache work too).  Raises ``TimeoutError`` describing the wait and the last requests.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                what = message or getattr(predicate, "__qualname__", repr(predicate))
                recent = "\n".join(f"  {r.method} {r.path} -> {r.status}" for r in self.requests[-8:])
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for {what}; last requests:\n{recent or '  (none)'}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.02))

    async def wait_until_ready(self, timeout: float = 10) -> None:  # noqa: ASYNC109 - part of the agreed test API
        """Wait until some client identified (or resumed) and holds a live, ready session."""
        await self.wait_for(
            lambda: any(s.live for s in self._sessions.values()),
            timeout=timeout,
            message="a bot to connect and receive READY + GUILD_CREATE",
        )

    # ------------------------------------------------------------------ world building

    def _make_user(self, name: str, *, bot: bool = False, user_id: int | None = None) -> dict[str, Any]:
        uid = user_id if user_id is not None else self._ids.next()
        return {
            "id": str(uid),
            "username": name,
            "discriminator": "0" if not bot else "0001",
            "global_name": None if bot else name.title(),
            "avatar": None,
            "bot": bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }

    def _make_role(
        self,
        name: str,
        permissions: int,
        *,
        role_id: int,
        position: int,
        managed: bool = False,
        tags: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        role: dict[str, Any] = {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": managed,
            "mentionable": False,
            "flags": 0,
        }
        if tags:
            role["tags"] = tags
        return role

    def _make_text_channel(self, name: str, channel_id: int, *, position: int) -> dict[str, Any]:
        return {
            "id": str(channel_id),
            "type": GUILD_TEXT,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": position,
            "permission_overwrites": [],
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "last_pin_timestamp": None,
            "default_auto_archive_duration": 1440,
            "default_thread_rate_limit_per_user": 0,
            "flags": 0,
        }

    def _add_member_record(self, user: dict[str, Any], roles: list[int]) -> dict[str, Any]:
        uid = int(user["id"])
        self.users[uid] = user
        member = _member_object(user, roles, _now_iso())
        self.members[uid] = member
        return member

    def add_member(self, name: str, *, permissions: int | None = None, bot: bool = False) -> dict[str, Any]:
        """Create a user and make them a guild member; returns the user payload.

        ``permissions`` are granted through a personal role on top of @everyone (Discord
        permissions are additive), so ``member.permissions`` in interactions is their union.
        """
        user = self._make_user(name, bot=bot)
        roles: list[int] = []
        if permissions is not None:
            role_id = self._ids.next()
            self.roles[role_id] = self._make_role(f"{name}-role", permissions, role_id=role_id, position=1)
            roles.append(role_id)
            self._broadcast_soon(
                "GUILD_ROLE_CREATE", {"guild_id": str(self.guild_id), "role": self.roles[role_id]}
            )
        member = self._add_member_record(user, roles)
        self._broadcast_soon("GUILD_MEMBER_ADD", {**member, "guild_id": str(self.guild_id)})
        self._notify()
        return user

    def add_text_channel(self, name: str) -> dict[str, Any]:
        """Add another text channel to the guild (dispatches CHANNEL_CREATE to live sessions)."""
        cid = self._ids.next()
        position = sum(1 for c in self.channels.values() if c["type"] == GUILD_TEXT)
        channel = self._make_text_channel(name, cid, position=position)
        self.channels[cid] = channel
        self._broadcast_soon("CHANNEL_CREATE", channel)
        self._notify()
        return channel

    def open_dm(self, user: Mapping[str, Any]) -> dict[str, Any]:
        """The DM channel between ``user`` and the bot (type 1), created on first use like Discord's."""
        uid = int(user["id"])
        self.users.setdefault(uid, dict(user))
        for channel in self.channels.values():
            if channel["type"] == DM and int(channel["recipients"][0]["id"]) == uid:
                return channel
        cid = self._ids.next()
        channel = {
            "id": str(cid),
            "type": DM,
            "last_message_id": None,
            "recipients": [copy.deepcopy(self.users[uid])],
            "flags": 0,
        }
        self.channels[cid] = channel
        self._notify()
        return channel

    def add_group_dm(self, *users: Mapping[str, Any]) -> dict[str, Any]:
        """A group DM (type 3) of ``users``, the first its owner; the bot is not in it, so only a
        user-installed app reaches it, through interactions."""
        if len(users) < 2:
            raise ValueError("a group DM has at least two people")
        for user in users:
            self.users.setdefault(int(user["id"]), dict(user))
        cid = self._ids.next()
        channel = {
            "id": str(cid),
            "type": GROUP_DM,
            "name": None,
            "icon": None,
            "owner_id": str(users[0]["id"]),
            "last_message_id": None,
            "recipients": [copy.deepcopy(dict(u)) for u in users],
            "flags": 0,
        }
        self.channels[cid] = channel
        self._notify()
        return channel

    def add_foreign_channel(self, name: str) -> dict[str, Any]:
        """A text channel in another server, one the bot is not a member of: members reach Mural
        there as a user-installed app; the bot's own REST calls to it get 403 Missing Access."""
        if self.foreign_guild_id is None:
            self.foreign_guild_id = self._ids.next()
        cid = self._ids.next()
        channel = self._make_text_channel(name, cid, position=0)
        channel["guild_id"] = str(self.foreign_guild_id)
        self.channels[cid] = channel
        self._notify()
        return channel

    def _place(self, channel: Mapping[str, Any]) -> str:
        """``guild`` (the bot's server), ``dm`` (with the bot), ``group`` (a group DM) or ``foreign``
        (a server without the bot)."""
        if channel["type"] == DM:
            return "dm"
        if channel["type"] == GROUP_DM:
            return "group"
        if channel.get("guild_id") != str(self.guild_id):
            return "foreign"
        return "guild"

    def _channel_place(self, channel_id: Any) -> str:
        channel = self.channels.get(int(channel_id))
        return "guild" if channel is None else self._place(channel)

    def set_bot_permissions(self, permissions: int) -> None:
        """Change the bot's managed role (dispatches GUILD_ROLE_UPDATE).

        Permissions are the union of @everyone and the bot role, so to take away something
        @everyone has (e.g. ATTACH_FILES) use :meth:`set_everyone_permissions` as well.
        """
        self._set_role_permissions(self.bot_role_id, permissions)

    def set_everyone_permissions(self, permissions: int) -> None:
        """Change the @everyone role (dispatches GUILD_ROLE_UPDATE)."""
        self._set_role_permissions(self.guild_id, permissions)

    def _set_role_permissions(self, role_id: int, permissions: int) -> None:
        role = self.roles[role_id]
        role["permissions"] = str(permissions)
        self._broadcast_soon("GUILD_ROLE_UPDATE", {"guild_id": str(self.guild_id), "role": role})
        self._notify()

    def permissions_for(self, user_id: int) -> int:
        """Guild-level permissions of a member (no channel overwrites exist in the fake)."""
        if user_id == int(self.owner_user["id"]):
            return Permissions.ALL
        member = self.members.get(user_id)
        if member is None:
            return 0
        perms = int(self.roles[self.guild_id]["permissions"])
        for rid in member["roles"]:
            role = self.roles.get(int(rid))
            if role is not None:
                perms |= int(role["permissions"])
        if perms & Permissions.ADMINISTRATOR:
            return Permissions.ALL
        return perms

    def _bot_id(self) -> int:
        return int(self.bot_user["id"])

    def _require_bot_perms(self, bits: int) -> None:
        if _REQUEST_PLACE.get() == "dm":
            return  # no server permissions apply in a DM with the bot
        if self.permissions_for(self._bot_id()) & bits != bits:
            raise _missing_permissions()

    def _require_member(self, user: Mapping[str, Any]) -> int:
        uid = int(user["id"])
        if uid not in self.members:
            raise LookupError(
                f"user {user.get('username')!r} ({uid}) is not a guild member; use add_member()"
            )
        return uid

    def _member_payload(
        self, uid: int, *, with_user: bool = True, permissions: bool = False
    ) -> dict[str, Any]:
        member = dict(self.members[uid])
        if not with_user:
            member.pop("user", None)
        if permissions:
            member["permissions"] = str(self.permissions_for(uid))
        return member

    # ------------------------------------------------------------------ observation helpers

    def messages_in(self, channel_id: int, *, include_ephemeral: bool = True) -> list[dict[str, Any]]:
        """Messages of a channel or thread, oldest first."""
        result = [
            m
            for m in self.messages.values()
            if int(m["channel_id"]) == int(channel_id)
            and (include_ephemeral or not int(m.get("flags", 0)) & FLAG_EPHEMERAL)
        ]
        return sorted(result, key=lambda m: int(m["id"]))

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        """Recorded requests whose method matches (``*`` for any) and whose path matches the regex."""
        pattern = re.compile(path_regex)
        return [
            r
            for r in self.requests
            if (method == "*" or r.method == method.upper()) and pattern.search(r.path)
        ]

    def attachment_bytes(self, url_or_id: str | int) -> bytes:
        """The bytes of an uploaded attachment, by attachment id or its URL."""
        if isinstance(url_or_id, str) and not url_or_id.isdigit():
            match = re.search(r"/attachments/\d+/(\d+)/", url_or_id)
            if match is None:
                raise KeyError(url_or_id)
            url_or_id = match.group(1)
        return self._attachments[int(url_or_id)][1]

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        code: int = 0,
        message: str | None = None,
        times: int = 1,
        retry_after: float = 0.05,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``times`` REST requests matching ``method``/``path_regex`` with an error.

        ``path_regex`` is searched in the path after ``/api/v10``.  Status 429 produces a proper
        rate-limit response (``retry_after`` body + headers) that discord.py sleeps on and retries.
        """
        default_messages = {
            400: "Bad Request",
            401: "401: Unauthorized",
            403: "Missing Permissions",
            404: "Unknown",
            429: "You are being rate limited.",
            500: "500: Internal Server Error",
        }
        self._failures.append(
            _FailureRule(
                method=method.upper(),
                pattern=re.compile(path_regex),
                status=status,
                code=code,
                message=message or default_messages.get(status, "Error"),
                remaining=times,
                retry_after=retry_after,
                is_global=is_global,
            )
        )

    # ------------------------------------------------------------------ gateway

    async def _gateway_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=2.0, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        conn = _Connection(ws=ws)
        self._connections.add(conn)
        try:
            if request.query.get("v", "10") != "10":
                await ws.close(code=4012, message=b"Invalid API version")
                return ws
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Decode error")
                return ws
            await ws.send_str(
                json.dumps(
                    {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None}
                )
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_gateway_payload(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await ws.close(code=4002, message=b"Decode error")
        except Exception:
            self.internal_errors.append(traceback.format_exc())
            raise
        finally:
            self._connections.discard(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                # A client closing with 1000/1001 ends its session on Discord: nothing to resume.
                if not conn.dropped and ws.close_code in (1000, 1001):
                    session.dead = True
            self._notify()
        return ws

    async def _on_gateway_payload(self, conn: _Connection, raw: str) -> None:
        try:
            payload = json.loads(raw)
            op = payload["op"]
        except (ValueError, KeyError, TypeError):
            await conn.ws.close(code=4002, message=b"Decode error")
            return
        data = payload.get("d")
        if op == 1:
            await conn.ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif conn.session is None:
            await conn.ws.close(code=4003, message=b"Not authenticated")
        elif op == 3:
            self.presence_updates.append(data)
            self._notify()
        elif op == 4:
            pass  # voice state updates: no voice support
        elif op == 8:
            await self._request_members(conn.session, data or {})
        else:
            await conn.ws.close(code=4001, message=b"Unknown opcode")

    async def _identify(self, conn: _Connection, data: dict[str, Any]) -> None:
        if conn.session is not None:
            await conn.ws.close(code=4005, message=b"Already authenticated")
            return
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await conn.ws.close(code=4013, message=b"Invalid intent(s)")
            return
        if intents & Intents.PRIVILEGED & ~self.allowed_privileged_intents:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s)")
            return
        session = _Session(session_id=secrets.token_hex(16), intents=intents, conn=conn)
        conn.session = session
        self._sessions[session.session_id] = session
        self.identify_count += 1
        application = {"id": str(self.application_id), "flags": self._application_flags()}
        ready = {
            "v": 10,
            "user": {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.ws_url,
            "application": application,
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": ["us-east"],
            "guild_join_requests": [],
            "user_settings": {},
            "_trace": ["fake-discord"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._send_event(session, "READY", ready)
        await self._send_event(session, "GUILD_CREATE", self._guild_create_payload())
        session.ready = True
        self._notify()

    async def _resume(self, conn: _Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed")
            return
        session = self._sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        seq = seq if isinstance(seq, int) else 0
        resumable = (
            session is not None
            and not session.dead
            and seq <= session.seq
            and (not session.buffer or session.buffer[0][0] <= seq + 1)
        )
        if not resumable or session is None:
            # op 9 with d=false: discord.py closes with 1000 and identifies afresh.
            await conn.ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return
        async with session.lock:
            old = session.conn
            if old is not None and old is not conn:
                old.dropped = True
                with contextlib.suppress(Exception):
                    await old.ws.close(code=4000, message=b"session resumed elsewhere")
            for frame_seq, frame in session.buffer:
                if frame_seq > seq:
                    await conn.ws.send_str(frame)
            session.seq += 1
            frame = json.dumps({"op": 0, "t": "RESUMED", "s": session.seq, "d": {"_trace": ["fake-discord"]}})
            session.buffer.append((session.seq, frame))
            await conn.ws.send_str(frame)
            self.resume_count += 1
            conn.session = session
            session.conn = conn
        self._notify()

    async def _request_members(self, session: _Session, data: dict[str, Any]) -> None:
        query = str(data.get("query") or "")
        wanted = {int(u) for u in data.get("user_ids") or []}
        limit = int(data.get("limit") or 0)
        members = [
            self._member_payload(uid)
            for uid, m in self.members.items()
            if (not wanted or uid in wanted) and m["user"]["username"].startswith(query)
        ]
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(self.guild_id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        if data.get("presences"):
            chunk["presences"] = []
        await self._send_event(session, "GUILD_MEMBERS_CHUNK", chunk)

    def _application_flags(self) -> int:
        flags = 0
        if self.allowed_privileged_intents & Intents.MESSAGE_CONTENT:
            flags |= 1 << 19  # GATEWAY_MESSAGE_CONTENT_LIMITED
        if self.allowed_privileged_intents & Intents.GUILD_MEMBERS:
            flags |= 1 << 15
        return flags

    def _guild_create_payload(self) -> dict[str, Any]:
        active_threads = [
            copy.deepcopy(c)
            for c in self.channels.values()
            if c["type"] in THREAD_TYPES
            and not c["thread_metadata"]["archived"]
            and self._place(c) == "guild"
        ]
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": self.owner_user["id"],
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": copy.deepcopy(list(self.roles.values())),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "incidents_data": None,
            "joined_at": self._joined_at,
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(self.members),
            "voice_states": [],
            "members": [self._member_payload(uid) for uid in self.members],
            "channels": [
                copy.deepcopy(c)
                for c in self.channels.values()
                if c["type"] not in THREAD_TYPES and self._place(c) == "guild"
            ],
            "threads": active_threads,
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    async def _send_event(self, session: _Session, event: str, data: Any) -> None:
        """Assign the next sequence number, buffer the frame for RESUME and send it if connected."""
        async with session.lock:
            session.seq += 1
            frame = json.dumps({"op": 0, "t": event, "s": session.seq, "d": data})
            session.buffer.append((session.seq, frame))
            if len(session.buffer) > EVENT_BUFFER_LIMIT:
                del session.buffer[: len(session.buffer) - EVENT_BUFFER_LIMIT]
            conn = session.conn
            if conn is not None and not conn.dropped and not conn.ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.send_str(frame)

    def _event_allowed(self, session: _Session, event: str, data: Any) -> bool:
        if event.startswith("MESSAGE_"):
            in_dm = "guild_id" not in data
            return bool(session.intents & (Intents.DIRECT_MESSAGES if in_dm else Intents.GUILD_MESSAGES))
        if event.startswith(("THREAD_", "CHANNEL_", "GUILD_ROLE_")):
            return bool(session.intents & Intents.GUILDS)
        if event.startswith("GUILD_MEMBER_"):
            return bool(session.intents & Intents.GUILD_MEMBERS)
        return True

    def _for_session(self, session: _Session, event: str, data: Any) -> Any:
        """Blank message content for sessions lacking MESSAGE_CONTENT, like Discord does."""
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE") or session.intents & Intents.MESSAGE_CONTENT:
            return data
        if "guild_id" not in data:
            return data  # DMs with the bot always carry their content
        bot_id = str(self._bot_id())
        author_id = (data.get("author") or {}).get("id")
        if author_id == bot_id or any(u.get("id") == bot_id for u in data.get("mentions", [])):
            return data
        stripped = dict(data)
        stripped.update(content="", embeds=[], attachments=[], components=[])
        stripped.pop("poll", None)
        return stripped

    async def _broadcast(self, event: str, data: Any) -> None:
        """Dispatch an event to every session that has not ended (buffered while disconnected)."""
        for session in list(self._sessions.values()):
            if session.dead or not session.ready or not self._event_allowed(session, event, data):
                continue
            await self._send_event(session, event, self._for_session(session, event, data))
        self._notify()

    def _broadcast_soon(self, event: str, data: Any) -> None:
        """Dispatch from synchronous helpers: scheduled on the running loop, if any."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if any(not s.dead and s.ready for s in self._sessions.values()):
            task = loop.create_task(self._broadcast(event, copy.deepcopy(data)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _interaction_session(self) -> _Session:
        for session in reversed(list(self._sessions.values())):
            if not session.dead and session.ready:
                return session
        raise RuntimeError("no bot is connected to the fake gateway (await fake.wait_until_ready() first)")

    async def drop_gateway(self, *, code: int = 4000, resumable: bool = True) -> None:
        """Cut every live gateway socket so the client reconnects.

        With ``resumable=True`` (default) the socket is closed with ``code`` (4000, "unknown error",
        which discord.py treats as resumable) and the session keeps buffering events for RESUME.
        With ``resumable=False`` the session is invalidated (op 9, d=false) so the client
        re-identifies and gets a fresh READY + GUILD_CREATE -- after discord.py's built-in 5 s
        ``before_identify`` sleep for non-initial identifies, so budget for it.
        """
        targets = [s for s in self._sessions.values() if not s.dead and s.conn is not None]
        if not targets:
            raise RuntimeError("no connected gateway session to drop")
        for session in targets:
            conn = session.conn
            assert conn is not None
            if resumable:
                session.conn = None
                conn.dropped = True
                with contextlib.suppress(Exception):
                    await conn.ws.close(code=code, message=b"fake drop")
            else:
                session.dead = True
                session.conn = None
                conn.dropped = True
                with contextlib.suppress(Exception):
                    await conn.ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
        self._notify()

    # ------------------------------------------------------------------ HTTP plumbing

    def _json(self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
        # discord.py only parses JSON when the content-type is exactly "application/json".
        all_headers = {"Content-Type": "application/json"}
        all_headers.update(headers or {})
        return web.Response(body=json.dumps(data).encode(), status=status, headers=all_headers)

    @staticmethod
    def _no_content() -> web.Response:
        return web.Response(status=204)

    async def _attachment_handler(self, request: web.Request) -> web.Response:
        att_id = _as_int(request.match_info["attachment_id"])
        stored = self._attachments.get(att_id or -1)
        if stored is None:
            return web.Response(status=404, text="Not Found")
        content_type, data = stored
        return web.Response(body=data, headers={"Content-Type": content_type})

    async def _read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        files: list[UploadedFile] = []
        if not request.can_read_body:
            return None, files
        if request.content_type == "multipart/form-data":
            body: Any = None
            reader = await request.multipart()
            async for part in reader:
                if not hasattr(part, "read"):
                    continue
                raw = bytes(await part.read(decode=False))  # type: ignore[union-attr]
                name = part.name or ""
                if name == "payload_json":
                    body = json.loads(raw.decode())
                elif part.filename is not None:
                    files.append(
                        UploadedFile(
                            field=name,
                            filename=part.filename,
                            content_type=part.headers.get("Content-Type", "application/octet-stream"),
                            data=raw,
                        )
                    )
            return body, files
        raw_body = await request.read()
        if not raw_body:
            return None, files
        try:
            return json.loads(raw_body.decode()), files
        except ValueError as exc:
            raise _ApiError(400, 50109, "The request body contains invalid JSON.") from exc

    async def _rest_handler(self, request: web.Request) -> web.StreamResponse:
        path = request.path[len(API_PREFIX) :] or "/"
        record = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=None,
            files=[],
            headers=CIMultiDict(request.headers),
            at=time.monotonic(),
        )
        self.requests.append(record)
        try:
            record.json, record.files = await self._read_body(request)
            response = await self._route(record)
        except _ApiError as err:
            response = self._json(err.body(), status=err.status, headers=err.headers)
        except Exception as exc:
            # A bug in the fake: answer 400 (discord.py would retry a 5xx for ~25 s) and keep the
            # traceback so the test can show it.
            self.internal_errors.append(traceback.format_exc())
            response = self._json({"message": f"FakeDiscord internal error: {exc!r}", "code": 0}, status=400)
        record.status = response.status
        self._notify()
        return response

    async def _route(self, req: RecordedRequest) -> web.StreamResponse:
        for rule in self._failures:
            if rule.remaining > 0 and rule.method in ("*", req.method) and rule.pattern.search(req.path):
                rule.remaining -= 1
                self._failures = [r for r in self._failures if r.remaining > 0]
                raise self._failure_error(rule)
        method_mismatch = False
        for route in self._routes:
            match = route.pattern.fullmatch(req.path)
            if match is None:
                continue
            if route.method != req.method:
                method_mismatch = True
                continue
            if route.auth and req.headers.get("Authorization") != f"Bot {self.token}":
                raise _ApiError(401, 0, "401: Unauthorized")
            arguments = match.groupdict()
            place = self._channel_place(arguments["channel_id"]) if "channel_id" in arguments else "guild"
            if route.auth and place in ("group", "foreign"):
                # The bot is no recipient of a group DM and no member of that server.
                raise _ApiError(403, 50001, "Missing Access")
            token = _REQUEST_PLACE.set(place)
            try:
                return await route.handler(req, **arguments)
            finally:
                _REQUEST_PLACE.reset(token)
        if method_mismatch:
            raise _ApiError(405, 0, "405: Method Not Allowed")
        raise _ApiError(404, 0, "404: Not Found")

    @staticmethod
    def _failure_error(rule: _FailureRule) -> _ApiError:
        if rule.status != 429:
            return _ApiError(rule.status, rule.code, rule.message)
        reset = time.time() + rule.retry_after
        headers = {
            "Retry-After": str(max(1, int(rule.retry_after + 0.999))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{reset:.3f}",
            "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
            "X-RateLimit-Bucket": "fake-bucket",
            "X-RateLimit-Scope": "global" if rule.is_global else "user",
            "Via": "1.1 google",
        }
        if rule.is_global:
            headers["X-RateLimit-Global"] = "true"
        return _ApiError(
            429,
            rule.code,
            rule.message,
            headers=headers,
            extra={"retry_after": rule.retry_after, "global": rule.is_global},
        )

    def _register_routes(self) -> None:
        snow = r"(?P<{}>\d+)"
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", r"/users/@me", self._get_me, True),
            ("GET", r"/users/" + snow.format("user_id"), self._get_user, True),
            ("GET", r"/gateway", self._get_gateway, False),
            ("GET", r"/gateway/bot", self._get_gateway_bot, True),
            ("GET", r"/oauth2/applications/@me", self._get_application, True),
            ("GET", r"/applications/@me", self._get_application, True),
            ("GET", r"/applications/" + snow.format("app_id") + r"/commands", self._get_commands, True),
            ("PUT", r"/applications/" + snow.format("app_id") + r"/commands", self._put_commands, True),
            (
                "GET",
                r"/applications/"
                + snow.format("app_id")
                + r"/guilds/"
                + snow.format("guild_id")
                + r"/commands",
                self._get_commands,
                True,
            ),
            (
                "PUT",
                r"/applications/"
                + snow.format("app_id")
                + r"/guilds/"
                + snow.format("guild_id")
                + r"/commands",
                self._put_commands,
                True,
            ),
            ("GET", r"/guilds/" + snow.format("guild_id"), self._get_guild, True),
            ("GET", r"/guilds/" + snow.format("guild_id") + r"/channels", self._get_guild_channels, True),
            (
                "GET",
                r"/guilds/" + snow.format("guild_id") + r"/members/" + snow.format("user_id"),
                self._get_guild_member,
                True,
            ),
            (
                "GET",
                r"/guilds/" + snow.format("guild_id") + r"/threads/active",
                self._get_active_threads,
                True,
            ),
            ("GET", r"/channels/" + snow.format("channel_id"), self._get_channel, True),
            ("PATCH", r"/channels/" + snow.format("channel_id"), self._patch_channel, True),
            ("GET", r"/channels/" + snow.format("channel_id") + r"/messages", self._get_messages, True),
            ("POST", r"/channels/" + snow.format("channel_id") + r"/messages", self._post_message, True),
            (
                "GET",
                r"/channels/" + snow.format("channel_id") + r"/messages/" + snow.format("message_id"),
                self._get_message,
                True,
            ),
            (
                "PATCH",
                r"/channels/" + snow.format("channel_id") + r"/messages/" + snow.format("message_id"),
                self._patch_message,
                True,
            ),
            (
                "DELETE",
                r"/channels/" + snow.format("channel_id") + r"/messages/" + snow.format("message_id"),
                self._delete_message,
                True,
            ),
            (
                "POST",
                r"/channels/"
                + snow.format("channel_id")
                + r"/messages/"
                + snow.format("message_id")
                + r"/threads",
                self._post_thread_from_message,
                True,
            ),
            (
                "PUT",
                r"/channels/"
                + snow.format("channel_id")
                + r"/messages/"
                + snow.format("message_id")
                + r"/reactions/(?P<emoji>[^/]+)/@me",
                self._put_reaction,
                True,
            ),
            ("POST", r"/channels/" + snow.format("channel_id") + r"/threads", self._post_thread, True),
            (
                "GET",
                r"/channels/" + snow.format("channel_id") + r"/threads/archived/public",
                self._get_archived_threads,
                True,
            ),
            ("POST", r"/channels/" + snow.format("channel_id") + r"/typing", self._post_typing, True),
            (
                "PUT",
                r"/channels/" + snow.format("channel_id") + r"/thread-members/(?P<user_id>@me|\d+)",
                self._put_thread_member,
                True,
            ),
            (
                "POST",
                r"/interactions/" + snow.format("interaction_id") + r"/(?P<token>[^/]+)/callback",
                self._post_callback,
                False,
            ),
            (
                "POST",
                r"/webhooks/" + snow.format("app_id") + r"/(?P<token>[^/]+)",
                self._post_followup,
                False,
            ),
            (
                "GET",
                r"/webhooks/"
                + snow.format("app_id")
                + r"/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._get_webhook_message,
                False,
            ),
            (
                "PATCH",
                r"/webhooks/"
                + snow.format("app_id")
                + r"/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._patch_webhook_message,
                False,
            ),
            (
                "DELETE",
                r"/webhooks/"
                + snow.format("app_id")
                + r"/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._delete_webhook_message,
                False,
            ),
        ]
        self._routes = [_Route(m, re.compile(p), h, a) for m, p, h, a in table]

    # ------------------------------------------------------------------ REST: identity & commands

    async def _get_me(self, req: RecordedRequest) -> web.Response:
        return self._json(
            {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"}
        )

    async def _get_user(self, req: RecordedRequest, user_id: str) -> web.Response:
        user = self.users.get(int(user_id))
        if user is None:
            raise _unknown("User", 10013)
        return self._json(user)

    async def _get_gateway(self, req: RecordedRequest) -> web.Response:
        return self._json({"url": self.ws_url})

    async def _get_gateway_bot(self, req: RecordedRequest) -> web.Response:
        return self._json(
            {
                "url": self.ws_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14400000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _get_application(self, req: RecordedRequest) -> web.Response:
        return self._json(
            {
                "id": str(self.application_id),
                "name": "Mural",
                "icon": None,
                "description": "Mural test application",
                "summary": "",
                "verify_key": "0" * 64,
                "flags": self._application_flags(),
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": self.owner_user,
                "team": None,
                "bot": self.bot_user,
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "rpc_origins": [],
                "tags": [],
                "approximate_guild_count": 1,
                "integration_types_config": {"0": {}},
            }
        )

    def _check_app(self, app_id: str, guild_id: str | None = None) -> None:
        if int(app_id) != self.application_id:
            raise _ApiError(403, 50001, "Missing Access")
        if guild_id is not None and int(guild_id) != self.guild_id:
            raise _ApiError(403, 50001, "Missing Access")

    @staticmethod
    def _validate_command_definition(index: int, command: Mapping[str, Any]) -> None:
        """Discord's rules per command type: slash names are lowercase words with a description;
        user/message (context menu) names may have capitals and spaces, and take no description
        and no options."""
        ctype = command.get("type", 1)
        name = command.get("name", "")
        if ctype not in (CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND):
            raise _form_error(f"{index}.type", "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3}.")
        if not isinstance(name, str) or not 1 <= len(name) <= 32:
            raise _form_error(f"{index}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        description = command.get("description") or ""
        if ctype == CHAT_INPUT:
            if not re.fullmatch(r"[-_'\w]{1,32}", name):
                raise _form_error(f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Invalid command name")
            if name != name.lower():
                raise _form_error(
                    f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Name must be lowercase"
                )
            if not 1 <= len(description) <= 100:
                raise _form_error(
                    f"{index}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100."
                )
            return
        if not name.strip():
            raise _form_error(f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Invalid command name")
        if description:
            raise _form_error(
                f"{index}.description",
                "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
                "Context menu commands cannot have a description.",
            )
        if command.get("options"):
            raise _form_error(
                f"{index}.options",
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Only chat input commands can have options.",
            )

    async def _get_commands(
        self, req: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> web.Response:
        self._check_app(app_id, guild_id)
        scope = int(guild_id) if guild_id is not None else None
        return self._json(self.registered_commands.get(scope, []))

    async def _put_commands(
        self, req: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> web.Response:
        self._check_app(app_id, guild_id)
        scope = int(guild_id) if guild_id is not None else None
        body = req.json
        if not isinstance(body, list):
            raise _form_error("_", "LIST_TYPE_CONVERT", "Must be a list.")
        for ctype, limit in COMMAND_LIMITS.items():
            if sum(1 for c in body if isinstance(c, dict) and c.get("type", 1) == ctype) > limit:
                if ctype == CHAT_INPUT:
                    raise _form_error("_", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
                raise _ApiError(400, 30032, f"Maximum number of application commands reached ({limit})")
        previous = {(c["name"], c.get("type", 1)): c for c in self.registered_commands.get(scope, [])}
        seen: set[tuple[str, int]] = set()
        stored: list[dict[str, Any]] = []
        for index, command in enumerate(body):
            ctype = command.get("type", 1)
            name = command.get("name", "")
            key = (name, ctype)
            if key in seen:
                raise _form_error(
                    f"{index}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", f"Duplicate name {name}"
                )
            seen.add(key)
            self._validate_command_definition(index, command)
            old = previous.get(key)
            entry = copy.deepcopy(command)
            entry.update(
                id=old["id"] if old else str(self._ids.next()),
                application_id=str(self.application_id),
                version=str(self._ids.next()),
                type=ctype,
            )
            entry.setdefault("description", "")
            entry.setdefault("default_member_permissions", None)
            entry.setdefault("nsfw", False)
            if scope is not None:
                entry["guild_id"] = str(scope)
            stored.append(entry)
        self.registered_commands[scope] = stored
        return self._json(stored)

    # ------------------------------------------------------------------ REST: guild & channels

    async def _get_guild(self, req: RecordedRequest, guild_id: str) -> web.Response:
        if int(guild_id) != self.guild_id:
            raise _unknown("Guild", 10004)
        payload = self._guild_create_payload()
        for key in (
            "members",
            "channels",
            "threads",
            "voice_states",
            "presences",
            "joined_at",
            "large",
            "lazy",
        ):
            payload.pop(key, None)
        return self._json(payload)

    async def _get_guild_channels(self, req: RecordedRequest, guild_id: str) -> web.Response:
        if int(guild_id) != self.guild_id:
            raise _unknown("Guild", 10004)
        return self._json([c for c in self.channels.values() if c["type"] not in THREAD_TYPES])

    async def _get_guild_member(self, req: RecordedRequest, guild_id: str, user_id: str) -> web.Response:
        if int(guild_id) != self.guild_id:
            raise _unknown("Guild", 10004)
        if int(user_id) not in self.members:
            raise _unknown("Member", 10007)
        return self._json(self._member_payload(int(user_id)))

    async def _get_active_threads(self, req: RecordedRequest, guild_id: str) -> web.Response:
        threads = [
            c
            for c in self.channels.values()
            if c["type"] in THREAD_TYPES
            and not c["thread_metadata"]["archived"]
            and self._place(c) == "guild"
        ]
        return self._json({"threads": threads, "members": [], "has_more": False})

    async def _get_archived_threads(self, req: RecordedRequest, channel_id: str) -> web.Response:
        self._channel_or_404(channel_id)
        threads = [
            c
            for c in self.channels.values()
            if c["type"] == PUBLIC_THREAD
            and c["parent_id"] == channel_id
            and c["thread_metadata"]["archived"]
        ]
        return self._json({"threads": threads, "members": [], "has_more": False})

    def _channel_or_404(self, channel_id: str | int) -> dict[str, Any]:
        channel = self.channels.get(int(channel_id))
        if channel is None:
            raise _unknown("Channel", 10003)
        return channel

    @staticmethod
    def _is_thread(channel: Mapping[str, Any]) -> bool:
        return channel["type"] in THREAD_TYPES

    async def _get_channel(self, req: RecordedRequest, channel_id: str) -> web.Response:
        channel = self._channel_or_404(channel_id)
        self._require_bot_perms(Permissions.VIEW_CHANNEL)
        return self._json(channel)

    async def _patch_channel(self, req: RecordedRequest, channel_id: str) -> web.Response:
        channel = self._channel_or_404(channel_id)
        body = req.json or {}
        if not isinstance(body, dict):
            raise _form_error("_", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        if "name" in body:
            name = str(body["name"] or "")
            limit = MAX_THREAD_NAME if self._is_thread(channel) else 100
            if not 1 <= len(name) <= limit:
                raise _form_error("name", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {limit} in length.")
        if self._is_thread(channel):
            perms = self.permissions_for(self._bot_id())
            if int(channel["owner_id"]) != self._bot_id() and not perms & Permissions.MANAGE_THREADS:
                raise _missing_permissions()
            if "locked" in body and not perms & Permissions.MANAGE_THREADS:
                raise _missing_permissions()
            metadata = channel["thread_metadata"]
            # Only moderators may reopen a locked thread, even the bot that started it.
            if (
                metadata.get("locked")
                and body.get("archived") is False
                and not perms & Permissions.MANAGE_THREADS
            ):
                raise _missing_permissions()
            if "name" in body:
                channel["name"] = body["name"]
            for key in ("archived", "locked", "auto_archive_duration", "invitable"):
                if key in body and body[key] is not None:
                    metadata[key] = body[key]
            if "archived" in body:
                metadata["archive_timestamp"] = _now_iso()
            for key in ("rate_limit_per_user", "flags", "applied_tags"):
                if key in body and body[key] is not None:
                    channel[key] = body[key]
            await self._broadcast("THREAD_UPDATE", copy.deepcopy(channel))
        else:
            if not self.permissions_for(self._bot_id()) & (1 << 4):  # MANAGE_CHANNELS
                raise _missing_permissions()
            for key in (
                "name",
                "topic",
                "nsfw",
                "rate_limit_per_user",
                "position",
                "default_auto_archive_duration",
            ):
                if key in body:
                    channel[key] = body[key]
            await self._broadcast("CHANNEL_UPDATE", copy.deepcopy(channel))
        return self._json(channel)

    async def _post_typing(self, req: RecordedRequest, channel_id: str) -> web.Response:
        self._channel_or_404(channel_id)
        return self._no_content()

    async def _put_thread_member(self, req: RecordedRequest, channel_id: str, user_id: str) -> web.Response:
        channel = self._channel_or_404(channel_id)
        if not self._is_thread(channel):
            raise _ApiError(400, 50024, "Cannot execute action on this channel type")
        uid = self._bot_id() if user_id == "@me" else int(user_id)
        if uid not in self.members:
            raise _unknown("Member", 10007)
        self._join_thread(channel, uid)
        return self._no_content()

    def _join_thread(self, thread: dict[str, Any], user_id: int) -> None:
        members = self._thread_members.setdefault(int(thread["id"]), set())
        if user_id in members:
            return
        members.add(user_id)
        thread["member_count"] = len(members)
        if user_id == self._bot_id():
            thread["member"] = self._thread_member(int(thread["id"]), user_id)

    @staticmethod
    def _thread_member(thread_id: int, user_id: int) -> dict[str, Any]:
        return {"id": str(thread_id), "user_id": str(user_id), "join_timestamp": _now_iso(), "flags": 0}

    # ------------------------------------------------------------------ REST: threads

    def _make_thread(
        self,
        parent: dict[str, Any],
        thread_id: int,
        name: str,
        owner_id: int,
        body: Mapping[str, Any],
        ttype: int,
    ) -> dict[str, Any]:
        now = _now_iso()
        duration = body.get("auto_archive_duration") or parent.get("default_auto_archive_duration", 1440)
        metadata: dict[str, Any] = {
            "archived": False,
            "auto_archive_duration": duration,
            "archive_timestamp": now,
            "locked": False,
            "create_timestamp": now,
        }
        if ttype == PRIVATE_THREAD:
            metadata["invitable"] = bool(body.get("invitable", True))
        thread: dict[str, Any] = {
            "id": str(thread_id),
            "type": ttype,
            "guild_id": str(self.guild_id),
            "parent_id": parent["id"],
            "owner_id": str(owner_id),
            "name": name,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "rate_limit_per_user": body.get("rate_limit_per_user") or 0,
            "flags": 0,
            "applied_tags": [],
            "thread_metadata": metadata,
        }
        self._join_thread(thread, owner_id)
        return thread

    def _validate_thread_request(self, parent: dict[str, Any], body: Any) -> str:
        if parent["type"] in (DM, GROUP_DM):
            raise _ApiError(400, 50003, "Cannot execute action on a DM channel")
        if self._is_thread(parent):
            raise _ApiError(400, 50024, "Cannot execute action on this channel type")
        if not isinstance(body, dict):
            raise _form_error("name", "BASE_TYPE_REQUIRED", "This field is required")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise _form_error("name", "BASE_TYPE_REQUIRED", "This field is required")
        if len(name) > MAX_THREAD_NAME:
            raise _form_error(
                "name", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_THREAD_NAME} in length."
            )
        duration = body.get("auto_archive_duration")
        if duration is not None and duration not in (60, 1440, 4320, 10080):
            raise _form_error(
                "auto_archive_duration", "BASE_TYPE_CHOICES", "Value must be one of {60, 1440, 4320, 10080}."
            )
        return name

    async def _start_thread_from_message(
        self,
        parent: dict[str, Any],
        message: dict[str, Any],
        name: str,
        owner_id: int,
        body: Mapping[str, Any],
    ) -> dict[str, Any]:
        if message.get("thread") is not None or int(message["id"]) in self.channels:
            raise _ApiError(400, 160004, "A thread has already been created for this message")
        thread = self._make_thread(parent, int(message["id"]), name, owner_id, body, PUBLIC_THREAD)
        self.channels[int(thread["id"])] = thread
        message["thread"] = thread
        message["flags"] = int(message.get("flags", 0)) | FLAG_HAS_THREAD
        await self._broadcast("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True})
        return thread

    async def _post_thread_from_message(
        self, req: RecordedRequest, channel_id: str, message_id: str
    ) -> web.Response:
        parent = self._channel_or_404(channel_id)
        name = self._validate_thread_request(parent, req.json)
        message = self.messages.get(int(message_id))
        if (
            message is None
            or message["channel_id"] != parent["id"]
            or int(message.get("flags", 0)) & FLAG_EPHEMERAL
        ):
            raise _unknown("Message", 10008)
        self._require_bot_perms(Permissions.VIEW_CHANNEL | Permissions.CREATE_PUBLIC_THREADS)
        thread = await self._start_thread_from_message(parent, message, name, self._bot_id(), req.json)
        return self._json(thread, status=201)

    async def _post_thread(self, req: RecordedRequest, channel_id: str) -> web.Response:
        parent = self._channel_or_404(channel_id)
        name = self._validate_thread_request(parent, req.json)
        ttype = int(req.json.get("type") or PRIVATE_THREAD)
        if ttype not in (PUBLIC_THREAD, PRIVATE_THREAD):
            raise _form_error("type", "BASE_TYPE_CHOICES", "Value must be one of {11, 12}.")
        needed = (
            Permissions.CREATE_PUBLIC_THREADS
            if ttype == PUBLIC_THREAD
            else Permissions.CREATE_PRIVATE_THREADS
        )
        self._require_bot_perms(Permissions.VIEW_CHANNEL | needed)
        thread = self._make_thread(parent, self._ids.next(), name, self._bot_id(), req.json, ttype)
        self.channels[int(thread["id"])] = thread
        await self._broadcast("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True})
        return self._json(thread, status=201)

    async def create_thread(
        self, user: Mapping[str, Any], channel_id: int, name: str, *, message_id: int | None = None
    ) -> dict[str, Any]:
        """Have a member start a public thread (from a message if ``message_id``), like a user would."""
        uid = self._require_member(user)
        parent = self._channel_or_404(channel_id)
        self._validate_thread_request(parent, {"name": name})
        if message_id is not None:
            message = self.messages.get(int(message_id))
            if message is None or message["channel_id"] != parent["id"]:
                raise LookupError(f"message {message_id} is not in channel {channel_id}")
            return await self._start_thread_from_message(parent, message, name, uid, {})
        thread = self._make_thread(parent, self._ids.next(), name, uid, {}, PUBLIC_THREAD)
        self.channels[int(thread["id"])] = thread
        await self._broadcast("THREAD_CREATE", {**copy.deepcopy(thread), "newly_created": True})
        return thread

    # ------------------------------------------------------------------ messages: shared logic

    def _validate_modal_components(self, components: Any, path: str) -> None:
        """Modal layouts: text displays, labels (wrapping one input) and deprecated action rows."""
        if not isinstance(components, list):
            raise _form_error(path, "LIST_TYPE_CONVERT", "Must be a list.")
        seen: set[str] = set()

        def walk(items: list[Any], where: str, allowed: tuple[int, ...]) -> None:
            for index, comp in enumerate(items):
                here = f"{where}.{index}"
                if not isinstance(comp, dict) or "type" not in comp:
                    raise _form_error(here, "BASE_TYPE_REQUIRED", "This field is required")
                if comp["type"] not in allowed:
                    raise _form_error(
                        f"{here}.type",
                        "UNION_TYPE_CHOICES",
                        f'Value of field "type" must be one of {allowed}.',
                    )
                self._check_custom_id(comp, here, seen)
                if comp["type"] == ACTION_ROW:
                    if not 1 <= len(comp.get("components") or []) <= 5:
                        raise _form_error(
                            f"{here}.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
                        )
                    walk(comp["components"], f"{here}.components", (TEXT_INPUT, *SELECT_TYPES))
                elif comp["type"] == LABEL:
                    if not isinstance(comp.get("component"), dict):
                        raise _form_error(f"{here}.component", "BASE_TYPE_REQUIRED", "This field is required")
                    walk(
                        [comp["component"]],
                        f"{here}.component",
                        (TEXT_INPUT, *SELECT_TYPES, FILE_UPLOAD, 21, 22, 23),
                    )
                elif comp["type"] == FILE_UPLOAD:
                    low, high = comp.get("min_values"), comp.get("max_values")
                    if low is not None and not 0 <= low <= 10:
                        raise _form_error(
                            f"{here}.min_values",
                            "NUMBER_TYPE_MAX",
                            "int value should be less than or equal to 10.",
                        )
                    if high is not None and not 1 <= high <= 10:
                        raise _form_error(
                            f"{here}.max_values",
                            "NUMBER_TYPE_MAX",
                            "int value should be less than or equal to 10.",
                        )

        walk(components, path, (ACTION_ROW, TEXT_DISPLAY, LABEL))

    @staticmethod
    def _check_custom_id(comp: Mapping[str, Any], here: str, seen: set[str]) -> None:
        custom_id = comp.get("custom_id")
        if custom_id is None:
            return
        if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
            raise _form_error(f"{here}.custom_id", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100.")
        if custom_id in seen:
            raise _form_error(
                f"{here}.custom_id",
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(custom_id)

    def _validate_message_components(
        self, components: Any, path: str, *, v2: bool, available: set[str]
    ) -> None:
        """Discord's checks on a message's ``components``.

        Legacy messages take up to 5 top-level action rows.  Components v2 messages take any
        top-level layout/content component, at most 40 components in all (every nested one
        counts, section accessories included) and at most 4,000 characters over all text displays;
        ``attachment://name`` media must name one of ``available`` (the message's attachments
        after this request).
        """
        if not isinstance(components, list):
            raise _form_error(path, "LIST_TYPE_CONVERT", "Must be a list.")
        if not v2 and len(components) > MAX_LEGACY_ROWS:
            raise _form_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_LEGACY_ROWS} or fewer in length.")
        seen: set[str] = set()
        totals = {"components": 0, "text": 0}

        def union(here: str, allowed: tuple[int, ...]) -> _ApiError:
            return _form_error(
                f"{here}.type", "UNION_TYPE_CHOICES", f'Value of field "type" must be one of {allowed}.'
            )

        def media(item: Any, here: str, *, attachment_only: bool = False) -> None:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise _form_error(f"{here}.url", "BASE_TYPE_REQUIRED", "This field is required")
            url = item["url"]
            if url.startswith(ATTACHMENT_SCHEME):
                name = url[len(ATTACHMENT_SCHEME) :]
                if not SAFE_ATTACHMENT_NAME.fullmatch(name) or name not in available:
                    raise _form_error(
                        f"{here}.url",
                        REFERENCE_NOT_FOUND_CODE,
                        f"Referenced attachment {name!r} was not found in the message's attachments",
                    )
                return
            if attachment_only:
                raise _form_error(
                    f"{here}.url", "URL_TYPE_INVALID_URL", "File components only support attachment:// URLs."
                )
            if not re.match(r"https?://[^/\s]+", url):
                raise _form_error(f"{here}.url", "URL_TYPE_INVALID_URL", "Not a well formed URL.")

        def button(comp: dict[str, Any], here: str) -> None:
            style = comp.get("style")
            if style not in (1, 2, 3, 4, 5, 6):
                raise _form_error(
                    f"{here}.style", "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5, 6}."
                )
            if style == 5:
                if not comp.get("url") or comp.get("custom_id") is not None:
                    raise _form_error(here, "BUTTON_COMPONENT_URL_REQUIRED", "A url is required")
            elif style == 6:
                if not comp.get("sku_id"):
                    raise _form_error(here, "BUTTON_COMPONENT_SKU_ID_REQUIRED", "A sku id is required")
            elif comp.get("custom_id") is None or comp.get("url") is not None:
                raise _form_error(here, "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED", "A custom id is required")
            if len(comp.get("label") or "") > 80:
                raise _form_error(f"{here}.label", "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length.")

        def node(comp: Any, here: str, allowed: tuple[int, ...]) -> None:
            if not isinstance(comp, dict) or "type" not in comp:
                raise _form_error(here, "BASE_TYPE_REQUIRED", "This field is required")
            kind = comp["type"]
            if kind not in allowed:
                raise union(here, allowed)
            totals["components"] += 1
            self._check_custom_id(comp, here, seen)
            children = comp.get("components")
            if kind == ACTION_ROW:
                row_types = (BUTTON, *SELECT_TYPES)
                if not isinstance(children, list) or not 1 <= len(children) <= 5:
                    raise _form_error(
                        f"{here}.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
                    )
                for position, child in enumerate(children):
                    node(child, f"{here}.components.{position}", row_types)
                if len(children) > 1 and any(c["type"] != BUTTON for c in children):
                    raise _form_error(
                        f"{here}.components",
                        "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                        "The specified component exceeds the maximum width",
                    )
            elif kind == BUTTON:
                button(comp, here)
            elif kind in SELECT_TYPES:
                if comp.get("custom_id") is None:
                    raise _form_error(f"{here}.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
                if kind == 3 and not 1 <= len(comp.get("options") or []) <= 25:
                    raise _form_error(
                        f"{here}.options", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 25 in length."
                    )
            elif kind == TEXT_DISPLAY:
                if not isinstance(comp.get("content"), str):
                    raise _form_error(f"{here}.content", "BASE_TYPE_REQUIRED", "This field is required")
                totals["text"] += len(comp["content"])
            elif kind == SECTION:
                if not isinstance(children, list) or not 1 <= len(children) <= 3:
                    raise _form_error(
                        f"{here}.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 3 in length."
                    )
                for position, child in enumerate(children):
                    node(child, f"{here}.components.{position}", (TEXT_DISPLAY,))
                if not isinstance(comp.get("accessory"), dict):
                    raise _form_error(f"{here}.accessory", "BASE_TYPE_REQUIRED", "This field is required")
                node(comp["accessory"], f"{here}.accessory", (BUTTON, THUMBNAIL))
            elif kind == THUMBNAIL:
                media(comp.get("media"), f"{here}.media")
            elif kind == MEDIA_GALLERY:
                items = comp.get("items")
                if not isinstance(items, list) or not 1 <= len(items) <= MAX_GALLERY_ITEMS:
                    raise _form_error(
                        f"{here}.items",
                        "BASE_TYPE_BAD_LENGTH",
                        f"Must be between 1 and {MAX_GALLERY_ITEMS} in length.",
                    )
                for position, item in enumerate(items):
                    if not isinstance(item, dict):
                        raise _form_error(
                            f"{here}.items.{position}",
                            "DICT_TYPE_CONVERT",
                            "Only dictionaries may be used in a DictType",
                        )
                    media(item.get("media"), f"{here}.items.{position}.media")
                    if len(item.get("description") or "") > 1024:
                        raise _form_error(
                            f"{here}.items.{position}.description",
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 1024 or fewer in length.",
                        )
            elif kind == FILE_COMPONENT:
                media(comp.get("file"), f"{here}.file", attachment_only=True)
            elif kind == SEPARATOR:
                if comp.get("spacing") not in (None, 1, 2):
                    raise _form_error(f"{here}.spacing", "BASE_TYPE_CHOICES", "Value must be one of {1, 2}.")
            elif kind == CONTAINER:
                if not isinstance(children, list) or not children:
                    raise _form_error(
                        f"{here}.components", "BASE_TYPE_MIN_LENGTH", "Must be 1 or more in length."
                    )
                for position, child in enumerate(children):
                    node(child, f"{here}.components.{position}", CONTAINER_CHILDREN)
                color = comp.get("accent_color")
                if color is not None and (not isinstance(color, int) or not 0 <= color <= 0xFFFFFF):
                    raise _form_error(
                        f"{here}.accent_color",
                        "NUMBER_TYPE_MAX",
                        "int value should be less than or equal to 16777215.",
                    )

        top_level = V2_TOP_LEVEL if v2 else (ACTION_ROW,)
        for index, comp in enumerate(components):
            node(comp, f"{path}.{index}", top_level)
        if v2 and totals["components"] > MAX_V2_COMPONENTS:
            raise _form_error(
                path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_V2_COMPONENTS} or fewer in length."
            )
        if v2 and totals["text"] > MAX_V2_TEXT:
            raise _form_error(
                path,
                "BASE_TYPE_MAX_LENGTH",
                f"The total length of all text displays must be {MAX_V2_TEXT} or fewer characters.",
            )

    def _validate_message_body(
        self,
        body: Mapping[str, Any],
        files: Sequence[UploadedFile],
        prefix: str,
        *,
        new: bool,
        existing: Mapping[str, Any] | None = None,
    ) -> None:
        """Discord's checks on message create/edit bodies (with ``prefix`` like ``data.`` for callbacks).

        ``existing`` is the message an edit applies to: its flags decide whether the result is a
        Components v2 message, and its attachments may be kept and referenced.
        """
        content = body.get("content")
        if content is not None:
            if not isinstance(content, str):
                raise _form_error(f"{prefix}content", "BASE_TYPE_STRING", "Must be a string.")
            if len(content) > MAX_CONTENT:
                raise _form_error(
                    f"{prefix}content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
                )
        embeds = body.get("embeds")
        if embeds:
            if len(embeds) > 10:
                raise _form_error(f"{prefix}embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
            total = 0
            for index, embed in enumerate(embeds):
                limits = {"title": 256, "description": 4096}
                for key, limit in limits.items():
                    value = embed.get(key) or ""
                    total += len(value)
                    if len(value) > limit:
                        raise _form_error(
                            f"{prefix}embeds.{index}.{key}",
                            "BASE_TYPE_MAX_LENGTH",
                            f"Must be {limit} or fewer in length.",
                        )
                if len(embed.get("fields", [])) > 25:
                    raise _form_error(
                        f"{prefix}embeds.{index}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer."
                    )
                for fld in embed.get("fields", []):
                    total += len(fld.get("name", "")) + len(fld.get("value", ""))
            if total > 6000:
                raise _form_error(
                    f"{prefix}embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
                )

        old_flags = int(existing.get("flags") or 0) if existing is not None else 0
        new_flags = body.get("flags")
        if (
            old_flags & FLAG_COMPONENTS_V2
            and new_flags is not None
            and not int(new_flags) & FLAG_COMPONENTS_V2
        ):
            raise _form_error(
                f"{prefix}flags",
                "MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG",
                "The IS_COMPONENTS_V2 flag cannot be removed from a message.",
            )
        v2 = bool((old_flags | int(new_flags or 0)) & FLAG_COMPONENTS_V2)
        kept_files = self._message_files(existing) if existing is not None else []
        plan = self._plan_attachments(body, files, kept_files)
        upgrading = v2 and existing is not None and not old_flags & FLAG_COMPONENTS_V2
        if v2:
            after_content = content if "content" in body else (existing or {}).get("content")
            after_embeds = embeds if "embeds" in body else (existing or {}).get("embeds")
            for key, value in (
                ("content", after_content),
                ("embeds", after_embeds),
                ("sticker_ids", body.get("sticker_ids")),
                ("poll", body.get("poll")),
            ):
                if value:
                    raise _form_error(
                        f"{prefix}{key}",
                        LEGACY_FIELDS_CODE,
                        f"The '{key}' field cannot be used when using MessageFlags.IS_COMPONENTS_V2",
                    )
            if upgrading and any(kept is not None for kept, _, _, _ in plan):
                # Upgrading a message to v2: its old (displayed) attachments must be dropped.
                raise _form_error(
                    f"{prefix}attachments",
                    LEGACY_FIELDS_CODE,
                    "The 'attachments' field cannot be used when using MessageFlags.IS_COMPONENTS_V2",
                )
        if "components" in body and body["components"] is not None:
            available = {name for _, _, name, _ in plan}
            self._validate_message_components(
                body["components"], f"{prefix}components", v2=v2, available=available
            )
        elif upgrading and existing is not None:
            # Upgrading with the old components: they must be valid v2 components too.
            self._validate_message_components(
                existing.get("components") or [], f"{prefix}components", v2=True, available=set()
            )
        if sum(len(f.data) for f in files) > ATTACHMENT_SIZE_LIMIT:
            raise _ApiError(413, 40005, "Request entity too large")
        if new and not (
            content
            or embeds
            or files
            or body.get("components")
            or body.get("sticker_ids")
            or body.get("poll")
        ):
            raise _ApiError(400, 50006, "Cannot send an empty message")

    def _message_files(self, message: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """Every attachment of a stored message, including those its components display.

        Discord leaves attachments referenced by components (or embeds) out of the message's
        ``attachments`` array; the fake keeps the full list here.
        """
        if message is None:
            return []
        kept = self._all_attachments.get(int(message["id"]))
        return list(kept if kept is not None else message.get("attachments") or [])

    def _store_attachment(
        self, channel_id: int, upload: UploadedFile, filename: str, *, ephemeral: bool
    ) -> dict[str, Any]:
        att_id = self._ids.next()
        guessed = mimetypes.guess_type(filename)[0]
        content_type = guessed or upload.content_type or "application/octet-stream"
        url = f"{self.http_url}/attachments/{channel_id}/{att_id}/{quote(filename)}"
        self._attachments[att_id] = (content_type, upload.data)
        attachment: dict[str, Any] = {
            "id": str(att_id),
            "filename": filename,
            "size": len(upload.data),
            "content_type": content_type,
            "url": url,
            "proxy_url": url,
        }
        if ephemeral:
            attachment["ephemeral"] = True
        return attachment

    def _plan_attachments(
        self, body: Mapping[str, Any], files: Sequence[UploadedFile], existing: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any] | None, UploadedFile | None, str, str | None]]:
        """What ``attachments`` + ``files[N]`` ask for: ``(kept, upload, filename, description)``
        per resulting attachment, in order (an edit keeps only the listed old ones)."""
        by_index: dict[int, UploadedFile] = {}
        for position, upload in enumerate(files):
            match = re.fullmatch(r"files\[(\d+)\]", upload.field)
            by_index[int(match.group(1)) if match else position] = upload
        plan: list[tuple[dict[str, Any] | None, UploadedFile | None, str, str | None]] = []
        used: set[int] = set()
        listed = body.get("attachments")
        if listed is None:
            plan.extend((att, None, att["filename"], None) for att in existing)
        else:
            existing_by_id = {a["id"]: a for a in existing}
            for entry in listed:
                entry_id = str(entry.get("id"))
                if entry_id in existing_by_id:
                    kept = existing_by_id[entry_id]
                    plan.append((kept, None, kept["filename"], None))
                    continue
                index = _as_int(entry_id)
                if index is None or index not in by_index:
                    raise _form_error("attachments", "ATTACHMENT_NOT_FOUND", f"Unknown attachment {entry_id}")
                used.add(index)
                upload = by_index[index]
                plan.append(
                    (None, upload, entry.get("filename") or upload.filename, entry.get("description"))
                )
        for index in sorted(by_index):
            if index not in used:
                plan.append((None, by_index[index], by_index[index].filename, None))
        return plan

    def _build_attachments(
        self,
        channel_id: int,
        body: Mapping[str, Any],
        files: Sequence[UploadedFile],
        existing: list[dict[str, Any]],
        *,
        ephemeral: bool,
    ) -> list[dict[str, Any]]:
        """Resolve ``attachments`` + ``files[N]`` into attachment objects, keeping listed old ones on edit."""
        result: list[dict[str, Any]] = []
        for kept, upload, filename, description in self._plan_attachments(body, files, existing):
            if kept is not None:
                result.append(kept)
                continue
            assert upload is not None
            att = self._store_attachment(channel_id, upload, filename, ephemeral=ephemeral)
            if description:
                att["description"] = description
            result.append(att)
        return result

    @staticmethod
    def _unfurl(media: Mapping[str, Any], by_name: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        """The unfurled media item Discord stores for a ``{"url": ...}`` the bot sent."""
        url = str(media.get("url", ""))
        if not url.startswith(ATTACHMENT_SCHEME):
            return {"url": url, "proxy_url": url, "flags": 0, "loading_state": 0}
        name = url[len(ATTACHMENT_SCHEME) :]
        att = by_name.get(name)
        if att is None:  # validated before; kept for messages created by the fake's own helpers
            raise _form_error(
                "components", REFERENCE_NOT_FOUND_CODE, f"Referenced attachment {name!r} not found"
            )
        unfurled: dict[str, Any] = {
            "url": att["url"],
            "proxy_url": att["proxy_url"],
            "content_type": att["content_type"],
            "flags": 0,
            "loading_state": 2,
            "attachment_id": att["id"],
        }
        for key in ("width", "height"):
            if key in att:
                unfurled[key] = att[key]
        return unfurled

    def _resolve_media(self, components: list[Any], attachments: list[dict[str, Any]]) -> list[Any]:
        """Replace ``attachment://name`` media with the uploaded attachment, as Discord stores it."""
        by_name: dict[str, dict[str, Any]] = {}
        for att in attachments:
            by_name.setdefault(att["filename"], att)
        components = copy.deepcopy(components)
        for comp in self._walk_components(components):
            kind = comp.get("type")
            if kind == THUMBNAIL and isinstance(comp.get("media"), dict):
                comp["media"] = self._unfurl(comp["media"], by_name)
            elif kind == MEDIA_GALLERY:
                for item in comp.get("items") or []:
                    if isinstance(item, dict) and isinstance(item.get("media"), dict):
                        item["media"] = self._unfurl(item["media"], by_name)
            elif kind == FILE_COMPONENT and isinstance(comp.get("file"), dict):
                comp["file"] = self._unfurl(comp["file"], by_name)
                att = next((a for a in attachments if a["id"] == comp["file"].get("attachment_id")), None)
                if att is not None:
                    comp["name"] = att["filename"]
                    comp["size"] = att["size"]
        return components

    def _referenced_attachment_ids(self, components: list[Any]) -> set[str]:
        found: set[str] = set()
        for comp in self._walk_components(components):
            medias = [comp.get("media"), comp.get("file")]
            medias += [item.get("media") for item in comp.get("items") or [] if isinstance(item, dict)]
            found.update(
                str(m["attachment_id"]) for m in medias if isinstance(m, dict) and m.get("attachment_id")
            )
        return found

    def _mentions(self, content: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for raw_id in re.findall(r"<@!?(\d+)>", content or ""):
            user = self.users.get(int(raw_id))
            if user is not None and user not in found:
                found.append(user)
        return found

    def _new_message(
        self,
        channel: dict[str, Any],
        author: dict[str, Any],
        body: Mapping[str, Any],
        files: Sequence[UploadedFile],
        *,
        flags: int = 0,
        message_type: int = 0,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        channel_id = int(channel["id"])
        content = body.get("content") or ""
        message: dict[str, Any] = {
            "id": str(self._ids.next()),
            "channel_id": channel["id"],
            "author": author,
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": False,
            "mentions": self._mentions(content),
            "mention_roles": [],
            "attachments": [],
            "embeds": list(body.get("embeds") or []),
            "components": [],
            "pinned": False,
            "type": message_type,
            "flags": flags,
        }
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        reference = body.get("message_reference")
        if reference and reference.get("message_id"):
            referenced = self.messages.get(int(reference["message_id"]))
            if referenced is None:
                if reference.get("fail_if_not_exists", True):
                    raise _form_error("message_reference", "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
            else:
                message["type"] = 19
                message["message_reference"] = {
                    "type": 0,
                    "message_id": referenced["id"],
                    "channel_id": referenced["channel_id"],
                }
                if channel.get("guild_id"):
                    message["message_reference"]["guild_id"] = channel["guild_id"]
                message["referenced_message"] = copy.deepcopy(referenced)
                message["referenced_message"].pop("referenced_message", None)
        if extra:
            message.update(extra)
        files_kept = self._build_attachments(
            channel_id, body, files, [], ephemeral=bool(flags & FLAG_EPHEMERAL)
        )
        components = self._resolve_media(list(body.get("components") or []), files_kept)
        message["components"] = self._with_component_ids(components)
        shown = self._referenced_attachment_ids(components)
        message["attachments"] = [a for a in files_kept if a["id"] not in shown]
        self._all_attachments[int(message["id"])] = files_kept
        self.messages[int(message["id"])] = message
        if not flags & FLAG_EPHEMERAL:
            channel["last_message_id"] = message["id"]
            if self._is_thread(channel):
                channel["message_count"] = channel.get("message_count", 0) + 1
                channel["total_message_sent"] = channel.get("total_message_sent", 0) + 1
        return message

    def _with_component_ids(self, components: list[Any]) -> list[Any]:
        """Discord numbers every component; do the same where the bot did not."""
        counter = itertools.count(1)
        used: set[int] = set()

        def collect(items: list[Any]) -> None:
            for comp in items:
                if isinstance(comp, dict):
                    if isinstance(comp.get("id"), int) and comp["id"]:
                        used.add(comp["id"])
                    collect(comp.get("components") or [])
                    collect([c for c in (comp.get("accessory"), comp.get("component")) if c])

        def assign(items: list[Any]) -> None:
            for comp in items:
                if isinstance(comp, dict):
                    if not isinstance(comp.get("id"), int) or not comp["id"]:  # 0 means "assign one"
                        value = next(counter)
                        while value in used:
                            value = next(counter)
                        comp["id"] = value
                    assign(comp.get("components") or [])
                    assign([c for c in (comp.get("accessory"), comp.get("component")) if c])

        components = copy.deepcopy(components)
        collect(components)
        assign(components)
        return components

    def _apply_edit(
        self, message: dict[str, Any], body: Mapping[str, Any], files: Sequence[UploadedFile]
    ) -> dict[str, Any]:
        """Apply an edit body in place (all-or-nothing: a rejected edit leaves the message as it was)."""
        edited = dict(message)
        if "content" in body:
            edited["content"] = body["content"] or ""
            edited["mentions"] = self._mentions(edited["content"])
        if "embeds" in body:
            edited["embeds"] = list(body["embeds"] or [])
        if "flags" in body and body["flags"] is not None:
            keep = int(message.get("flags", 0)) & (
                FLAG_EPHEMERAL | FLAG_HAS_THREAD | FLAG_LOADING | FLAG_COMPONENTS_V2
            )
            edited["flags"] = keep | (int(body["flags"]) & ~(FLAG_EPHEMERAL | FLAG_LOADING))
        every_file = self._message_files(message)
        if "attachments" in body or files:
            every_file = self._build_attachments(
                int(message["channel_id"]),
                body,
                files,
                every_file,
                ephemeral=bool(int(message.get("flags", 0)) & FLAG_EPHEMERAL),
            )
        if "components" in body:
            components = self._resolve_media(list(body["components"] or []), every_file)
            edited["components"] = self._with_component_ids(components)
        shown = self._referenced_attachment_ids(edited["components"])
        edited["attachments"] = [a for a in every_file if a["id"] not in shown]
        edited["edited_timestamp"] = _now_iso()
        if not (edited["content"] or edited["embeds"] or every_file or edited["components"]):
            raise _ApiError(400, 50006, "Cannot send an empty message")
        message.clear()
        message.update(edited)
        self._all_attachments[int(message["id"])] = every_file
        return message

    def _gateway_message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        data = copy.deepcopy(dict(message))
        if self._channel_place(data["channel_id"]) == "dm":
            return data  # DM messages carry no guild_id and no member
        data["guild_id"] = str(self.guild_id)
        author_id = int(data["author"]["id"])
        if author_id in self.members and "webhook_id" not in data:
            data["member"] = self._member_payload(author_id, with_user=False)
        return data

    async def _dispatch_message(self, event: str, message: Mapping[str, Any]) -> None:
        if int(message.get("flags", 0)) & FLAG_EPHEMERAL:
            return  # ephemeral messages never reach the gateway
        if self._channel_place(message["channel_id"]) in ("group", "foreign"):
            return  # the bot is not there to receive it
        await self._broadcast(event, self._gateway_message(message))

    async def _admit_new_message(self, channel: dict[str, Any], author_id: int) -> None:
        """Discord's thread rules for a new message, as since its 2023 change to locked threads.

        An archived thread is unarchived by a new message unless it is locked (50083, whoever posts);
        in a locked thread only members with Manage Threads may post at all.
        """
        if not self._is_thread(channel):
            return
        metadata = channel["thread_metadata"]
        if metadata["archived"]:
            if metadata.get("locked"):
                raise _ApiError(400, 50083, "Thread is archived")
            metadata["archived"] = False
            metadata["archive_timestamp"] = _now_iso()
            await self._broadcast("THREAD_UPDATE", copy.deepcopy(channel))
        elif metadata.get("locked") and not self.permissions_for(author_id) & Permissions.MANAGE_THREADS:
            raise _missing_permissions()

    def _check_editable_in(self, channel_id: Any) -> None:
        """Nothing in an archived thread may be edited (it must be reopened first); in a locked one, only by
        those with Manage Threads, the bot's own messages included."""
        channel = self.channels.get(int(channel_id))
        if channel is None or not self._is_thread(channel):
            return
        metadata = channel["thread_metadata"]
        if metadata["archived"]:
            raise _ApiError(400, 50083, "Thread is archived")
        if metadata.get("locked") and not self.permissions_for(self._bot_id()) & Permissions.MANAGE_THREADS:
            raise _missing_permissions()

    # ------------------------------------------------------------------ REST: channel messages

    def _visible_message(self, channel_id: str, message_id: str) -> dict[str, Any]:
        message = self.messages.get(int(message_id))
        if (
            message is None
            or message["channel_id"] != channel_id
            or int(message.get("flags", 0)) & FLAG_EPHEMERAL
        ):
            raise _unknown("Message", 10008)
        return message

    async def _get_messages(self, req: RecordedRequest, channel_id: str) -> web.Response:
        self._channel_or_404(channel_id)
        self._require_bot_perms(Permissions.VIEW_CHANNEL | Permissions.READ_MESSAGE_HISTORY)
        limit = max(1, min(100, int(req.query.get("limit", 50))))
        messages = self.messages_in(int(channel_id), include_ephemeral=False)
        before = _as_int(req.query.get("before"))
        after = _as_int(req.query.get("after"))
        if before is not None:
            messages = [m for m in messages if int(m["id"]) < before]
        if after is not None:
            messages = [m for m in messages if int(m["id"]) > after]
            messages = messages[:limit]
        else:
            messages = messages[-limit:]
        return self._json(list(reversed(messages)))

    async def _get_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> web.Response:
        self._channel_or_404(channel_id)
        self._require_bot_perms(Permissions.VIEW_CHANNEL | Permissions.READ_MESSAGE_HISTORY)
        return self._json(self._visible_message(channel_id, message_id))

    async def _post_message(self, req: RecordedRequest, channel_id: str) -> web.Response:
        channel = self._channel_or_404(channel_id)
        body = req.json or {}
        if not isinstance(body, dict):
            raise _form_error("_", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        send_bit = (
            Permissions.SEND_MESSAGES_IN_THREADS if self._is_thread(channel) else Permissions.SEND_MESSAGES
        )
        self._require_bot_perms(Permissions.VIEW_CHANNEL | send_bit)
        if req.files:
            self._require_bot_perms(Permissions.ATTACH_FILES)
        if body.get("message_reference"):
            self._require_bot_perms(Permissions.READ_MESSAGE_HISTORY)
        self._validate_message_body(body, req.files, "", new=True)
        await self._admit_new_message(channel, self._bot_id())
        flags = int(body.get("flags") or 0) & ~(FLAG_EPHEMERAL | FLAG_LOADING)
        message = self._new_message(channel, self.bot_user, body, req.files, flags=flags)
        await self._dispatch_message("MESSAGE_CREATE", message)
        return self._json(message)

    async def _patch_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> web.Response:
        self._channel_or_404(channel_id)
        message = self._visible_message(channel_id, message_id)
        body = req.json or {}
        if int(message["author"]["id"]) != self._bot_id():
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        if req.files:
            # Uploading with an edit needs the same permission as uploading with a new message.
            self._require_bot_perms(Permissions.ATTACH_FILES)
        self._validate_message_body(body, req.files, "", new=False, existing=message)
        self._check_editable_in(channel_id)
        self._apply_edit(message, body, req.files)
        await self._dispatch_message("MESSAGE_UPDATE", message)
        return self._json(message)

    async def _delete_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> web.Response:
        self._channel_or_404(channel_id)
        message = self._visible_message(channel_id, message_id)
        if int(message["author"]["id"]) != self._bot_id():
            self._require_bot_perms(Permissions.MANAGE_MESSAGES)
        await self._remove_message(message)
        return self._no_content()

    async def _remove_message(self, message: dict[str, Any]) -> None:
        self.messages.pop(int(message["id"]), None)
        self._all_attachments.pop(int(message["id"]), None)
        if not int(message.get("flags", 0)) & FLAG_EPHEMERAL:
            event = {"id": message["id"], "channel_id": message["channel_id"]}
            place = self._channel_place(message["channel_id"])
            if place == "guild":
                event["guild_id"] = str(self.guild_id)
            if place in ("guild", "dm"):
                await self._broadcast("MESSAGE_DELETE", event)

    async def _put_reaction(
        self, req: RecordedRequest, channel_id: str, message_id: str, emoji: str
    ) -> web.Response:
        self._channel_or_404(channel_id)
        message = self._visible_message(channel_id, message_id)
        self._require_bot_perms(Permissions.ADD_REACTIONS | Permissions.READ_MESSAGE_HISTORY)
        reactions = message.setdefault("reactions", [])
        for reaction in reactions:
            if reaction["emoji"].get("name") == emoji:
                if not reaction["me"]:
                    reaction["count"] += 1
                    reaction["me"] = True
                break
        else:
            reactions.append(
                {
                    "count": 1,
                    "me": True,
                    "emoji": {"id": None, "name": emoji},
                    "burst_colors": [],
                    "me_burst": False,
                }
            )
        return self._no_content()

    # ------------------------------------------------------------------ REST: interactions & webhooks

    async def _post_callback(self, req: RecordedRequest, interaction_id: str, token: str) -> web.Response:
        inter = self._interactions_by_id.get(int(interaction_id))
        if inter is None or inter.token != token:
            raise _unknown("interaction", 10062)
        if inter.responses:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        if (
            self.interaction_deadline is not None
            and time.monotonic() - inter.dispatched_at > self.interaction_deadline
        ):
            inter.errors.append({"code": 10062, "late_by": time.monotonic() - inter.dispatched_at})
            raise _unknown("interaction", 10062)
        body = req.json
        if not isinstance(body, dict) or "type" not in body:
            raise _form_error("type", "BASE_TYPE_REQUIRED", "This field is required")
        cb_type = body["type"]
        data: dict[str, Any] = body.get("data") or {}
        if (inter.type == AUTOCOMPLETE) != (cb_type == CB_AUTOCOMPLETE):
            # Autocomplete interactions take only type 8, and type 8 answers only them.
            raise _ApiError(400, 40043, "Interaction callback type is not valid for this interaction")
        message: dict[str, Any] | None = None
        ephemeral = bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)
        channel = self.channels.get(inter.channel_id)
        if channel is None:
            raise _unknown("Channel", 10003)

        if cb_type == CB_MESSAGE:
            if inter.type not in (APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT):
                raise _ApiError(400, 40043, "Interaction callback type is not valid for this interaction")
            self._validate_message_body(data, req.files, "data.", new=True)
            message = self._interaction_message(inter, channel, data, req.files)
            inter._original_id = int(message["id"])
            await self._dispatch_message("MESSAGE_CREATE", message)
        elif cb_type == CB_DEFERRED_MESSAGE:
            if inter.type not in (APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT):
                raise _ApiError(400, 40043, "Interaction callback type is not valid for this interaction")
            loading = {"content": ""}
            message = self._interaction_message(
                inter, channel, loading, [], flags=FLAG_LOADING | (FLAG_EPHEMERAL if ephemeral else 0)
            )
            inter._original_id = int(message["id"])
            await self._dispatch_message("MESSAGE_CREATE", message)
        elif cb_type in (CB_DEFERRED_UPDATE, CB_UPDATE):
            if inter.type not in (MESSAGE_COMPONENT, MODAL_SUBMIT) or inter.message_id is None:
                raise _ApiError(400, 40043, "Interaction callback type is not valid for this interaction")
            target = self.messages.get(inter.message_id)
            if target is None:
                raise _unknown("Message", 10008)
            inter._original_id = inter.message_id
            if cb_type == CB_UPDATE:
                self._validate_message_body(data, req.files, "data.", new=False, existing=target)
                self._apply_edit(target, data, req.files)
                message = target
                await self._dispatch_message("MESSAGE_UPDATE", target)
        elif cb_type == CB_MODAL:
            if inter.type == MODAL_SUBMIT or inter.type == PING:
                raise _ApiError(400, 40043, "Interaction callback type is not valid for this interaction")
            self._validate_modal(data)
            modal = copy.deepcopy(data)
            modal["components"] = self._with_component_ids(modal["components"])
            inter.modal = modal
            self._opened_modals.append((inter, modal))
        elif cb_type == CB_AUTOCOMPLETE:
            self._validate_autocomplete_result(body.get("data"))
        elif cb_type == CB_PONG and inter.type == PING:
            pass
        else:
            raise _ApiError(400, 40043, "Interaction callback type is not valid for this interaction")

        inter.responses.append(copy.deepcopy(body))
        inter.responded_at = time.monotonic()
        self._notify()
        if req.query.get("with_response") not in ("1", "true", "True"):
            return self._no_content()
        interaction_info: dict[str, Any] = {"id": str(inter.id), "type": inter.type}
        if inter._original_id is not None and cb_type in (CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_UPDATE):
            interaction_info["response_message_id"] = str(inter._original_id)
            interaction_info["response_message_loading"] = cb_type == CB_DEFERRED_MESSAGE
            interaction_info["response_message_ephemeral"] = ephemeral
        resource: dict[str, Any] = {"type": cb_type}
        if message is not None and cb_type in (CB_MESSAGE, CB_UPDATE):
            resource["message"] = message
        return self._json({"interaction": interaction_info, "resource": resource})

    @staticmethod
    def _validate_autocomplete_result(data: Any) -> None:
        """Discord's limits on a type 8 answer: 0-25 choices, names 1-100, string values up to 100."""
        if not isinstance(data, dict) or "choices" not in data:
            raise _form_error("data.choices", "BASE_TYPE_REQUIRED", "This field is required")
        choices = data["choices"]
        if not isinstance(choices, list):
            raise _form_error("data.choices", "LIST_TYPE_CONVERT", "Must be a list.")
        if len(choices) > 25:
            raise _form_error("data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for index, choice in enumerate(choices):
            where = f"data.choices.{index}"
            if not isinstance(choice, dict):
                raise _form_error(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            name = choice.get("name")
            if not isinstance(name, str) or not 1 <= len(name) <= 100:
                raise _form_error(
                    f"{where}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            value = choice.get("value")
            if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
                raise _form_error(f"{where}.value", "BASE_TYPE_REQUIRED", "This field is required")
            if isinstance(value, str) and len(value) > 100:
                raise _form_error(f"{where}.value", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")

    def _validate_modal(self, data: Mapping[str, Any]) -> None:
        custom_id = data.get("custom_id")
        if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
            raise _form_error(
                "data.custom_id", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        title = data.get("title")
        if not isinstance(title, str) or not 1 <= len(title) <= 45:
            raise _form_error("data.title", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
        components = data.get("components")
        if not isinstance(components, list) or not 1 <= len(components) <= 5:
            raise _form_error("data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        self._validate_modal_components(components, "data.components")

    def _interaction_message(
        self,
        inter: FakeInteraction,
        channel: dict[str, Any],
        data: Mapping[str, Any],
        files: Sequence[UploadedFile],
        *,
        flags: int | None = None,
        followup: bool = False,
    ) -> dict[str, Any]:
        if flags is None:
            flags = int(data.get("flags") or 0) & ~FLAG_LOADING
        metadata: dict[str, Any] = {
            "id": str(inter.id),
            "type": inter.type,
            "user": inter.user,
            "authorizing_integration_owners": copy.deepcopy(inter.payload["authorizing_integration_owners"]),
        }
        if followup and inter._original_id is not None:
            metadata["original_response_message_id"] = str(inter._original_id)
        if inter.type == MESSAGE_COMPONENT and inter.message_id is not None:
            metadata["interacted_message_id"] = str(inter.message_id)
        command_type = inter.data.get("type", CHAT_INPUT) if inter.type == APPLICATION_COMMAND else None
        if command_type == MESSAGE_COMMAND:
            metadata["target_message_id"] = inter.data["target_id"]
        elif command_type == USER_COMMAND:
            metadata["target_user"] = inter.data["resolved"]["users"][inter.data["target_id"]]
        extra = {
            "webhook_id": str(self.application_id),
            "application_id": str(self.application_id),
            "interaction_metadata": metadata,
        }
        # 20 CHAT_INPUT_COMMAND, 23 CONTEXT_MENU_COMMAND, 0 DEFAULT (components and modals)
        message_type = {None: 0, CHAT_INPUT: 20}.get(command_type, 23)
        return self._new_message(
            channel, self.bot_user, data, files, flags=flags, message_type=message_type, extra=extra
        )

    def _webhook_interaction(self, app_id: str, token: str) -> FakeInteraction:
        inter = self._interactions_by_token.get(token)
        if int(app_id) != self.application_id or inter is None or not inter.responses:
            raise _unknown("Webhook", 10015)
        if inter.type == AUTOCOMPLETE:  # its answer is the choices; there is no message to follow up
            raise _unknown("Webhook", 10015)
        return inter

    async def _post_followup(self, req: RecordedRequest, app_id: str, token: str) -> web.Response:
        inter = self._webhook_interaction(app_id, token)
        body = req.json or {}
        self._validate_message_body(body, req.files, "", new=True)
        thread_id = _as_int(req.query.get("thread_id"))
        channel = self._channel_or_404(thread_id) if thread_id else self.channels[inter.channel_id]
        original = inter.original
        loading = original is not None and int(original.get("flags", 0)) & FLAG_LOADING and not thread_id
        ephemeral = int(body.get("flags") or 0) & FLAG_EPHEMERAL or (
            loading and original is not None and int(original["flags"]) & FLAG_EPHEMERAL
        )
        if not ephemeral:
            # A public answer is a message in the channel like any other: a thread's rules apply to it.
            if loading:
                self._check_editable_in(channel["id"])
            else:
                await self._admit_new_message(channel, self._bot_id())
        if loading:
            assert original is not None
            # The first followup after a "thinking" defer becomes the original response; its
            # ephemerality is the deferral's, whatever flags the followup carries.
            keep = int(original["flags"]) & FLAG_EPHEMERAL
            self._apply_edit(original, body, req.files)
            original["flags"] = keep | (int(body.get("flags") or 0) & ~(FLAG_EPHEMERAL | FLAG_LOADING))
            original["edited_timestamp"] = None
            message = original
            await self._dispatch_message("MESSAGE_UPDATE", message)
        else:
            message = self._interaction_message(inter, channel, body, req.files, followup=True)
            await self._dispatch_message("MESSAGE_CREATE", message)
        inter._followups.append(message)
        self._notify()
        if req.query.get("wait") in ("1", "true", "True"):
            return self._json(message)
        return self._no_content()

    def _webhook_message(self, inter: FakeInteraction, message_id: str) -> dict[str, Any]:
        if message_id == "@original":
            mid = inter._original_id
        else:
            mid = int(message_id)
            owned = {int(m["id"]) for m in inter._followups}
            if inter._original_id is not None:
                owned.add(inter._original_id)
            if mid not in owned:
                mid = None
        message = self.messages.get(mid) if mid is not None else None
        if message is None:
            raise _unknown("Message", 10008)
        return message

    async def _get_webhook_message(
        self, req: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> web.Response:
        inter = self._webhook_interaction(app_id, token)
        return self._json(self._webhook_message(inter, message_id))

    async def _patch_webhook_message(
        self, req: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> web.Response:
        inter = self._webhook_interaction(app_id, token)
        message = self._webhook_message(inter, message_id)
        body = req.json or {}
        self._validate_message_body(body, req.files, "", new=False, existing=message)
        if not int(message.get("flags", 0)) & FLAG_EPHEMERAL:
            self._check_editable_in(message["channel_id"])
        was_loading = int(message.get("flags", 0)) & FLAG_LOADING
        self._apply_edit(message, body, req.files)
        if was_loading:
            message["flags"] = int(message["flags"]) & ~FLAG_LOADING
        await self._dispatch_message("MESSAGE_UPDATE", message)
        self._notify()
        return self._json(message)

    async def _delete_webhook_message(
        self, req: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> web.Response:
        inter = self._webhook_interaction(app_id, token)
        message = self._webhook_message(inter, message_id)
        await self._remove_message(message)
        return self._no_content()

    # ------------------------------------------------------------------ driving the bot

    def _interaction_base(
        self,
        kind: int,
        user: Mapping[str, Any],
        channel: dict[str, Any],
        *,
        locale: str = "en-US",
        install: str | None = None,
    ) -> dict[str, Any]:
        """The fields every interaction carries, shaped by where it happens and which install runs it.

        ``install`` is ``"guild"`` (the app installed in the bot's server; in a DM with the bot the
        owner id is ``"0"``) or ``"user"`` (the member's own install); by default ``"user"`` where
        only a user install can reach (a group DM, a server without the bot), else ``"guild"``.
        """
        place = self._place(channel)
        install = install or ("user" if place in ("group", "foreign") else "guild")
        if install not in ("guild", "user"):
            raise ValueError(f"install is 'guild' or 'user', not {install!r}")
        if install == "guild" and place in ("group", "foreign"):
            raise ValueError(f"a {place} channel is reached only through a user install (install='user')")
        uid = int(user["id"])
        payload: dict[str, Any] = {
            "id": str(self._ids.next()),
            "application_id": str(self.application_id),
            "type": kind,
            "token": "fake." + secrets.token_urlsafe(48),
            "version": 1,
            "channel_id": channel["id"],
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        channel_payload = copy.deepcopy(channel)
        if place in ("dm", "group"):
            if all(int(r["id"]) != uid for r in channel["recipients"]):
                raise LookupError(f"user {uid} is not in DM channel {channel['id']}")
            payload["user"] = copy.deepcopy(self.users.get(uid, dict(user)))
            payload["context"] = CONTEXT_BOT_DM if place == "dm" else CONTEXT_PRIVATE_CHANNEL
            payload["app_permissions"] = str(
                Permissions.BOT_DM
                if place == "dm"
                else Permissions.USER_INSTALL | Permissions.USE_EXTERNAL_EMOJIS
            )
            # In a DM with the bot, a guild install's owner is "0": there is no server.
            owner = "0" if install == "guild" else str(uid)
        elif place == "foreign":
            self.users.setdefault(uid, dict(user))
            member_perms = Permissions.EVERYONE_DEFAULT
            channel_payload["permissions"] = str(member_perms)
            payload["guild_id"] = channel["guild_id"]
            payload["guild"] = {"id": channel["guild_id"], "locale": "en-US", "features": []}
            payload["guild_locale"] = "en-US"
            payload["member"] = {
                **_member_object(copy.deepcopy(self.users[uid]), [], self._joined_at),
                "permissions": str(member_perms),
            }
            payload["context"] = CONTEXT_GUILD
            payload["app_permissions"] = str(Permissions.USER_INSTALL)
            owner = str(uid)
        else:
            self._require_member(user)
            channel_payload["permissions"] = str(self.permissions_for(uid))
            payload["guild_id"] = str(self.guild_id)
            payload["guild"] = {"id": str(self.guild_id), "locale": "en-US", "features": []}
            payload["guild_locale"] = "en-US"
            payload["member"] = self._member_payload(uid, permissions=True)
            payload["context"] = CONTEXT_GUILD
            payload["app_permissions"] = str(self.permissions_for(self._bot_id()))
            owner = str(self.guild_id) if install == "guild" else str(uid)
        payload["channel"] = channel_payload
        key = GUILD_INSTALL if install == "guild" else USER_INSTALL
        payload["authorizing_integration_owners"] = {key: owner}
        return payload

    @staticmethod
    def _check_command_reach(command: Mapping[str, Any] | None, payload: Mapping[str, Any]) -> None:
        """Discord offers a command only where its ``contexts`` and ``integration_types`` allow it.

        Unset, ``contexts`` means every context unless the legacy ``dm_permission`` is false, and
        ``integration_types`` means a guild install only (an app's default install).
        """
        if command is None:
            return
        context = payload["context"]
        contexts = command.get("contexts")
        if contexts is None:
            contexts = [CONTEXT_GUILD] if command.get("dm_permission") is False else [0, 1, 2]
        installs = command.get("integration_types") or [0]
        install = int(next(iter(payload["authorizing_integration_owners"])))
        if context not in contexts or install not in installs:
            raise LookupError(
                f"{command['name']!r} is not offered here (context {context}, install {install}; "
                f"the command allows contexts {contexts}, installs {installs})"
            )

    async def _dispatch_interaction(
        self, payload: dict[str, Any], user: Mapping[str, Any]
    ) -> FakeInteraction:
        session = self._interaction_session()
        inter = FakeInteraction(self, payload, dict(user))
        self.interactions.append(inter)
        self._interactions_by_id[inter.id] = inter
        self._interactions_by_token[inter.token] = inter
        inter.dispatched_at = time.monotonic()
        await self._send_event(session, "INTERACTION_CREATE", payload)
        self._notify()
        return inter

    def _find_command(self, name: str, ctype: int = CHAT_INPUT) -> tuple[dict[str, Any] | None, int | None]:
        for scope in (self.guild_id, None):
            for command in self.registered_commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == ctype:
                    return command, scope
        return None, None

    def _option_value(
        self,
        name: str,
        value: Any,
        opt_type: int | None,
        resolved: dict[str, dict[str, Any]],
        channel_id: int,
    ) -> tuple[int, Any]:
        """Encode a Python value as an interaction option (and fill ``resolved`` for entities)."""
        if opt_type is None:
            if isinstance(value, bool):
                opt_type = 5
            elif isinstance(value, int):
                opt_type = 4
            elif isinstance(value, float):
                opt_type = 10
            elif isinstance(value, str):
                opt_type = 3
            elif isinstance(value, dict) and "username" in value:
                opt_type = 6
            elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], bytes | bytearray):
                opt_type = 11
            else:
                raise TypeError(f"option {name!r}: cannot infer a Discord option type for {value!r}")
        checks: dict[int, Callable[[Any], bool]] = {
            3: lambda v: isinstance(v, str),
            4: lambda v: isinstance(v, int) and not isinstance(v, bool),
            5: lambda v: isinstance(v, bool),
            10: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        }
        if opt_type in checks:
            if not checks[opt_type](value):
                raise TypeError(f"option {name!r} has type {opt_type} but got {value!r}")
            return opt_type, value
        if opt_type == 6:
            user = value if isinstance(value, dict) else self.users[int(value)]
            uid = int(user["id"])
            resolved.setdefault("users", {})[str(uid)] = user
            if uid in self.members:
                member = self._member_payload(uid, with_user=False, permissions=True)
                resolved.setdefault("members", {})[str(uid)] = member
            return 6, str(uid)
        if opt_type == 7:
            channel = self._channel_or_404(value["id"] if isinstance(value, dict) else value)
            resolved.setdefault("channels", {})[channel["id"]] = {
                **channel,
                "permissions": str(Permissions.ALL),
            }
            return 7, channel["id"]
        if opt_type == 8:
            role = self.roles[int(value["id"] if isinstance(value, dict) else value)]
            resolved.setdefault("roles", {})[role["id"]] = role
            return 8, role["id"]
        if opt_type == 11:
            filename, data = value
            upload = UploadedFile("files[0]", filename, "application/octet-stream", bytes(data))
            attachment = self._store_attachment(channel_id, upload, filename, ephemeral=True)
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            return 11, attachment["id"]
        raise TypeError(f"option {name!r}: unsupported option type {opt_type}")

    def _build_options(
        self,
        definitions: list[dict[str, Any]] | None,
        values: Mapping[str, Any],
        resolved: dict[str, dict[str, Any]],
        channel_id: int,
        command_path: str,
        *,
        focused: str | None = None,
    ) -> list[dict[str, Any]]:
        """Encode ``values`` as interaction options, checked against ``definitions`` when known.

        With ``focused`` (an autocomplete interaction) that option is sent as the raw string the
        user is typing, unchecked and flagged ``"focused": true``, and required options may be missing.
        """
        by_name = {d["name"]: d for d in definitions or []}
        options: list[dict[str, Any]] = []
        if focused is not None and focused not in values:
            values = {**values, focused: ""}  # the user focused an empty field
        for name, value in values.items():
            definition = by_name.get(name)
            if definitions is not None and definition is None:
                raise ValueError(f"/{command_path} has no option {name!r} (has {sorted(by_name)})")
            if name == focused:
                options.append(self._focused_option(command_path, name, definition, value))
                continue
            opt_type, encoded = self._option_value(
                name, value, definition["type"] if definition else None, resolved, channel_id
            )
            if definition:
                self._check_option_limits(command_path, name, definition, encoded)
            if definition and definition.get("choices"):
                allowed = [c["value"] for c in definition["choices"]]
                if encoded not in allowed:
                    raise ValueError(f"/{command_path} option {name!r}: {encoded!r} is not one of {allowed}")
            options.append({"name": name, "type": opt_type, "value": encoded})
        for definition in definitions or []:
            if focused is None and definition.get("required") and definition["name"] not in values:
                raise ValueError(f"/{command_path} requires option {definition['name']!r}")
        return options

    @staticmethod
    def _focused_option(
        command_path: str, name: str, definition: Mapping[str, Any] | None, value: Any
    ) -> dict[str, Any]:
        """The option being typed in an autocomplete interaction: always a string, never validated."""
        if definition is None or not definition.get("autocomplete"):
            raise ValueError(
                f"/{command_path} option {name!r} has no autocomplete, so Discord never sends "
                "autocomplete interactions for it"
            )
        if not isinstance(value, str):
            raise TypeError(
                f"/{command_path} option {name!r} is focused: pass the partially typed text as a str, "
                f"not {value!r}"
            )
        return {"name": name, "type": definition["type"], "value": value, "focused": True}

    @staticmethod
    def _check_option_limits(command_path: str, name: str, definition: Mapping[str, Any], value: Any) -> None:
        """The Discord client refuses values outside an option's declared bounds."""
        where = f"/{command_path} option {name!r}"
        if isinstance(value, str) and definition.get("type") == 3:
            low, high = definition.get("min_length", 0), definition.get("max_length", 6000)
            if not low <= len(value) <= high:
                raise ValueError(f"{where}: length {len(value)} outside [{low}, {high}]")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if definition.get("min_value") is not None and value < definition["min_value"]:
                raise ValueError(f"{where}: {value} < min_value {definition['min_value']}")
            if definition.get("max_value") is not None and value > definition["max_value"]:
                raise ValueError(f"{where}: {value} > max_value {definition['max_value']}")

    def _command_payload(
        self,
        user: Mapping[str, Any],
        name: str,
        options: Mapping[str, Any],
        channel_id: int | None,
        locale: str,
        *,
        focused: str | None = None,
        install: str | None = None,
    ) -> dict[str, Any]:
        """A chat-input command interaction for ``/name`` (``"group sub"`` for subcommands).

        With ``focused`` it is an autocomplete interaction (type 4): the focused option is flagged
        and ``resolved`` is left out, since Discord never resolves entities while the user types.
        """
        parts = name.split()
        command, scope = self._find_command(parts[0])
        if command is None and (self.require_synced_commands or focused is not None):
            known = sorted({c["name"] for cmds in self.registered_commands.values() for c in cmds})
            raise LookupError(
                f"/{parts[0]} is not a synced command (synced: {known}); call bot.tree.sync() first"
            )
        channel = self._channel_or_404(channel_id or self.channel_id)
        kind = APPLICATION_COMMAND if focused is None else AUTOCOMPLETE
        payload = self._interaction_base(kind, user, channel, locale=locale, install=install)
        self._check_command_reach(command, payload)
        resolved: dict[str, dict[str, Any]] = {}
        definitions: list[dict[str, Any]] | None = command.get("options", []) if command else None
        chain: list[tuple[str, int]] = []
        for sub in parts[1:]:
            if definitions is not None:
                match = next((d for d in definitions if d["name"] == sub and d["type"] in (1, 2)), None)
                if match is None:
                    raise LookupError(f"/{name}: {sub!r} is not a subcommand")
                chain.append((sub, match["type"]))
                definitions = match.get("options", [])
            else:
                chain.append((sub, 1 if sub == parts[-1] else 2))
        leaf = self._build_options(definitions, options, resolved, int(channel["id"]), name, focused=focused)
        for sub, sub_type in reversed(chain):
            leaf = [{"name": sub, "type": sub_type, "options": leaf}]
        data: dict[str, Any] = {
            "id": command["id"] if command else str(self._ids.next()),
            "name": parts[0],
            "type": 1,
            "options": leaf,
        }
        if scope is not None:
            data["guild_id"] = str(scope)
        if resolved and focused is None:
            data["resolved"] = resolved
        payload["data"] = data
        return payload

    async def slash_command(
        self,
        user: Mapping[str, Any],
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        channel_id: int | None = None,
        locale: str = "en-US",
        install: str | None = None,
    ) -> FakeInteraction:
        """A member runs ``/name`` (``"group sub"`` for subcommands) with ``options``.

        Option types come from the synced definition when there is one (and are checked against
        it), else are inferred: str 3, int 4, bool 5, float 10, user dict 6, ``(filename, bytes)`` 11.
        """
        payload = self._command_payload(user, name, options or {}, channel_id, locale, install=install)
        return await self._dispatch_interaction(payload, user)

    async def autocomplete(
        self,
        user: Mapping[str, Any],
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        focused: str,
        channel_id: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A member is typing option ``focused`` of ``/name`` (``"group sub"`` for subcommands).

        Sends an APPLICATION_COMMAND_AUTOCOMPLETE interaction (type 4).  ``options[focused]`` is the
        partially typed text and must be a str whatever the option's type (``""`` if absent); it is
        not checked against min/max/choices.  The other ``options`` are what the user already
        filled in and are checked like :meth:`slash_command`'s, except that required ones may be
        missing.  The focused option must be synced with ``autocomplete: true`` (else ValueError).
        The bot's suggestions: ``await inter.wait_response()``, then ``inter.choices``.
        """
        payload = self._command_payload(user, name, options or {}, channel_id, locale, focused=focused)
        return await self._dispatch_interaction(payload, user)

    def _context_menu_payload(
        self,
        user: Mapping[str, Any],
        name: str,
        ctype: int,
        target_id: int,
        resolved: dict[str, Any],
        channel: dict[str, Any],
        locale: str,
        install: str | None = None,
    ) -> dict[str, Any]:
        command, scope = self._find_command(name, ctype)
        if command is None and self.require_synced_commands:
            kind = "message" if ctype == MESSAGE_COMMAND else "user"
            known = sorted(
                c["name"]
                for cmds in self.registered_commands.values()
                for c in cmds
                if c.get("type") == ctype
            )
            raise LookupError(
                f"{name!r} is not a synced {kind} command (synced: {known}); call bot.tree.sync() first"
            )
        payload = self._interaction_base(APPLICATION_COMMAND, user, channel, locale=locale, install=install)
        self._check_command_reach(command, payload)
        data: dict[str, Any] = {
            "id": command["id"] if command else str(self._ids.next()),
            "name": name,
            "type": ctype,
            "target_id": str(target_id),
            "resolved": resolved,
        }
        if scope is not None:
            data["guild_id"] = str(scope)
        payload["data"] = data
        return payload

    async def message_command(
        self,
        user: Mapping[str, Any],
        name: str,
        message_id: int,
        *,
        channel_id: int | None = None,
        locale: str = "en-US",
        install: str | None = None,
    ) -> FakeInteraction:
        """A member picks Apps > ``name`` in the context menu of a message (a type 3 command).

        Dispatches an APPLICATION_COMMAND interaction whose ``data`` is ``{"id", "name", "type": 3,
        "target_id", "resolved": {"messages": {id: message}}}`` like Discord's; the resolved message
        is the stored one as any client sees it (full content whatever the bot's intents, and
        without the attachments its components display).  ``channel_id`` defaults to the message's
        channel; ephemeral messages have no context menu.
        """
        message = self.messages.get(int(message_id))
        if message is None:
            raise LookupError(f"message {message_id} does not exist (deleted or never sent)")
        if int(message.get("flags", 0)) & FLAG_EPHEMERAL:
            raise LookupError(f"message {message_id} is ephemeral; Discord offers no apps menu on it")
        if channel_id is not None and int(channel_id) != int(message["channel_id"]):
            raise LookupError(f"message {message_id} is not in channel {channel_id}")
        channel = self._channel_or_404(message["channel_id"])
        resolved = {"messages": {message["id"]: copy.deepcopy(message)}}
        payload = self._context_menu_payload(
            user, name, MESSAGE_COMMAND, int(message_id), resolved, channel, locale, install
        )
        return await self._dispatch_interaction(payload, user)

    async def user_command(
        self,
        user: Mapping[str, Any],
        name: str,
        target: Mapping[str, Any] | int,
        *,
        channel_id: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A member picks Apps > ``name`` in the context menu of ``target`` (a user dict or id; type 2).

        ``data.resolved`` carries the target in ``users`` and, if they are a member, ``members``.
        """
        channel = self._channel_or_404(channel_id or self.channel_id)
        resolved: dict[str, dict[str, Any]] = {}
        _, target_id = self._option_value("target", target, 6, resolved, int(channel["id"]))
        payload = self._context_menu_payload(
            user, name, USER_COMMAND, int(target_id), resolved, channel, locale
        )
        return await self._dispatch_interaction(payload, user)

    @staticmethod
    def _walk_components(components: list[Any]) -> Iterator[dict[str, Any]]:
        for comp in components:
            if not isinstance(comp, dict):
                continue
            yield comp
            yield from FakeDiscord._walk_components(comp.get("components") or [])
            yield from FakeDiscord._walk_components(
                [c for c in (comp.get("accessory"), comp.get("component")) if c]
            )

    async def click(
        self,
        user: Mapping[str, Any],
        message_id: int,
        custom_id: str | None = None,
        *,
        label: str | None = None,
        values: Sequence[str] | None = None,
    ) -> FakeInteraction:
        """A member clicks a button (or picks ``values`` in a select) on a stored message.

        The component is found by ``custom_id`` or, for buttons, by the ``label`` a member reads
        (exactly one must match), anywhere in the message: action rows, containers, sections.
        Disabled components and link buttons refuse the click (ValueError), as the client does.
        """
        if (custom_id is None) == (label is None):
            raise TypeError("click() needs exactly one of custom_id or label=")
        message = self.messages.get(int(message_id))
        if message is None:
            raise LookupError(f"message {message_id} does not exist (deleted or never sent)")
        everything = list(self._walk_components(message.get("components", [])))
        if label is not None:
            matches = [c for c in everything if c.get("type") == BUTTON and c.get("label") == label]
            if len(matches) != 1:
                labels = [c.get("label") for c in everything if c.get("type") == BUTTON]
                raise LookupError(
                    f"message {message_id} has {len(matches)} buttons labelled {label!r} (buttons: {labels})"
                )
            component: dict[str, Any] | None = matches[0]
            if component.get("custom_id") is None:
                raise ValueError(f"button {label!r} is a link (or premium) button; it sends no interaction")
            custom_id = component["custom_id"]
        else:
            component = next((c for c in everything if c.get("custom_id") == custom_id), None)
        if component is None:
            ids = [c.get("custom_id") for c in everything if c.get("custom_id")]
            raise LookupError(f"message {message_id} has no component {custom_id!r} (has {ids})")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; users cannot click it")
        channel = self._channel_or_404(message["channel_id"])
        payload = self._interaction_base(MESSAGE_COMPONENT, user, channel, install=self._install_of(message))
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if isinstance(component.get("id"), int):
            data["id"] = component["id"]
        if component["type"] in SELECT_TYPES:
            if values is None:
                raise ValueError(f"select {custom_id!r} needs values=[...]")
            data["values"] = [str(v) for v in values]
        payload["data"] = data
        payload["message"] = copy.deepcopy(message)
        return await self._dispatch_interaction(payload, user)

    @staticmethod
    def _install_of_owners(carrier: Mapping[str, Any]) -> str:
        owners = carrier.get("authorizing_integration_owners") or {}
        return "guild" if GUILD_INSTALL in owners else "user"

    def _install_of(self, message: Mapping[str, Any]) -> str | None:
        """A press on an interaction's message runs under the install that interaction ran under."""
        metadata = message.get("interaction_metadata")
        if not metadata:
            return None
        return self._install_of_owners(metadata)

    def _stored(self, message: Any) -> Mapping[str, Any]:
        """A stored message from an id, a message payload or a discord.py ``Message`` (anything with ``.id``)."""
        if isinstance(message, Mapping):
            return self.messages.get(int(message["id"]), message)
        message_id = getattr(message, "id", message)
        stored = self.messages.get(int(message_id))
        if stored is None:
            raise LookupError(f"message {message_id} does not exist (deleted or never sent)")
        return stored

    def text_of(self, message: Any) -> str:
        """Everything a member reads on a message, in the order the client shows it, one part a line.

        The content, then each embed's author, title, description, fields (name then value) and
        footer, then every text display of the components in document order (containers and
        sections included).  ``message`` is an id, a message payload or a discord.py ``Message``.
        """
        stored = self._stored(message)
        parts: list[str] = [stored.get("content") or ""]
        for embed in stored.get("embeds") or []:
            parts.append((embed.get("author") or {}).get("name") or "")
            parts += [embed.get("title") or "", embed.get("description") or ""]
            for fld in embed.get("fields") or []:
                parts += [fld.get("name") or "", fld.get("value") or ""]
            parts.append((embed.get("footer") or {}).get("text") or "")
        parts += [
            c.get("content") or ""
            for c in self._walk_components(stored.get("components") or [])
            if c.get("type") == TEXT_DISPLAY
        ]
        return "\n".join(part for part in parts if part)

    def buttons_of(self, message: Any) -> list[dict[str, Any]]:
        """Every button of a message in document order: ``{"label", "custom_id", "disabled", "style",
        "url", "id"}`` (``custom_id`` None for link buttons, ``url`` None for the others)."""
        stored = self._stored(message)
        return [
            {
                "label": c.get("label"),
                "custom_id": c.get("custom_id"),
                "disabled": bool(c.get("disabled", False)),
                "style": c.get("style"),
                "url": c.get("url"),
                "id": c.get("id"),
            }
            for c in self._walk_components(stored.get("components") or [])
            if c.get("type") == BUTTON
        ]

    def attachments_of(self, message: Any) -> list[dict[str, Any]]:
        """Every attachment a message carries, including those shown by its components.

        Discord (and so the message payload's ``attachments``) omits attachments referenced by
        components; their ids are in the components' ``media.attachment_id``.
        """
        return copy.deepcopy(self._message_files(self._stored(message)))

    def _modal_component_data(self, comp: dict[str, Any], form: _ModalForm) -> dict[str, Any]:
        ctype = comp["type"]
        if ctype == ACTION_ROW:
            return {
                "type": ACTION_ROW,
                "id": comp.get("id"),
                "components": [self._modal_component_data(c, form) for c in comp.get("components", [])],
            }
        if ctype == LABEL:
            return {
                "type": LABEL,
                "id": comp.get("id"),
                "component": self._modal_component_data(comp["component"], form),
            }
        if ctype == TEXT_DISPLAY:
            return {"type": TEXT_DISPLAY, "id": comp.get("id")}
        custom_id = comp.get("custom_id", "")
        result: dict[str, Any] = {"type": ctype, "id": comp.get("id"), "custom_id": custom_id}
        provided = custom_id in form.values
        value = form.values.get(custom_id)
        form.used.add(custom_id)
        required = bool(comp.get("required", True))
        if ctype == TEXT_INPUT:
            text = str(value) if provided else str(comp.get("value") or "")
            if required and not text:
                raise ValueError(f"modal field {custom_id!r} is required")
            low, high = comp.get("min_length") or 0, comp.get("max_length") or 4000
            if text and not low <= len(text) <= high:
                raise ValueError(f"modal field {custom_id!r}: length {len(text)} outside [{low}, {high}]")
            result["value"] = text
        elif ctype == FILE_UPLOAD:
            if provided:
                raise TypeError(
                    f"modal field {custom_id!r} is a file upload: pass files={{{custom_id!r}: [...]}}"
                )
            uploads = list(form.files.get(custom_id) or [])
            form.used_files.add(custom_id)
            low = comp.get("min_values")
            low = (1 if required else 0) if low is None else int(low)
            high = comp.get("max_values")
            high = 1 if high is None else int(high)
            if (uploads or required) and not low <= len(uploads) <= high:
                raise ValueError(
                    f"modal field {custom_id!r} takes {low} to {high} file(s), got {len(uploads)}"
                )
            ids: list[str] = []
            for filename, data in uploads:
                if len(data) > ATTACHMENT_SIZE_LIMIT:
                    raise ValueError(f"modal field {custom_id!r}: {filename} is over the upload limit")
                upload = UploadedFile(f"files[{len(ids)}]", filename, "application/octet-stream", bytes(data))
                attachment = self._store_attachment(form.channel_id, upload, filename, ephemeral=True)
                form.resolved.setdefault("attachments", {})[attachment["id"]] = attachment
                ids.append(attachment["id"])
            result["values"] = ids
        elif ctype in (*SELECT_TYPES, 22):
            chosen = [str(v) for v in (value if provided else [])]
            low = comp.get("min_values")
            low = 1 if low is None else int(low)
            if required and low > len(chosen):
                raise ValueError(f"modal field {custom_id!r} needs at least {low} value(s)")
            result["values"] = chosen
        elif ctype == 21:
            result["value"] = None if value is None else str(value)
        elif ctype == 23:
            result["value"] = bool(value)
        else:
            raise ValueError(f"modal component type {ctype} is not supported by the fake")
        return result

    async def submit_modal(
        self,
        user: Mapping[str, Any],
        custom_id: str,
        values: Mapping[str, Any] | None = None,
        *,
        files: Mapping[str, Sequence[tuple[str, bytes]]] | None = None,
        channel_id: int | None = None,
        message_id: int | None = None,
    ) -> FakeInteraction:
        """A member submits a modal the bot opened earlier (latest one with this ``custom_id``).

        The submitted components mirror the modal's layout (action rows or labels), as Discord
        does; ``values`` maps text-input custom_ids to text (lists for selects, bool for checkbox).
        ``files`` maps file-upload (type 19) custom_ids to ``[(filename, bytes), ...]``: they become
        ephemeral attachments in ``data.resolved.attachments`` and the component's ``values`` are
        their ids, as on Discord.
        """
        opened = next(
            (item for item in reversed(self._opened_modals) if item[1]["custom_id"] == custom_id), None
        )
        if opened is None:
            shown = [m["custom_id"] for _, m in self._opened_modals]
            raise LookupError(f"the bot never opened a modal {custom_id!r} (opened: {shown})")
        source, modal = opened
        channel = self._channel_or_404(channel_id or source.channel_id)
        form = _ModalForm(values=dict(values or {}), files=dict(files or {}), channel_id=int(channel["id"]))
        components = [self._modal_component_data(c, form) for c in modal["components"]]
        unknown = (set(form.values) - form.used) | (set(form.files) - form.used_files)
        if unknown:
            raise ValueError(f"modal {custom_id!r} has no fields {sorted(unknown)} (or none that take them)")
        message_id = message_id if message_id is not None else source.message_id
        payload = self._interaction_base(
            MODAL_SUBMIT, user, channel, install=self._install_of_owners(source.payload)
        )
        payload["data"] = {"custom_id": custom_id, "components": components}
        if form.resolved:
            payload["data"]["resolved"] = form.resolved
        if message_id is not None:
            message = self.messages.get(int(message_id))
            if message is None:
                raise LookupError(f"message {message_id} does not exist")
            payload["message"] = copy.deepcopy(message)
        return await self._dispatch_interaction(payload, user)

    async def user_message(
        self,
        user: Mapping[str, Any],
        channel_id: int,
        content: str,
        *,
        files: Mapping[str, bytes] | None = None,
        reply_to: int | None = None,
        mention_author: bool = True,
    ) -> dict[str, Any]:
        """A member posts ``content`` (and optional ``files`` name -> bytes) in a channel, thread or DM.

        A reply pings the author it answers unless ``mention_author=False`` (the client's "@ on"
        default): that author is then in ``mentions``, which is also what lets a bot without the
        Message Content intent read the reply.
        """
        channel = self._channel_or_404(channel_id)
        place = self._place(channel)
        if place == "guild":
            self._require_member(user)
        elif place in ("dm", "group") and all(int(r["id"]) != int(user["id"]) for r in channel["recipients"]):
            raise LookupError(f"user {user['id']} is not in channel {channel_id}")
        uploads = [
            UploadedFile(f"files[{i}]", name, "application/octet-stream", data)
            for i, (name, data) in enumerate((files or {}).items())
        ]
        body: dict[str, Any] = {"content": content}
        if reply_to is not None:
            body["message_reference"] = {"message_id": reply_to, "fail_if_not_exists": True}
        try:
            self._validate_message_body(body, uploads, "", new=True)
            await self._admit_new_message(channel, int(user["id"]))
            message = self._new_message(channel, dict(user), body, uploads)
            replied = message.get("referenced_message")
            if replied and mention_author and replied["author"] not in message["mentions"]:
                message["mentions"].append(copy.deepcopy(replied["author"]))
            if self._is_thread(channel):
                self._join_thread(channel, int(user["id"]))
        except _ApiError as err:
            raise ValueError(f"Discord would reject this user message: {err.body()}") from err
        await self._dispatch_message("MESSAGE_CREATE", message)
        return message
