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
shape otherwise; set ``fake.api_key`` to require one exact key). Each part's module docstring gives its
default answers, the requests it refuses (400s in the real ``{"error": {...}}`` shape) and its scripting:

* ``POST /chat/completions`` (JSON or SSE; vision input) -- ``_chat``.
* ``POST /images/generations`` and ``POST /images/edits`` (JSON or multipart; SSE partial pictures and
  in-stream errors; the legacy ``dall-e-*`` shapes and their ``GET /files/{name}``) -- ``_images``; what
  an edit upload must be -- ``_edits``.
* ``POST /moderations`` (texts and pictures, the omni-moderation shape) -- ``_moderations``.
* ``GET /models``, ``GET /models/{id}`` -- the ids in ``fake.models``; any other ``/v1`` URL -- 404
  ``Invalid URL (METHOD /v1/...)`` like the real API -- ``_server`` and ``_transport``.

Scripting (per request kind, consumed in order, one request each; then the defaults resume):

* ``fake.script_chat(*replies)`` (``str``, :class:`Reply`), ``fake.script_images(*replies)``
  (:class:`ImageReply`, shared by generations and edits), ``fake.script_moderations(*replies)``
  (:class:`ModerationReply`); each also takes a :class:`Fault`.
* ``fake.chat_handler`` / ``fake.image_handler`` / ``fake.moderation_handler`` -- optional callables
  ``(request_json) -> reply | None`` (sync or async) consulted when the queue is empty; ``None`` falls
  back to the default. An exception in a handler becomes a 500 answer and is appended to
  ``fake.handler_errors``.
* ``fake.latency`` -- seconds added before every answer (``Reply.delay`` / ``Fault.delay`` add more).
* ``fake.image_dimensions`` -- ``(width, height)`` of generated PNGs, or ``None`` for the requested size.
* ``fake.models`` -- ids listed by ``GET /models``; ``fake.vision_models`` -- chat models that take images.
* ``fake.max_edit_images`` / ``fake.max_edit_image_bytes`` / ``fake.max_mask_bytes`` -- edit limits
  (lower them to test the too-large path without uploading 50 MB).
* ``fake.moderations_available`` (``True``), ``fake.max_moderation_images`` (1),
  ``fake.moderation_image_markers`` (``{(r, g, b): category}``).

Faults live in :mod:`loopback.openai_faults` (re-exported here): :func:`rate_limited`,
:func:`insufficient_quota`, :func:`server_error`, :func:`moderation_blocked`,
:func:`content_policy_violation`, :func:`model_not_found`, :func:`unauthorized`,
:func:`permission_denied`, :func:`bad_request`, :func:`hang`, :func:`drop`, and ``Fault(status, body,
headers, delay)`` for anything else. The SDK retries 408/409/429/5xx and connection errors
``max_retries`` times (2 by default), so each retry consumes another scripted entry.

Inspection:

* ``fake.requests`` -- every ``/v1`` request as a :class:`RecordedRequest` (``_recorded``), rejected ones
  included; ``fake.chat_requests`` / ``fake.image_requests`` / ``fake.generation_requests`` /
  ``fake.edit_requests`` / ``fake.moderation_requests`` -- filtered views; ``fake.chat_image_inputs()``,
  ``fake.edit_inputs()``, ``fake.moderation_inputs()`` -- the pictures and texts a request carried.
* ``fake.calls(path)`` -- how many requests hit a path (``"/chat/completions"`` or ``"/v1/..."``).
* ``await fake.wait_for_calls(path, count)`` -- wait until a background task has made its calls.
* ``fake.in_flight`` / ``fake.peak_in_flight`` -- concurrency, to check a bot's own limits.
* ``fake.pending()`` -- scripted replies not consumed yet (``{"chat", "images", "moderations"}``);
  ``fake.reset()`` clears requests, scripts and handlers.

Pictures: :mod:`loopback.png` (re-exported here) writes and reads the PNGs -- :func:`make_png`,
:func:`png_dimensions`, :func:`png_solid_colour` -- and names or decodes uploads --
:func:`sniff_image_format`, :func:`decode_data_url`. :func:`chat_images` and :func:`moderation_items`
list the pictures and inputs of a request body.

Limitations: token counts are deterministic approximations (word counts), not real tokenizer output;
unknown chat parameters are not checked; only the routes above exist. Where the real API's exact
wording is not known (noted at each error in the code) the message is a close guess in the same shape.
"""

from loopback.fake_openai._chat import (
    DEFAULT_CHAT_PREFIX,
    ChatHandler,
    ChatResult,
    Reply,
    default_chat_content,
)
from loopback.fake_openai._edits import MAX_EDIT_IMAGE_BYTES, MAX_EDIT_IMAGES, MAX_MASK_BYTES
from loopback.fake_openai._images import (
    DEFAULT_IMAGE_DIMENSIONS,
    ImageHandler,
    ImageReply,
    ImageResult,
    default_image_usage,
    default_revised_prompt,
)
from loopback.fake_openai._moderations import (
    DEFAULT_MODERATION_IMAGE_MARKERS,
    DEFAULT_MODERATION_MODEL,
    MAX_MODERATION_IMAGES,
    MODERATION_CATEGORIES,
    MODERATION_FLAG_MARKER,
    MODERATION_IMAGE_CATEGORIES,
    ModerationHandler,
    ModerationReply,
    ModerationResult,
)
from loopback.fake_openai._recorded import (
    ChatImage,
    ModerationItem,
    RecordedFile,
    RecordedRequest,
    chat_images,
    last_user_text,
    moderation_items,
)
from loopback.fake_openai._server import DEFAULT_MODELS, FakeOpenAI
from loopback.openai_faults import (
    Fault,
    bad_request,
    content_policy_violation,
    drop,
    hang,
    insufficient_quota,
    model_not_found,
    moderation_blocked,
    permission_denied,
    rate_limited,
    server_error,
    unauthorized,
)
from loopback.png import decode_data_url, make_png, png_dimensions, png_solid_colour, sniff_image_format

__all__ = [
    "DEFAULT_CHAT_PREFIX",
    "DEFAULT_IMAGE_DIMENSIONS",
    "DEFAULT_MODELS",
    "DEFAULT_MODERATION_IMAGE_MARKERS",
    "DEFAULT_MODERATION_MODEL",
    "MAX_EDIT_IMAGES",
    "MAX_EDIT_IMAGE_BYTES",
    "MAX_MASK_BYTES",
    "MAX_MODERATION_IMAGES",
    "MODERATION_CATEGORIES",
    "MODERATION_FLAG_MARKER",
    "MODERATION_IMAGE_CATEGORIES",
    "ChatHandler",
    "ChatImage",
    "ChatResult",
    "FakeOpenAI",
    "Fault",
    "ImageHandler",
    "ImageReply",
    "ImageResult",
    "ModerationHandler",
    "ModerationItem",
    "ModerationReply",
    "ModerationResult",
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
