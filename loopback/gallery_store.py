"""An in-memory gallery store: what `bot.web.GallerySource` asks for, kept in dicts, for fast page tests.

It follows the rules the real store keeps (`bot/core/gallery.py`): a server's link shows that server's
pictures in the scope's channels while its gallery is on; a link made in a DM shows the member's own
pictures from DMs and from servers whose gallery is on; newest first, `before` an id, every word of
`search` in the prompt (any case), `only_user` the link's member's own.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from PIL import Image

from bot.core.gallery import PAGE_SIZE, GalleryItem, GalleryScope, LinkClaims, new_scope_id, sign_link

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def webp(color: tuple[int, int, int] = (200, 80, 40), size: tuple[int, int] = (64, 64)) -> bytes:
    """A small real WebP picture of one colour."""
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="WEBP")
    return out.getvalue()


@dataclass
class MemoryGallery:
    scopes: dict[bytes, GalleryScope] = field(default_factory=dict)
    enabled: set[int] = field(default_factory=set)
    items: dict[int, GalleryItem] = field(default_factory=dict)
    pictures: dict[int, bytes] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- what a test sets up ----------------------------------------------------------------------

    def add(
        self,
        prompt: str,
        *,
        guild_id: int | None = 1,
        channel_id: int = 10,
        owner_id: int = 100,
        owner_name: str = "ada",
        picture: bytes = b"RIFF\x00\x00\x00\x00WEBP",
        model: str = "gpt-image-2",
        size: str = "1024x1024",
    ) -> GalleryItem:
        item_id = next(self._ids)
        item = GalleryItem(
            id=item_id,
            guild_id=guild_id,
            channel_id=channel_id,
            message_id=900_000 + item_id,
            owner_id=owner_id,
            owner_name=owner_name,
            prompt=prompt,
            model=model,
            size=size,
            created_at=START + timedelta(minutes=item_id),
            width=1024,
            height=1024,
        )
        self.items[item_id] = item
        self.pictures[item_id] = picture
        return item

    def remove(self, item_id: int) -> None:
        self.items.pop(item_id, None)
        self.pictures.pop(item_id, None)

    def link(
        self,
        secret: str,
        *,
        user_id: int = 100,
        guild_id: int | None = 1,
        channel_ids: frozenset[int] = frozenset({10}),
        expires: int = 4_000_000_000,
    ) -> str:
        """A signed token for a new scope kept here (what `/gallery` hands out)."""
        scope = GalleryScope(new_scope_id(), user_id, guild_id, channel_ids, expires)
        self.scopes[scope.scope_id] = scope
        return sign_link(LinkClaims(scope.scope_id, user_id, guild_id, expires), secret)

    # -- GallerySource -----------------------------------------------------------------------------

    async def gallery_scope(self, scope_id: bytes, *, now: datetime | None = None) -> GalleryScope | None:
        self.calls.append("scope")
        scope = self.scopes.get(scope_id)
        if scope is None or (now is not None and scope.expires <= now.timestamp()):
            return None
        return scope

    async def gallery_on(self, guild_id: int) -> bool:
        self.calls.append("on")
        return guild_id in self.enabled

    async def gallery_page(
        self,
        scope: GalleryScope,
        *,
        before: int | None = None,
        search: str = "",
        only_user: bool = False,
        limit: int = PAGE_SIZE,
    ) -> list[GalleryItem]:
        self.calls.append("page")
        words = search.casefold().split()
        found = [
            item
            for item in sorted(self.items.values(), key=lambda item: item.id, reverse=True)
            if self._in_scope(scope, item)
            and (before is None or item.id < before)
            and (not only_user or item.owner_id == scope.user_id)
            and all(word in item.prompt.casefold() for word in words)
        ]
        return found[:limit]

    async def gallery_item(self, scope: GalleryScope, picture_id: int) -> GalleryItem | None:
        self.calls.append("item")
        item = self.items.get(picture_id)
        return item if item is not None and self._in_scope(scope, item) else None

    async def gallery_image(self, scope: GalleryScope, picture_id: int) -> bytes | None:
        self.calls.append("image")
        item = self.items.get(picture_id)
        return self.pictures.get(picture_id) if item is not None and self._in_scope(scope, item) else None

    def _in_scope(self, scope: GalleryScope, item: GalleryItem) -> bool:
        if scope.guild_id is not None:
            return item.guild_id == scope.guild_id and item.channel_id in scope.channel_ids
        return item.owner_id == scope.user_id and (item.guild_id is None or item.guild_id in self.enabled)
