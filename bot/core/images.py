"""Image rendering: what each image model accepts, option validation, the call, decoding to bytes.

Model ids churn (DALL-E 2/3 and GPT Image 1.x are retired), so the id always comes from
configuration and is chosen per call; this table only says what a kind of id accepts. Unknown ids
are treated as a current GPT Image model, which is what an OpenAI-compatible server is most likely
to imitate.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from bot.core.ai import InputImage
from bot.core.errors import BadAnswer, InvalidRequest
from bot.core.pricing import DEFAULT_PRICES, PriceTable

if TYPE_CHECKING:
    from bot.core.ai import OpenAIService, PreviewCallback, RetryNotice

# What a member may pick; each model maps these onto what its API takes.
QUALITY_CHOICES = ("low", "medium", "high", "auto")
STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")


ASPECTS = ("square", "landscape", "portrait")
_STANDARD_ASPECTS = {"square": "1024x1024", "landscape": "1536x1024", "portrait": "1024x1536"}


@dataclass(frozen=True)
class ImageModelCapabilities:
    sizes: tuple[str, ...]
    qualities: tuple[str, ...]
    max_prompt_chars: int
    aspect_sizes: Mapping[str, str] = field(default_factory=lambda: dict(_STANDARD_ASPECTS))
    any_size: bool = False
    legacy: bool = False
    # Previews streamed while a picture forms (0: the model or server does not stream).
    partial_images: int = 0
    edits: bool = True
    max_count: int = 10
    retired_on: date | None = None


_GPT_IMAGE_2 = ImageModelCapabilities(
    sizes=STANDARD_SIZES,
    qualities=QUALITY_CHOICES,
    max_prompt_chars=32_000,
    any_size=True,
    partial_images=2,
)
_GPT_IMAGE_2_5 = replace(_GPT_IMAGE_2, qualities=(*QUALITY_CHOICES, "xhigh", "max"))


def _retired_gpt_image(on: date) -> ImageModelCapabilities:
    return ImageModelCapabilities(
        sizes=STANDARD_SIZES, qualities=QUALITY_CHOICES, max_prompt_chars=32_000, retired_on=on
    )


# Longest matching prefix wins, so dated snapshots ("gpt-image-2-2026-04-21") find their family.
MODEL_CAPABILITIES: dict[str, ImageModelCapabilities] = {
    "gpt-image-2": _GPT_IMAGE_2,
    "gpt-image-2.5-flare": _GPT_IMAGE_2_5,
    "gpt-image-2.5-sunburst": _GPT_IMAGE_2_5,
    "gpt-image-2.6-flare": _GPT_IMAGE_2,
    "gpt-image-2.6-sunburst": _GPT_IMAGE_2,
    "gpt-image-1": _retired_gpt_image(date(2026, 10, 23)),
    "gpt-image-1-mini": _retired_gpt_image(date(2026, 12, 1)),
    "gpt-image-1.5": _retired_gpt_image(date(2026, 12, 1)),
    "chatgpt-image-latest": _retired_gpt_image(date(2026, 12, 1)),
    "dall-e-2": ImageModelCapabilities(
        sizes=("256x256", "512x512", "1024x1024"),
        qualities=("standard",),
        max_prompt_chars=1_000,
        aspect_sizes=dict.fromkeys(ASPECTS, "1024x1024"),
        legacy=True,
        retired_on=date(2026, 5, 12),
    ),
    "dall-e-3": ImageModelCapabilities(
        sizes=("1024x1024", "1792x1024", "1024x1792"),
        qualities=("standard", "hd"),
        max_prompt_chars=4_000,
        aspect_sizes={"square": "1024x1024", "landscape": "1792x1024", "portrait": "1024x1792"},
        legacy=True,
        edits=False,
        max_count=1,
        retired_on=date(2026, 5, 12),
    ),
}
_FALLBACK = ImageModelCapabilities(sizes=STANDARD_SIZES, qualities=QUALITY_CHOICES, max_prompt_chars=32_000)

_SIZE = re.compile(r"^([0-9]{2,5})x([0-9]{2,5})$")


def capabilities_for(model: str) -> ImageModelCapabilities:
    model = model.lower()
    best = ""
    for prefix in MODEL_CAPABILITIES:
        if (model == prefix or model.startswith(prefix + "-")) and len(prefix) > len(best):
            best = prefix
    return MODEL_CAPABILITIES[best] if best else _FALLBACK


def size_problem(capabilities: ImageModelCapabilities, size: str) -> str | None:
    """Why `size` cannot be used with this model, or None when it can."""
    if size in capabilities.sizes:
        return None
    expected = f"expected one of {', '.join(capabilities.sizes)}"
    if capabilities.any_size:
        # Naming only the presets would hide that any size in steps of 16 works on these models.
        expected += " or WIDTHxHEIGHT in steps of 16 between 1:3 and 3:1 (e.g. 1280x720)"
    match = _SIZE.match(size)
    if not capabilities.any_size or not match:
        return f"is not a size this model supports; {expected}"
    width, height = int(match[1]), int(match[2])
    if width % 16 or height % 16:
        return f"is not a multiple of 16 on both sides; {expected}"
    if max(width, height) > 3 * min(width, height):
        return f"is wider or taller than 3:1; {expected}"
    return None


def quality_choices(capabilities: ImageModelCapabilities) -> tuple[str, ...]:
    """Qualities offered to members: the common set, plus the model's own extras."""
    extras = tuple(q for q in capabilities.qualities if q not in QUALITY_CHOICES and not capabilities.legacy)
    return QUALITY_CHOICES + extras


