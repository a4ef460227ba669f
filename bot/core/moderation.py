"""Moderation: what a member asks for is checked, at the level their server chose, before anything is spent.

`off` sends nothing to be checked and asks the image API for its most lenient filter; `standard`
refuses what the moderation endpoint flags; `strict` also refuses what merely scores high, and its
audit report quotes the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.core.ai import InputImage, OpenAIService
from bot.core.errors import MuralError
from bot.core.server_rules import ServerRules
from bot.models import ServerSettings

MODERATION_LEVELS = ("off", "standard", "strict")
DEFAULT_MODERATION = "standard"
# At `strict`, a category scoring at least this much counts even when the endpoint did not flag it.
STRICT_THRESHOLD = 0.2


class Flagged(MuralError):
    code = "E-FLAGGED"


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


def image_api_moderation(settings: ServerSettings) -> str:
    """The image API's own filter: its standard one unless the server switched moderation off."""
    return "low" if settings.moderation == "off" else "auto"


class Moderator:
    def __init__(self, rules: ServerRules, ai: OpenAIService) -> None:
        self._rules = rules
        self._ai = ai
        # Told of every request moderation stops (the admin cog writes it to the audit channel).
        self.on_flagged: FlagListener | None = None

    @property
    def available(self) -> bool:
        """False once the OpenAI-compatible server turned out to have no moderation endpoint."""
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
        settings = await self._rules.settings(guild_id)
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
