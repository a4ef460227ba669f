"""The gallery's store, on both backends: pictures kept and forgotten, and read only within what a link may show.

Why: the store decides, in SQL, what a link shows; a mistake here puts a private channel's picture, or a
server whose gallery is off, on a web page. Each rule of `bot.store.gallery` has its test.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.gallery import PAGE_SIZE, GalleryScope, KeptPicture, new_scope_id
from bot.store import PostgresStore, SQLiteStore, Store
from tests.postgres import stored_rows

pytestmark = pytest.mark.asyncio

GUILD, OTHER_GUILD, FOREIGN_GUILD = 100, 200, 300
GENERAL, PRIVATE, OTHER_GENERAL = 1000, 1001, 2000
PUBLIC_THREAD, PRIVATE_THREAD = 1100, 1101
ALICE, BOB = 1, 2
_renders = itertools.count(1)
_messages = itertools.count(50_000)


async def keep(store: Store, **fields: object) -> tuple[int, KeptPicture]:
    """Keep one picture, in the first server's general channel by Alice unless told otherwise."""
    defaults: dict[str, object] = dict(
        render_id=next(_renders),
        picture_index=0,
        guild_id=GUILD,
        in_server=True,
        channel_id=GENERAL,
        parent_id=None,
        private_thread=False,
        message_id=next(_messages),
        owner_id=ALICE,
        owner_name="Alice",
        prompt="A red fox on a snowy hill",
        model="gpt-image-2",
        size="1024x1024",
        width=1024,
        height=1024,
        webp=b"RIFF....WEBPVP8 fox",
    )
    picture = KeptPicture(**{**defaults, **fields})  # type: ignore[arg-type]
    return await store.keep_gallery_picture(picture), picture


def scope(
    store: Store, *, user: int = ALICE, guild: int | None = GUILD, channels: tuple[int, ...] = (GENERAL,)
) -> GalleryScope:
    return GalleryScope(new_scope_id(), user, guild, frozenset(channels), int(time.time()) + 3600)


async def saved(store: Store, **kwargs: object) -> GalleryScope:
    made = scope(store, **kwargs)  # type: ignore[arg-type]
    await store.save_gallery_scope(made)
    return made


async def ids(store: Store, shown: GalleryScope, **kwargs: object) -> list[int]:
    return [item.id for item in await store.gallery_page(shown, **kwargs)]  # type: ignore[arg-type]


async def gallery_on(store: Store, *guilds: int) -> None:
    for guild in guilds:
        await store.change_server_settings(guild, {"gallery": True})


async def test_a_page_is_newest_first_and_the_next_starts_before_its_last(any_store: Store) -> None:
    await gallery_on(any_store, GUILD)
    kept = [(await keep(any_store))[0] for _ in range(PAGE_SIZE + 5)]
    shown = await saved(any_store)
    first = await ids(any_store, shown)
    assert first == kept[::-1][:PAGE_SIZE]
    assert await ids(any_store, shown, before=first[-1]) == kept[::-1][PAGE_SIZE:]
    assert len(await ids(any_store, shown, limit=PAGE_SIZE + 1)) == PAGE_SIZE + 1


async def test_an_item_carries_what_the_page_shows(any_store: Store) -> None:
    await gallery_on(any_store, GUILD)
    picture_id, picture = await keep(any_store, owner_name="Ålice", size="1536x1024", width=1024, height=683)
    item = await any_store.gallery_item(await saved(any_store), picture_id)
    assert item is not None
    assert (item.guild_id, item.channel_id, item.message_id, item.owner_id, item.owner_name) == (
        GUILD,
        GENERAL,
        picture.message_id,
        ALICE,
        "Ålice",
    )
    assert (item.prompt, item.model, item.size, item.width, item.height) == (
        picture.prompt,
        "gpt-image-2",
        "1536x1024",
        1024,
        683,
    )
    assert item.created_at.tzinfo is not None
    assert abs(item.created_at - datetime.now(UTC)) < timedelta(minutes=1)


