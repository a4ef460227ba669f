"""The gallery's pages over HTTP (aiohttp's test client), against the in-memory gallery store."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from bot.core.errors import StoreUnavailable
from bot.core.gallery import PAGE_SIZE, LinkClaims, sign_link
from bot.web import GalleryServer, build_app, serve_gallery
from bot.web.pages import refused_page, shorten
from loopback.gallery_store import MemoryGallery

SECRET = "s" * 40
NOW = 1_800_000_000.0
SCRIPT_PROMPTS = [
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(1)</script>",
    '"><svg onload=alert(1)>',
]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gallery() -> MemoryGallery:
    store = MemoryGallery()
    store.enabled.add(1)
    return store


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def client(gallery: MemoryGallery, clock: Clock) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(gallery, secret=SECRET, clock=clock))) as test_client:
        yield test_client


async def listening(gallery: MemoryGallery, port: int = 0, **options: Any) -> GalleryServer:
    server = await serve_gallery(gallery, secret=SECRET, host="127.0.0.1", port=port, **options)
    assert server is not None
    return server


def link(gallery: MemoryGallery, **scope: Any) -> str:
    scope.setdefault("expires", int(NOW) + 3600)
    return "/g/" + gallery.link(SECRET, **scope)


async def page(client: TestClient[Any, Any], path: str, status: int = 200) -> str:
    response = await client.get(path)
    text = await response.text()
    assert response.status == status, text
    return text


def ids_on(text: str) -> list[int]:
    """The pictures a grid shows, in order."""
    return [int(found) for found in re.findall(r'<article class="card">\s*<a href="[^"]+/p/(\d+)"', text)]


# -- the grid ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_grid_shows_the_newest_first_a_page_at_a_time(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    for number in range(PAGE_SIZE + 5):
        gallery.add(f"picture {number}")
    grid = link(gallery)
    first = await page(client, grid)
    assert ids_on(first) == list(range(PAGE_SIZE + 5, 5, -1))
    more = re.search(r'<a id="more" href="\?([^"]+)">More</a>', first)
    assert more is not None and more.group(1) == "before=6"
    second = await page(client, f"{grid}?{more.group(1)}")
    assert ids_on(second) == [5, 4, 3, 2, 1]
    assert 'id="more"' not in second


@pytest.mark.asyncio
async def test_a_page_that_is_exactly_full_has_no_more_link(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    for number in range(PAGE_SIZE):
        gallery.add(f"picture {number}")
    assert 'id="more"' not in await page(client, link(gallery))


@pytest.mark.asyncio
async def test_each_picture_shows_its_short_prompt_maker_time_model_and_size(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    gallery.add(
        "a lighthouse at dusk " * 20, owner_name="Grace", model="gpt-image-2.5-flare", size="1536x1024"
    )
    text = await page(client, link(gallery))
    assert shorten("a lighthouse at dusk " * 20) in text
    assert "a lighthouse at dusk " * 20 not in text
    for shown in ("Grace", "2026-05-01 12:01 UTC", "gpt-image-2.5-flare", "1536x1024"):
        assert shown in text


@pytest.mark.asyncio
async def test_search_keeps_pictures_with_every_word_in_their_prompt(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    gallery.add("a red fox in snow")
    gallery.add("a red barn")
    gallery.add("a FOX, red as fire")
    text = await page(client, link(gallery) + "?q=fox+Red")
    assert ids_on(text) == [3, 1]
    assert 'value="fox Red"' in text


@pytest.mark.asyncio
async def test_the_more_link_keeps_the_search_and_the_switch(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    for number in range(PAGE_SIZE + 1):
        gallery.add(f"fox {number}")
    text = await page(client, link(gallery) + "?q=fox&mine=1")
    assert f'href="?before={2}&amp;q=fox&amp;mine=1"' in text


@pytest.mark.asyncio
async def test_only_mine_shows_the_links_member_s_pictures(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    gallery.add("mine", owner_id=100)
    gallery.add("theirs", owner_id=200)
    grid = link(gallery, user_id=100)
    assert ids_on(await page(client, grid)) == [2, 1]
    assert ids_on(await page(client, grid + "?mine=1")) == [1]


@pytest.mark.asyncio
async def test_nothing_to_show_says_so(client: TestClient[Any, Any], gallery: MemoryGallery) -> None:
    assert "No pictures here yet." in await page(client, link(gallery))
    assert "Nothing matches that search." in await page(client, link(gallery) + "?q=zebra")


@pytest.mark.asyncio
async def test_a_link_shows_only_its_scopes_channels(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    gallery.add("open", channel_id=10)
    secret = gallery.add("private", channel_id=11)
    gallery.add("another server", guild_id=2, channel_id=10)
    grid = link(gallery, channel_ids=frozenset({10}))
    assert ids_on(await page(client, grid)) == [1]
    await page(client, f"{grid}/p/{secret.id}", status=404)
    await page(client, f"{grid}/img/{secret.id}.webp", status=404)


@pytest.mark.asyncio
async def test_a_dm_link_shows_the_members_own_pictures_without_the_only_mine_switch(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    gallery.add("from a DM", guild_id=None)
    gallery.add("from a server that is on", guild_id=1)
    hidden = gallery.add("from a server that is off", guild_id=2)
    grid = link(gallery, guild_id=None, channel_ids=frozenset())
    text = await page(client, grid)
    assert ids_on(text) == [2, 1]
    assert 'name="mine"' not in text  # every picture is the member's own already
    await page(client, f"{grid}/p/{hidden.id}", status=404)
    await page(client, f"{grid}/img/{hidden.id}.webp", status=404)


# -- one picture -----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_detail_shows_the_whole_prompt_and_the_discord_link(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    item = gallery.add("a long prompt " * 40, channel_id=10)
    text = await page(client, f"{link(gallery)}/p/{item.id}")
    assert ("a long prompt " * 40).strip() in text
    assert f'href="https://discord.com/channels/1/10/{item.message_id}"' in text
    assert 'id="copy"' in text


@pytest.mark.asyncio
async def test_the_picture_is_the_stores_webp(client: TestClient[Any, Any], gallery: MemoryGallery) -> None:
    item = gallery.add("x", picture=b"RIFF....WEBPVP8 data")
    response = await client.get(f"{link(gallery)}/img/{item.id}.webp")
    assert response.status == 200
    assert response.content_type == "image/webp"
    assert await response.read() == b"RIFF....WEBPVP8 data"


@pytest.mark.asyncio
async def test_a_browser_keeps_a_picture_but_asks_again_each_time(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    """While the picture is there: 304 without reading its bytes; once deleted: 404."""
    item = gallery.add("x")
    path = f"{link(gallery)}/img/{item.id}.webp"
    first = await client.get(path)
    assert first.headers["Cache-Control"] == "private, no-cache"
    tag = first.headers["ETag"]
    gallery.calls.clear()
    again = await client.get(path, headers={"If-None-Match": tag})
    assert again.status == 304 and await again.read() == b""
    assert "image" not in gallery.calls
    gallery.remove(item.id)
    assert (await client.get(path, headers={"If-None-Match": tag})).status == 404


@pytest.mark.asyncio
async def test_a_picture_deleted_from_the_store_is_gone(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    item = gallery.add("soon gone")
    grid = link(gallery)
    gallery.remove(item.id)
    assert ids_on(await page(client, grid)) == []
    await page(client, f"{grid}/p/{item.id}", status=404)
    await page(client, f"{grid}/img/{item.id}.webp", status=404)


# -- refusals ------------------------------------------------------------------------------------------


def _altered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


@pytest.mark.asyncio
@pytest.mark.parametrize("suffix", ["", "/p/1", "/img/1.webp"])
async def test_an_altered_link_is_refused(
    client: TestClient[Any, Any], gallery: MemoryGallery, suffix: str
) -> None:
    gallery.add("x")
    token = link(gallery).removeprefix("/g/")
    assert await page(client, f"/g/{_altered(token)}{suffix}", status=403) == refused_page()


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/g", "/g/", "/g//p/1", "/g/not-a-token", "/g/" + "A" * 500])
async def test_a_missing_or_malformed_link_is_refused(client: TestClient[Any, Any], path: str) -> None:
    text = await page(client, path, status=403)
    assert "403 Forbidden" in text


@pytest.mark.asyncio
async def test_an_expired_link_is_refused(
    client: TestClient[Any, Any], gallery: MemoryGallery, clock: Clock
) -> None:
    item = gallery.add("x")
    grid = link(gallery, expires=int(NOW) + 60)
    await page(client, grid)
    clock.now = NOW + 60
    for path in (grid, f"{grid}/p/{item.id}", f"{grid}/img/{item.id}.webp"):
        await page(client, path, status=403)


@pytest.mark.asyncio
async def test_a_link_signed_with_another_secret_is_refused(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    token = gallery.link("o" * 40, expires=int(NOW) + 60)
    await page(client, f"/g/{token}", status=403)


@pytest.mark.asyncio
async def test_a_link_whose_scope_the_store_does_not_have_is_refused(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    grid = link(gallery)
    gallery.scopes.clear()
    await page(client, grid, status=403)


@pytest.mark.asyncio
async def test_a_link_whose_claims_disagree_with_its_scope_is_refused(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    """A scope id signed for another member or server (never made by Mural) shows nothing."""
    link(gallery, user_id=100)
    scope = next(iter(gallery.scopes.values()))
    for user_id, guild_id in ((200, 1), (100, 2), (100, None)):
        token = sign_link(LinkClaims(scope.scope_id, user_id, guild_id, int(NOW) + 60), SECRET)
        await page(client, f"/g/{token}", status=403)


@pytest.mark.asyncio
async def test_turning_the_gallery_off_refuses_an_old_link_at_once(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    item = gallery.add("x")
    grid = link(gallery)
    await page(client, grid)
    gallery.enabled.discard(1)
    for path in (grid, f"{grid}/p/{item.id}", f"{grid}/img/{item.id}.webp", grid + "?q=x"):
        await page(client, path, status=403)


@pytest.mark.asyncio
async def test_every_refusal_is_the_same_page(client: TestClient[Any, Any], gallery: MemoryGallery) -> None:
    """Nothing tells an altered link from an expired one or a server whose gallery is off."""
    token = link(gallery).removeprefix("/g/")
    altered = await page(client, f"/g/{_altered(token)}", status=403)
    off = link(gallery, guild_id=5)
    assert await page(client, off, status=403) == altered
    assert await page(client, "/g/", status=403) == altered


# -- what every response carries -------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "suffix",
    ["", "/p/1", "/img/1.webp", "/p/999", "BAD", "/static/gallery.css", "/static/gallery.js", "/nope"],
)
async def test_every_response_carries_the_security_headers(
    client: TestClient[Any, Any], gallery: MemoryGallery, suffix: str
) -> None:
    gallery.add("x")
    grid = link(gallery)
    path = suffix if suffix.startswith("/static") or suffix == "/nope" else grid + suffix
    response = await client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'self'") and "unsafe" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.asyncio
async def test_another_method_gets_a_plain_page_with_the_headers(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    response = await client.post(link(gallery), data=b"x")
    assert response.status == 405
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "405" in await response.text()


@pytest.mark.asyncio
async def test_pages_are_never_kept_by_a_cache(client: TestClient[Any, Any], gallery: MemoryGallery) -> None:
    item = gallery.add("x")
    for path in (link(gallery), f"{link(gallery)}/p/{item.id}", "/g/bad"):
        assert (await client.get(path)).headers["Cache-Control"] == "no-store"


@pytest.mark.asyncio
@pytest.mark.parametrize("prompt", SCRIPT_PROMPTS)
async def test_a_script_shaped_prompt_is_text(
    client: TestClient[Any, Any], gallery: MemoryGallery, prompt: str
) -> None:
    item = gallery.add(prompt, owner_name=prompt)
    for path in (link(gallery), f"{link(gallery)}/p/{item.id}"):
        text = await page(client, path)
        assert prompt not in text
        assert "&lt;" in text
        assert Markup.of(text).scripts == ["static/gallery.js"]
        assert Markup.of(text).handlers == []


class Markup(HTMLParser):
    """What a page would run: its script elements and any `on…` attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.handlers: list[str] = []
        self.styles: list[str] = []

    @classmethod
    def of(cls, text: str) -> Markup:
        parser = cls()
        parser.feed(text)
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self.scripts.append(re.sub(r"^(\.\./)+", "", named.get("src") or "(inline)"))
        if tag == "style":
            self.styles.append("(inline)")
        self.handlers.extend(name for name, _ in attrs if name.startswith("on"))
        self.styles.extend(name for name, _ in attrs if name == "style")


