"""A loopback, OpenAI-compatible HTTP server for tests.

The real ``openai.AsyncOpenAI`` client talks to it unchanged, so tests exercise the SDK's own request
encoding, response parsing, error mapping and retry logic instead of a mock of it::

    fake = FakeOpenAI()
    await fake.start()
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test")
    ...
    await client.close()
    await fake.close()

(``async with FakeOpenAI() as fake:`` does the same.)

Routes, all under ``/v1`` and all requiring ``Authorization: Bearer <anything>`` (401 in OpenAI's error
shape otherwise; set ``fake.api_key`` to require one exact key):

* ``POST /chat/completions``  -- JSON, or ``stream=True`` SSE chunks ending in ``data: [DONE]``
  (``stream_options.include_usage`` adds the trailing usage chunk).
* ``POST /images/generations`` -- JSON, or ``stream=True`` SSE ``image_generation.partial_image`` events
  (``partial_images`` of them) followed by one ``image_generation.completed`` event per image.
* ``POST /images/edits`` -- multipart (``image`` / ``image[]`` files, optional ``mask``, form fields);
  file bytes are recorded. ``stream=true`` gives ``image_edit.*`` events.
* ``GET /models``, ``GET /models/{id}`` -- the ids in ``fake.models``.
* Any other ``/v1`` URL -- 404 ``Invalid URL (METHOD /v1/...)`` like the real API.
* ``GET /files/{name}`` (outside /v1, no auth) serves PNGs handed out as ``url`` by the legacy models.

Default answers (nothing scripted):

* chat: :func:`default_chat_content` -- ``"[fake-openai] Prompt: <last user message text>"``, model echoed,
  ``finish_reason="stop"``, word-count ``usage``.
* GPT Image models: ``data=[{"b64_json": <valid PNG>}] * n``, ``created``, echoed ``size`` / ``quality`` /
  ``output_format`` / ``background`` and ``usage`` in the GPT Image shape (see
  :func:`default_image_usage`). The PNG is solid-coloured, its colour derived from the prompt, and
  ``fake.image_dimensions`` pixels (64x64 by default; ``None`` means "the requested size").
* ``dall-e-*`` models: like the real legacy API -- only ``created`` and ``data``; ``response_format``
  defaults to ``"url"`` (served by this fake) and ``"b64_json"`` is honoured; dall-e-3 adds
  ``revised_prompt`` (:func:`default_revised_prompt`) and rejects ``n > 1`` with a 400.

Scripting (per request kind, consumed in order, one request each; then the defaults resume):

* ``fake.script_chat(*replies)`` -- each a ``str`` (assistant content), a :class:`Reply` or a :class:`Fault`.
  ``Reply`` fields: content, finish_reason, refusal, tool_calls, usage, model, and for streams chunks,
  chunk_delay and drop_after_chunks (cut the connection mid-stream); delay, headers.
* ``fake.script_images(*replies)`` -- each an :class:`ImageReply` or a :class:`Fault`; shared by
  generations and edits. ``ImageReply`` fields: png (one or one per picture; any bytes, so corrupt images
  can be tested), revised_prompt, usage, partial_pngs, delay, headers.
* ``fake.chat_handler`` / ``fake.image_handler`` -- optional callables ``(request_json) -> reply | None``
  (sync or async) consulted when the queue is empty; ``None`` falls back to the default. For edits the
  argument is the dict of non-file form fields (the files are on ``fake.requests[-1]``). An exception in
  a handler becomes a 500 answer and is appended to ``fake.handler_errors``.
* ``fake.latency`` -- seconds added before every answer (``Reply.delay`` / ``Fault.delay`` add more).
* ``fake.image_dimensions`` -- ``(width, height)`` of generated PNGs, or ``None`` for the requested size.
* ``fake.models`` -- ids listed by ``GET /models``.

Faults (module-level helpers returning :class:`Fault`, bodies in the real ``{"error": {"message", "type",
"param", "code"}}`` shape): :func:`rate_limited`, :func:`insufficient_quota`, :func:`server_error`,
:func:`moderation_blocked`, :func:`content_policy_violation`, :func:`model_not_found`,
:func:`unauthorized`, :func:`permission_denied`, :func:`bad_request`, :func:`hang` (never answers until
the client gives up) and :func:`drop` (closes the connection without an answer). ``Fault(status, body,
headers, delay)`` covers anything else. Remember the SDK retries 408/409/429/5xx and connection errors
``max_retries`` times (2 by default), so each retry consumes another scripted entry.

Inspection:

* ``fake.requests`` -- every ``/v1`` request as a :class:`RecordedRequest` (method, path, json, headers,
  form, files, received_at, query), including rejected ones.
* ``fake.chat_requests`` / ``fake.image_requests`` -- filtered views.
* ``fake.calls(path)`` -- how many requests hit a path (``"/chat/completions"`` or ``"/v1/..."``).
* ``await fake.wait_for_calls(path, count)`` -- wait until a background task has made its calls.
* ``fake.in_flight`` / ``fake.peak_in_flight`` -- concurrency, to check a bot's own limits.
* ``fake.pending()`` -- scripted replies not consumed yet; ``fake.reset()`` clears everything.

Helpers: :func:`make_png` writes a real PNG with zlib + struct only, :func:`png_dimensions` reads one back.

Limitations: images are always PNG bytes whatever ``output_format`` asks for; ``quality="auto"`` (or
none) is reported as ``"medium"`` and ``background="auto"`` as ``"opaque"``; no request validation beyond
required fields, ``n`` for dall-e-3 and auth; token counts are deterministic approximations (word
counts), not real tokenizer output; only the routes above exist.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import inspect
import itertools
import json
import re
import secrets
import socket
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "ChatHandler",
    "FakeOpenAI",
    "Fault",
    "ImageHandler",
    "ImageReply",
    "RecordedFile",
    "RecordedRequest",
    "Reply",
    "bad_request",
    "content_policy_violation",
    "default_chat_content",
    "default_image_usage",
    "default_revised_prompt",
    "drop",
    "hang",
    "insufficient_quota",
    "make_png",
    "model_not_found",
    "moderation_blocked",
    "permission_denied",
    "png_dimensions",
    "rate_limited",
    "server_error",
    "unauthorized",
]

CHAT_PATH = "/v1/chat/completions"
GENERATIONS_PATH = "/v1/images/generations"
EDITS_PATH = "/v1/images/edits"
IMAGE_PATHS = (GENERATIONS_PATH, EDITS_PATH)

DEFAULT_CHAT_PREFIX = "[fake-openai] "
DEFAULT_IMAGE_DIMENSIONS = (64, 64)
DEFAULT_MODELS = (
    "gpt-5.4-mini",
    "gpt-image-2",
    "gpt-image-2.5-flare",
    "gpt-image-2.5-sunburst",
    "dall-e-3",
    "dall-e-2",
)

# Output tokens billed for a 1024x1024 picture, by quality (low/medium/high as published for GPT Image;
# xhigh/max invented by doubling); other sizes scale by area.
_OUTPUT_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160, "xhigh": 8320, "max": 16640}
# A flat, invented per-input-image charge so edits report non-zero image input tokens.
_INPUT_IMAGE_TOKENS = 323


# --------------------------------------------------------------------------------------------------------
# PNG helpers
# --------------------------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def make_png(width: int = 64, height: int = 64, rgb: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    """A valid, solid-colour 8-bit RGB PNG built with zlib and struct only (no Pillow in the test deps).

    Solid colours compress to almost nothing, so even 1536x1024 stays a few kilobytes.
    """
    if width <= 0 or height <= 0:
        raise ValueError("PNG dimensions must be positive")
    row = b"\x00" + bytes(rgb) * width  # filter byte 0 ("None") then the pixels
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit depth, colour type 2 (RGB)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(row * height, 6))
        + _png_chunk(b"IEND", b"")
    )


def png_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError if ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _colour_for(text: str, shade: float = 1.0) -> tuple[int, int, int]:
    """A deterministic colour per prompt, so tests can tell two generated pictures apart."""
    digest = hashlib.sha256(text.encode()).digest()
    r, g, b = (int(c * shade) for c in digest[:3])
    return r, g, b


# --------------------------------------------------------------------------------------------------------
# Scripted replies and faults
# --------------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """A scripted chat completion.

    ``content=None`` (with no ``tool_calls`` / ``refusal``) means "the default text for this request", so
    e.g. ``Reply(finish_reason="length")`` only changes the finish reason.
    """

    content: str | None = None
    finish_reason: str = "stop"
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None  # [{"id", "type": "function", "function": {...}}]
    usage: dict[str, Any] | None = None  # replaces the computed usage
    omit_usage: bool = False  # answer without `usage`, as some OpenAI-compatible servers do
    model: str | None = None  # replaces the echoed model
    chunks: list[str] | None = None  # stream: explicit content pieces (default: split on words)
    chunk_delay: float = 0.0  # stream: pause between chunks
    drop_after_chunks: int | None = None  # stream: cut the connection after this many chunks
    delay: float = 0.0  # added to fake.latency
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ImageReply:
    """A scripted image answer. ``png`` is one picture reused for every ``n``, or one per picture.

    The bytes are sent as-is, so ``ImageReply(png=b"garbage")`` tests a client's handling of a corrupt
    image. ``revised_prompt`` is sent whatever the model (by default only dall-e-3 gets one).
    """

    png: bytes | Sequence[bytes] | None = None
    revised_prompt: str | None = None
    usage: dict[str, Any] | None = None  # replaces the computed GPT Image usage
    partial_pngs: Sequence[bytes] | None = None  # stream: replaces the generated partial images
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """An error answer (or a non-answer) for one request.

    ``body=None`` gives a generic OpenAI-shaped error for ``status``; a ``str``/``bytes`` body is sent
    verbatim (e.g. an HTML 502 page from a proxy). ``hang`` holds the request open for that many seconds
    (or until the client disconnects / the fake closes); ``drop`` closes the connection with no answer.
    """

    status: int = 500
    body: dict[str, Any] | str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: float | None = None
    drop: bool = False


def _error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _retry_headers(retry_after: float | None) -> dict[str, str]:
    # The SDK prefers retry-after-ms, then retry-after (a float is accepted there too).
    if retry_after is None:
        return {}
    return {"retry-after": f"{retry_after:g}", "retry-after-ms": str(round(retry_after * 1000))}


def rate_limited(retry_after: float | None = 1.0, *, model: str = "gpt-image-2") -> Fault:
    """429 requests-per-minute limit, with retry-after / retry-after-ms (omitted when ``None``).

    The SDK sleeps exactly ``retry_after`` when 0 < retry_after <= 120, otherwise its own backoff.
    """
    message = (
        f"Rate limit reached for {model} in organization org-fake on requests per min (RPM): Limit 5, "
        f"Used 5, Requested 1. Please try again in {retry_after or 1:g}s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    headers = {
        **_retry_headers(retry_after),
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": f"{retry_after or 1:g}s",
    }
    return Fault(429, _error_body(message, "requests", "rate_limit_exceeded"), headers)


def insufficient_quota() -> Fault:
    """429 out-of-credit. The SDK still retries it like any 429 unless max_retries=0."""
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
    )
    return Fault(429, _error_body(message, "insufficient_quota", "insufficient_quota"))


def server_error(status: int = 500, *, retry_after: float | None = None) -> Fault:
    """500/502/503 (any 5xx) -- retried by the SDK."""
    messages = {
        500: "The server had an error while processing your request. Sorry about that!",
        502: "Bad gateway.",
        503: "The server is overloaded or not ready yet.",
    }
    message = messages.get(status, "The server had an error while processing your request.")
    return Fault(status, _error_body(message, "server_error"), _retry_headers(retry_after))


def moderation_blocked() -> Fault:
    """400 from a GPT Image model's safety system (not retried)."""
    message = (
        "Your request was rejected by the safety system. If you believe this is an error, contact us at "
        "help.openai.com and include the request ID req_fake."
    )
    return Fault(400, _error_body(message, "image_generation_user_error", "moderation_blocked"))


