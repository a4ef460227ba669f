"""The HTTP side of the fake: the aiohttp server, REST plumbing, recorded requests, injected faults.

Every REST request under ``/api/v10`` is recorded (:class:`RecordedRequest`), checked against the
failures queued with :meth:`Server.fail_next`, then routed through the table that ``rest/`` builds.
Route handlers raise :class:`~loopback.fake_discord.wire.ApiError`; a bug in the fake itself is
answered 400 (discord.py would retry a 5xx for ~25 s) and its traceback kept in ``internal_errors``.

Lifecycle: ``await fake.start()`` binds a random port on 127.0.0.1; ``fake.http_url``,
``fake.ws_url``; ``await fake.close()``; ``fake.patch(monkeypatch)`` and the ``fake.patched()``
context manager point ``discord.http.Route.BASE``, ``discord.webhook.async_.Route.BASE`` (in 2.7.1
the same class object, patched and restored in a safe order anyway) and
``DiscordWebSocket.DEFAULT_GATEWAY`` at the fake.

Fault injection: ``fail_next(method, path_regex, status, *, code=0, message=None, times=1,
retry_after=0.05, is_global=False)`` -- the next matching REST request(s) get a Discord JSON error;
a 429 carries a ``retry_after`` body plus ``Retry-After``/``X-RateLimit-*``/``Via`` headers so
discord.py waits and retries instead of treating it as a Cloudflare ban.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import re
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

import yarl
from aiohttp import web
from multidict import CIMultiDict

from loopback.fake_discord.wire import API_PREFIX, ApiError, as_int

# Where the REST request being handled points (see `World._place`): a DM with the bot has
# no server permissions to check; in a guild, the bot's permissions are those of that guild (None:
# the first one).
REQUEST_PLACE: contextvars.ContextVar[str] = contextvars.ContextVar("request_place", default="guild")
REQUEST_GUILD: contextvars.ContextVar[int | None] = contextvars.ContextVar("request_guild", default=None)
# The channel or thread it points to, whose overwrites apply (None: guild-level permissions).
REQUEST_CHANNEL: contextvars.ContextVar[int | None] = contextvars.ContextVar("request_channel", default=None)

Handler = Callable[..., Awaitable[web.StreamResponse]]


@dataclass
class UploadedFile:
    """One ``files[N]`` part of a multipart request, exactly as the bot uploaded it."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One REST request the bot made (everything under ``/api/v10``, including 404s).

    ``path`` is the part after ``/api/v10``; ``json`` is the JSON body or the multipart
    ``payload_json`` part; ``status`` is the status the fake answered with.
    """

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    headers: CIMultiDict[str]
    status: int = 0
    at: float = 0.0


@dataclass
class FailureRule:
    method: str
    pattern: re.Pattern[str]
    status: int
    code: int
    message: str
    remaining: int
    retry_after: float
    is_global: bool


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool


class Server:
    """The aiohttp server and REST plumbing of :class:`~loopback.fake_discord.FakeDiscord`."""

    def _init_server(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.internal_errors: list[str] = []
        self._failures: list[FailureRule] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes: list[Route] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def http_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeDiscord.start() has not been awaited")
        return f"http://127.0.0.1:{self._port}"

    @property
    def ws_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeDiscord.start() has not been awaited")
        return f"ws://127.0.0.1:{self._port}/"

    async def start(self) -> None:
        """Bind to a random port on 127.0.0.1 and start serving."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway_handler)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._attachment_handler)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest_handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        """Close every gateway socket (code 1001) and stop the server."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        for conn in list(self._connections):
            conn.dropped = True
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"fake discord shutting down")
        for session in self._sessions.values():
            session.dead = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _patch_targets(self) -> list[tuple[Any, str, Any]]:
        import discord.gateway
        import discord.http
        import discord.webhook.async_

        api = f"{self.http_url}{API_PREFIX}"
        return [
            (discord.http.Route, "BASE", api),
            (discord.webhook.async_.Route, "BASE", api),
            (discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(self.ws_url)),
        ]

    def patch(self, monkeypatch: Any) -> None:
        """Point discord.py at this fake using pytest's ``monkeypatch`` (undone at teardown)."""
        for obj, attr, value in self._patch_targets():
            monkeypatch.setattr(obj, attr, value)

    @contextlib.contextmanager
    def patched(self) -> Iterator[Self]:
        """Point discord.py at this fake for the duration of the ``with`` block, without pytest."""
        saved: list[tuple[Any, str, Any]] = []
        try:
            for obj, attr, value in self._patch_targets():
                saved.append((obj, attr, getattr(obj, attr)))
                setattr(obj, attr, value)
            yield self
        finally:
            # Reverse order matters: both Route targets are the same class in discord.py 2.7.
            for obj, attr, old in reversed(saved):
                setattr(obj, attr, old)

    # ------------------------------------------------------------------ observation and faults

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        """Recorded requests whose method matches (``*`` for any) and whose path matches the regex."""
        pattern = re.compile(path_regex)
        return [
            r
            for r in self.requests
            if (method == "*" or r.method == method.upper()) and pattern.search(r.path)
        ]

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        code: int = 0,
        message: str | None = None,
        times: int = 1,
        retry_after: float = 0.05,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``times`` REST requests matching ``method``/``path_regex`` with an error.

        ``path_regex`` is searched in the path after ``/api/v10``.  Status 429 produces a proper
        rate-limit response (``retry_after`` body + headers) that discord.py sleeps on and retries.
        """
        default_messages = {
            400: "Bad Request",
            401: "401: Unauthorized",
            403: "Missing Permissions",
            404: "Unknown",
            429: "You are being rate limited.",
            500: "500: Internal Server Error",
        }
        self._failures.append(
            FailureRule(
                method=method.upper(),
                pattern=re.compile(path_regex),
                status=status,
                code=code,
                message=message or default_messages.get(status, "Error"),
                remaining=times,
                retry_after=retry_after,
                is_global=is_global,
            )
        )

    # ------------------------------------------------------------------ HTTP plumbing

    def _json(self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
        # discord.py only parses JSON when the content-type is exactly "application/json".
        all_headers = {"Content-Type": "application/json"}
        all_headers.update(headers or {})
        return web.Response(body=json.dumps(data).encode(), status=status, headers=all_headers)

    @staticmethod
    def _no_content() -> web.Response:
        return web.Response(status=204)

    async def _attachment_handler(self, request: web.Request) -> web.Response:
        att_id = as_int(request.match_info["attachment_id"])
        stored = self._attachments.get(att_id or -1)
        if stored is None:
            return web.Response(status=404, text="Not Found")
        content_type, data = stored
        return web.Response(body=data, headers={"Content-Type": content_type})

    async def _read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        files: list[UploadedFile] = []
        if not request.can_read_body:
            return None, files
        if request.content_type == "multipart/form-data":
            body: Any = None
            reader = await request.multipart()
            async for part in reader:
                if not hasattr(part, "read"):
                    continue
                raw = bytes(await part.read(decode=False))  # type: ignore[union-attr]
                name = part.name or ""
                if name == "payload_json":
                    body = json.loads(raw.decode())
                elif part.filename is not None:
                    files.append(
                        UploadedFile(
                            field=name,
                            filename=part.filename,
                            content_type=part.headers.get("Content-Type", "application/octet-stream"),
                            data=raw,
                        )
                    )
            return body, files
        raw_body = await request.read()
        if not raw_body:
            return None, files
        try:
            return json.loads(raw_body.decode()), files
        except ValueError as exc:
            raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc

    async def _rest_handler(self, request: web.Request) -> web.StreamResponse:
        path = request.path[len(API_PREFIX) :] or "/"
        record = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=None,
            files=[],
            headers=CIMultiDict(request.headers),
            at=time.monotonic(),
        )
        self.requests.append(record)
        try:
            record.json, record.files = await self._read_body(request)
            response = await self._route(record)
        except ApiError as err:
            response = self._json(err.body(), status=err.status, headers=err.headers)
        except Exception as exc:
            # A bug in the fake: answer 400 (discord.py would retry a 5xx for ~25 s) and keep the
            # traceback so the test can show it.
            self.internal_errors.append(traceback.format_exc())
            response = self._json({"message": f"FakeDiscord internal error: {exc!r}", "code": 0}, status=400)
        record.status = response.status
        self._notify()
        return response

    async def _route(self, req: RecordedRequest) -> web.StreamResponse:
        for rule in self._failures:
            if rule.remaining > 0 and rule.method in ("*", req.method) and rule.pattern.search(req.path):
                rule.remaining -= 1
                self._failures = [r for r in self._failures if r.remaining > 0]
                raise self._failure_error(rule)
        method_mismatch = False
        for route in self._routes:
            match = route.pattern.fullmatch(req.path)
            if match is None:
                continue
            if route.method != req.method:
                method_mismatch = True
                continue
            if route.auth and req.headers.get("Authorization") != f"Bot {self.token}":
                raise ApiError(401, 0, "401: Unauthorized")
            arguments = match.groupdict()
            channel = self.channels.get(int(arguments["channel_id"])) if "channel_id" in arguments else None
            place = "guild" if channel is None else self._place(channel)
            if route.auth and place in ("group", "foreign"):
                # The bot is no recipient of a group DM and no member of that server.
                raise ApiError(403, 50001, "Missing Access")
            place_token = REQUEST_PLACE.set(place)
            guild_token = REQUEST_GUILD.set(None if channel is None else self._guild_id_of(channel))
            channel_token = REQUEST_CHANNEL.set(None if channel is None else int(channel["id"]))
            try:
                return await route.handler(req, **arguments)
            finally:
                REQUEST_CHANNEL.reset(channel_token)
                REQUEST_GUILD.reset(guild_token)
                REQUEST_PLACE.reset(place_token)
        if method_mismatch:
            raise ApiError(405, 0, "405: Method Not Allowed")
        raise ApiError(404, 0, "404: Not Found")

    @staticmethod
    def _failure_error(rule: FailureRule) -> ApiError:
        if rule.status != 429:
            return ApiError(rule.status, rule.code, rule.message)
        reset = time.time() + rule.retry_after
        headers = {
            "Retry-After": str(max(1, int(rule.retry_after + 0.999))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{reset:.3f}",
            "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
            "X-RateLimit-Bucket": "fake-bucket",
            "X-RateLimit-Scope": "global" if rule.is_global else "user",
            "Via": "1.1 google",
        }
        if rule.is_global:
            headers["X-RateLimit-Global"] = "true"
        return ApiError(
            429,
            rule.code,
            rule.message,
            headers=headers,
            extra={"retry_after": rule.retry_after, "global": rule.is_global},
        )
