"""What each server allows: its own settings over the operator's defaults, and who may do what.

Environment values are the defaults; a server's settings (/settings) override them; a command's
options override both, within what the server allows. Every decision here is made before anything
is spent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.core.ai import InputImage, OpenAIService
from bot.core.budgets import BudgetExceeded, UsageReport, limits_for, window_at
from bot.core.errors import InvalidRequest, MuralError, NotAllowed
from bot.core.images import (
    QUALITY_CHOICES,
    ImageOptions,
    ImageService,
    capabilities_for,
    check_options,
    quality_choices,
    size_problem,
)
from bot.models import Limits, ServerSettings, Session
from bot.store import Store

log = logging.getLogger(__name__)

SESSION_ACCESS = {"owner": "the session's owner", "thread": "anyone in the thread"}
MODERATION_LEVELS = ("off", "standard", "strict")
DEFAULT_ACCESS = "owner"
DEFAULT_MODERATION = "standard"


class MissingRole(NotAllowed):
    code = "E-ROLE"


class Flagged(MuralError):
    code = "E-FLAGGED"


# At `strict`, a category scoring at least this much counts even when the endpoint did not flag it.
STRICT_THRESHOLD = 0.2


@dataclass(frozen=True)
class FlagReport:
    """A request moderation stopped, for the server's audit channel (the text only at `strict`)."""

    guild_id: int
    user_id: int
    channel_id: int | None
    categories: tuple[str, ...]
    level: str
    text: str


FlagListener = Callable[[FlagReport], Awaitable[None]]


# How long a server's settings read from the store are used before reading them again.
RULES_FRESH_FOR = 30.0


@dataclass(frozen=True)
class _ServerRules:
    settings: ServerSettings
    role_limits: Mapping[int, int]
    read_at: float


@dataclass(frozen=True)
class Place:
    """Where a member acts: the server (None in a DM), the channel, and their role ids there."""

    guild_id: int | None
    channel_id: int | None
    role_ids: frozenset[int] = frozenset()


def _image_moderation(settings: ServerSettings) -> str:
    """The image API's own filter: its standard one unless the server switched moderation off."""
    return "low" if settings.moderation == "off" else "auto"


def check_owner(session: Session, user_id: int, what: str) -> None:
    """Only the member who started a session may act on it."""
    if user_id != session.owner_id:
        raise NotAllowed(
            f"Only <@{session.owner_id}>, who started this prompt, can {what}. "
            "Start your own with `/prompt` or `/imagine`."
        )


