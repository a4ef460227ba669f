"""The loopback OpenAI's ``POST /v1/moderations``: verdicts on texts and pictures in the real shape.

* Request: ``input`` is a string, a list of strings (one result per string) or a list of
  ``{"type": "text", "text"}`` / ``{"type": "image_url", "image_url": {"url"}}`` parts (classified
  together: one result); optional ``model`` (echoed; ``omni-moderation-latest`` when absent).
* Answer: ``{"id": "modr-<32 hex>", "model", "results": [{"flagged", "categories", "category_scores",
  "category_applied_input_types"}]}`` with all 13 categories (``MODERATION_CATEGORIES``), shaped as
  ``openai.types.ModerationCreateResponse`` and the moderation guide's example answer.
  ``fake.moderations_available = False`` turns it into the unknown-route 404, as on an OpenAI-compatible
  server without the endpoint (the SDK raises ``NotFoundError``, not retried).
* Default verdict: flagged when a text contains ``FLAG:<category>`` (e.g. ``"FLAG:self-harm/intent"``), or
  an image is a PNG whose every pixel has a colour of ``fake.moderation_image_markers`` (alpha ignored;
  pure red (255, 0, 0) -> ``sexual``, pure magenta (255, 0, 255) -> ``violence``; image-capable
  categories only). Each string of a list is judged on its own. Flagged categories score 0.9, the others
  0.0001. ``category_applied_input_types`` lists, per category, the input's types it supports (text: all
  of them; image: ``sexual``, ``self-harm*``, ``violence*``); a category that does not apply (a text-only
  one on an image-only input) gets ``[]`` and scores 0.0, as the moderation guide says.
* Validation: more image parts than ``fake.max_moderation_images`` (1) -> ``"Number of images (2) exceeds
  maximum of 1"``, ``param="input"``, ``code="too_many_images"`` (a real answer); a ``data:`` URL that is
  not base64 png/jpeg/gif/webp -> ``invalid_image_format``; missing ``input``, an empty or mixed list, an
  unknown part type or a part without its ``text`` / ``image_url``.
* Scripting: ``fake.script_moderations(*replies)`` -- each a :class:`ModerationReply` or a
  :class:`~loopback.openai_faults.Fault`; then ``fake.moderation_handler`` (``(request_json) -> reply |
  None``); then the default. One reply gives the same verdict to every result of its request; to flag
  one string of a list, use the marker instead.
* Inspection: ``fake.moderation_requests`` (a request answered 404 because ``moderations_available`` is
  off is recorded too); ``fake.moderation_inputs(request=None)`` -> the inputs of a moderations request
  (default: the last one) in order, each text as ``str`` and each image as its decoded ``bytes``.

Limitations: remote image URLs are never fetched (so never flagged by default); scores are invented
constants and every model answers the omni-moderation shape (the legacy ``text-moderation-*`` models
lack ``illicit*`` and refuse images); the 20 MB image limit is not checked.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from loopback.fake_openai._recorded import MODERATIONS_PATH, ModerationItem, RecordedRequest, moderation_items
from loopback.fake_openai._transport import Transport
from loopback.openai_faults import Fault
from loopback.png import png_solid_colour, sniff_image_format

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
MAX_MODERATION_IMAGES = 1  # "Number of images (2) exceeds maximum of 1" -- see _moderation_input_error
_FLAG_PATTERN = re.compile(re.escape(MODERATION_FLAG_MARKER) + r"([a-z/-]+)")


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


ModerationResult = ModerationReply | Fault
ModerationHandler = Callable[[dict[str, Any]], ModerationResult | Awaitable[ModerationResult | None] | None]


class ModerationRoutes(Transport):
    """``/moderations`` and its scripting and inspection; the state is set up by ``FakeOpenAI``."""

    moderations_available: bool  # False: /moderations answers the unknown-route 404
    max_moderation_images: int
    moderation_image_markers: dict[tuple[int, int, int], str]
    moderation_handler: ModerationHandler | None
    _moderation_queue: list[ModerationResult]

    def script_moderations(self, *replies: ModerationResult) -> None:
        for reply in replies:
            if not isinstance(reply, ModerationReply | Fault):
                raise TypeError(
                    f"script_moderations takes ModerationReply or Fault, not {type(reply).__name__}"
                )
        self._moderation_queue.extend(replies)

    @property
    def moderation_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == MODERATIONS_PATH]

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

    # ---- answers ---------------------------------------------------------------------------------------

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
