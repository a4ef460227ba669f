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
  (``stream_options.include_usage`` adds the trailing usage chunk). User content may be a list of parts
  (``{"type": "text"}`` / ``{"type": "image_url", "image_url": {"url", "detail"}}``): vision input.
* ``POST /images/generations`` -- JSON, or ``stream=True`` SSE: ``partial_images`` (0-3)
  ``image_generation.partial_image`` events, then one ``image_generation.completed`` event (with
  ``usage``) per image.
* ``POST /images/edits`` -- multipart: ``image`` (one file) or ``image[]`` (one part per file, as the SDK
  sends a list), optional ``mask``, form fields; every file's bytes and content type are recorded in
  order. Same answer shape as generations; ``stream=true`` gives ``image_edit.partial_image`` /
  ``image_edit.completed`` events.
* ``POST /moderations`` -- ``input`` is a string, a list of strings (one result per string) or a list of
  ``{"type": "text", "text"}`` / ``{"type": "image_url", "image_url": {"url"}}`` parts (classified
  together: one result); optional ``model`` (echoed; ``omni-moderation-latest`` when absent). Answers
  ``{"id": "modr-<32 hex>", "model", "results": [{"flagged", "categories", "category_scores",
  "category_applied_input_types"}]}`` with all 13 categories (``MODERATION_CATEGORIES``), shaped as
  ``openai.types.ModerationCreateResponse`` and the moderation guide's example answer.
  ``fake.moderations_available = False`` turns it into the unknown-route 404 below, as on an
  OpenAI-compatible server without the endpoint (the SDK raises ``NotFoundError``, not retried).
* ``GET /models``, ``GET /models/{id}`` -- the ids in ``fake.models``.
* Any other ``/v1`` URL -- 404 ``Invalid URL (METHOD /v1/...)`` like the real API.
* ``GET /files/{name}`` (outside /v1, no auth) serves PNGs handed out as ``url`` by the legacy models.

Default answers (nothing scripted):

* chat: :func:`default_chat_content` -- ``"[fake-openai] Prompt: <last user message text>"`` (text parts
  only when the content is a list), model echoed, ``finish_reason="stop"``, word-count ``usage`` (plus a
  flat 85 tokens per ``detail="low"`` image and 765 per other image).
* GPT Image models: ``data=[{"b64_json": <valid PNG>}] * n``, ``created``, echoed ``size`` / ``quality`` /
  ``output_format`` / ``background`` and ``usage`` in the GPT Image shape (see
  :func:`default_image_usage`; edits bill 323 input image tokens per input image). The PNG is
  solid-coloured, its colour derived from the prompt, and ``fake.image_dimensions`` pixels (64x64 by
  default; ``None`` means "the requested size"). Stream partials are darker shades of the final colour.
* ``dall-e-*`` models: like the real legacy API -- only ``created`` and ``data``; ``response_format``
  defaults to ``"url"`` (served by this fake) and ``"b64_json"`` is honoured; dall-e-3 adds
  ``revised_prompt`` (:func:`default_revised_prompt`) and rejects ``n > 1`` with a 400.
* moderations: flagged when a text contains ``FLAG:<category>`` (e.g. ``"FLAG:self-harm/intent"``), or an
  image is a PNG whose every pixel has a colour of ``fake.moderation_image_markers`` (alpha ignored;
  pure red (255, 0, 0) -> ``sexual``, pure magenta (255, 0, 255) -> ``violence``; image-capable
  categories only). Each string of a list is judged on its own. Flagged categories score 0.9, the others
  0.0001. ``category_applied_input_types`` lists, per category, the input's types it supports (text: all
  of them; image: ``sexual``, ``self-harm*``, ``violence*``); a category that does not apply (a
  text-only one on an image-only input) gets ``[]`` and scores 0.0, as the moderation guide says.