def api_quality(capabilities: ImageModelCapabilities, quality: str) -> str | None:
    """The value sent to the API for a member's quality; None when the model takes no quality."""
    if not capabilities.legacy:
        return quality
    if len(capabilities.qualities) == 1:
        return None
    return "hd" if quality in ("high", "xhigh", "max") else "standard"


def size_label(size: str) -> str:
    match = _SIZE.match(size)
    if not match:
        return "Auto (model decides)" if size == "auto" else size
    width, height = int(match[1]), int(match[2])
    shape = "Square" if width == height else ("Landscape" if width > height else "Portrait")
    return f"{shape} {width}×{height}"


def fit_prompt(prompt: str, limit: int) -> str:
    """Shorten a prompt to the model's limit at a word boundary, rather than be refused."""
    if len(prompt) <= limit:
        return prompt
    cut = prompt[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit * 0.8 else cut


@dataclass(frozen=True)
class ImageOptions:
    """What one render asks for: the model is chosen per call, so a server can pick its own later."""

    model: str
    size: str
    quality: str
    count: int = 1
    # The image API's `moderation` parameter ("auto" or "low"); None leaves the model's default.
    moderation: str | None = None


def check_options(options: ImageOptions, *, editing: bool = False) -> None:
    """Refuse what the model lacks (a size, a quality, a count, edits) before anything is queued or spent."""
    capabilities = capabilities_for(options.model)
    if editing and not capabilities.edits:
        raise InvalidRequest(f"The image model {options.model} cannot change an existing picture.")
    if not 1 <= options.count <= capabilities.max_count:
        raise InvalidRequest(
            f"The image model {options.model} draws at most {capabilities.max_count} at once."
        )
    problem = size_problem(capabilities, options.size)
    if problem:
        raise InvalidRequest(f"Size {options.size} {problem}.")
    offered = quality_choices(capabilities)
    if options.quality not in offered:
        raise InvalidRequest(f"Quality {options.quality} is not one of {', '.join(offered)}.")


def aspect_size(model: str, aspect: str | None, default: str) -> str:
    """The size the model draws for a session's aspect (square, landscape, portrait)."""
    return capabilities_for(model).aspect_sizes.get(aspect or "", default)


def image_request(
    prompt: str, options: ImageOptions, *, user_hash: str, editing: bool = False
) -> dict[str, Any]:
    """Keyword arguments for `images.generate` (or `images.edit`), in the dialect the model speaks."""
    check_options(options, editing=editing)
    capabilities = capabilities_for(options.model)
    request: dict[str, Any] = {
        "model": options.model,
        "prompt": fit_prompt(prompt, capabilities.max_prompt_chars),
        "size": options.size,
        "n": options.count,
    }
    sent_quality = api_quality(capabilities, options.quality)
    if sent_quality is not None:
        request["quality"] = sent_quality
    if capabilities.legacy:
        # Legacy servers answer with short-lived URLs unless asked for base64.
        request["response_format"] = "b64_json"
        request["user"] = user_hash
    else:
        request["output_format"] = "png"
        request["safety_identifier"] = user_hash
        if options.moderation is not None and not editing:
            # Stated explicitly; the edit endpoint has no such parameter.
            request["moderation"] = options.moderation
    return request


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
    (b"GIF8", "gif", "image/gif"),
)


