"""Changes to a server's settings (/settings), each checked before any is stored.

A change is checked against what the operator offers and what the model can do; once stored, the
store tells every cache of server rules (`bot.core.server_rules`), so it applies to the next command.
"""

from __future__ import annotations

from typing import Any

from bot.core.access import SESSION_ACCESS
from bot.core.errors import InvalidRequest
from bot.core.images import ImageOptions, ImageService, check_options
from bot.core.moderation import MODERATION_LEVELS
from bot.core.server_rules import ServerRules
from bot.models import ServerSettings
from bot.store import Store

LIMIT_SETTINGS = ("daily_pictures", "daily_spend", "server_daily_spend", "server_monthly_spend")


class SettingsChanges:
    def __init__(
        self, store: Store, rules: ServerRules, images: ImageService, *, allowed_models: tuple[str, ...]
    ) -> None:
        self._store = store
        self._rules = rules
        self._images = images
        self._allowed_models = allowed_models

    async def change(self, guild_id: int, changes: dict[str, Any]) -> ServerSettings:
        """Check each change against what the operator allows and the model can do, then store them all."""
        current = await self._rules.settings(guild_id)
        model = changes.get("image_model", current.image_model) or self._images.defaults.model
        if (
            "image_model" in changes
            and changes["image_model"] is not None
            and model not in self._allowed_models
        ):
            raise InvalidRequest(
                f"{model} is not one of the image models this bot offers: {', '.join(self._allowed_models)}."
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
        if "gallery" in changes and not isinstance(changes["gallery"], bool):
            raise InvalidRequest("The gallery is either on or off.")
        for limit in LIMIT_SETTINGS:
            if (changes.get(limit) or 0) < 0:
                raise InvalidRequest("A limit is a number from 0 (no limit) up.")
        return await self._store.change_server_settings(guild_id, changes)

    async def set_role_limit(self, guild_id: int, role_id: int, daily_pictures: int | None) -> None:
        """Give a role its own daily picture limit (0: no limit), or (None) take it away."""
        if daily_pictures is not None and daily_pictures < 0:
            raise InvalidRequest("A role's daily pictures is a number from 0 (no limit) up.")
        await self._store.set_role_limit(guild_id, role_id, daily_pictures)
