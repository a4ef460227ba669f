"""The one interface to what Mural remembers: what the core, the UI and the cogs may ask of a store.

Both backends (`SQLiteStore`, `PostgresStore`) provide it; nothing outside `bot.store` names either, or
a driver. Times are aware UTC datetimes, money is dollars as floats, ids are ints.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any, Protocol

from bot.core.gallery import PAGE_SIZE, GalleryItem, GalleryScope, KeptPicture
from bot.models import (
    DatabaseOverview,
    Limits,
    MemberSpent,
    OverLimit,
    QueuedTurn,
    Reference,
    Refinement,
    Render,
    ServerSettings,
    Session,
    SessionSummary,
    Spent,
    Version,
    Window,
)

# Topics every process sharing the database is told about (PostgreSQL's NOTIFY; on SQLite, this process
# only): a server's settings changed (payload: its id; empty after a lost connection: all of them), and
# the render queue moved.
SETTINGS_TOPIC = "mural_settings"
JOBS_TOPIC = "mural_jobs"
# Use that counts against budgets, recorded by one process: "instance|guild|user|pictures|dollars".
USE_TOPIC = "mural_use"


class Store(Protocol):
    # "sqlite" or "postgresql"; `shared`: other processes may use the same database at once.
    dialect: str
    shared: bool

    # -- the database itself ------------------------------------------------------------------------

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers now."""
        ...

    async def check_reachable(self) -> None:
        """Raise StoreUnavailable, quickly, when the database is known to be away (nothing has succeeded
        since it failed) and still does not answer; costs nothing while all is well. Called before a
        member's command is answered, so that an outage is told privately."""
        ...

    async def overview(self) -> DatabaseOverview: ...

    def listen(self, topic: str, listener: Callable[[str], None]) -> None:
        """Call `listener(payload)` whenever `topic` is notified by any process sharing the database."""
        ...

    def add_settings_listener(self, listener: Callable[[int | None], None]) -> None:
        """Call `listener(guild_id)` whenever a server's settings or role limits change (any process)."""
        ...

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...

    async def safety_salt(self) -> str: ...

    async def identify_turn(self, bucket: int, *, spacing: float) -> None: ...

    # -- sessions, versions, refinements ------------------------------------------------------------

    async def create_session(
        self,
        *,
        guild_id: int | None,
        channel_id: int,
        owner_id: int,
        origin: str,
        idea: str,
        target: str,
        style: str | None,
        first_prompt: str,
        aspect: str | None = None,
        reference: Reference | None = None,
        chat_usage_id: int | None = None,
    ) -> tuple[Session, Version]: ...

    async def get_session(self, session_id: int) -> Session | None: ...

    async def session_for_thread(self, thread_id: int) -> Session | None: ...

    async def attach_thread(self, session_id: int, thread_id: int) -> None: ...

    async def reference_for(self, session_id: int) -> Reference | None: ...

    async def move_head_to_parent(self, session_id: int, number: int) -> Version | None: ...

    async def recent_sessions(self, owner_id: int, limit: int) -> list[SessionSummary]: ...

    async def version_for_message(self, message_id: int) -> Version | None: ...

    async def get_version(self, session_id: int, number: int) -> Version | None: ...

    async def lineage(self, session_id: int, number: int, limit: int) -> list[Version]: ...

    async def add_version(
        self,
        session_id: int,
        *,
        parent: int,
        prompt: str,
        instruction: str,
        author_id: int,
        refinement_id: int | None = None,
    ) -> Version: ...

    async def set_version_message(self, version_id: int, message_id: int) -> None: ...

    async def start_refinement(
        self,
        *,
        session_id: int,
        author_id: int,
        channel_id: int,
        instruction: str,
        held_by: str | None = None,
        lease_until: datetime | None = None,
    ) -> Refinement: ...

    async def fail_refinement(self, refinement_id: int) -> None: ...

    async def interrupt_pending_refinements(
        self, *, lapsed_before: datetime | None = None
    ) -> list[Refinement]: ...

    # -- render jobs ----------------------------------------------------------------------------------

    async def create_render(self, **job: Any) -> Render: ...

    async def reserve_render(self, *, limits: Limits, window: Window, **job: Any) -> Render | OverLimit: ...

    async def queued_render_order(self) -> list[QueuedTurn]: ...

    async def claim_next_render(
        self,
        candidates: Collection[int],
        *,
        holder: str | None = None,
        lease_until: datetime | None = None,
        concurrency: int | None = None,
        now: datetime | None = None,
    ) -> Render | None: ...

    async def cancel_render(self, render_id: int) -> bool: ...

    async def finish_render(
        self,
        render_id: int,
        *,
        revised_prompt: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cost_usd: float | None,
        cost_estimated: bool = False,
    ) -> None: ...

    async def fail_render(self, render_id: int, *, code: str, error: str) -> None: ...

    async def set_render_message(
        self, render_id: int, message_id: int, channel_id: int | None = None
    ) -> None: ...

    async def get_render(self, render_id: int) -> Render | None: ...

    async def render_for_message(self, message_id: int) -> Render | None: ...

    async def interrupt_running_renders(self, *, lapsed_before: datetime | None = None) -> list[Render]: ...

    async def queued_renders(self) -> list[Render]: ...

    async def adopt_queued_renders(
        self, holder: str, *, lease_until: datetime, lapsed_before: datetime | None = None
    ) -> list[Render]: ...

    async def renew_leases(self, holder: str, *, lease_until: datetime) -> None: ...

    async def release_queued_renders(self, holder: str) -> int: ...

    async def count_jobs(self) -> dict[str, int]: ...

    # -- usage and budgets ------------------------------------------------------------------------------

    async def record_chat_usage(
        self,
        *,
        session_id: int | None,
        guild_id: int | None,
        user_id: int,
        purpose: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        estimated: bool,
        cost_usd: float | None,
    ) -> int: ...

    async def check_limits(
        self,
        limits: Limits,
        window: Window,
        *,
        guild_id: int | None,
        user_id: int,
        pictures: int,
        cost: float,
        quick: bool = False,
    ) -> OverLimit | None: ...

    async def count_use_from_rows(self, window: Window) -> None: ...

    async def spent(self, since: datetime, *, guild_id: int | None, user_id: int | None) -> Spent: ...

    async def top_members(self, guild_id: int, since: datetime, limit: int = 5) -> list[MemberSpent]: ...

    async def servers_near_monthly_limit(
        self, since: datetime, default_limit: float | None, share: float
    ) -> int: ...

    # -- servers' settings ------------------------------------------------------------------------------

    async def server_settings(self, guild_id: int) -> ServerSettings: ...

    async def change_server_settings(self, guild_id: int, changes: dict[str, Any]) -> ServerSettings: ...

    async def all_server_rules(self) -> tuple[dict[int, ServerSettings], dict[int, dict[int, int]]]: ...

    async def role_limits(self, guild_id: int) -> dict[int, int]: ...

    async def set_role_limit(self, guild_id: int, role_id: int, daily_pictures: int | None) -> None: ...

    # -- the web gallery (see `bot.store.gallery` for what a scope may show) ------------------------------

    async def keep_gallery_picture(self, picture: KeptPicture) -> int: ...

    async def forget_gallery_messages(self, message_ids: Collection[int]) -> int: ...

    async def forget_gallery_channel(self, channel_id: int) -> int: ...

    async def private_gallery_threads(self, guild_id: int) -> list[tuple[int, int]]: ...

    async def gallery_page(
        self,
        scope: GalleryScope,
        *,
        before: int | None = None,
        search: str = "",
        only_user: bool = False,
        limit: int = PAGE_SIZE,
    ) -> list[GalleryItem]: ...

    async def gallery_item(self, scope: GalleryScope, picture_id: int) -> GalleryItem | None: ...

    async def gallery_image(self, scope: GalleryScope, picture_id: int) -> bytes | None: ...

    async def save_gallery_scope(self, scope: GalleryScope) -> None: ...

    async def gallery_scope(self, scope_id: bytes, *, now: datetime | None = None) -> GalleryScope | None: ...

    async def gallery_secret(self) -> str: ...

    async def gallery_on(self, guild_id: int) -> bool: ...