class Policy:
    def __init__(
        self,
        store: Store,
        images: ImageService,
        ai: OpenAIService,
        *,
        allowed_models: tuple[str, ...],
        limits: Limits | None = None,
    ) -> None:
        self._store = store
        self._images = images
        self._ai = ai
        self.allowed_models = allowed_models
        # The operator's budgets, every server's defaults; none in narrow tests.
        self.operator_limits = limits or Limits()
        self._rules: dict[int, _ServerRules | None] = {}  # None: changed here, to be read again
        self._all_read_at: float | None = None
        self._reading: dict[int, asyncio.Future[_ServerRules]] = {}
        self._changes: dict[int, int] = {}  # per server, how many changes were made here
        # Told of every request moderation stops (the admin cog writes it to the audit channel).
        self.on_flagged: FlagListener | None = None

    @property
    def moderation_available(self) -> bool:
        return self._ai.moderation_available

    async def screen(
        self,
        guild_id: int | None,
        *,
        user_id: int,
        channel_id: int | None,
        texts: Sequence[str] = (),
        image: InputImage | None = None,
    ) -> None:
        """Check what a member asks for with the moderation endpoint before anything is spent on it."""
        settings = await self.settings(guild_id)
        level = settings.moderation or DEFAULT_MODERATION
        if level == "off":
            return
        verdict = await self._ai.moderate(texts, image)
        if verdict is None:
            return
        categories = verdict.categories
        if level == "strict" and not verdict.flagged:
            categories = tuple(
                sorted(name for name, score in verdict.scores.items() if score >= STRICT_THRESHOLD)
            )
        if not verdict.flagged and not categories:
            return
        if self.on_flagged is not None and guild_id is not None:
            report = FlagReport(guild_id, user_id, channel_id, categories, level, "\n".join(texts))
            await self.on_flagged(report)
        raise Flagged(
            f"moderation flagged a request ({', '.join(categories)})",
            user_message=(
                "I can't make this one: it looks like it breaks the content rules here "
                f"({', '.join(name.replace('/', ' / ') for name in categories)}). Nothing was drawn or charged; "
                "try describing it differently."
            ),
        )

    async def settings(self, guild_id: int | None) -> ServerSettings:
        if guild_id is None:
            return ServerSettings(guild_id=0)
        return (await self._server(guild_id)).settings

    async def _server(self, guild_id: int) -> _ServerRules:
        """A server's settings and role limits, as last read from the store.

        They are consulted before every command is acknowledged, where a read is a round trip through
        a busy event loop; so every server's are read at start (`read_all_rules`), a command goes by
        what was read, and what is older than `RULES_FRESH_FOR` seconds is read again behind it. A
        change made here applies to the very next command; one made by another process sharing the
        database, within about that time."""
        if guild_id in self._rules:
            rules = self._rules[guild_id]
        elif self._all_read_at is not None:
            # Nothing stored for this server when all were read: the defaults.
            rules = _ServerRules(ServerSettings(guild_id=guild_id), {}, self._all_read_at)
            self._rules[guild_id] = rules
        else:
            rules = None
        if rules is None:
            return await asyncio.shield(self._read_soon(guild_id))
        if time.monotonic() - rules.read_at > RULES_FRESH_FOR:
            self._read_soon(guild_id)
        return rules

    async def read_all_rules(self) -> None:
        """Every server's settings and role limits, read once at start."""
        read_at = time.monotonic()
        settings, role_limits = await self._store.all_server_rules()
        for guild_id, stored in settings.items():
            self._rules[guild_id] = _ServerRules(stored, role_limits.get(guild_id, {}), read_at)
        for guild_id, roles in role_limits.items():
            if guild_id not in settings:
                self._rules[guild_id] = _ServerRules(ServerSettings(guild_id=guild_id), roles, read_at)
        self._all_read_at = read_at

    def _read_soon(self, guild_id: int) -> asyncio.Future[_ServerRules]:
        """One read of a server's rules, however many commands ask meanwhile."""
        reading = self._reading.get(guild_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read_rules(guild_id))
            self._reading[guild_id] = reading
            reading.add_done_callback(lambda done: self._read_done(guild_id, done))
        return reading

    def _read_done(self, guild_id: int, reading: asyncio.Future[_ServerRules]) -> None:
        if self._reading.get(guild_id) is reading:
            del self._reading[guild_id]
        if not reading.cancelled() and (error := reading.exception()) is not None:
            log.warning("Could not read the settings of server %d: %s", guild_id, error)

    async def _read_rules(self, guild_id: int) -> _ServerRules:
        read_at, changes = time.monotonic(), self._changes.get(guild_id, 0)
        settings = await self._store.server_settings(guild_id)
        rules = _ServerRules(settings, await self._store.role_limits(guild_id), read_at)
        if self._changes.get(guild_id, 0) == changes:  # not read from before a change made meanwhile
            self._rules[guild_id] = rules
        return rules

    def _forget_rules(self, guild_id: int) -> None:
        """A change made here applies to the very next command."""
        self._changes[guild_id] = self._changes.get(guild_id, 0) + 1
        self._rules[guild_id] = None
        self._reading.pop(guild_id, None)

    # -- who may -----------------------------------------------------------------------------

    async def check_may_use(self, place: Place) -> ServerSettings:
        """Refuse a member without the role a server requires for Mural."""
        settings = await self.settings(place.guild_id)
        if settings.required_role_id is not None and settings.required_role_id not in place.role_ids:
            raise MissingRole(
                f"This server lets members with the <@&{settings.required_role_id}> role use Mural."
            )
        return settings

    async def check_may_act(self, session: Session, user_id: int, place: Place, what: str) -> None:
        """The owner always; anyone in the session's thread when the server says so."""
        if user_id == session.owner_id:
            return
        settings = await self.settings(session.guild_id)
        shared = (settings.session_access or DEFAULT_ACCESS) == "thread"
        if shared and session.thread_id is not None and place.channel_id == session.thread_id:
            return
        check_owner(session, user_id, what)

    # -- budgets ---------------------------------------------------------------------------------

    async def limits(self, place: Place) -> Limits:
        """A member's limits where they act: the operator's, the server's, their roles'."""
        if place.guild_id is None:
            return limits_for(self.operator_limits, ServerSettings(guild_id=0), {}, place.role_ids)
        rules = await self._server(place.guild_id)
        return limits_for(self.operator_limits, rules.settings, rules.role_limits, place.role_ids)

    async def check_budget(
        self, place: Place, user_id: int, *, pictures: int = 0, cost: float = 0.0, quick: bool = False
    ) -> None:
        """Refuse, before anything is spent, what would go over a limit (a job's own reservation is
        checked again, atomically, when it is queued). `quick` before a command is acknowledged: what
        this process counted as well within passes at once, and the paid call checks exactly."""
        window = window_at()
        over = await self._store.check_limits(
            await self.limits(place),
            window,
            guild_id=place.guild_id,
            user_id=user_id,
            pictures=pictures,
            cost=cost,
            quick=quick,
        )
        if over is not None:
            raise BudgetExceeded(over, window)

    async def usage(self, place: Place, user_id: int, *, whole_server: bool) -> UsageReport:
        """A member's pictures and spend today and this month; with `whole_server`, the server's too."""
        window = window_at()
        store = self._store
        mine_today = await store.spent(window.day_start, guild_id=place.guild_id, user_id=user_id)
        mine_month = await store.spent(window.month_start, guild_id=place.guild_id, user_id=user_id)
        report = UsageReport(await self.limits(place), window, mine_today, mine_month)
        if not whole_server or place.guild_id is None:
            return report
        return replace(
            report,
            server_today=await store.spent(window.day_start, guild_id=place.guild_id, user_id=None),
            server_month=await store.spent(window.month_start, guild_id=place.guild_id, user_id=None),
            top_members=tuple(await store.top_members(place.guild_id, window.month_start)),
        )

    async def role_limits(self, guild_id: int) -> dict[int, int]:
        return dict((await self._server(guild_id)).role_limits)

    async def set_role_limit(self, guild_id: int, role_id: int, daily_pictures: int | None) -> None:
        if daily_pictures is not None and daily_pictures < 0:
            raise InvalidRequest("A role's daily pictures is a number from 0 (no limit) up.")
        await self._store.set_role_limit(guild_id, role_id, daily_pictures)
        self._forget_rules(guild_id)

    # -- what renders use ----------------------------------------------------------------------

    def defaults_for(self, settings: ServerSettings) -> ImageOptions:
        """The server's model, size and quality, each falling back to the operator's."""
        base = self._images.defaults
        model = settings.image_model if settings.image_model in self.allowed_models else base.model
        size = settings.image_size or base.size
        quality = settings.image_quality or base.quality
        if size_problem(capabilities_for(model), size) is not None:
            size = capabilities_for(model).sizes[0]
        if quality not in quality_choices(capabilities_for(model)):
            quality = (
                base.quality
                if base.quality in quality_choices(capabilities_for(model))
                else QUALITY_CHOICES[1]
            )
        return ImageOptions(model=model, size=size, quality=quality)

    async def image_options(
        self,
        guild_id: int | None,
        *,
        size: str | None = None,
        quality: str | None = None,
        count: int = 1,
        aspect: str | None = None,
    ) -> ImageOptions:
        """A render's options: the command's over the server's over the operator's, checked for the model."""
        settings = await self.settings(guild_id)
        defaults = self.defaults_for(settings)
        chosen = self._images.options(
            model=defaults.model,
            size=size or (None if aspect else defaults.size),
            quality=quality or defaults.quality,
            count=count,
            aspect=aspect,
        )
        return replace(chosen, moderation=_image_moderation(settings))

    async def same_options(
        self, guild_id: int | None, *, model: str, size: str, quality: str, count: int = 1
    ) -> ImageOptions:
        """Options of an earlier render (Reroll, an edit of its picture, a restart), under today's moderation."""
        chosen = self._images.options(model=model, size=size, quality=quality, count=count)
        return replace(chosen, moderation=_image_moderation(await self.settings(guild_id)))

    # -- changing settings ---------------------------------------------------------------------

    async def change(self, guild_id: int, changes: dict[str, Any]) -> ServerSettings:
        """Check each change against what the operator allows and the model can do, then store them all."""
        current = await self.settings(guild_id)
        model = changes.get("image_model", current.image_model) or self._images.defaults.model
        if (
            "image_model" in changes
            and changes["image_model"] is not None
            and model not in self.allowed_models
        ):
            raise InvalidRequest(
                f"{model} is not one of the image models this bot offers: {', '.join(self.allowed_models)}."
            )
        size = changes.get("image_size", current.image_size)
        quality = changes.get("image_quality", current.image_quality)
        check_options(
            ImageOptions(model=model, size=size or self._images.defaults.size, quality=quality or "auto")
        )
        if changes.get("session_access") not in (None, *SESSION_ACCESS):
            raise InvalidRequest(f"Who may refine is one of: {', '.join(SESSION_ACCESS)}.")
        if changes.get("moderation") not in (None, *MODERATION_LEVELS):
            raise InvalidRequest(f"Moderation is one of: {', '.join(MODERATION_LEVELS)}.")
        for limit in ("daily_pictures", "daily_spend", "server_daily_spend", "server_monthly_spend"):
            if (changes.get(limit) or 0) < 0:
                raise InvalidRequest("A limit is a number from 0 (no limit) up.")
        changed = await self._store.change_server_settings(guild_id, changes)
        self._forget_rules(guild_id)
        return changed