Request validation (400s in the real ``{"error": {...}}`` shape; see each message's source in the code):

* chat: an ``image_url`` part sent to a model not in ``fake.vision_models`` (``None``, the default,
  means every model takes images) -> ``"Invalid content type. image_url is only supported by certain
  models."``, ``param="messages.[i].content.[j].type"``, ``code=None``. A ``data:`` URL that is not
  base64 png/jpeg/gif/webp -> ``code="invalid_image_format"``. ``http(s)`` URLs are accepted unchecked.
* edits: an unknown form field (``moderation`` included: only generations take it) ->
  ``code="unknown_parameter"``; more than ``fake.max_edit_images`` (16) images ->
  ``code="array_above_max_length"``; a file whose part content type is missing / not
  ``image/png|jpeg|webp`` -> ``missing_file_mimetype`` / ``unsupported_file_mimetype`` (the real API
  trusts the declared type: the SDK sends bare ``bytes`` as ``application/octet-stream`` and they are
  rejected); bytes that are not a png/jpeg/webp -> ``invalid_image_file``; a file over
  ``fake.max_edit_image_bytes`` (50 MB) -> ``image_file_too_large``; a ``mask`` that is not a
  ``image/png`` PNG or is over ``fake.max_mask_bytes`` (4 MB) -> the same codes.
* images: ``n`` outside 1-10 and ``partial_images`` outside 0-3 -> ``integer_above_max_value`` /
  ``integer_below_min_value``; dall-e-3 with ``n != 1``; missing ``prompt`` / ``image``.
* moderations: more image parts than ``fake.max_moderation_images`` (1) -> ``"Number of images (2)
  exceeds maximum of 1"``, ``param="input"``, ``code="too_many_images"`` (a real answer); a ``data:`` URL
  that is not base64 png/jpeg/gif/webp -> ``invalid_image_format``; missing ``input``, an empty or mixed
  list, an unknown part type or a part without its ``text`` / ``image_url``.

Scripting (per request kind, consumed in order, one request each; then the defaults resume):

* ``fake.script_chat(*replies)`` -- each a ``str`` (assistant content), a :class:`Reply` or a :class:`Fault`.
  ``Reply`` fields: content, finish_reason, refusal, tool_calls, usage, model, and for streams chunks,
  chunk_delay and drop_after_chunks (cut the connection mid-stream); delay, headers.
* ``fake.script_images(*replies)`` -- each an :class:`ImageReply` or a :class:`Fault`; shared by
  generations and edits. ``ImageReply`` fields: png (one or one per picture; any bytes, so corrupt images
  can be tested), revised_prompt, usage, delay, headers, and for streams: partial_pngs (replaces the
  generated partials -- fewer than ``partial_images`` is allowed, as the real API may finish early),
  partial_delay (pause before every stream event, e.g. to measure time to first preview),
  completed_delay (pause before the completed / error event instead), stream_error with error_after
  (an error event mid-stream, below) and drop_after (cut the connection after that many events).
* ``ImageReply(stream_error=moderation_blocked())`` -- on a streamed request the fake sends the 200
  headers, the partial events (all of them, or ``error_after`` events), then
  ``event: error`` / ``data: {"type": "error", "error": {...}, "sequence_number": N}`` and ends the
  stream. The SDK raises a plain :class:`openai.APIError` while iterating (no ``status_code``), with
  ``.code`` / ``.type`` / ``.param`` and ``.body`` taken from the inner error object. ``stream_error``
  takes a :class:`Fault` (its JSON body is used) or an error dict. On a non-streamed request the same
  error is the HTTP answer (the Fault itself, or a 400).
* ``fake.script_moderations(*replies)`` -- each a :class:`ModerationReply` or a :class:`Fault`.
  ``ModerationReply`` fields: flagged_categories (the ``true`` ones; ``ModerationReply()`` is an unflagged
  answer even for marker text), scores (per-category overrides), model, delay, headers. One reply gives
  the same verdict to every result of its request; to flag one string of a list, use the marker instead.
* ``fake.chat_handler`` / ``fake.image_handler`` / ``fake.moderation_handler`` -- optional callables ``(request_json) -> reply | None``
  (sync or async) consulted when the queue is empty; ``None`` falls back to the default. For edits the
  argument is the dict of non-file form fields (the files are on ``fake.requests[-1]``). An exception in
  a handler becomes a 500 answer and is appended to ``fake.handler_errors``.
* ``fake.latency`` -- seconds added before every answer (``Reply.delay`` / ``Fault.delay`` add more).
* ``fake.image_dimensions`` -- ``(width, height)`` of generated PNGs, or ``None`` for the requested size.
* ``fake.models`` -- ids listed by ``GET /models``; ``fake.vision_models`` -- see validation above.
* ``fake.max_edit_images`` / ``fake.max_edit_image_bytes`` / ``fake.max_mask_bytes`` -- edit limits
  (lower them to test the too-large path without uploading 50 MB).
* ``fake.moderations_available`` (``True``), ``fake.max_moderation_images`` (1),
  ``fake.moderation_image_markers`` (``{(r, g, b): category}``) -- see above.

Faults (module-level helpers returning :class:`Fault`, bodies in the real ``{"error": {"message", "type",
"param", "code"}}`` shape): :func:`rate_limited`, :func:`insufficient_quota`, :func:`server_error`,
:func:`moderation_blocked`, :func:`content_policy_violation`, :func:`model_not_found`,
:func:`unauthorized`, :func:`permission_denied`, :func:`bad_request`, :func:`hang` (never answers until
the client gives up) and :func:`drop` (closes the connection without an answer). ``Fault(status, body,
headers, delay)`` covers anything else. Remember the SDK retries 408/409/429/5xx and connection errors
``max_retries`` times (2 by default), so each retry consumes another scripted entry. An error event
inside a 200 stream is never retried by the SDK.

Inspection:

* ``fake.requests`` -- every ``/v1`` request as a :class:`RecordedRequest` (method, path, json, headers,
  form, files, received_at, query), including rejected ones. ``RecordedRequest.chat_images`` lists the
  image parts of a chat request as :class:`ChatImage` (indexes, url, detail, decoded media_type / data);
  ``RecordedRequest.edit_images`` / ``.edit_mask`` the uploaded files of an edit;
  ``RecordedRequest.moderation_items`` the inputs of a moderations request as :class:`ModerationItem`
  (index, kind ``"text"`` / ``"image"``, text, url, decoded media_type / data).
* ``fake.edit_inputs(request=None)`` -> the bytes of each input image of an edit (default: the last
  edit), in order; ``fake.chat_image_inputs(request=None)`` -> the decoded bytes of each ``data:`` URL
  image of a chat request (default: the last chat request); ``fake.moderation_inputs(request=None)`` ->
  the inputs of a moderations request (default: the last one) in order, each text as ``str`` and each
  image as its decoded ``bytes``.
* ``fake.chat_requests`` / ``fake.image_requests`` / ``fake.generation_requests`` /
  ``fake.edit_requests`` / ``fake.moderation_requests`` -- filtered views (a moderations request
  answered 404 because ``moderations_available`` is off is recorded too).
* ``fake.calls(path)`` -- how many requests hit a path (``"/chat/completions"`` or ``"/v1/..."``).
* ``await fake.wait_for_calls(path, count)`` -- wait until a background task has made its calls.
* ``fake.in_flight`` / ``fake.peak_in_flight`` -- concurrency, to check a bot's own limits.
* ``fake.pending()`` -- scripted replies not consumed yet (``{"chat", "images", "moderations"}``);
  ``fake.reset()`` clears requests, scripts and handlers.

Helpers: :func:`make_png` writes a real PNG with zlib + struct only, :func:`png_dimensions` reads one back,
:func:`sniff_image_format` names png/jpeg/webp/gif bytes, :func:`decode_data_url` decodes a base64
``data:`` URL, :func:`chat_images` lists the image parts of a chat request body, :func:`png_solid_colour`
gives the colour of a one-colour PNG (any filters, as Pillow writes them), :func:`moderation_items` lists
the inputs of a moderations request body.

Limitations: images are always PNG bytes whatever ``output_format`` asks for; ``quality="auto"`` (or
none) is reported as ``"medium"`` and ``background="auto"`` as ``"opaque"``; no validation beyond the
list above (sizes, masks' dimensions, ``markup`` and unknown generation / chat params are not checked);
remote image URLs are never fetched (so never flagged by default); moderation scores are invented
constants and every model answers the omni-moderation shape (the legacy ``text-moderation-*`` models
lack ``illicit*`` and refuse images); the 20 MB image limit of moderations is not checked; token counts are deterministic approximations (word counts), not
real tokenizer output; only the routes above exist. Where the real API's exact wording is not known
(noted at each error in the code) the message is a close guess in the same shape.
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
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "ChatHandler",
    "ChatImage",
    "FakeOpenAI",
    "Fault",
    "ImageHandler",
    "ImageReply",
    "ModerationHandler",
    "ModerationItem",
    "ModerationReply",
    "RecordedFile",
    "RecordedRequest",
    "Reply",
    "bad_request",
    "chat_images",
    "content_policy_violation",
    "decode_data_url",
    "default_chat_content",
    "default_image_usage",
    "default_revised_prompt",
    "drop",
    "hang",
    "insufficient_quota",
    "last_user_text",
    "make_png",
    "model_not_found",
    "moderation_blocked",
    "moderation_items",
    "permission_denied",
    "png_dimensions",
    "png_solid_colour",
    "rate_limited",
    "server_error",
    "sniff_image_format",
    "unauthorized",
]

CHAT_PATH = "/v1/chat/completions"
GENERATIONS_PATH = "/v1/images/generations"
EDITS_PATH = "/v1/images/edits"
IMAGE_PATHS = (GENERATIONS_PATH, EDITS_PATH)
MODERATIONS_PATH = "/v1/moderations"

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
# Chat vision input tokens per image: 85 is the published flat cost of detail="low"; 765 is what a
# 1024x1024 picture costs at high detail (85 + 4 tiles x 170). Used for every other detail value.
_CHAT_IMAGE_TOKENS_LOW = 85
_CHAT_IMAGE_TOKENS = 765

# /images/edits: the form fields the SDK's images.edit() can send (image_edit_params.py, openai 3.57).
# Anything else -- notably ``moderation``, which only generations take -- is an unknown parameter.
EDIT_FORM_FIELDS = frozenset(
    {
        "prompt",
        "background",
        "complexity",
        "frame_count",
        "frame_duration_ms",
        "input_fidelity",
        "model",
        "n",
        "output_compression",
        "output_format",
        "partial_images",
        "quality",
        "response_format",
        "safety_identifier",
        "size",
        "stream",
        "user",
    }
)
EDIT_FILE_FIELDS = frozenset({"image", "image[]", "mask", "markup"})
EDIT_IMAGE_FIELDS = ("image", "image[]")
EDIT_IMAGE_MIME_TYPES = ("image/jpeg", "image/png", "image/webp")
MAX_EDIT_IMAGES = 16
MAX_EDIT_IMAGE_BYTES = 50 * 1024 * 1024  # "each image should be a png, webp, or jpg file less than 50MB"
MAX_MASK_BYTES = 4 * 1024 * 1024  # "Must be a valid PNG file, less than 4MB"

# /moderations: every category of omni-moderation-latest, in the order of the moderation guide's example
# answer, and the input types each one applies to (the guide's "Review supported categories" table,
# https://developers.openai.com/api/docs/guides/moderation; also moderation.py in the SDK, where the
# text-only ones are typed List[Literal["text"]]).
MODERATION_CATEGORIES = (
    "sexual",
    "sexual/minors",
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "violence",
    "violence/graphic",
)
MODERATION_IMAGE_CATEGORIES = frozenset(
    {
        "sexual",
        "self-harm",
        "self-harm/intent",
        "self-harm/instructions",
        "violence",
        "violence/graphic",
    }
)
DEFAULT_MODERATION_MODEL = "omni-moderation-latest"
# Default rule: text containing "FLAG:<category>" is flagged for that category ...
MODERATION_FLAG_MARKER = "FLAG:"
# ... and an image that is a PNG of one solid marker colour (alpha ignored) for the category named here.
# Only image-capable categories (above) can be flagged from an image, as with the real model.
DEFAULT_MODERATION_IMAGE_MARKERS: Mapping[tuple[int, int, int], str] = {
    (255, 0, 0): "sexual",  # pure red
    (255, 0, 255): "violence",  # pure magenta
}
MODERATION_FLAGGED_SCORE = 0.9  # category_scores of a flagged category (invented)
MODERATION_BASELINE_SCORE = 0.0001  # of the others (invented); 0.0 where the category does not apply
MAX_MODERATION_IMAGES = 1  # "Number of images (2) exceeds maximum of 1" -- see _moderation_answer


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


def _unfilter_row(filter_type: int, raw: bytes, prev: bytes, bpp: int) -> bytes:
    """Undo one PNG scanline filter (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth)."""
    if filter_type == 0:
        return raw
    # Fast paths for what encoders choose for flat areas: Up with an all-zero row repeats the row
    # above, Sub with all zeros after the first pixel repeats that pixel.
    if filter_type == 2 and not raw.strip(b"\x00"):
        return prev
    if filter_type == 1 and not raw[bpp:].strip(b"\x00"):
        return raw[:bpp] * (len(raw) // bpp)
    if filter_type not in (1, 2, 3, 4):
        raise ValueError(f"unknown PNG filter type {filter_type}")
    out = bytearray(len(raw))
    for i, x in enumerate(raw):
        a = out[i - bpp] if i >= bpp else 0
        b = prev[i]
        if filter_type == 1:
            predicted = a
        elif filter_type == 2:
            predicted = b
        elif filter_type == 3:
            predicted = (a + b) >> 1
        else:
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            predicted = a if pa <= pb and pa <= pc else b if pb <= pc else c
        out[i] = (x + predicted) & 0xFF
    return bytes(out)


def png_solid_colour(data: bytes) -> tuple[int, int, int] | None:
    """The RGB colour of a PNG whose every pixel has that colour (alpha ignored), else ``None``.

    Reads every non-interlaced PNG -- greyscale, RGB, palette, grey+alpha, RGBA; 1- to 16-bit; any
    scanline filters -- so pictures written by Pillow (which filters adaptively and stores a one-colour
    palette image at 1 bit) or by :func:`make_png` both work. 16-bit samples are read by their high
    byte. ``None`` as well for anything it cannot read: not a PNG, interlaced, truncated.
    """
    if not data.startswith(PNG_SIGNATURE):
        return None
    pos, header, palette, idat = 8, b"", b"", bytearray()
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if tag == b"IHDR":
            header = body
        elif tag == b"PLTE":
            palette = body
        elif tag == b"IDAT":
            idat += body
        elif tag == b"IEND":
            break
    if len(header) != 13:
        return None
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour_type)
    if channels is None or depth not in (1, 2, 4, 8, 16) or interlace != 0 or width == 0 or height == 0:
        return None
    bits = channels * depth
    bpp, stride = max(1, bits // 8), (width * bits + 7) // 8
    try:
        pixels = zlib.decompress(bytes(idat))
    except zlib.error:
        return None
    if len(pixels) < (stride + 1) * height:
        return None
    prev, first = bytes(stride), b""
    try:
        for y in range(height):
            start = y * (stride + 1)
            row = _unfilter_row(pixels[start], pixels[start + 1 : start + 1 + stride], prev, bpp)
            if y == 0:
                first = row
                if depth >= 8 and row != row[:bpp] * width:
                    return None
            elif row != first:
                return None
            prev = row
    except ValueError:
        return None
    if depth < 8:  # greyscale or palette packed several pixels a byte: unpack the first row
        per_byte, mask = 8 // depth, (1 << depth) - 1
        samples = [(byte >> (8 - depth * (k + 1))) & mask for byte in first for k in range(per_byte)]
        if len(set(samples[:width])) != 1:
            return None
        sample = samples[0]
    else:
        if first != first[:bpp] * width:
            return None
        sample = first[0]
    if colour_type == 3:
        if sample * 3 + 3 > len(palette):
            return None
        return palette[sample * 3], palette[sample * 3 + 1], palette[sample * 3 + 2]
    if colour_type in (0, 4):
        grey = sample * 255 // ((1 << depth) - 1) if depth < 8 else sample
        return grey, grey, grey
    step = depth // 8  # RGB / RGBA: the (high) byte of each sample
    return first[0], first[step], first[2 * step]


def sniff_image_format(data: bytes) -> str | None:
    """``"png"``, ``"jpeg"``, ``"webp"`` or ``"gif"`` from the file's magic bytes; ``None`` otherwise."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


_DATA_URL = re.compile(r"data:(?P<media>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<payload>.*)", re.DOTALL)


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``(media_type, bytes)`` of a base64 ``data:`` URL; ValueError for anything else (incl. bad base64)."""
    match = _DATA_URL.fullmatch(url)
    if match is None or "base64" not in match["params"].lower().split(";"):
        raise ValueError(f"not a base64 data URL: {url[:40]!r}")
    return match["media"].lower(), base64.b64decode(match["payload"], validate=True)


_FLAG_PATTERN = re.compile(re.escape(MODERATION_FLAG_MARKER) + r"([a-z/-]+)")


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


@dataclass
class ModerationReply:
    """A scripted ``/moderations`` verdict, applied to every result of the request it answers.

    ``flagged_categories`` are the categories answered ``true`` (any others are ``false``; an empty
    reply is an unflagged one, even for text carrying a ``FLAG:`` marker); the result's ``flagged`` is
    true when any is. ``scores`` replaces ``category_scores`` per category (flagged ones default to 0.9, the rest to
    0.0001, or 0.0 where the category does not apply to the input's types); it does not flag anything
    by itself. ``model`` replaces the echoed model. Unknown category names raise ``ValueError``.
    """

    flagged_categories: Collection[str] = ()
    scores: Mapping[str, float] | None = None
    model: str | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.flagged_categories, str):
            self.flagged_categories = (self.flagged_categories,)
        unknown = sorted(set(self.flagged_categories).union(self.scores or {}) - set(MODERATION_CATEGORIES))
        if unknown:
            raise ValueError(f"unknown moderation categories {unknown}; known: {list(MODERATION_CATEGORIES)}")


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


def _inner_error(error: Fault | Mapping[str, Any]) -> dict[str, Any]:
    """The inner ``{"message", "type", "param", "code"}`` object of a Fault's body or an error dict."""
    body: Any = error.body if isinstance(error, Fault) else error
    if not isinstance(body, Mapping):
        status = error.status if isinstance(error, Fault) else 500
        body = _error_body(f"Error {status}", "server_error")
    inner = body.get("error")
    return dict(inner) if isinstance(inner, Mapping) else dict(body)


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
    """400 from a GPT Image model's safety system (not retried).

    Body as captured live from ``POST /v1/images/generations`` (2026-09), ``moderation_details``
    included. Also usable as ``ImageReply(stream_error=moderation_blocked())`` for the in-stream variant.
    """
    message = (
        "Your request was rejected by the safety system. If you believe this is an error, contact us at "
        "help.openai.com and include the request ID req_fake."
    )
    body = _error_body(message, "image_generation_user_error", "moderation_blocked")
    body["error"]["moderation_details"] = {"moderation_stage": "input", "categories": ["other"]}
    return Fault(400, body)


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


@dataclass(frozen=True)
class ChatImage:
    """One ``image_url`` part of a chat request. ``data`` / ``media_type`` are decoded from a base64
    ``data:`` URL (``None`` for a remote URL or an undecodable one)."""

    message_index: int
    part_index: int
    url: str
    detail: str | None
    media_type: str | None
    data: bytes | None


def chat_images(request_json: Mapping[str, Any] | None) -> list[ChatImage]:
    """The ``image_url`` parts of a chat completion request body, in message / part order."""
    found: list[ChatImage] = []
    messages = (request_json or {}).get("messages") or []
    for message_index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part_index, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "image_url":
                continue
            image_url = part.get("image_url")
            url = str(image_url.get("url", "")) if isinstance(image_url, dict) else str(image_url or "")
            detail = image_url.get("detail") if isinstance(image_url, dict) else None
            media_type: str | None = None
            data: bytes | None = None
            with contextlib.suppress(ValueError):
                media_type, data = decode_data_url(url)
            found.append(ChatImage(message_index, part_index, url, detail, media_type, data))
    return found


@dataclass(frozen=True)
class ModerationItem:
    """One input of a ``/moderations`` request: a string of a string list, or one part of a list of parts.

    ``kind`` is ``"text"`` or ``"image"``. For images, ``data`` / ``media_type`` are decoded from a base64
    ``data:`` URL (``None`` for a remote URL or an undecodable one).
    """

    index: int  # position in ``input`` (0 for a plain string)
    kind: str
    text: str | None = None
    url: str | None = None
    media_type: str | None = None
    data: bytes | None = None


def moderation_items(request_json: Mapping[str, Any] | None) -> list[ModerationItem]:
    """The inputs of a ``/moderations`` request body, in order (malformed entries are skipped)."""
    raw = (request_json or {}).get("input")
    entries = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    found: list[ModerationItem] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            found.append(ModerationItem(index, "text", text=entry))
        elif isinstance(entry, dict) and entry.get("type") == "text":
            found.append(ModerationItem(index, "text", text=str(entry.get("text", ""))))
        elif isinstance(entry, dict) and entry.get("type") == "image_url":
            image_url = entry.get("image_url")
            url = str(image_url.get("url", "")) if isinstance(image_url, dict) else str(image_url or "")
            media_type: str | None = None
            data: bytes | None = None
            with contextlib.suppress(ValueError):
                media_type, data = decode_data_url(url)
            found.append(ModerationItem(index, "image", url=url, media_type=media_type, data=data))
    return found


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

    @property
    def chat_images(self) -> list[ChatImage]:
        """Image parts of a chat request (empty for anything else)."""
        return chat_images(self.json) if isinstance(self.json, dict) else []

    @property
    def edit_images(self) -> list[RecordedFile]:
        """The ``image`` / ``image[]`` files of an edit request, in the order they were sent."""
        return [f for f in self.files if f.field in EDIT_IMAGE_FIELDS]

    @property
    def edit_mask(self) -> RecordedFile | None:
        return next((f for f in self.files if f.field == "mask"), None)

    @property
    def moderation_items(self) -> list[ModerationItem]:
        """The inputs of a moderations request (empty for anything else)."""
        return (
            moderation_items(self.json)
            if self.path == MODERATIONS_PATH and isinstance(self.json, dict)
            else []
        )


ChatResult = str | Reply | Fault
ImageResult = ImageReply | Fault
ChatHandler = Callable[[dict[str, Any]], ChatResult | Awaitable[ChatResult | None] | None]
ImageHandler = Callable[[dict[str, Any]], ImageResult | Awaitable[ImageResult | None] | None]
ModerationResult = ModerationReply | Fault
ModerationHandler = Callable[[dict[str, Any]], ModerationResult | Awaitable[ModerationResult | None] | None]


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
        vision_models: set[str] | None = None,
    ) -> None:
        self.latency = latency
        self.image_dimensions = image_dimensions
        self.api_key = api_key  # None: any non-empty bearer token is accepted
        self.models = list(models)
        self.vision_models = vision_models  # None: every chat model accepts image parts
        self.max_edit_images = MAX_EDIT_IMAGES
        self.max_edit_image_bytes = MAX_EDIT_IMAGE_BYTES
        self.max_mask_bytes = MAX_MASK_BYTES
        self.moderations_available = True  # False: /moderations answers the unknown-route 404
        self.max_moderation_images = MAX_MODERATION_IMAGES
        self.moderation_image_markers: dict[tuple[int, int, int], str] = dict(
            DEFAULT_MODERATION_IMAGE_MARKERS
        )
        self.chat_handler: ChatHandler | None = None
        self.image_handler: ImageHandler | None = None
        self.moderation_handler: ModerationHandler | None = None
        self.requests: list[RecordedRequest] = []
        self.handler_errors: list[BaseException] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._chat_queue: list[ChatResult] = []
        self._image_queue: list[ImageResult] = []
        self._moderation_queue: list[ModerationResult] = []
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
        # Room for 16 images of up to 50 MB each, so the size checks below answer, not aiohttp's 413.
        app = web.Application(middlewares=[self._errors_middleware], client_max_size=1024 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/images/generations", self._generations)
        app.router.add_post("/v1/images/edits", self._edits)
        app.router.add_post("/v1/moderations", self._moderations)
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

    def script_moderations(self, *replies: ModerationResult) -> None:
        for reply in replies:
            if not isinstance(reply, ModerationReply | Fault):
                raise TypeError(
                    f"script_moderations takes ModerationReply or Fault, not {type(reply).__name__}"
                )
        self._moderation_queue.extend(replies)

    def pending(self) -> dict[str, int]:
        """Scripted replies not consumed yet -- a test can assert its script was fully used."""
        return {
            "chat": len(self._chat_queue),
            "images": len(self._image_queue),
            "moderations": len(self._moderation_queue),
        }

    def reset(self) -> None:
        self.requests.clear()
        self.handler_errors.clear()
        self._chat_queue.clear()
        self._image_queue.clear()
        self._moderation_queue.clear()
        self.chat_handler = None
        self.image_handler = None
        self.moderation_handler = None
        self.peak_in_flight = self.in_flight

    # ---- inspection ------------------------------------------------------------------------------------

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == CHAT_PATH]

    @property
    def image_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path in IMAGE_PATHS]

    @property
    def generation_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == GENERATIONS_PATH]

    @property
    def edit_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == EDITS_PATH]

    @property
    def moderation_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == MODERATIONS_PATH]

    def edit_inputs(self, request: RecordedRequest | None = None) -> list[bytes]:
        """The bytes of each input image of an edit (default: the last edit request), in order."""
        if request is None:
            if not self.edit_requests:
                raise LookupError("no /images/edits request was recorded")
            request = self.edit_requests[-1]
        return [f.data for f in request.edit_images]

    def chat_image_inputs(self, request: RecordedRequest | None = None) -> list[bytes]:
        """The decoded bytes of each image part of a chat request (default: the last chat request).

        ValueError if an image is not a base64 ``data:`` URL (the fake never fetches remote URLs).
        """
        if request is None:
            if not self.chat_requests:
                raise LookupError("no /chat/completions request was recorded")
            request = self.chat_requests[-1]
        decoded: list[bytes] = []
        for image in request.chat_images:
            if image.data is None:
                raise ValueError(
                    f"image part {image.part_index} is not a base64 data URL: {image.url[:60]!r}"
                )
            decoded.append(image.data)
        return decoded

    def moderation_inputs(self, request: RecordedRequest | None = None) -> list[str | bytes]:
        """The inputs of a moderations request (default: the last one), in order: each text as ``str``,
        each image as its decoded bytes. ValueError for an image that is not a base64 ``data:`` URL.
        """
        if request is None:
            if not self.moderation_requests:
                raise LookupError("no /moderations request was recorded")
            request = self.moderation_requests[-1]
        inputs: list[str | bytes] = []
        for item in request.moderation_items:
            if item.kind == "text":
                inputs.append(item.text or "")
            elif item.data is None:
                raise ValueError(f"input {item.index} is not a base64 data URL: {(item.url or '')[:60]!r}")
            else:
                inputs.append(item.data)
        return inputs

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
        images = chat_images(params)
        rejected = self._vision_error(params, images)
        if rejected is not None:
            return rejected
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
        ) + sum(_CHAT_IMAGE_TOKENS_LOW if i.detail == "low" else _CHAT_IMAGE_TOKENS for i in images)
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

    def _vision_error(self, params: Mapping[str, Any], images: list[ChatImage]) -> web.Response | None:
        """400 for image parts the real API would refuse, else None."""
        model = str(params.get("model") or "")
        for image in images:
            if self.vision_models is not None and model not in self.vision_models:
                # Exact body OpenAI answers a text-only model (e.g. gpt-3.5-turbo), as quoted in
                # vllm-project/vllm#11629 and browser-use/web-ui#274: code is null, param is the path.
                return self._error(
                    400,
                    "Invalid content type. image_url is only supported by certain models.",
                    param=f"messages.[{image.message_index}].content.[{image.part_index}].type",
                )
            if image.url.startswith("data:") and (
                image.data is None or sniff_image_format(image.data) is None
            ):
                # Message as reported by users of the real API (marketing-factory/ai-filemetadata#20,
                # CosmosShadow/gptpdf#6); the code has varied over time (sanitizer_server_error in 2024),
                # invalid_image_format is the current one as far as known -- not verified live.
                return self._error(
                    400,
                    "You uploaded an unsupported image. Please make sure your image has of one the "
                    "following formats: ['png', 'jpeg', 'gif', 'webp'].",
                    code="invalid_image_format",
                )
        return None

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
            rejected = self._edit_error(recorded)
            if rejected is not None:
                return rejected
            return await self._image_answer(request, recorded, dict(recorded.form), edit=True)

        return await self._serve(request, answer)

    def _edit_error(self, recorded: RecordedRequest) -> web.Response | None:
        """400 for an edit request the real API would refuse, else None.

        Sources of the bodies: ``unknown_parameter`` (moderation on edits) as answered by the real API
        and quoted by several projects' fallback tests; ``unsupported_file_mimetype`` /
        ``missing_file_mimetype`` from openai-node#1468, anasfik/openai#216, go-openai#1012 (the API
        looks at the part's Content-Type, not at the bytes or the file name); ``invalid_image_file``
        ("Invalid image file or mode for image N") from QuantumNous/new-api#1159; the
        ``array_above_max_length`` wording is OpenAI's generic one for arrays. The too-large message
        and code and the mask wording are guesses in the same style (no real sample found).
        """
        for name in recorded.form:
            if name in EDIT_IMAGE_FIELDS or name == "mask":
                # A string where a file belongs (openai-ruby#147).
                return self._error(
                    400,
                    f"Invalid type for '{name}': expected one of an array of files or file, but got a "
                    "string instead.",
                    param=name,
                    code="invalid_type",
                )
            if name not in EDIT_FORM_FIELDS and not name.startswith("svg["):
                return self._error(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
        for file in recorded.files:
            if file.field not in EDIT_FILE_FIELDS:
                return self._error(
                    400, f"Unknown parameter: '{file.field}'.", param=file.field, code="unknown_parameter"
                )

        images = recorded.edit_images
        if not images:
            return self._error(
                400, "Missing required parameter: 'image'.", param="image", code="missing_required_parameter"
            )
        if len(images) > self.max_edit_images:
            return self._error(
                400,
                f"Invalid 'image': array too long. Expected an array with maximum length "
                f"{self.max_edit_images}, but got an array with length {len(images)} instead.",
                param="image",
                code="array_above_max_length",
            )
        bracket_index = 0
        for position, file in enumerate(images, start=1):
            if file.field == "image[]":
                name, bracket_index = f"image[{bracket_index}]", bracket_index + 1
            else:
                name = "image"
            rejected = self._edit_file_error(
                file,
                name,
                EDIT_IMAGE_MIME_TYPES,
                self.max_edit_image_bytes,
                f"image {position}",
            )
            if rejected is not None:
                return rejected
        mask = recorded.edit_mask
        if mask is not None:
            return self._edit_file_error(mask, "mask", ("image/png",), self.max_mask_bytes, "mask")
        return None

    def _edit_file_error(
        self, file: RecordedFile, name: str, mime_types: Sequence[str], max_bytes: int, label: str
    ) -> web.Response | None:
        content_type = (file.content_type or "").split(";")[0].strip().lower()
        if not content_type:
            return self._error(
                400,
                f"Invalid file '{name}': failed to determine mimetype. Ensure you are providing the file's "
                "mimetype as part of the 'Content-Type' header.",
                param=name,
                code="missing_file_mimetype",
            )
        if content_type not in mime_types:
            quoted = [f"'{m}'" for m in mime_types]
            listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
            return self._error(
                400,
                f"Invalid file '{name}': unsupported mimetype ('{content_type}'). Supported file formats "
                f"are {listed}.",
                param=name,
                code="unsupported_file_mimetype",
            )
        if len(file.data) > max_bytes:
            return self._error(  # wording and code guessed: no real sample found
                400,
                f"Invalid file '{name}': file too large ({len(file.data)} bytes). The maximum size is "
                f"{max_bytes // (1024 * 1024)} MB.",
                param=name,
                code="image_file_too_large",
            )
        allowed = {m.removeprefix("image/") for m in mime_types}
        if sniff_image_format(file.data) not in allowed:
            return self._error(
                400,
                f"Invalid image file or mode for {label}, please check your image file.",
                param=name,
                code="invalid_image_file",
            )
        return None

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
            return self._json({"error": _inner_error(reply.stream_error)}, 400, reply.headers)

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
                {"type": "error", "error": _inner_error(reply.stream_error), "sequence_number": error_at}
            )
        await response.write_eof()
        return response

    # ---- moderations ------------------------------------------------------------------------------------

    async def _moderations(self, request: web.Request) -> web.StreamResponse:
        if not self.moderations_available:
            # What an OpenAI-compatible server without the endpoint answers: the catch-all 404.
            return await self._unknown(request)
        return await self._serve(request, lambda recorded: self._moderation_answer(request, recorded))

    def _moderation_input_error(self, params: Mapping[str, Any]) -> web.Response | None:
        """400 for an ``input`` the real API would refuse (wording: see each branch), else None."""
        if "input" not in params or params["input"] is None:
            return self._error(
                400, "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
            )
        raw = params["input"]
        if isinstance(raw, str):
            return None
        # The shapes below cannot come from the typed SDK; messages follow the API's usual validation
        # wording, not verified live for this endpoint.
        if not isinstance(raw, list) or not (
            all(isinstance(e, str) for e in raw) or all(isinstance(e, dict) for e in raw)
        ):
            return self._error(
                400,
                "Invalid type for 'input': expected one of a string, an array of strings, or an array of "
                "objects, but got something else instead.",
                param="input",
                code="invalid_type",
            )
        if not raw:
            return self._error(
                400,
                "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty "
                "array instead.",
                param="input",
                code="empty_array",
            )
        images = 0
        for index, part in enumerate(raw):
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                continue
            image_url = part.get("image_url")
            if kind == "image_url" and isinstance(image_url, dict) and isinstance(image_url.get("url"), str):
                images += 1
                continue
            if kind not in ("text", "image_url"):
                return self._error(
                    400,
                    f"Invalid value: '{kind}'. Supported values are: 'text' and 'image_url'.",
                    param=f"input[{index}].type",
                    code="invalid_value",
                )
            field_name = "text" if kind == "text" else "image_url"
            return self._error(
                400,
                f"Missing required parameter: 'input[{index}].{field_name}'.",
                param=f"input[{index}].{field_name}",
                code="missing_required_parameter",
            )
        if images > self.max_moderation_images:
            # Exact body the real endpoint answered two image parts with (omni-moderation-latest, as
            # quoted in antiwork/gumroad#4709, 2026-04).
            return self._error(
                400,
                f"Number of images ({images}) exceeds maximum of {self.max_moderation_images}",
                param="input",
                code="too_many_images",
            )
        for item in moderation_items(params):
            undecodable = item.data is None or sniff_image_format(item.data) is None
            if item.kind == "image" and (item.url or "").startswith("data:") and undecodable:
                # The chat completions wording for the same mistake; not verified for this endpoint.
                return self._error(
                    400,
                    "You uploaded an unsupported image. Please make sure your image has of one the "
                    "following formats: ['png', 'jpeg', 'gif', 'webp'].",
                    param="input",
                    code="invalid_image_format",
                )
        return None

    def _default_moderation_flags(self, items: Sequence[ModerationItem]) -> set[str]:
        """The default rule: ``FLAG:<category>`` in a text, a marker-coloured PNG for an image category."""
        flagged: set[str] = set()
        for item in items:
            if item.kind == "text":
                for name in _FLAG_PATTERN.findall(item.text or ""):
                    name = name.rstrip("/-")
                    if name in MODERATION_CATEGORIES:
                        flagged.add(name)
            elif item.data is not None:
                colour = png_solid_colour(item.data)
                category = self.moderation_image_markers.get(colour) if colour is not None else None
                if category in MODERATION_IMAGE_CATEGORIES:
                    flagged.add(category)
        return flagged

    @staticmethod
    def _moderation_result(
        items: Sequence[ModerationItem], flagged: Collection[str], scores: Mapping[str, float]
    ) -> dict[str, Any]:
        """One ``Moderation`` object (types/moderation.py) for a group of inputs classified together."""
        kinds = {item.kind for item in items}
        applied = {
            category: [
                kind
                for kind in ("text", "image")
                if kind in kinds and (kind == "text" or category in MODERATION_IMAGE_CATEGORIES)
            ]
            for category in MODERATION_CATEGORIES
        }
        category_scores: dict[str, float] = {}
        for category in MODERATION_CATEGORIES:
            if category in scores:
                category_scores[category] = float(scores[category])
            elif category in flagged:
                category_scores[category] = MODERATION_FLAGGED_SCORE
            else:
                # The guide: image-only input scores 0 for the text-only categories.
                category_scores[category] = MODERATION_BASELINE_SCORE if applied[category] else 0.0
        categories = {category: category in flagged for category in MODERATION_CATEGORIES}
        return {
            "flagged": any(categories.values()),
            "categories": categories,
            "category_scores": category_scores,
            "category_applied_input_types": applied,
        }

    async def _moderation_answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        params = recorded.json
        if not isinstance(params, dict):
            return self._error(400, "We could not parse the JSON body of your request.")
        rejected = self._moderation_input_error(params)
        if rejected is not None:
            return rejected
        try:
            result = await self._resolve(
                self._moderation_queue, self.moderation_handler, params, (ModerationReply, Fault)
            )
        except Exception as exc:
            self.handler_errors.append(exc)
            return self._error(500, f"fake moderation_handler raised {exc!r}", "server_error")
        if isinstance(result, Fault):
            return await self._fault(request, result)
        reply: ModerationReply | None = result
        if reply is not None:
            await self._pause(reply.delay)

        items = moderation_items(params)
        # A string or an array of strings: one result per string. An array of text / image_url parts:
        # the parts are classified together into one result (the guide's multi-modal example reads
        # results[0]; the war-movie image example answers a single result).
        raw = params["input"]
        groups = [items] if isinstance(raw, list) and isinstance(raw[0], dict) else [[item] for item in items]
        results = []
        for group in groups:
            if reply is None:
                results.append(self._moderation_result(group, self._default_moderation_flags(group), {}))
            else:
                results.append(self._moderation_result(group, reply.flagged_categories, reply.scores or {}))
        model = (reply.model if reply is not None else None) or str(
            params.get("model") or DEFAULT_MODERATION_MODEL
        )
        # "modr-" + 32 hex digits, as in the guide's example ("modr-970d409ef3bef3b70c73d8232df86e7d").
        body = {
            "id": f"modr-{next(self._ids):08x}{secrets.token_hex(12)}",
            "model": model,
            "results": results,
        }
        return self._json(body, headers=reply.headers if reply is not None else None)

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
