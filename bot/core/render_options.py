"""A render's options: the command's over the server's over the operator's, checked for the model.

Environment values are the defaults; a server's settings (/settings) override them; a command's
options override both, within what the server allows.
"""

from __future__ import annotations

from dataclasses import replace

from bot.core.images import (
    QUALITY_CHOICES,
    ImageOptions,
    ImageService,
    capabilities_for,
    quality_choices,
    size_problem,
)
from bot.core.moderation import image_api_moderation
from bot.core.server_rules import ServerRules
from bot.models import ServerSettings


class RenderOptions:
    def __init__(self, rules: ServerRules, images: ImageService, *, allowed_models: tuple[str, ...]) -> None:
        self._rules = rules
        self._images = images
        # The image models the operator offers servers to choose from.
        self.allowed_models = allowed_models

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

    async def choose(
        self,
        guild_id: int | None,
        *,
        size: str | None = None,
        quality: str | None = None,
        count: int = 1,
        aspect: str | None = None,
    ) -> ImageOptions:
        """A new render's options: the command's over the server's over the operator's."""
        settings = await self._rules.settings(guild_id)
        defaults = self.defaults_for(settings)
        chosen = self._images.options(
            model=defaults.model,
            size=size or (None if aspect else defaults.size),
            quality=quality or defaults.quality,
            count=count,
            aspect=aspect,
        )
        return replace(chosen, moderation=image_api_moderation(settings))

    async def repeat(
        self, guild_id: int | None, *, model: str, size: str, quality: str, count: int = 1
    ) -> ImageOptions:
        """Options of an earlier render (Reroll, an edit of its picture, a restart), under today's moderation."""
        chosen = self._images.options(model=model, size=size, quality=quality, count=count)
        return replace(chosen, moderation=image_api_moderation(await self._rules.settings(guild_id)))
