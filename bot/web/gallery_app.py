"""The web gallery: an aiohttp application on the bot's own loop, serving what one signed link may show.

Routes (every one under the token, but the static files):

* `GET /g/<token>`: the grid, newest first, `PAGE_SIZE` a page; `?q=` words in the prompt, `?mine=1` only
  the link's member, `?before=<id>` the next page;
* `GET /g/<token>/p/<id>`: one picture, its whole prompt, Copy prompt and Open in Discord;
* `GET /g/<token>/img/<id>.webp`: the picture's bytes, Mural's own copy from the store;
* `GET /static/gallery.css`, `/static/gallery.js`, `/static/favicon.svg` (also as `/favicon.ico`).

A token that is missing, altered or expired, a scope the store no longer has, or a server whose gallery
is off gets the same plain 403 page and nothing else; each request checks all of them again, so turning a
gallery off hides it at once. Every response carries a Content-Security-Policy that allows nothing but
this origin's files (no inline script or style), `nosniff` and `no-referrer` (the token is in the
path: it never leaves in a Referer). No access log is written, and the server's own error lines have
any token blanked out.
"""

from __future__ import annotations

import errno
import logging
import re
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Protocol

from aiohttp import web

from bot.core.errors import StoreUnavailable
from bot.core.gallery import PAGE_SIZE, GalleryItem, GalleryScope, read_link
from bot.web import pages

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# A token is about 75 characters; anything much longer is not one and is refused before decoding.
LONGEST_TOKEN = 200
LONGEST_SEARCH = 200
# A picture is kept by the browser but checked again on every use (see `Gallery.picture`); pages never.
PICTURE_CACHE = "private, no-cache"
STATIC_CACHE = "public, max-age=3600"
STATIC_FILES = {"gallery.css": "text/css", "gallery.js": "text/javascript", "favicon.svg": "image/svg+xml"}

_TOKEN_IN_PATH = re.compile(r"(/g/)[^/\s?#\"']+")