def sniff_image(data: bytes) -> tuple[str, str]:
    """(extension, mime type) from the bytes themselves, so a wrong label never reaches Discord."""
    for signature, extension, mime in _SIGNATURES:
        if data.startswith(signature):
            return extension, mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", "image/webp"
    raise BadAnswer("The image service sent something that is not a picture.")


@dataclass(frozen=True)
class Picture:
    data: bytes
    extension: str
    mime: str


@dataclass(frozen=True)
class RenderedImages:
    pictures: tuple[Picture, ...]
    options: ImageOptions
    revised_prompt: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    # The server reported no usage: the cost comes from the price table's estimate.
    cost_estimated: bool = False


def picture_from_bytes(data: bytes) -> Picture:
    extension, mime = sniff_image(data)
    return Picture(data, extension, mime)


def decode_picture(b64: str) -> Picture:
    if not b64:
        raise BadAnswer("The image service answered without a picture.")
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise BadAnswer("The image service sent a picture that could not be decoded.") from None
    extension, mime = sniff_image(data)
    return Picture(data, extension, mime)


class ImageService:
    """Turns a prompt (and optionally input pictures) into pictures with whichever model the call names."""

    def __init__(
        self, ai: OpenAIService, *, defaults: ImageOptions, prices: PriceTable = DEFAULT_PRICES
    ) -> None:
        self._ai = ai
        self.defaults = defaults
        self._prices = prices

    def options(
        self,
        *,
        model: str | None = None,
        size: str | None = None,
        quality: str | None = None,
        count: int = 1,
        aspect: str | None = None,
    ) -> ImageOptions:
        """The options for one render: what the call asks for over the defaults, checked for that model."""
        chosen_model = model or self.defaults.model
        chosen = ImageOptions(
            model=chosen_model,
            size=size or aspect_size(chosen_model, aspect, self.defaults.size),
            quality=quality or self.defaults.quality,
            count=count,
        )
        check_options(chosen)
        return chosen

    def expected_cost(self, options: ImageOptions, *, editing: bool = False) -> float:
        """What a render will probably cost, reserved against budgets while it waits and runs
        (an edit's input picture is billed too: counted as one more picture's worth)."""
        quality = api_quality(capabilities_for(options.model), options.quality) or "standard"
        cost = self._prices.picture_cost(options.model, quality, options.size, options.count)
        if cost is None:
            cost = self._prices.estimated_picture_cost(
                options.model, options.quality, options.size, options.count + int(editing)
            )
        return cost or 0.0

    async def render(
        self,
        prompt: str,
        options: ImageOptions,
        *,
        requester_id: int,
        inputs: Sequence[InputImage] = (),
        on_preview: PreviewCallback | None = None,
        on_retry: RetryNotice | None = None,
    ) -> RenderedImages:
        """Draw `options.count` pictures; with `inputs`, through the edit endpoint from those pictures.

        Previews stream to `on_preview` where the model streams and one picture is drawn.
        """
        capabilities = capabilities_for(options.model)
        request = image_request(
            prompt, options, user_hash=self._ai.user_hash(requester_id), editing=bool(inputs)
        )
        partial = capabilities.partial_images if options.count == 1 else 0
        answer = await self._ai.images(
            request, inputs=inputs, partial_images=partial, on_preview=on_preview, on_retry=on_retry
        )
        # A compatible server may answer with more than were asked for; a message holds at most 10 files.
        pictures = tuple(decode_picture(b64) for b64 in answer.images_b64[: options.count])
        if not pictures:
            raise BadAnswer("The image service answered without a picture.")
        usage = answer.usage
        estimated = False
        if usage is not None:
            cost = self._prices.token_cost(
                options.model,
                text_input=usage.text_input,
                image_input=usage.image_input,
                image_output=usage.output,
            )
        else:
            sent_quality = request.get("quality", "standard")
            cost = self._prices.picture_cost(options.model, sent_quality, options.size, len(pictures))
            if cost is None:
                cost = self._prices.estimated_picture_cost(
                    options.model, options.quality, options.size, len(pictures)
                )
                estimated = cost is not None
        return RenderedImages(
            pictures=pictures,
            options=options,
            revised_prompt=next((text for text in answer.revised_prompts if text), None),
            input_tokens=usage.text_input + usage.image_input if usage else None,
            output_tokens=usage.output if usage else None,
            cost_usd=cost,
            cost_estimated=estimated,
        )