def content_policy_violation() -> Fault:
    """400 from the legacy DALL-E safety system."""
    message = (
        "Your request was rejected as a result of our safety system. Your prompt may contain text that is "
        "not allowed by our safety system."
    )
    return Fault(400, _error_body(message, "invalid_request_error", "content_policy_violation"))


def model_not_found(model: str = "gpt-image-2") -> Fault:
    """404 for an unknown or inaccessible model."""
    message = f"The model `{model}` does not exist or you do not have access to it."
    return Fault(404, _error_body(message, "invalid_request_error", "model_not_found", "model"))


def unauthorized() -> Fault:
    """401 invalid_api_key (a wrong key, as opposed to the missing-header 401 the fake gives by itself)."""
    message = (
        "Incorrect API key provided: sk-****. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    return Fault(401, _error_body(message, "invalid_request_error", "invalid_api_key"))


def permission_denied(message: str | None = None, *, code: str | None = None) -> Fault:
    """403, by default the "organization must be verified" refusal GPT Image models give."""
    message = message or (
        "Your organization must be verified to use the model `gpt-image-2`. Please go to: "
        "https://platform.openai.com/settings/organization/general and click on Verify Organization."
    )
    return Fault(403, _error_body(message, "invalid_request_error", code))


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> Fault:
    """Any other 400 invalid_request_error."""
    return Fault(400, _error_body(message, "invalid_request_error", code, param))


def hang(seconds: float = 3600) -> Fault:
    """Never answer (until the client times out and disconnects, or the fake closes)."""
    return Fault(status=0, hang=seconds)


def drop() -> Fault:
    """Close the connection without sending a status line; the SDK sees a connection error."""
    return Fault(status=0, drop=True)


# --------------------------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    """Text of a message ``content``: a plain string or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def last_user_text(request_json: Mapping[str, Any]) -> str:
    """The text of the last ``role="user"`` message, or "" if there is none."""
    messages = request_json.get("messages") or []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def default_chat_content(request_json: Mapping[str, Any]) -> str:
    """The assistant text the fake answers when nothing is scripted.

    ``"[fake-openai] Prompt: <last user message text>"`` -- deterministic, derived from the request, and
    prefixed so a test can tell a default answer from a scripted one.
    """
    return f"{DEFAULT_CHAT_PREFIX}Prompt: {last_user_text(request_json)}"


def default_revised_prompt(prompt: str) -> str:
    """What dall-e-3 answers as ``revised_prompt`` by default."""
    return f"A carefully detailed rendering of: {prompt}"


def _words(text: str) -> int:
    return len(text.split())


def _parse_size(size: str | None) -> tuple[int, int] | None:
    match = re.fullmatch(r"(\d+)x(\d+)", size or "")
    return (int(match[1]), int(match[2])) if match else None


def default_image_usage(
    prompt: str, *, size: str = "1024x1024", quality: str = "medium", n: int = 1, input_images: int = 0
) -> dict[str, Any]:
    """Deterministic GPT Image ``usage``: text tokens = prompt words, 323 tokens per input image, and
    output tokens from 1024x1024 figures per quality (low 272, medium 1056, high 4160, xhigh 8320,
    max 16640), scaled by area and multiplied by ``n``.
    """
    width, height = _parse_size(size) or (1024, 1024)
    per_image = round(_OUTPUT_TOKENS_1024.get(quality, 1056) * width * height / (1024 * 1024))
    text_tokens = max(1, _words(prompt))
    image_tokens = _INPUT_IMAGE_TOKENS * input_images
    output_tokens = per_image * n
    return {
        "input_tokens": text_tokens + image_tokens,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
        "output_tokens": output_tokens,
        "output_tokens_details": {"image_tokens": output_tokens, "text_tokens": 0},
        "total_tokens": text_tokens + image_tokens + output_tokens,
    }


# --------------------------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------------------------


@dataclass
class RecordedFile:
    field: str  # "image", "image[]", "mask", ...
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    method: str
    path: str  # full path, e.g. "/v1/chat/completions"
    json: Any  # decoded JSON body, or None (multipart, GET, bad JSON)
    headers: dict[str, str]  # lower-cased names
    form: dict[str, str]  # multipart non-file fields (last value wins when repeated)
    files: list[RecordedFile]
    received_at: float  # time.monotonic()
    query: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> Mapping[str, Any]:
        """The JSON body or, for multipart requests, the form fields."""
        return self.json if isinstance(self.json, dict) else self.form

    @property
    def model(self) -> str | None:
        value = self.params.get("model")
        return str(value) if value is not None else None


ChatResult = str | Reply | Fault
ImageResult = ImageReply | Fault
ChatHandler = Callable[[dict[str, Any]], ChatResult | Awaitable[ChatResult | None] | None]
ImageHandler = Callable[[dict[str, Any]], ImageResult | Awaitable[ImageResult | None] | None]


class _Dropped(Exception):
    """Raised inside a handler after the transport was aborted, so aiohttp writes nothing."""


# --------------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------------


class FakeOpenAI:
    """See the module docstring. One instance = one server on 127.0.0.1, random port."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        image_dimensions: tuple[int, int] | None = DEFAULT_IMAGE_DIMENSIONS,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
    ) -> None:
        self.latency = latency
        self.image_dimensions = image_dimensions
        self.api_key = api_key  # None: any non-empty bearer token is accepted
        self.models = list(models)
        self.chat_handler: ChatHandler | None = None
        self.image_handler: ImageHandler | None = None
        self.requests: list[RecordedRequest] = []
        self.handler_errors: list[BaseException] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._chat_queue: list[ChatResult] = []
        self._image_queue: list[ImageResult] = []
        self._files: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = asyncio.Event()
        self._arrived = asyncio.Event()

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> FakeOpenAI:
        if self._runner is not None:
            raise RuntimeError("FakeOpenAI is already started")
        self._closing.clear()
        app = web.Application(middlewares=[self._errors_middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/images/generations", self._generations)
        app.router.add_post("/v1/images/edits", self._edits)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        app.router.add_route("*", "/v1/{tail:.*}", self._unknown)
        app.router.add_get("/files/{name}", self._serve_file)
        # handler_cancellation: a client that times out and disconnects cancels a hanging handler
        # instead of leaving it running; a short shutdown_timeout keeps close() fast.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        # Bind the socket ourselves: port 0 picks a free port and we can read it back without private API.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        self._closing.set()  # wakes hanging / sleeping handlers so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

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

    # ---- scripting -------------------------------------------------------------------------------------

    def script_chat(self, *replies: ChatResult) -> None:
        for reply in replies:
            if not isinstance(reply, str | Reply | Fault):
                raise TypeError(f"script_chat takes str, Reply or Fault, not {type(reply).__name__}")
        self._chat_queue.extend(replies)

    def script_images(self, *replies: ImageResult) -> None:
        for reply in replies:
            if not isinstance(reply, ImageReply | Fault):
                raise TypeError(f"script_images takes ImageReply or Fault, not {type(reply).__name__}")
        self._image_queue.extend(replies)

    def pending(self) -> dict[str, int]:
        """Scripted replies not consumed yet -- a test can assert its script was fully used."""
        return {"chat": len(self._chat_queue), "images": len(self._image_queue)}

    def reset(self) -> None:
        self.requests.clear()
        self.handler_errors.clear()
        self._chat_queue.clear()
        self._image_queue.clear()
        self.chat_handler = None
        self.image_handler = None
        self.peak_in_flight = self.in_flight

    # ---- inspection ------------------------------------------------------------------------------------

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == CHAT_PATH]

    @property
    def image_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path in IMAGE_PATHS]

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
        return self._json(_error_body(message, type_, kw.get("code"), kw.get("param")), status)

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
        body = fault.body if fault.body is not None else _error_body(f"Error {fault.status}", "server_error")
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

    # ---- chat ------------------------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, lambda recorded: self._chat_answer(request, recorded))

    async def _chat_answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        params = recorded.json
        if not isinstance(params, dict):
            return self._error(400, "We could not parse the JSON body of your request.")
        if not params.get("messages"):
            return self._error(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        try:
            result = await self._resolve(self._chat_queue, self.chat_handler, params, (str, Reply, Fault))
        except Exception as exc:  # a broken test handler must surface, not hang the client
            self.handler_errors.append(exc)
            return self._error(500, f"fake chat_handler raised {exc!r}", "server_error")
        if isinstance(result, Fault):
            return await self._fault(request, result)
        reply = Reply(content=result) if isinstance(result, str) else result or Reply()
        await self._pause(reply.delay)

        content = reply.content
        if content is None and reply.tool_calls is None and reply.refusal is None:
            content = default_chat_content(params)
        model = reply.model or str(params.get("model") or "gpt-fake")
        prompt_tokens = sum(
            _words(_text_of(m.get("content"))) for m in params["messages"] if isinstance(m, dict)
        )
        completion_tokens = _words(content or "") + _words(reply.refusal or "")
        usage = reply.usage or {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        completion_id = self._next_id("chatcmpl-fake")
        created = int(time.time())

        if params.get("stream"):
            return await self._chat_stream(
                request, params, reply, content, model, usage, completion_id, created
            )

        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": reply.refusal}
        if reply.tool_calls is not None:
            message["tool_calls"] = reply.tool_calls
        body = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}
            ],
            "usage": usage,
            "system_fingerprint": "fp_fake",
        }
        if reply.omit_usage:
            del body["usage"]
        return self._json(body, headers=reply.headers)

    async def _chat_stream(
        self,
        request: web.Request,
        params: dict[str, Any],
        reply: Reply,
        content: str | None,
        model: str,
        usage: dict[str, Any],
        completion_id: str,
        created: int,
    ) -> web.StreamResponse:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            }

        pieces = reply.chunks if reply.chunks is not None else re.findall(r"\s*\S+", content or "")
        events: list[dict[str, Any]] = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": piece}) for piece in pieces]
        if reply.refusal is not None:
            events.append(chunk({"refusal": reply.refusal}))
        if reply.tool_calls:
            events.append(
                chunk({"tool_calls": [{"index": i, **call} for i, call in enumerate(reply.tool_calls)]})
            )
        events.append(chunk({}, reply.finish_reason))
        if (params.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk({}), "choices": [], "usage": usage})

        response = await self._sse(request, reply.headers)
        for sent, event in enumerate(events):
            if reply.drop_after_chunks is not None and sent >= reply.drop_after_chunks:
                self._abort(request)
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
            await self._pause(reply.chunk_delay)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # ---- images ----------------------------------------------------------------------------------------

    async def _generations(self, request: web.Request) -> web.StreamResponse:
        async def answer(recorded: RecordedRequest) -> web.StreamResponse:
            if not isinstance(recorded.json, dict):
                return self._error(400, "We could not parse the JSON body of your request.")
            return await self._image_answer(request, recorded, dict(recorded.json), edit=False)

        return await self._serve(request, answer)

    async def _edits(self, request: web.Request) -> web.StreamResponse:
        async def answer(recorded: RecordedRequest) -> web.StreamResponse:
            if not any(f.field in ("image", "image[]") for f in recorded.files):
                return self._error(
                    400,
                    "Missing required parameter: 'image'.",
                    param="image",
                    code="missing_required_parameter",
                )
            return await self._image_answer(request, recorded, dict(recorded.form), edit=True)

        return await self._serve(request, answer)

    async def _image_answer(
        self, request: web.Request, recorded: RecordedRequest, params: dict[str, Any], *, edit: bool
    ) -> web.StreamResponse:
        prompt = str(params.get("prompt") or "")
        if not prompt:
            return self._error(
                400,
                "Missing required parameter: 'prompt'.",
                param="prompt",
                code="missing_required_parameter",
            )
        model = str(params.get("model") or "gpt-image-2")  # the SDK says "specify a model"; be lenient
        try:
            n = int(params.get("n") or 1)
        except ValueError:
            return self._error(400, f"Invalid value for 'n': {params.get('n')!r}.", param="n")
        if model == "dall-e-3" and n != 1:
            return self._error(400, "You must provide n=1 for this model.", param="n")

        try:
            result = await self._resolve(self._image_queue, self.image_handler, params, (ImageReply, Fault))
        except Exception as exc:
            self.handler_errors.append(exc)
            return self._error(500, f"fake image_handler raised {exc!r}", "server_error")
        if isinstance(result, Fault):
            return await self._fault(request, result)
        reply = result or ImageReply()
        await self._pause(reply.delay)

        requested_size = str(params.get("size") or "auto")
        size = requested_size if _parse_size(requested_size) else "1024x1024"
        dims = self.image_dimensions or _parse_size(size) or (1024, 1024)
        if reply.png is None:
            pngs = [make_png(*dims, _colour_for(f"{prompt}#{i}")) for i in range(n)]
        elif isinstance(reply.png, bytes | bytearray):
            pngs = [bytes(reply.png)] * n
        else:
            pngs = list(reply.png)

        legacy = model.startswith("dall-e")
        quality = str(params.get("quality") or "auto")
        if quality not in _OUTPUT_TOKENS_1024:
            quality = "medium"  # what "auto" resolves to here; the real API reports its own choice
        background = (
            params.get("background") if params.get("background") in ("transparent", "opaque") else "opaque"
        )
        output_format = str(params.get("output_format") or "png")
        input_images = sum(1 for f in recorded.files if f.field in ("image", "image[]"))
        usage = reply.usage or default_image_usage(
            prompt, size=size, quality=quality, n=len(pngs), input_images=input_images
        )
        created = int(time.time())

        if str(params.get("stream")).lower() == "true":
            echo = {
                "size": size,
                "quality": quality,
                "background": background,
                "output_format": output_format,
            }
            return await self._image_stream(request, params, reply, pngs, dims, prompt, echo, usage, edit)

        revised = reply.revised_prompt
        if revised is None and model == "dall-e-3":
            revised = default_revised_prompt(prompt)
        response_format = str(params.get("response_format") or ("url" if legacy else "b64_json"))
        data: list[dict[str, Any]] = []
        for png in pngs:
            item: dict[str, Any] = {}
            if legacy and response_format == "url":
                name = f"img-{secrets.token_hex(8)}.png"
                self._files[name] = png
                item["url"] = f"{self.origin}/files/{name}"
            else:
                item["b64_json"] = base64.b64encode(png).decode()
            if revised is not None:
                item["revised_prompt"] = revised
            data.append(item)

        body: dict[str, Any] = {"created": created, "data": data}
        if not legacy:  # the legacy models answer with just created + data
            body |= {
                "size": size,
                "quality": quality,
                "output_format": output_format,
                "background": background,
                "usage": usage,
            }
        return self._json(body, headers=reply.headers)

    async def _image_stream(
        self,
        request: web.Request,
        params: dict[str, Any],
        reply: ImageReply,
        pngs: list[bytes],
        dims: tuple[int, int],
        prompt: str,
        echo: dict[str, Any],
        usage: dict[str, Any],
        edit: bool,
    ) -> web.StreamResponse:
        prefix = "image_edit" if edit else "image_generation"
        try:
            partial_count = max(0, min(3, int(params.get("partial_images") or 0)))  # the API allows 0-3
        except ValueError:
            partial_count = 0
        response = await self._sse(request, reply.headers)

        async def send(event: dict[str, Any]) -> None:
            await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())

        for image_index, png in enumerate(pngs):
            if reply.partial_pngs is not None:
                partials = list(reply.partial_pngs)
            else:  # darker versions of the final colour, brightening towards it
                partials = [
                    make_png(*dims, _colour_for(f"{prompt}#{image_index}", (i + 1) / (partial_count + 1)))
                    for i in range(partial_count)
                ]
            for partial_index, partial in enumerate(partials):
                await send(
                    {
                        "type": f"{prefix}.partial_image",
                        "b64_json": base64.b64encode(partial).decode(),
                        "created_at": int(time.time()),
                        "partial_image_index": partial_index,
                        **echo,
                    }
                )
            await send(
                {
                    "type": f"{prefix}.completed",
                    "b64_json": base64.b64encode(png).decode(),
                    "created_at": int(time.time()),
                    "usage": usage,
                    **echo,
                }
            )
        await response.write_eof()
        return response

    # ---- models, files, unknown routes ------------------------------------------------------------------

    def _model_object(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "system"}

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        async def answer(recorded: RecordedRequest) -> web.StreamResponse:
            return self._json({"object": "list", "data": [self._model_object(m) for m in self.models]})

        return await self._serve(request, answer)

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        async def answer(recorded: RecordedRequest) -> web.StreamResponse:
            model = request.match_info["model"]
            if model not in self.models:
                fault = model_not_found(model)
                return self._json(fault.body, fault.status)
            return self._json(self._model_object(model))

        return await self._serve(request, answer)

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        async def answer(recorded: RecordedRequest) -> web.StreamResponse:
            return self._error(404, f"Invalid URL ({request.method} {request.path})")

        return await self._serve(request, answer)

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
        png = self._files.get(request.match_info["name"])
        if png is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=png, content_type="image/png")