class GallerySource(Protocol):
    """What the gallery asks of the store (`bot.store.gallery` decides, in SQL, what a scope may show)."""

    async def gallery_scope(self, scope_id: bytes, *, now: datetime | None = None) -> GalleryScope | None:
        """The scope a link was made with, unless it is unknown or expired at `now`."""
        ...

    async def gallery_on(self, guild_id: int) -> bool:
        """Whether the server's admins have the gallery on, now."""
        ...

    async def gallery_page(
        self,
        scope: GalleryScope,
        *,
        before: int | None = None,
        search: str = "",
        only_user: bool = False,
        limit: int = PAGE_SIZE,
    ) -> list[GalleryItem]:
        """Up to `limit` pictures the scope may show, newest first, with an id below `before`, every word
        of `search` in the prompt, only the scope's member's own with `only_user`."""
        ...

    async def gallery_item(self, scope: GalleryScope, picture_id: int) -> GalleryItem | None: ...

    async def gallery_image(self, scope: GalleryScope, picture_id: int) -> bytes | None:
        """The kept WebP of a picture the scope may show, or None."""
        ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Gallery:
    """The request handlers, over one store and one secret."""

    def __init__(self, source: GallerySource, *, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self._secret = secret
        self._clock = clock
        self._static = {
            name: (resources.files("bot.web").joinpath("static", name).read_bytes(), kind)
            for name, kind in STATIC_FILES.items()
        }

    async def grid(self, request: web.Request) -> web.StreamResponse:
        scope = await self._scope(request)
        if scope is None:
            return refused()
        search = " ".join(request.query.get("q", "").split())[:LONGEST_SEARCH]
        only_mine = scope.guild_id is not None and request.query.get("mine") == "1"
        found = await self.source.gallery_page(
            scope,
            before=_positive(request.query.get("before")),
            search=search,
            only_user=only_mine,
            limit=PAGE_SIZE + 1,
        )
        next_before = found[PAGE_SIZE - 1].id if len(found) > PAGE_SIZE else None
        return _html(
            pages.grid_page(
                token=request.match_info["token"],
                items=found[:PAGE_SIZE],
                search=search,
                only_mine=only_mine,
                can_filter_mine=scope.guild_id is not None,
                next_before=next_before,
            )
        )

    async def detail(self, request: web.Request) -> web.StreamResponse:
        scope = await self._scope(request)
        if scope is None:
            return refused()
        item = await self.source.gallery_item(scope, int(request.match_info["item_id"]))
        if item is None:
            return not_found()
        return _html(pages.detail_page(token=request.match_info["token"], item=item))

    async def picture(self, request: web.Request) -> web.StreamResponse:
        scope = await self._scope(request)
        if scope is None:
            return refused()
        picture_id = int(request.match_info["item_id"])
        # A kept picture never changes under its id (ids are never reused), so its id is its ETag: the
        # browser asks again each time (a deleted picture must not linger in its cache) and is told 304
        # while the picture is still there, without its bytes being read.
        tag = f'"{picture_id}"'
        headers = {"Cache-Control": PICTURE_CACHE, "ETag": tag}
        if request.headers.get("If-None-Match") == tag:
            if await self.source.gallery_item(scope, picture_id) is None:
                return not_found()
            return web.Response(status=304, headers=headers)
        data = await self.source.gallery_image(scope, picture_id)
        if data is None:
            return not_found()
        return web.Response(body=data, content_type="image/webp", headers=headers)

    async def static(self, request: web.Request) -> web.StreamResponse:
        found = self._static.get(request.match_info.get("name", "favicon.svg"))
        if found is None:
            return not_found()
        body, kind = found
        return web.Response(
            body=body, content_type=kind, charset="utf-8", headers={"Cache-Control": STATIC_CACHE}
        )

    async def _scope(self, request: web.Request) -> GalleryScope | None:
        """The scope of an intact, unexpired link whose server (if any) has its gallery on; else None."""
        token = request.match_info.get("token", "")
        if not token or len(token) > LONGEST_TOKEN:
            return None
        now = self._clock()
        claims = read_link(token, self._secret, now=now)
        if claims is None:
            return None
        scope = await self.source.gallery_scope(claims.scope_id, now=datetime.fromtimestamp(now, UTC))
        if (
            scope is None
            or scope.user_id != claims.user_id
            or scope.guild_id != claims.guild_id
            or scope.expires <= now
        ):
            return None
        if scope.guild_id is not None and not await self.source.gallery_on(scope.guild_id):
            return None
        return scope


def build_app(
    source: GallerySource, *, secret: str, clock: Callable[[], float] = time.time
) -> web.Application:
    """The gallery's aiohttp application (routes, plain error pages, security headers on every response)."""
    gallery = Gallery(source, secret=secret, clock=clock)
    app = web.Application(middlewares=[_plain_errors], client_max_size=4096)
    app.router.add_get("/g/{token}", gallery.grid)
    app.router.add_get(r"/g/{token}/p/{item_id:\d{1,18}}", gallery.detail)
    app.router.add_get(r"/g/{token}/img/{item_id:\d{1,18}}.webp", gallery.picture)
    app.router.add_get("/static/{name}", gallery.static)
    # Asked for by browsers on pages without an icon of their own (the plain 403).
    app.router.add_get("/favicon.ico", gallery.static)
    app.on_response_prepare.append(_secure)
    return app


class GalleryServer:
    """The gallery listening on one address, on the loop it was started on, until `close`."""

    def __init__(self, source: GallerySource, *, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.app = build_app(source, secret=secret, clock=clock)
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> bool:
        """Listen on `host:port` (port 0: any free one); False, after one error line naming GALLERY_PORT,
        when the address cannot be had (the bot then runs on without its gallery)."""
        runner = web.AppRunner(self.app, access_log=None, logger=_SERVER_LOG, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            await runner.cleanup()
            why = (
                "is already in use"
                if error.errno == errno.EADDRINUSE
                else f"cannot be used ({error.strerror})"
            )
            log.error(
                "GALLERY_PORT: %s:%d %s; Mural runs on without its gallery. Choose another GALLERY_PORT (or "
                "GALLERY_HOST), or stop what listens there, and restart",
                host,
                port,
                why,
            )
            return False
        self._runner = runner
        log.info("The gallery listens on http://%s:%d", host, self.port)
        return True

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError("the gallery is not listening")
        return int(self._runner.addresses[0][1])

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


async def serve_gallery(
    source: GallerySource,
    *,
    secret: str,
    host: str,
    port: int,
    clock: Callable[[], float] = time.time,
) -> GalleryServer | None:
    """The gallery started on the running loop (the caller closes it), or None when it could not listen."""
    server = GalleryServer(source, secret=secret, clock=clock)
    return server if await server.start(host, port) else None


def refused() -> web.Response:
    return _html(pages.refused_page(), status=403)


def not_found() -> web.Response:
    return _html(pages.not_found_page(), status=404)


def _html(text: str, *, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _positive(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value) or None


@web.middleware
async def _plain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is one of the gallery's own pages: no aiohttp error text, no traceback, no path."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        # Under /g/ only a link is served: whatever else is asked there is refused like a bad link.
        return refused() if request.path.startswith("/g/") or request.path == "/g" else not_found()
    except web.HTTPException as error:
        return _html(pages.plain_page(f"{error.status} {error.reason}", ""), status=error.status)
    except StoreUnavailable:
        log.warning("A gallery page could not be served: the database is unavailable")
        return _html(pages.plain_page("503 Service Unavailable", "Try again in a moment."), status=503)
    except Exception:
        log.exception("A gallery page failed")
        return _html(pages.plain_page("500 Internal Server Error", "Something went wrong."), status=500)


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")


def without_tokens(text: str) -> str:
    """`text` with every gallery token in a path blanked out."""
    return _TOKEN_IN_PATH.sub(r"\1[token]", text)


class _WithoutTokens(logging.Filter):
    """aiohttp's server lines (a bad request, a failed handler) may quote the request: blank out tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        record.msg, record.args = without_tokens(text), ()
        record.exc_info, record.exc_text = None, None
        return True


_SERVER_LOG = logging.getLogger("bot.web.server")
_SERVER_LOG.addFilter(_WithoutTokens())