async def test_search_finds_every_word_in_any_case_and_takes_wildcards_literally(any_store: Store) -> None:
    await gallery_on(any_store, GUILD)
    fox, _ = await keep(any_store, prompt="A RED Fox on a snowy hill")
    cafe, _ = await keep(any_store, prompt="Ein CAFÉ in Straße, 100% cosy")
    await keep(any_store, prompt="A grey wolf_cub at night")
    shown = await saved(any_store)
    assert await ids(any_store, shown, search="fox red") == [fox]
    assert await ids(any_store, shown, search="  café  strasse ") == [cafe]
    assert await ids(any_store, shown, search="100%") == [cafe]
    assert await ids(any_store, shown, search="%") == [cafe]
    assert await ids(any_store, shown, search="f_x") == []
    assert await ids(any_store, shown, search="fox wolf") == []


async def test_only_mine_shows_the_links_member_alone(any_store: Store) -> None:
    await gallery_on(any_store, GUILD)
    mine, _ = await keep(any_store, owner_id=ALICE)
    await keep(any_store, owner_id=BOB, owner_name="Bob")
    shown = await saved(any_store)
    assert len(await ids(any_store, shown)) == 2
    assert await ids(any_store, shown, only_user=True) == [mine]


async def test_a_server_link_shows_its_channels_public_threads_and_listed_private_threads_only(
    any_store: Store,
) -> None:
    await gallery_on(any_store, GUILD, OTHER_GUILD)
    general, _ = await keep(any_store)
    await keep(any_store, channel_id=PRIVATE)
    public_thread, _ = await keep(any_store, channel_id=PUBLIC_THREAD, parent_id=GENERAL)
    private_thread, _ = await keep(
        any_store, channel_id=PRIVATE_THREAD, parent_id=GENERAL, private_thread=True
    )
    await keep(any_store, channel_id=1200, parent_id=PRIVATE)  # a public thread of the private channel
    await keep(any_store, guild_id=OTHER_GUILD, channel_id=OTHER_GENERAL)
    await keep(any_store, in_server=False)  # a user install's: its owner's alone

    outside_private_thread = await saved(any_store, channels=(GENERAL,))
    assert await ids(any_store, outside_private_thread) == [public_thread, general]
    assert await any_store.gallery_item(outside_private_thread, private_thread) is None
    assert await any_store.gallery_image(outside_private_thread, private_thread) is None

    in_private_thread = await saved(any_store, channels=(GENERAL, PRIVATE_THREAD))
    assert await ids(any_store, in_private_thread) == [private_thread, public_thread, general]
    assert await any_store.gallery_image(in_private_thread, private_thread) == b"RIFF....WEBPVP8 fox"


async def test_turning_a_servers_gallery_off_hides_it_from_the_next_read(any_store: Store) -> None:
    picture_id, _ = await keep(any_store)
    shown = await saved(any_store)
    assert await ids(any_store, shown) == []
    assert not await any_store.gallery_on(GUILD)
    await gallery_on(any_store, GUILD)
    assert await any_store.gallery_on(GUILD)
    assert await ids(any_store, shown) == [picture_id]
    await any_store.change_server_settings(GUILD, {"gallery": False})
    assert await ids(any_store, shown) == []
    assert await any_store.gallery_item(shown, picture_id) is None
    assert await any_store.gallery_image(shown, picture_id) is None


async def test_a_dm_link_shows_the_members_own_from_dms_installs_and_servers_whose_gallery_is_on(
    any_store: Store,
) -> None:
    await gallery_on(any_store, GUILD)
    in_dm, _ = await keep(any_store, guild_id=None, in_server=False, channel_id=9000)
    installed, _ = await keep(any_store, guild_id=FOREIGN_GUILD, in_server=False, channel_id=9100)
    on_server, _ = await keep(any_store, channel_id=PRIVATE)
    await keep(any_store, guild_id=OTHER_GUILD, channel_id=OTHER_GENERAL)  # gallery off there
    await keep(any_store, owner_id=BOB, guild_id=None, in_server=False, channel_id=9200)
    own = await saved(any_store, guild=None, channels=())
    assert await ids(any_store, own) == [on_server, installed, in_dm]
    assert (
        await any_store.gallery_item(await saved(any_store, user=BOB, guild=None, channels=()), in_dm) is None
    )


async def test_deleted_messages_forget_their_pictures_and_bytes(any_store: Store) -> None:
    await gallery_on(any_store, GUILD)
    first, kept = await keep(any_store)
    second, _ = await keep(any_store, render_id=kept.render_id, picture_index=1, message_id=kept.message_id)
    third, other = await keep(any_store)
    fourth, last = await keep(any_store)
    shown = await saved(any_store)
    assert await any_store.forget_gallery_messages([kept.message_id]) == 2
    assert await ids(any_store, shown) == [fourth, third]
    assert await any_store.forget_gallery_messages([other.message_id, last.message_id, 12345]) == 2
    assert await ids(any_store, shown) == []
    assert await any_store.forget_gallery_messages([]) == 0
    assert await stored_rows(any_store, "SELECT picture_id FROM gallery_images") == []
    assert {first, second}.isdisjoint(await ids(any_store, shown))


