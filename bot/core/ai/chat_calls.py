"""Chat and vision: a prompt written from messages, or from a picture, on any OpenAI-compatible server."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from bot.core.ai.retries import SAFETY_CODES, Retrying, error_code
from bot.core.ai.values import ChatAnswer, InputImage, RetryNotice
from bot.core.errors import BadAnswer, ChatRefused, VisionUnavailable


def estimate_tokens(text: str) -> int:
    """About four characters a token for English text: OpenAI's own rule of thumb."""
    return max(1, len(text) // 4)


def _chat_messages(messages: Sequence[Mapping[str, str]]) -> list[ChatCompletionMessageParam]:
    """The bot's plain role/content pairs as the `openai` package's typed chat messages."""
    converted: list[ChatCompletionMessageParam] = []
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system":
            converted.append({"role": "system", "content": content})
        elif role == "user":
            converted.append({"role": "user", "content": content})
        elif role == "assistant":
            converted.append({"role": "assistant", "content": content})
        else:
            raise ValueError(f"chat message with unexpected role {role!r}")
    return converted


class ChatCalls:
    def __init__(
        self, client: AsyncOpenAI, retrying: Retrying, *, chat_model: str, vision_model: str
    ) -> None:
        self._client = client
        self._retrying = retrying
        self.chat_model = chat_model
        self.vision_model = vision_model

    async def chat(
        self, messages: Sequence[dict[str, str]], *, user_hash: str, on_retry: RetryNotice | None = None
    ) -> ChatAnswer:
        payload = _chat_messages(messages)

        async def call() -> ChatAnswer:
            completion = await self._client.chat.completions.create(
                model=self.chat_model, messages=payload, safety_identifier=user_hash
            )
            sent = sum(estimate_tokens(message.get("content", "")) for message in messages)
            return _answer(completion, self.chat_model, sent_tokens=sent)

        return await self._retrying.run(
            call, service="chat", model=self.chat_model, setting="CHAT_MODEL", on_retry=on_retry
        )

    async def describe_image(
        self, instructions: str, image: InputImage, *, user_hash: str, on_retry: RetryNotice | None = None
    ) -> ChatAnswer:
        """Ask the vision model for the prompt that would reproduce `image`."""
        data_url = f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}"
        payload: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": instructions},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Write the prompt for this picture."},
                    {"type": "image_url", "image_url": {"url": data_url}},
                ],
            },
        ]
        model = self.vision_model

        async def call() -> ChatAnswer:
            try:
                completion = await self._client.chat.completions.create(
                    model=model, messages=payload, safety_identifier=user_hash
                )
            except openai.BadRequestError as exc:
                if error_code(exc) in SAFETY_CODES:
                    raise
                raise VisionUnavailable(
                    f"vision model {model} did not accept an image (HTTP 400, {error_code(exc)}); "
                    "set VISION_MODEL to a model that reads images"
                ) from exc
            return _answer(completion, model, sent_tokens=estimate_tokens(instructions) + 800)

        return await self._retrying.run(
            call, service="chat", model=model, setting="VISION_MODEL", on_retry=on_retry
        )


def _answer(completion: Any, model: str, *, sent_tokens: int) -> ChatAnswer:
    if not completion.choices:
        raise BadAnswer("chat: no choices in the answer")
    choice = completion.choices[0]
    if getattr(choice.message, "refusal", None) or choice.finish_reason == "content_filter":
        raise ChatRefused("chat: the model refused")
    text = choice.message.content or ""
    usage = completion.usage
    if usage is not None:
        return ChatAnswer(text, model, usage.prompt_tokens, usage.completion_tokens, False)
    return ChatAnswer(text, model, sent_tokens, estimate_tokens(text), True)
