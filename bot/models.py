"""The records Mural keeps: what the store returns and the core works with. No behaviour, no Discord."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Session:
    id: int
    guild_id: int | None
    channel_id: int
    thread_id: int | None
    owner_id: int
    origin: str
    idea: str
    target: str
    style: str | None
    head_version: int
    aspect: str | None = None


@dataclass(frozen=True)
class Version:
    id: int
    session_id: int
    number: int
    parent: int | None
    prompt: str
    instruction: str | None
    author_id: int
    message_id: int | None


@dataclass(frozen=True)
class Refinement:
    id: int
    session_id: int
    author_id: int
    channel_id: int
    instruction: str
    status: str
    version: int | None


@dataclass(frozen=True)
class Render:
    id: int
    session_id: int
    version: int
    requester_id: int
    channel_id: int
    status: str
    model: str
    size: str
    quality: str
    revised_prompt: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    message_id: int | None
    error_code: str | None
    error: str | None
    kind: str = "generate"
    source_render_id: int | None = None
    source_index: int | None = None
    instruction: str | None = None
    prompt: str | None = None
    n: int = 1
    with_reference: bool = False
    message_channel_id: int | None = None
    cost_estimated: bool = False
    guild_id: int | None = None
    cost_reserved: float | None = None
    # The process that holds the job and until when (see `bot.store.renders`), and how often it was sent.
    held_by: str | None = None
    lease_until: datetime | None = None
    attempts: int = 0


@dataclass(frozen=True)
class QueuedTurn:
    """A queued render's place in the fair order; `busy`: its member has a render running."""

    render_id: int
    requester_id: int
    busy: bool


@dataclass(frozen=True)
class Reference:
    """A member's own picture a session starts from: PNG, JPEG or WebP bytes."""

    filename: str
    mime: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class SessionSummary:
    """One line of a member's history."""

    session: Session
    versions: int
    pictures: int
    created_at: datetime
    jump_channel_id: int
    jump_message_id: int | None


@dataclass(frozen=True)
class ServerSettings:
    """A server's own choices; None means the operator's default from the environment."""

    guild_id: int
    image_model: str | None = None
    image_size: str | None = None
    image_quality: str | None = None
    session_access: str | None = None
    required_role_id: int | None = None
    moderation: str | None = None
    audit_channel_id: int | None = None
    daily_pictures: int | None = None
    daily_spend: float | None = None
    server_daily_spend: float | None = None
    server_monthly_spend: float | None = None
    # Whether its pictures may be shown on the web gallery (/settings gallery:on); off unless turned on.
    gallery: bool = False


@dataclass(frozen=True)
class Limits:
    """What one member may use in one place; None means no limit."""

    member_daily_pictures: int | None = None
    member_daily_spend: float | None = None
    server_daily_spend: float | None = None
    server_monthly_spend: float | None = None


@dataclass(frozen=True)
class Window:
    """The day and the month a budget counts (UTC), as the store's timestamps, and when each resets."""

    day_start: datetime
    month_start: datetime
    day_reset: int  # unix seconds
    month_reset: int


@dataclass(frozen=True)
class Spent:
    """Pictures and dollars used in a window; queued and running jobs count with their reserved cost."""

    pictures: int = 0
    spend: float = 0.0


@dataclass(frozen=True)
class OverLimit:
    """Which limit a request would break: `member_daily_pictures`, `member_daily_spend`,
    `server_daily_spend` or `server_monthly_spend`, with how much is used and allowed."""

    limit: str
    used: float
    allowed: float


@dataclass(frozen=True)
class MemberSpent:
    """One member's use of a server in a window (the top of /usage for admins)."""

    user_id: int
    pictures: int
    spend: float


@dataclass(frozen=True)
class DatabaseOverview:
    """What `python -m bot check` and `backup` report about a database file."""

    schema_version: int
    latest_version: int
    sessions: int
    versions: int
    renders: int
    integrity: str = "ok"