async def test_the_same_picture_posted_again_moves_rather_than_doubles(any_store: Store) -> None:
    await gallery_on(any_store, GUILD)
    first, kept = await keep(any_store)
    again, _ = await keep(any_store, render_id=kept.render_id, message_id=777, channel_id=PRIVATE)
    assert again == first
    rows = await stored_rows(any_store, "SELECT message_id, channel_id FROM gallery_pictures")
    assert rows == [(777, PRIVATE)]


async def test_a_scope_is_read_back_until_it_expires(any_store: Store) -> None:
    made = dataclasses.replace(
        scope(any_store, channels=(GENERAL, PRIVATE_THREAD)), expires=int(time.time()) + 60
    )
    await any_store.save_gallery_scope(made)
    assert await any_store.gallery_scope(made.scope_id) == made
    later = datetime.fromtimestamp(made.expires, UTC)
    assert await any_store.gallery_scope(made.scope_id, now=later) is None
    assert await any_store.gallery_scope(new_scope_id()) is None
    own = await saved(any_store, guild=None, channels=())
    assert await any_store.gallery_scope(own.scope_id) == own


async def test_expired_scopes_are_cleared_when_a_new_one_is_saved(any_store: Store) -> None:
    old = dataclasses.replace(scope(any_store), expires=int(time.time()) - 10)
    await any_store.save_gallery_scope(old)
    await saved(any_store)
    kept = await stored_rows(any_store, "SELECT scope_id FROM gallery_scopes")
    assert [bytes(scope_id) for (scope_id,) in kept] != [old.scope_id] and len(kept) == 1
    assert await stored_rows(any_store, "SELECT COUNT(*) FROM gallery_scope_channels") == [(1,)]


async def test_the_private_threads_with_pictures_are_listed_with_their_channels(any_store: Store) -> None:
    await keep(any_store, channel_id=PRIVATE_THREAD, parent_id=GENERAL, private_thread=True)
    await keep(any_store, channel_id=PRIVATE_THREAD, parent_id=GENERAL, private_thread=True)
    await keep(any_store, channel_id=PUBLIC_THREAD, parent_id=GENERAL)
    await keep(any_store, guild_id=OTHER_GUILD, channel_id=2100, parent_id=OTHER_GENERAL, private_thread=True)
    assert await any_store.private_gallery_threads(GUILD) == [(PRIVATE_THREAD, GENERAL)]


async def test_the_secret_is_made_once_and_shared(any_store: Store) -> None:
    secret = await any_store.gallery_secret()
    assert len(secret) >= 32
    assert await any_store.gallery_secret() == secret


async def test_the_secret_survives_a_restart_and_is_the_same_for_two_stores(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":

        async def opened() -> Store:
            return await SQLiteStore.open(tmp_path / "mural.db")
    else:
        url = request.getfixturevalue("postgres_url")

        async def opened() -> Store:
            return await PostgresStore.open(url)

    first, second = await opened(), await opened()
    try:
        secrets = {await first.gallery_secret(), await second.gallery_secret()}
    finally:
        await first.close()
        await second.close()
    assert len(secrets) == 1
    again = await opened()
    try:
        assert await again.gallery_secret() in secrets
    finally:
        await again.close()


async def test_a_deleted_thread_or_channel_forgets_its_pictures(any_store: Store) -> None:
    await gallery_on(any_store, GUILD)
    kept, _ = await keep(any_store)
    await keep(any_store, channel_id=PUBLIC_THREAD, parent_id=GENERAL)
    in_private, _ = await keep(any_store, channel_id=PRIVATE)
    assert await any_store.forget_gallery_channel(PUBLIC_THREAD) == 1
    assert await any_store.forget_gallery_channel(GENERAL) == 1
    assert await ids(any_store, await saved(any_store, channels=(GENERAL, PRIVATE))) == [in_private]
    assert kept not in await ids(any_store, await saved(any_store, channels=(GENERAL, PRIVATE)))
