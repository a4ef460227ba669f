"""The in-memory gallery store keeps the real store's rules (so page tests against it mean something)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.gallery import GalleryScope
from loopback.gallery_store import MemoryGallery, webp

SECRET = "m" * 40


def scope_of(gallery: MemoryGallery, **options: Any) -> GalleryScope:
    gallery.link(SECRET, **options)
    return list(gallery.scopes.values())[-1]


@pytest.mark.asyncio
async def test_a_servers_scope_shows_its_channels_while_its_gallery_is_on() -> None:
    gallery = MemoryGallery(enabled={1})
    gallery.add("in", channel_id=10)
    gallery.add("other channel", channel_id=11)
    gallery.add("other server", guild_id=2, channel_id=10)
    scope = scope_of(gallery, channel_ids=frozenset({10}))
    assert [item.prompt for item in await gallery.gallery_page(scope)] == ["in"]


@pytest.mark.asyncio
async def test_a_dm_scope_shows_the_members_own_from_dms_and_servers_that_are_on() -> None:
    gallery = MemoryGallery(enabled={1})
    gallery.add("dm", guild_id=None, owner_id=100)
    gallery.add("on", guild_id=1, owner_id=100)
    gallery.add("off", guild_id=2, owner_id=100)
    gallery.add("someone else's", guild_id=None, owner_id=200)
    scope = scope_of(gallery, guild_id=None, user_id=100)
    assert [item.prompt for item in await gallery.gallery_page(scope)] == ["on", "dm"]


@pytest.mark.asyncio
async def test_pages_go_newest_first_below_before_with_every_search_word_and_only_mine() -> None:
    gallery = MemoryGallery(enabled={1})
    for prompt, owner in (("Red fox", 100), ("red barn", 100), ("fox RED", 200), ("red fox cub", 100)):
        gallery.add(prompt, owner_id=owner)
    scope = scope_of(gallery, user_id=100)
    assert [i.id for i in await gallery.gallery_page(scope, search="fox red")] == [4, 3, 1]
    assert [i.id for i in await gallery.gallery_page(scope, search="fox red", before=4, limit=1)] == [3]
    assert [i.id for i in await gallery.gallery_page(scope, search="fox", only_user=True)] == [4, 1]


@pytest.mark.asyncio
async def test_an_item_and_its_image_only_within_the_scope() -> None:
    gallery = MemoryGallery(enabled={1})
    shown = gallery.add("x", channel_id=10, picture=webp())
    hidden = gallery.add("y", channel_id=11)
    scope = scope_of(gallery, channel_ids=frozenset({10}))
    assert await gallery.gallery_item(scope, shown.id) == shown
    assert (await gallery.gallery_image(scope, shown.id) or b"")[8:12] == b"WEBP"
    assert await gallery.gallery_item(scope, hidden.id) is None
    assert await gallery.gallery_image(scope, hidden.id) is None
