"""Image rendering: what each image model accepts, option validation, the call, decoding to bytes.

Model ids churn (DALL-E 2/3 and GPT Image 1.x are retired), so the id always comes from
configuration and is chosen per call; this table only says what a kind of id accepts. Unknown ids
are treated as a current GPT Image model, which is what an OpenAI-compatible server is most likely
to imitate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from bot.core.errors import BadAnswer, InvalidRequest
from bot.core.pricing import legacy_cost, token_cost

if TYPE_CHECKING:
    from bot.core.ai import OpenAIService, RetryNotice

# What a member may pick; each model maps these onto what its API takes.
QUALITY_CHOICES = ("low", "medium", "high", "auto")
STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")


@dataclass(frozen=True)
class ImageModelCapabilities:
    sizes: tuple[str, ...]
    qualities: tuple[str, ...]
    max_prompt_chars: int
    any_size: bool = False
    legacy: bool = False
    retired_on: date | None = None


_GPT_IMAGE_2 = ImageModelCapabilities(
    sizes=STANDARD_SIZES,
    qualities=QUALITY_CHOICES,
    max_prompt_chars=32_000,
    any_size=True,
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
        legacy=True,
        retired_on=date(2026, 5, 12),
    ),
    "dall-e-3": ImageModelCapabilities(
        sizes=("1024x1024", "1792x1024", "1024x1792"),
        qualities=("standard", "hd"),
        max_prompt_chars=4_000,
        legacy=True,
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
    match = _SIZE.match(size)
    if not capabilities.any_size or not match:
        return f"is not a size this model supports; {expected}"
    width, height = int(match[1]), int(match[2])
    if width % 16 or height % 16:
        return f"is not a multiple of 16 on both sides; {expected} or WIDTHxHEIGHT in steps of 16"
    if max(width, height) > 3 * min(width, height):
        return f"is wider or taller than 3:1; {expected} or WIDTHxHEIGHT between 1:3 and 3:1"
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


def safety_identifier(user_id: int) -> str:
    """OpenAI asks for a stable per-user id for abuse monitoring; a hash keeps the Discord id private."""
    return hashlib.sha256(f"mural:{user_id}".encode()).hexdigest()[:32]


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


def check_options(options: ImageOptions) -> None:
    """Refuse a size or quality the model lacks, before anything is queued or spent."""
    capabilities = capabilities_for(options.model)
    problem = size_problem(capabilities, options.size)
    if problem:
        raise InvalidRequest(f"Size {options.size} {problem}.")
    offered = quality_choices(capabilities)
    if options.quality not in offered:
        raise InvalidRequest(f"Quality {options.quality} is not one of {', '.join(offered)}.")


def image_request(prompt: str, options: ImageOptions, *, requester_id: int) -> dict[str, Any]:
    """Keyword arguments for `images.generate`, in the dialect the model speaks."""
    check_options(options)
    capabilities = capabilities_for(options.model)
    request: dict[str, Any] = {
        "model": options.model,
        "prompt": fit_prompt(prompt, capabilities.max_prompt_chars),
        "size": options.size,
        "n": 1,
    }
    sent_quality = api_quality(capabilities, options.quality)
    if sent_quality is not None:
        request["quality"] = sent_quality
    if capabilities.legacy:
        # Legacy servers answer with short-lived URLs unless asked for base64.
        request["response_format"] = "b64_json"
        request["user"] = safety_identifier(requester_id)
    else:
        request["output_format"] = "png"
        request["safety_identifier"] = safety_identifier(requester_id)
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
class RenderedImage:
    data: bytes
    extension: str
    mime: str
    options: ImageOptions
    revised_prompt: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None


class ImageService:
    """Turns a prompt into picture bytes with whichever image model the call names."""

    def __init__(self, ai: OpenAIService, *, defaults: ImageOptions) -> None:
        self._ai = ai
        self.defaults = defaults

    def options(
        self, *, model: str | None = None, size: str | None = None, quality: str | None = None
    ) -> ImageOptions:
        """The options for one render: what the call asks for over the defaults, checked for that model."""
        chosen = ImageOptions(
            model=model or self.defaults.model,
            size=size or self.defaults.size,
            quality=quality or self.defaults.quality,
        )
        check_options(chosen)
        return chosen

    async def render(
        self, prompt: str, options: ImageOptions, *, requester_id: int, on_retry: RetryNotice | None = None
    ) -> RenderedImage:
        request = image_request(prompt, options, requester_id=requester_id)
        response = await self._ai.generate_image(request, on_retry=on_retry)
        images = response.data or []
        if not images or not images[0].b64_json:
            raise BadAnswer("The image service answered without a picture.")
        try:
            data = base64.b64decode(images[0].b64_json, validate=True)
        except (binascii.Error, ValueError):
            raise BadAnswer("The image service sent a picture that could not be decoded.") from None
        extension, mime = sniff_image(data)
        usage = response.usage
        if usage is not None:
            details = usage.input_tokens_details
            cost = token_cost(
                options.model,
                text_input=details.text_tokens if details else usage.input_tokens,
                image_input=details.image_tokens if details else 0,
                image_output=usage.output_tokens,
            )
        else:
            cost = legacy_cost(options.model, request.get("quality", "standard"), options.size)
        return RenderedImage(
            data=data,
            extension=extension,
            mime=mime,
            options=options,
            revised_prompt=getattr(images[0], "revised_prompt", None) or None,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
            cost_usd=cost,
        )
