"""The moderation endpoint: OpenAI's verdict on texts and a picture, free of charge.

An OpenAI-compatible server without the endpoint answers 404: that is logged once and requests go
on unmoderated; any other failure is an outage like any other.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from typing import Any

import openai
from openai import AsyncOpenAI

from bot.core.ai.retries import Retrying
from bot.core.ai.values import InputImage, Moderation

log = logging.getLogger(__name__)

MODERATION_MODEL = "omni-moderation-latest"


class ModerationCalls:
    def __init__(self, client: AsyncOpenAI, retrying: Retrying) -> None:
        self._client = client
        self._retrying = retrying
        # False once the server answered 404 on /moderations (an OpenAI-compatible server without it).
        self.available = True

    async def moderate(self, texts: Sequence[str], image: InputImage | None = None) -> Moderation | None:
        """The verdict on texts (and one picture); None where the server has no such endpoint."""
        if not self.available:
            return None
        parts: list[dict[str, Any]] = [{"type": "text", "text": text} for text in texts if text.strip()]
        if image is not None:
            data_url = f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}"
            parts.append({"type": "image_url", "image_url": {"url": data_url}})
        if not parts:
            return Moderation(flagged=False, categories=(), scores={})

        async def call() -> Moderation | None:
            try:
                response = await self._client.moderations.create(
                    model=MODERATION_MODEL,
                    input=parts,  # pyright: ignore[reportArgumentType] - the SDK's TypedDict union is narrower
                )
            except openai.NotFoundError:
                self.available = False
                log.warning("The image server has no moderation endpoint (404); requests go on unmoderated")
                return None
            flagged = [result for result in response.results if result.flagged]
            categories = sorted(
                {
                    name
                    for result in flagged
                    for name, hit in result.categories.model_dump(by_alias=True).items()
                    if hit
                }
            )
            scores: dict[str, float] = {}
            for result in response.results:
                for name, score in result.category_scores.model_dump(by_alias=True).items():
                    scores[name] = max(scores.get(name, 0.0), float(score or 0.0))
            return Moderation(flagged=bool(flagged), categories=tuple(categories), scores=scores)

        return await self._retrying.run(
            call, service="moderation", model=MODERATION_MODEL, setting="OPENAI_BASE_URL", on_retry=None
        )
