"""What every route of the loopback OpenAI shares: its address, recording, the bearer-token check,
latency and concurrency counting, scripted-or-handled answers, faults and server-sent events.

:class:`Transport` is the base of the route families (``_chat``, ``_images``, ``_moderations``) that
``FakeOpenAI`` combines. Every ``/v1`` route goes through :meth:`Transport._serve`: the request is
recorded (rejected ones too), counted in ``in_flight``, delayed by ``latency``, checked for
``Authorization: Bearer <anything>`` (401 in OpenAI's error shape otherwise; set ``api_key`` to require
one exact key), then answered. Any other ``/v1`` URL answers 404 ``Invalid URL (METHOD /v1/...)`` like the
real API.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from loopback.fake_openai._recorded import RecordedFile, RecordedRequest
from loopback.openai_faults import Fault, error_body, unauthorized


class _Dropped(Exception):
    """Raised inside a handler after the transport was aborted, so aiohttp writes nothing."""


class Transport:
    """The shared state and plumbing of the fake's routes; see the module docstring."""

    def __init__(self, *, latency: float, api_key: str | None) -> None:
        self.latency = latency  # seconds added before every answer
        self.api_key = api_key  # None: any non-empty bearer token is accepted
        self.requests: list[RecordedRequest] = []
        self.handler_errors: list[BaseException] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._ids = itertools.count(1)
        self._port: int | None = None
        self._closing = asyncio.Event()
        self._arrived = asyncio.Event()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return self._port

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    # ---- inspection ------------------------------------------------------------------------------------

    @staticmethod
    def _full_path(path: str) -> str:
        path = "/" + path.lstrip("/")
        return path if path.startswith("/v1/") else "/v1" + path

    def calls(self, path: str) -> int:
        full = self._full_path(path)
        return sum(1 for r in self.requests if r.path == full)

    async def wait_for_calls(self, path: str, count: int = 1, *, wait_s: float = 5.0) -> None:
        """Wait until ``path`` has been requested ``count`` times (TimeoutError after ``wait_s``)."""
        async with asyncio.timeout(wait_s):
            while self.calls(path) < count:
                self._arrived.clear()
                await self._arrived.wait()

    # ---- plumbing --------------------------------------------------------------------------------------

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake early when the fake closes so shutdown never waits on a sleeping handler."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}{secrets.token_hex(4)}"

    def _json(self, body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
        return web.json_response(
            body, status=status, headers={"x-request-id": self._next_id("req_"), **(headers or {})}
        )

    def _error(
        self, status: int, message: str, type_: str = "invalid_request_error", **kw: str | None
    ) -> web.Response:
        return self._json(error_body(message, type_, kw.get("code"), kw.get("param")), status)

    @web.middleware
    async def _errors_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except _Dropped:
            # The transport is already aborted; return something aiohttp can discard silently.
            return web.Response(status=499)

    async def _record(self, request: web.Request) -> RecordedRequest:
        headers = {k.lower(): v for k, v in request.headers.items()}
        body_json: Any = None
        form: dict[str, str] = {}
        files: list[RecordedFile] = []
        if request.content_type.startswith("multipart/"):
            posted = await request.post()
            for name, value in posted.items():
                if isinstance(value, web.FileField):
                    files.append(RecordedFile(name, value.filename, value.content_type, value.file.read()))
                else:
                    form[name] = str(value)
        elif request.can_read_body:
            raw = await request.read()
            with contextlib.suppress(ValueError):
                body_json = json.loads(raw) if raw else None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            json=body_json,
            headers=headers,
            form=form,
            files=files,
            received_at=time.monotonic(),
            query=dict(request.query),
        )
        self.requests.append(recorded)
        self._arrived.set()
        return recorded

    def _auth_error(self, recorded: RecordedRequest) -> web.Response | None:
        scheme, _, token = recorded.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
                "blank username) if you're accessing the API from your browser and are prompted for a "
                "username and password. You can obtain an API key from https://platform.openai.com/account/"
                "api-keys.",
            )
        if self.api_key is not None and token.strip() != self.api_key:
            return self._json(unauthorized().body, 401)
        return None

    async def _serve(
        self, request: web.Request, answer: Callable[[RecordedRequest], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Common path of every /v1 route: record, count concurrency, latency, auth, then answer."""
        recorded = await self._record(request)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await self._pause(self.latency)
            return self._auth_error(recorded) or await answer(recorded)
        finally:
            self.in_flight -= 1

    async def _fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        await self._pause(fault.delay)
        if fault.hang is not None:
            await self._pause(fault.hang)
            self._abort(request)  # still here: the fake is closing or the hang ran out
        if fault.drop:
            self._abort(request)
        body = fault.body if fault.body is not None else error_body(f"Error {fault.status}", "server_error")
        headers = {"x-request-id": self._next_id("req_"), **fault.headers}
        if isinstance(body, dict):
            return web.json_response(body, status=fault.status, headers=headers)
        data = body.encode() if isinstance(body, str) else body
        headers.setdefault("content-type", "text/html; charset=utf-8")
        return web.Response(body=data, status=fault.status, headers=headers)

    @staticmethod
    def _abort(request: web.Request) -> None:
        if request.transport is not None:
            request.transport.abort()
        raise _Dropped

    async def _resolve(
        self,
        queue: list[Any],
        handler: Callable[[dict[str, Any]], Any] | None,
        params: dict[str, Any],
        accepted: tuple[type, ...],
    ) -> Any:
        """Scripted queue first, then the dynamic handler, then None (= default answer)."""
        if queue:
            return queue.pop(0)
        if handler is None:
            return None
        result = handler(params)
        if inspect.isawaitable(result):
            result = await result
        if result is not None and not isinstance(result, accepted):
            names = ", ".join(t.__name__ for t in accepted)
            raise TypeError(f"handler returned {type(result).__name__}; expected {names} or None")
        return result

    async def _sse(
        self, request: web.Request, headers: Mapping[str, str] | None = None
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "x-request-id": self._next_id("req_"),
                **(headers or {}),
            }
        )
        await response.prepare(request)
        return response

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        async def answer(recorded: RecordedRequest) -> web.StreamResponse:
            return self._error(404, f"Invalid URL ({request.method} {request.path})")

        return await self._serve(request, answer)