@pytest.mark.asyncio
async def test_pages_carry_no_inline_script_or_style(
    client: TestClient[Any, Any], gallery: MemoryGallery
) -> None:
    item = gallery.add("x")
    for path in (link(gallery), f"{link(gallery)}/p/{item.id}"):
        markup = Markup.of(await page(client, path))
        assert markup.scripts == ["static/gallery.js"]
        assert markup.styles == [] and markup.handlers == []


# -- the server ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_token_never_reaches_the_log(
    gallery: MemoryGallery, caplog: pytest.LogCaptureFixture
) -> None:
    """No access log; a malformed request that quotes its path is logged with the token blanked out."""
    caplog.set_level(logging.DEBUG)
    item = gallery.add("x")
    token = gallery.link(SECRET)
    server = await listening(gallery)
    try:
        async with aiohttp.ClientSession() as session:
            for path in (
                f"/g/{token}",
                f"/g/{token}/p/{item.id}",
                f"/g/{token}/img/{item.id}.webp",
                f"/g/{token}x",
            ):
                async with session.get(f"http://127.0.0.1:{server.port}{path}") as response:
                    await response.read()
        logging.getLogger("bot.web.server").error("Bad request line GET /g/%s HTTP/1.1", token)
    finally:
        await server.close()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert token not in logged
    assert "/g/[token]" in logged


