"""The gallery in a real headless Chromium, against the in-memory gallery store: what a member sees and
clicks, on a desktop and on a phone's width."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from bot.core.gallery import PAGE_SIZE
from bot.web import GalleryServer, serve_gallery
from loopback.gallery_store import MemoryGallery, webp
from tests.web.browser import INSECURE_HOST

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET = "browser-secret-" + "x" * 32
NOW = 1_800_000_000.0
# Headers a proxy does not pass on as they came (the body it sends is whole and decoded).
HOP_HEADERS = {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"}
SCRIPT_PROMPT = '<img src=x onerror=alert(1)></script><script>alert("boom")</script>'


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Site:
    gallery: MemoryGallery
    server: GalleryServer
    clock: Clock

    def url(self, host: str = "127.0.0.1", **scope: Any) -> str:
        scope.setdefault("expires", int(NOW) + 3600)
        return f"http://{host}:{self.server.port}/g/{self.gallery.link(SECRET, **scope)}"


@pytest_asyncio.fixture(loop_scope="module")
async def site() -> AsyncIterator[Site]:
    gallery = MemoryGallery()
    gallery.enabled.add(1)
    clock = Clock()
    server = await serve_gallery(gallery, secret=SECRET, host="127.0.0.1", port=0, clock=clock)
    assert server is not None
    try:
        yield Site(gallery, server, clock)
    finally:
        await server.close()


@pytest.fixture
def problems() -> list[str]:
    """What the browser complained of (script errors, CSP violations, failed loads); none by the end."""
    return []


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser_context: Any, problems: list[str]) -> AsyncIterator[Any]:
    """A tab that fails the test on any script error, Content-Security-Policy violation or failed load."""
    tab = await browser_context.new_page()
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None,
    )
    yield tab
    assert problems == []


async def cards(page: Any) -> list[str]:
    return await page.locator(".card .prompt-short").all_inner_texts()


async def test_the_grid_shows_pictures_newest_first_and_more_loads_the_rest(site: Site, page: Any) -> None:
    for number in range(PAGE_SIZE + 2):
        site.gallery.add(f"picture number {number}", picture=webp((number * 4 % 256, 90, 160)))
    await page.goto(site.url())
    shown = await cards(page)
    assert len(shown) == PAGE_SIZE
    assert shown[0] == f"picture number {PAGE_SIZE + 1}"
    first = page.locator(".card img").first
    await first.scroll_into_view_if_needed()
    assert await first.evaluate("img => img.complete && img.naturalWidth") == 64
    await page.click("#more")
    assert await cards(page) == ["picture number 1", "picture number 0"]
    assert await page.locator("#more").count() == 0


async def test_the_search_box_and_the_only_mine_switch_filter_the_grid(site: Site, page: Any) -> None:
    site.gallery.add("a red fox in the snow", owner_id=100)
    site.gallery.add("a blue whale", owner_id=100)
    site.gallery.add("a fox cub, red and small", owner_id=200, owner_name="grace")
    await page.goto(site.url(user_id=100))
    await page.fill("#q", "red fox")
    await page.press("#q", "Enter")
    await page.wait_for_url("**?q=red+fox*")
    assert await cards(page) == ["a fox cub, red and small", "a red fox in the snow"]
    await page.check("#mine")  # applied at once by the page's script
    await page.wait_for_url("**mine=1*")
    assert await cards(page) == ["a red fox in the snow"]
    await page.click("a.clear")
    assert len(await cards(page)) == 3


async def test_a_picture_opens_in_a_detail_view_with_its_whole_prompt(site: Site, page: Any) -> None:
    prompt = "A lighthouse on a cliff at dusk, " + "waves crashing below, " * 12 + "oil painting."
    item = site.gallery.add(prompt, picture=webp(size=(96, 64)), owner_name="ada")
    await page.goto(site.url())
    await page.click(".card a >> nth=0")
    await page.wait_for_url(f"**/p/{item.id}")
    assert await page.inner_text("#prompt") == prompt
    assert await page.eval_on_selector("#picture", "img => img.complete && img.naturalWidth") == 96
    assert "ada" in await page.inner_text(".meta")
    await page.click("#back")
    assert len(await cards(page)) == 1


async def test_copy_prompt_puts_the_whole_prompt_on_the_clipboard(site: Site, page: Any) -> None:
    prompt = "multi-line\nprompt with <angle brackets> & ampersands, " + "long " * 100
    item = site.gallery.add(prompt)
    await page.goto(f"{site.url()}/p/{item.id}")
    await page.click("#copy")
    await page.wait_for_function("document.getElementById('copy-status').textContent !== ''")
    assert await page.evaluate("navigator.clipboard.readText()") == prompt
    assert await page.inner_text("#copy-status") == "Prompt copied."


async def test_copy_prompt_selects_the_prompt_where_the_clipboard_is_not_offered(
    site: Site, page: Any
) -> None:
    """Over plain HTTP on a name other than loopback the browser offers no clipboard: the text is selected."""
    item = site.gallery.add("select me, all of me")
    await page.goto(f"{site.url(host=INSECURE_HOST)}/p/{item.id}")
    assert await page.evaluate("window.isSecureContext") is False
    await page.click("#copy")
    assert await page.evaluate("window.getSelection().toString()") == "select me, all of me"
    assert "selected" in await page.inner_text("#copy-status")


async def test_open_in_discord_links_to_the_message(site: Site, page: Any) -> None:
    item = site.gallery.add("x", guild_id=1, channel_id=10)
    await page.goto(f"{site.url()}/p/{item.id}")
    link = page.locator("#discord")
    assert await link.get_attribute("href") == f"https://discord.com/channels/1/10/{item.message_id}"
    assert "noreferrer" in (await link.get_attribute("rel") or "")


async def test_an_altered_and_an_expired_link_are_refused(site: Site, page: Any, problems: list[str]) -> None:
    site.gallery.add("secret sauce")
    url = site.url(expires=int(NOW) + 60)
    cut = len(url) - 10
    altered = url[:cut] + ("A" if url[cut] != "A" else "B") + url[cut + 1 :]
    response = await page.goto(altered)
    assert response.status == 403
    assert "secret sauce" not in await page.content()
    assert await page.locator("img").count() == 0
    assert (await page.goto(url)).status == 200
    site.clock.now = NOW + 61
    response = await page.goto(url)
    assert response.status == 403
    assert await page.inner_text("h1") == "403 Forbidden"
    # The browser reports each refused page load (one report may repeat): nothing else went wrong.
    assert set(problems) == {
        "console: Failed to load resource: the server responded with a status of 403 (Forbidden)"
    }
    problems.clear()


async def test_a_script_shaped_prompt_is_shown_as_text_and_runs_nothing(site: Site, page: Any) -> None:
    item = site.gallery.add(SCRIPT_PROMPT, owner_name="<b>mallory</b>")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await page.goto(site.url())
    assert await cards(page) == [SCRIPT_PROMPT]
    await page.goto(f"{site.url()}/p/{item.id}")
    assert await page.inner_text("#prompt") == SCRIPT_PROMPT
    assert "<b>mallory</b>" in await page.inner_text(".meta")
    await page.click("#copy")
    await page.wait_for_timeout(200)
    assert dialogs == []
    assert await page.locator("#prompt img, #prompt script, .meta b").count() == 0


async def test_nothing_is_fetched_from_anywhere_else(site: Site, page: Any) -> None:
    item = site.gallery.add("x", picture=webp())
    origins: set[str] = set()
    page.on("request", lambda request: origins.add(request.url.split("/")[2]))
    await page.goto(site.url())
    await page.goto(f"{site.url()}/p/{item.id}")
    assert origins == {f"127.0.0.1:{site.server.port}"}


async def test_the_grid_fits_a_phones_width(site: Site, browser_context: Any) -> None:
    for number in range(6):
        site.gallery.add(f"a rather long prompt without many breaks number {number} " + "x" * 80)
    phone = await browser_context.browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        page = await phone.new_page()
        await page.goto(site.url())
        assert await page.evaluate("document.documentElement.scrollWidth") <= 375
        boxes = [await card.bounding_box() for card in await page.locator(".card").all()]
        assert len({round(box["x"]) for box in boxes}) == 2  # two columns
        assert all(box["x"] >= 0 and box["x"] + box["width"] <= 375 for box in boxes)
        await page.click(".card a >> nth=0")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        await phone.close()


async def test_every_link_works_behind_a_proxy_that_serves_the_gallery_under_a_path(
    site: Site, page: Any
) -> None:
    """GALLERY_URL=https://example.org/mural: the pages' links are relative, so they stay under /mural/."""
    for number in range(PAGE_SIZE + 1):
        site.gallery.add(f"picture {number}", picture=webp())
    upstream = f"http://127.0.0.1:{site.server.port}"
    async with aiohttp.ClientSession() as client:

        async def forward(request: web.Request) -> web.Response:
            headers = {"If-None-Match": request.headers.get("If-None-Match", "")}
            async with client.get(
                f"{upstream}/{request.match_info['tail']}", params=request.query, headers=headers
            ) as answer:
                body = await answer.read()
                kept = {key: value for key, value in answer.headers.items() if key.lower() not in HOP_HEADERS}
                return web.Response(status=answer.status, body=body, headers=kept)

        proxy = web.Application()
        proxy.router.add_get("/mural/{tail:.*}", forward)
        runner = web.AppRunner(proxy, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            base = f"http://127.0.0.1:{runner.addresses[0][1]}/mural/"
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url))
            await page.goto(base + site.url().split("/", 3)[3])
            assert await page.eval_on_selector("#grid", "grid => getComputedStyle(grid).display") == "grid"
            await page.click("#more")
            assert await cards(page) == ["picture 0"]
            await page.click(".card a >> nth=0")
            await page.wait_for_url("**/p/1")
            assert await page.eval_on_selector("#picture", "img => img.complete && img.naturalWidth") == 64
            await page.click("#back")
            assert len(await cards(page)) == PAGE_SIZE
            assert asked and all(url.startswith(base) for url in asked), [
                u for u in asked if not u.startswith(base)
            ]
        finally:
            await runner.cleanup()
