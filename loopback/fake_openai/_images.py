"""The loopback OpenAI's ``POST /v1/images/generations`` and ``/v1/images/edits``: pictures, streams
of partial pictures, and errors inside a stream.

* Generations take JSON; edits take multipart: ``image`` (one file) or ``image[]`` (one part per file,
  as the SDK sends a list), optional ``mask``, form fields (checked as ``_edits`` says); every file's
  bytes and content type are recorded in order. ``stream=True`` gives SSE: ``partial_images`` (0-3)
  ``image_generation.partial_image`` (``image_edit.partial_image``) events, then one
  ``image_generation.completed`` (``image_edit.completed``) event, with ``usage``, per image.
* Default answer of the GPT Image models: ``data=[{"b64_json": <valid PNG>}] * n``, ``created``, echoed
  ``size`` / ``quality`` / ``output_format`` / ``background`` and ``usage`` in the GPT Image shape (see
  :func:`default_image_usage`; edits bill 323 input image tokens per input image). The PNG is
  solid-coloured, its colour derived from the prompt, and ``fake.image_dimensions`` pixels (64x64 by
  default; ``None`` means "the requested size"). Stream partials are darker shades of the final colour.
* ``dall-e-*`` models answer like the real legacy API -- only ``created`` and ``data``;
  ``response_format`` defaults to ``"url"`` (served by the fake at ``GET /files/{name}``, outside /v1,
  no auth) and ``"b64_json"`` is honoured; dall-e-3 adds ``revised_prompt``
  (:func:`default_revised_prompt`) and rejects ``n > 1`` with a 400.
* Validation: ``n`` outside 1-10 and ``partial_images`` outside 0-3 -> ``integer_above_max_value`` /
  ``integer_below_min_value``; dall-e-3 with ``n != 1``; missing ``prompt``.
* Scripting, shared by generations and edits: ``fake.script_images(*replies)`` -- each an
  :class:`ImageReply` or a :class:`~loopback.openai_faults.Fault`; then ``fake.image_handler``
  (``(request_json) -> reply | None``; for edits the argument is the dict of non-file form fields, the
  files are on ``fake.requests[-1]``); then the default.
* ``ImageReply(stream_error=moderation_blocked())``: on a streamed request the fake sends the 200
  headers, the partial events (all of them, or ``error_after`` events), then ``event: error`` /
  ``data: {"type": "error", "error": {...}, "sequence_number": N}`` and ends the stream. The SDK raises a
  plain :class:`openai.APIError` while iterating (no ``status_code``), with ``.code`` / ``.type`` /
  ``.param`` and ``.body`` taken from the inner error object. On a non-streamed request the same error
  is the HTTP answer (the Fault itself, or a 400).
* Inspection: ``fake.image_requests`` / ``fake.generation_requests`` / ``fake.edit_requests``;
  ``fake.edit_inputs(request=None)`` -> the bytes of each input image of an edit (default: the last).

Limitations: pictures are always PNG bytes whatever ``output_format`` asks for; ``quality="auto"`` (or
none) is reported as ``"medium"`` and ``background="auto"`` as ``"opaque"``; sizes, masks' dimensions,
``markup`` and unknown generation parameters are not checked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from loopback.fake_openai._edits import edit_error
from loopback.fake_openai._recorded import EDITS_PATH, GENERATIONS_PATH, IMAGE_PATHS, RecordedRequest
from loopback.fake_openai._transport import Transport
from loopback.openai_faults import Fault, inner_error
from loopback.png import make_png

DEFAULT_IMAGE_DIMENSIONS = (64, 64)
# Output tokens billed for a 1024x1024 picture, by quality (low/medium/high as published for GPT Image;
# xhigh/max invented by doubling); other sizes scale by area.
_OUTPUT_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160, "xhigh": 8320, "max": 16640}
# A flat, invented per-input-image charge so edits report non-zero image input tokens.
_INPUT_IMAGE_TOKENS = 323


@dataclass
class ImageReply:
    """A scripted image answer. ``png`` is one picture reused for every ``n``, or one per picture.

    The bytes are sent as-is, so ``ImageReply(png=b"garbage")`` tests a client's handling of a corrupt
    image. ``revised_prompt`` is sent whatever the model (by default only dall-e-3 gets one).

    Streams (``stream=True``): ``partial_pngs`` replaces the generated partial images of each picture
    (any number, fewer than ``partial_images`` included -- the real API may finish early);
    ``partial_delay`` is slept before every event, ``completed_delay`` (when set) before the completed /
    error event instead. ``stream_error`` (a :class:`Fault` -- its JSON body is used -- or an error
    dict, either ``{"error": {...}}`` or the inner object) is sent as an ``error`` event after
    ``error_after`` events (default: all partials of the first picture, in place of its completed
    event), and the stream ends there; on a non-streamed request it is the HTTP answer instead (the
    Fault as-is, a dict as a 400). ``drop_after`` cuts the connection after that many events.
    """

    png: bytes | Sequence[bytes] | None = None
    revised_prompt: str | None = None
    usage: dict[str, Any] | None = None  # replaces the computed GPT Image usage
    omit_usage: bool = False  # answer without `usage`, as some OpenAI-compatible servers do
    partial_pngs: Sequence[bytes] | None = None  # stream: replaces the generated partial images
    partial_delay: float = 0.0  # stream: pause before every event
    completed_delay: float | None = None  # stream: pause before the completed / error event instead
    stream_error: Fault | Mapping[str, Any] | None = None  # stream: an error event instead of completion
    error_after: int | None = None  # stream: events sent before stream_error (None: the partials)
    drop_after: int | None = None  # stream: cut the connection after this many events
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


ImageResult = ImageReply | Fault
ImageHandler = Callable[[dict[str, Any]], ImageResult | Awaitable[ImageResult | None] | None]


def default_revised_prompt(prompt: str) -> str:
    """What dall-e-3 answers as ``revised_prompt`` by default."""
    return f"A carefully detailed rendering of: {prompt}"


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
    text_tokens = max(1, len(prompt.split()))
    image_tokens = _INPUT_IMAGE_TOKENS * input_images
    output_tokens = per_image * n
    return {
        "input_tokens": text_tokens + image_tokens,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
        "output_tokens": output_tokens,
        "output_tokens_details": {"image_tokens": output_tokens, "text_tokens": 0},
        "total_tokens": text_tokens + image_tokens + output_tokens,
    }


def _colour_for(text: str, shade: float = 1.0) -> tuple[int, int, int]:
    """A deterministic colour per prompt, so tests can tell two generated pictures apart."""
    digest = hashlib.sha256(text.encode()).digest()
    r, g, b = (int(c * shade) for c in digest[:3])
    return r, g, b


class ImageRoutes(Transport):
    """Generations, edits and the legacy models' files, with their scripting and inspection; the state
    is set up by ``FakeOpenAI``."""

    image_dimensions: tuple[int, int] | None  # None: the requested size
    max_edit_images: int
    max_edit_image_bytes: int
    max_mask_bytes: int
    image_handler: ImageHandler | None
    _image_queue: list[ImageResult]
    _files: dict[str, bytes]  # served at /files/{name}: the legacy models' ``url`` answers

    def script_images(self, *replies: ImageResult) -> None:
        for reply in replies:
            if not isinstance(reply, ImageReply | Fault):
                raise TypeError(f"script_images takes ImageReply or Fault, not {type(reply).__name__}")
        self._image_queue.extend(replies)

    @property
    def image_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path in IMAGE_PATHS]

    @property
    def generation_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == GENERATIONS_PATH]

    @property
    def edit_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == EDITS_PATH]

    def edit_inputs(self, request: RecordedRequest | None = None) -> list[bytes]:
        """The bytes of each input image of an edit (default: the last edit request), in order."""
        if request is None:
            if not self.edit_requests:
                raise LookupError("no /images/edits request was recorded")
            request = self.edit_requests[-1]
        return [f.data for f in request.edit_images]

    # ---- answers ---------------------------------------------------------------------------------------

    async def _generations(self, request: web.Request) -> web.StreamResponse:
        async def answer(recorded: RecordedRequest) -> web.StreamResponse:
            if not isinstance(recorded.json, dict):
                return self._error(400, "We could not parse the JSON body of your request.")
            return await self._image_answer(request, recorded, dict(recorded.json), edit=False)

        return await self._serve(request, answer)

    async def _edits(self, request: web.Request) -> web.StreamResponse:
        async def answer(recorded: RecordedRequest) -> web.StreamResponse:
            rejected = edit_error(
                recorded,
                max_images=self.max_edit_images,
                max_image_bytes=self.max_edit_image_bytes,
                max_mask_bytes=self.max_mask_bytes,
            )
            if rejected is not None:
                return self._json(rejected.body, rejected.status)
            return await self._image_answer(request, recorded, dict(recorded.form), edit=True)

        return await self._serve(request, answer)

    def _int_param(
        self, params: Mapping[str, Any], name: str, default: int, low: int, high: int
    ) -> int | web.Response:
        """An integer parameter (JSON number or form string) checked against [low, high]."""
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except (TypeError, ValueError):
            return self._error(
                400,
                f"Invalid type for '{name}': expected an integer, but got a string instead.",
                param=name,
                code="invalid_type",
            )
        if value > high:
            return self._error(
                400,
                f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got "
                f"{value} instead.",
                param=name,
                code="integer_above_max_value",
            )
        if value < low:
            return self._error(
                400,
                f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got "
                f"{value} instead.",
                param=name,
                code="integer_below_min_value",
            )
        return value

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
        n = self._int_param(params, "n", 1, 1, 10)
        if isinstance(n, web.Response):
            return n
        if model == "dall-e-3" and n != 1:
            return self._error(400, "You must provide n=1 for this model.", param="n")
        partial_count = self._int_param(params, "partial_images", 0, 0, 3)
        if isinstance(partial_count, web.Response):
            return partial_count
        streaming = str(params.get("stream")).lower() == "true"  # JSON true or multipart "true"

        try:
            result = await self._resolve(self._image_queue, self.image_handler, params, (ImageReply, Fault))
        except Exception as exc:
            self.handler_errors.append(exc)
            return self._error(500, f"fake image_handler raised {exc!r}", "server_error")
        if isinstance(result, Fault):
            return await self._fault(request, result)
        reply = result or ImageReply()
        await self._pause(reply.delay)
        if reply.stream_error is not None and not streaming:
            if isinstance(reply.stream_error, Fault):
                return await self._fault(request, reply.stream_error)
            return self._json({"error": inner_error(reply.stream_error)}, 400, reply.headers)

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
        usage = reply.usage or default_image_usage(
            prompt, size=size, quality=quality, n=len(pngs), input_images=len(recorded.edit_images)
        )
        created = int(time.time())

        if streaming:
            echo = {
                "size": size,
                "quality": quality,
                "background": background,
                "output_format": output_format,
            }
            prefix = "image_edit" if edit else "image_generation"
            events = self._image_events(prefix, reply, pngs, dims, prompt, partial_count, echo, usage)
            return await self._image_stream(request, reply, events)

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
            if reply.omit_usage:
                del body["usage"]
        return self._json(body, headers=reply.headers)

    @staticmethod
    def _image_events(
        prefix: str,
        reply: ImageReply,
        pngs: list[bytes],
        dims: tuple[int, int],
        prompt: str,
        partial_count: int,
        echo: dict[str, Any],
        usage: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """Every event of a successful stream, in order (``created_at`` is stamped when sent)."""
        events: list[dict[str, Any]] = []
        for image_index, png in enumerate(pngs):
            if reply.partial_pngs is not None:
                partials = list(reply.partial_pngs)
            else:  # darker versions of the final colour, brightening towards it
                partials = [
                    make_png(*dims, _colour_for(f"{prompt}#{image_index}", (i + 1) / (partial_count + 1)))
                    for i in range(partial_count)
                ]
            for partial_index, partial in enumerate(partials):
                events.append(
                    {
                        "type": f"{prefix}.partial_image",
                        "b64_json": base64.b64encode(partial).decode(),
                        "created_at": 0,
                        "partial_image_index": partial_index,
                        **echo,
                    }
                )
            completed: dict[str, Any] = {
                "type": f"{prefix}.completed",
                "b64_json": base64.b64encode(png).decode(),
                "created_at": 0,
                "usage": usage,
                **echo,
            }
            if reply.omit_usage:
                del completed["usage"]
            events.append(completed)
        return events

    async def _image_stream(
        self, request: web.Request, reply: ImageReply, events: list[dict[str, Any]]
    ) -> web.StreamResponse:
        error_at: int | None = None
        if reply.stream_error is not None:
            first_completed = next(
                (i for i, e in enumerate(events) if e["type"].endswith(".completed")), len(events)
            )
            error_at = first_completed if reply.error_after is None else min(reply.error_after, len(events))
        final_delay = reply.partial_delay if reply.completed_delay is None else reply.completed_delay
        response = await self._sse(request, reply.headers)

        async def send(event: dict[str, Any]) -> None:
            await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())

        for sent, event in enumerate(events):
            if error_at is not None and sent >= error_at:
                break
            if reply.drop_after is not None and sent >= reply.drop_after:
                self._abort(request)
            await self._pause(final_delay if event["type"].endswith(".completed") else reply.partial_delay)
            await send({**event, "created_at": int(time.time())})
        if error_at is not None and reply.stream_error is not None:
            if reply.drop_after is not None and error_at >= reply.drop_after:
                self._abort(request)
            await self._pause(final_delay)
            # What the Images API sends when a stream fails after its 200 headers, e.g. a moderation
            # block: an `error` event whose data carries the usual error object (shape as captured from
            # a real gpt-image stream: {"type": "error", "error": {...}, "sequence_number": 0}). The SDK
            # raises openai.APIError(body=data["error"]) for any event whose data has an "error" key.
            await send(
                {"type": "error", "error": inner_error(reply.stream_error), "sequence_number": error_at}
            )
        await response.write_eof()
        return response

    # ---- the legacy models' files (GET /files/{name}, outside /v1, no auth) ------------------------------

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
        png = self._files.get(request.match_info["name"])
        if png is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=png, content_type="image/png")