@pytest.mark.asyncio
async def test_the_server_listens_where_told_and_stops(gallery: MemoryGallery) -> None:
    server = await listening(gallery)
    port = server.port
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/static/gallery.css") as response:
            assert response.status == 200
            assert response.content_type == "text/css"
        await server.close()
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"http://127.0.0.1:{port}/static/gallery.css"):
                pass


@pytest.mark.asyncio
async def test_a_port_in_use_is_one_error_line_and_no_gallery(
    gallery: MemoryGallery, caplog: pytest.LogCaptureFixture
) -> None:
    first = await listening(gallery)
    taken = first.port
    try:
        assert await serve_gallery(gallery, secret=SECRET, host="127.0.0.1", port=taken) is None
    finally:
        await first.close()
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == [
        f"GALLERY_PORT: 127.0.0.1:{taken} is already in use; Mural runs on without its gallery. "
        "Choose another GALLERY_PORT (or GALLERY_HOST), or stop what listens there, and restart"
    ]


# -- shortening --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "shown"),
    [
        ("short", "short"),
        ("  spaced\n\nout  ", "spaced out"),
        ("word " * 40, ("word " * 27).strip() + "…"),
        ("x" * 200, "x" * 139 + "…"),
    ],
)
def test_a_prompt_is_shortened_at_a_word(prompt: str, shown: str) -> None:
    assert shorten(prompt) == shown


# -- when the store fails ------------------------------------------------------------------------------


class FailingGallery(MemoryGallery):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def gallery_page(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise self.error


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("error", "status", "level"),
    [
        (StoreUnavailable("the database is away"), 503, logging.WARNING),
        (RuntimeError("boom"), 500, logging.ERROR),
    ],
)
async def test_a_failing_store_is_a_plain_page_and_one_log_line_without_the_token(
    caplog: pytest.LogCaptureFixture, error: Exception, status: int, level: int
) -> None:
    caplog.set_level(logging.DEBUG)
    gallery = FailingGallery(error)
    gallery.enabled.add(1)
    token = gallery.link(SECRET)
    server = await listening(gallery)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{server.port}/g/{token}") as response,
        ):
            assert response.status == status
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert "boom" not in await response.text()
    finally:
        await server.close()
    lines = [
        record
        for record in caplog.records
        if record.name == "bot.web.gallery_app" and record.levelno >= logging.WARNING
    ]
    assert [record.levelno for record in lines] == [level]
    assert token not in caplog.text
