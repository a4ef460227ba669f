"""`OpenAIService`: the clients (chat may live on another OpenAI-compatible server than images) and every
call the bot makes through them, each with a timeout, the bot's bounded retries and its error taxonomy."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from openai import AsyncOpenAI

from bot.core.ai.chat_calls import ChatCalls
from bot.core.ai.image_calls import ImageCalls
from bot.core.ai.moderation_calls import ModerationCalls
from bot.core.ai.retries import Retrying, RetryPolicy
from bot.core.ai.values import ChatAnswer, ImageAnswer, InputImage, Moderation, PreviewCallback, RetryNotice


def safety_identifier(user_id: int, salt: str) -> str:
    """OpenAI asks for a stable per-user id for abuse monitoring; a salted hash keeps the Discord id private.

    Unsalted, a hash of a Discord id could be reversed by hashing every plausible id; the salt is this
    bot's own (configured, or generated once and kept in the store).
    """
    return hashlib.sha256(f"{salt}:{user_id}".encode()).hexdigest()


class OpenAIService:
    """Chat and image calls with timeouts, bounded retries and the bot's error taxonomy."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        chat_model: str,
        vision_model: str | None = None,
        chat_api_key: str | None = None,
        chat_base_url: str | None = None,
        chat_timeout: float = 60.0,
        image_timeout: float = 180.0,
        retry: RetryPolicy | None = None,
        safety_salt: str = "",
    ) -> None:
        self._safety_salt = safety_salt
        self.retry = retry or RetryPolicy()
        retrying = Retrying(self.retry)
        self._images = AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=image_timeout, max_retries=0)
        self._chat = AsyncOpenAI(
            api_key=chat_api_key or api_key,
            base_url=chat_base_url or base_url,
            timeout=chat_timeout,
            max_retries=0,
        )
        self._chat_calls = ChatCalls(
            self._chat, retrying, chat_model=chat_model, vision_model=vision_model or chat_model
        )
        self._image_calls = ImageCalls(self._images, retrying)
        # The moderation endpoint is asked where the images are made.
        self._moderation_calls = ModerationCalls(self._images, retrying)

    @property
    def chat_model(self) -> str:
        return self._chat_calls.chat_model

    @property
    def vision_model(self) -> str:
        return self._chat_calls.vision_model

    @property
    def moderation_available(self) -> bool:
        """False once the server answered 404 on /moderations (an OpenAI-compatible server without it)."""
        return self._moderation_calls.available

    def user_hash(self, user_id: int) -> str:
        """The `safety_identifier` OpenAI gets for a member: never the Discord id itself."""
        return safety_identifier(user_id, self._safety_salt)

    async def close(self) -> None:
        await self._images.close()
        await self._chat.close()

    async def chat(
        self, messages: Sequence[dict[str, str]], *, user_hash: str, on_retry: RetryNotice | None = None
    ) -> ChatAnswer:
        return await self._chat_calls.chat(messages, user_hash=user_hash, on_retry=on_retry)

    async def describe_image(
        self, instructions: str, image: InputImage, *, user_hash: str, on_retry: RetryNotice | None = None
    ) -> ChatAnswer:
        """Ask the vision model for the prompt that would reproduce `image`."""
        return await self._chat_calls.describe_image(
            instructions, image, user_hash=user_hash, on_retry=on_retry
        )

    async def images(
        self,
        request: dict[str, Any],
        *,
        inputs: Sequence[InputImage] = (),
        partial_images: int = 0,
        on_preview: PreviewCallback | None = None,
        on_retry: RetryNotice | None = None,
    ) -> ImageAnswer:
        """Generate (or, with `inputs`, edit) pictures; with `partial_images`, stream previews as they form."""
        return await self._image_calls.images(
            request, inputs=inputs, partial_images=partial_images, on_preview=on_preview, on_retry=on_retry
        )

    async def moderate(self, texts: Sequence[str], image: InputImage | None = None) -> Moderation | None:
        """OpenAI's moderation verdict on texts (and one picture); None where the server has no such endpoint."""
        return await self._moderation_calls.moderate(texts, image)
