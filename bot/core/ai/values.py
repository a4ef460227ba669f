"""What goes to the models and comes back, as plain values: no `openai` type crosses this package's edge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.core.errors import MuralError

# Told before each retry: the error that will be retried, and the seconds until it is.
RetryNotice = Callable[[MuralError, float], Awaitable[None]]
# Given each preview of a streamed picture as it forms (image bytes).
PreviewCallback = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True)
class InputImage:
    """A picture sent to a model: to the edit endpoint as a file, or to a vision model inline."""

    filename: str
    data: bytes
    mime: str


@dataclass(frozen=True)
class ChatAnswer:
    """The model's text and what it cost in tokens; `estimated` when the server reported no usage."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    estimated: bool


@dataclass(frozen=True)
class Moderation:
    """The moderation endpoint's verdict: flagged or not, the categories hit, and the highest scores."""

    flagged: bool
    categories: tuple[str, ...]
    scores: dict[str, float]


@dataclass(frozen=True)
class ImageUsage:
    text_input: int
    image_input: int
    output: int


@dataclass(frozen=True)
class ImageAnswer:
    """What an image call returned, whichever way it was made (plain, edit, streamed)."""

    images_b64: list[str]
    revised_prompts: list[str | None]
    usage: ImageUsage | None
