"""The gallery as the bot runs it: which posted pictures are kept (and their WebP copies), which are
forgotten, and the personal links `/gallery` hands out. Discord-free: the cog says where a picture was
posted and what a member may view; this decides and stores.

Kept only while the operator serves a gallery (GALLERY_PORT) and only where one can show the picture: a
server whose admins turned its gallery on (at the time of posting: a server that turns it on later
shows pictures from then on), a DM, a group DM or a user install (its owner's own gallery).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from PIL import Image

from bot.core.gallery import (
    KEPT_LONG_SIDE,
    GalleryScope,
    KeptPicture,
    LinkClaims,
    new_scope_id,
    sign_link,
)
from bot.core.server_rules import ServerRules
from bot.store import Store

log = logging.getLogger(__name__)

# WebP quality of the kept copies: visually close to the original at a tenth of a PNG's size or less;
# effort 2 of 6 encodes a 1024 px picture in a third of the time of the default 4 for a few % in size.
WEBP_QUALITY = 80
WEBP_METHOD = 2
# Messages forgotten lately, remembered so that a picture still being encoded when its message was deleted
# is forgotten too once it is stored.
_REMEMBERED_DELETIONS = 4096


@dataclass(frozen=True)
class PostedPictures:
    """A finished render's pictures as posted in one message, and where (see `KeptPicture` for the fields)."""

    render_id: int
    pictures: tuple[bytes, ...]  # as rendered: PNG, WebP or JPEG
    guild_id: int | None
    in_server: bool
    channel_id: int
    parent_id: int | None
    private_thread: bool
    message_id: int
    owner_id: int
    owner_name: str
    prompt: str
    model: str
    size: str


@dataclass(frozen=True)
class GalleryLink:
    url: str
    expires: int  # unix seconds


def kept_copy(data: bytes) -> tuple[bytes, int, int]:
    """A picture as the gallery keeps it: WebP, at most KEPT_LONG_SIDE px on its long side (never enlarged),
    with its width and height. CPU-bound: run it off the event loop."""
    with Image.open(io.BytesIO(data)) as opened:
        picture = opened.convert("RGBA" if _has_alpha(opened) else "RGB")
    picture.thumbnail((KEPT_LONG_SIDE, KEPT_LONG_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return out.getvalue(), picture.width, picture.height


def _has_alpha(picture: Image.Image) -> bool:
    return picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info)


class GalleryService:
    """Keeps, forgets and links; `enabled` only while the operator serves a gallery (GALLERY_PORT)."""

    def __init__(
        self,
        store: Store,
        rules: ServerRules,
        *,
        base_url: str | None,
        link_seconds: int,
        secret: str | None = None,
    ) -> None:
        self._store = store
        self._rules = rules
        self._base_url = base_url.rstrip("/") if base_url else None
        self._link_seconds = link_seconds
        self._secret = secret
        self._forgotten: OrderedDict[int, None] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._base_url is not None

    async def secret(self) -> str:
        """GALLERY_SECRET, or the one generated once and kept in the store (the same for every process)."""
        if self._secret is None:
            self._secret = await self._store.gallery_secret()
        return self._secret

    async def server_on(self, guild_id: int) -> bool:
        """Whether a server's admins turned its gallery on."""
        return (await self._rules.settings(guild_id)).gallery

    async def keeps(self, guild_id: int | None, *, in_server: bool) -> bool:
        """Whether a picture posted there is kept now."""
        if not self.enabled:
            return False
        if not in_server:
            return True  # a DM, a group DM or a user install: its owner's own gallery
        return guild_id is not None and await self.server_on(guild_id)

    async def keep(self, posted: PostedPictures) -> list[int]:
        """Keep a message's pictures where a gallery can show them; their gallery ids (none when not kept)."""
        if not await self.keeps(posted.guild_id, in_server=posted.in_server):
            return []
        kept: list[int] = []
        for index, data in enumerate(posted.pictures):
            webp, width, height = await asyncio.to_thread(kept_copy, data)
            kept.append(
                await self._store.keep_gallery_picture(
                    KeptPicture(
                        render_id=posted.render_id,
                        picture_index=index,
                        guild_id=posted.guild_id,
                        in_server=posted.in_server,
                        channel_id=posted.channel_id,
                        parent_id=posted.parent_id,
                        private_thread=posted.private_thread,
                        message_id=posted.message_id,
                        owner_id=posted.owner_id,
                        owner_name=posted.owner_name,
                        prompt=posted.prompt,
                        model=posted.model,
                        size=posted.size,
                        width=width,
                        height=height,
                        webp=webp,
                    )
                )
            )
        if posted.message_id in self._forgotten:
            # Deleted while its pictures were being encoded: the deletion wins.
            await self._store.forget_gallery_messages([posted.message_id])
            return []
        return kept

    async def forget(self, message_ids: Iterable[int]) -> int:
        """Forget the pictures of deleted messages; how many were kept."""
        ids = list(message_ids)
        for message_id in ids:
            self._forgotten[message_id] = None
        while len(self._forgotten) > _REMEMBERED_DELETIONS:
            self._forgotten.popitem(last=False)
        return await self._store.forget_gallery_messages(ids)

    async def forget_channel(self, channel_id: int) -> int:
        """Forget the pictures of a deleted channel or thread (a deleted channel's threads too)."""
        return await self._store.forget_gallery_channel(channel_id)

    async def private_threads(self, guild_id: int) -> list[tuple[int, int]]:
        """A server's private threads with kept pictures: (thread, its channel); the cog decides which of
        them a member may view."""
        return await self._store.private_gallery_threads(guild_id)

    async def link(
        self, *, user_id: int, guild_id: int | None, channel_ids: Collection[int], now: float | None = None
    ) -> GalleryLink:
        """A personal link: for a server, to the pictures in `channel_ids` (what the member may view now);
        without one (a DM), to the member's own pictures. Valid GALLERY_LINK_SECONDS."""
        if self._base_url is None:
            raise RuntimeError("no gallery is served (GALLERY_PORT is unset)")
        expires = int(now if now is not None else time.time()) + self._link_seconds
        scope = GalleryScope(new_scope_id(), user_id, guild_id, frozenset(channel_ids), expires)
        await self._store.save_gallery_scope(scope)
        token = sign_link(LinkClaims(scope.scope_id, user_id, guild_id, expires), await self.secret())
        return GalleryLink(f"{self._base_url}/g/{token}", expires)
