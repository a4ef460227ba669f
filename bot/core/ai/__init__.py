"""The one place that talks to the `openai` package: only the modules of this package import it.

Callers import from here: `OpenAIService` (chat, vision, images, moderation), the plain values that
go in and come out, the retry policy, and the set-up check's `ModelCatalogue`. Inside, each module
does one job: `service` (the clients), `chat_calls`, `image_calls` (generate, edit, stream),
`moderation_calls`, `retries` (bounded retries, the package's errors as the bot's), `catalogue`.
"""

from __future__ import annotations

from bot.core.ai.catalogue import ModelCatalogue, Probe, ProbeStatus
from bot.core.ai.retries import SAFETY_CODES, RetryPolicy, translate
from bot.core.ai.service import OpenAIService, safety_identifier
from bot.core.ai.values import (
    ChatAnswer,
    ImageAnswer,
    ImageUsage,
    InputImage,
    Moderation,
    PreviewCallback,
    RetryNotice,
)

__all__ = [
    "SAFETY_CODES",
    "ChatAnswer",
    "ImageAnswer",
    "ImageUsage",
    "InputImage",
    "ModelCatalogue",
    "Moderation",
    "OpenAIService",
    "PreviewCallback",
    "Probe",
    "ProbeStatus",
    "RetryNotice",
    "RetryPolicy",
    "safety_identifier",
    "translate",
]
