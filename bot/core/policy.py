"""What each server allows: its own settings over the operator's defaults, and who may do what.

Environment values are the defaults; a server's settings (/settings) override them; a command's
options override both, within what the server allows. Every decision here is made before anything
is spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.errors import InvalidRequest, NotAllowed
from bot.core.images import (
    QUALITY_CHOICES,
    ImageOptions,
    ImageService,
    capabilities_for,
    check_options,
    quality_choices,
    size_problem,
)
from bot.models import ServerSettings, Session
from bot.store import Store

SESSION_ACCESS = {"owner": "the session's owner", "thread": "anyone in the thread"}
MODERATION_LEVELS = ("off", "standard", "strict")
DEFAULT_ACCESS = "owner"
DEFAULT_MODERATION = "standard"


class MissingRole(NotAllowed):
    code = "E-ROLE"


@dataclass(frozen=True)
class Place:
    """Where a member acts: the server (None in a DM), the channel, and their role ids there."""

    guild_id: int | None
    channel_id: int | None
    role_ids: frozenset[int] = frozenset()


class Policy:
    def __init__(self, store: Store, images: ImageService, *, allowed_models: tuple[str, ...]) -> None:
        self._store = store
        self._images = images
        self.allowed_models = allowed_models

    async def settings(self, guild_id: int | None) -> ServerSettings:
        if guild_id is None:
            return ServerSettings(guild_id=0)
        return await self._store.server_settings(guild_id)

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
        raise NotAllowed(
            f"Only <@{session.owner_id}>, who started this prompt, can {what}. "
            "Start your own with `/prompt` or `/imagine`."
        )

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
        defaults = self.defaults_for(await self.settings(guild_id))
        return self._images.options(
            model=defaults.model,
            size=size or (None if aspect else defaults.size),
            quality=quality or defaults.quality,
            count=count,
            aspect=aspect,
        )

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
        return await self._store.change_server_settings(guild_id, changes)
