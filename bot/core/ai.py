"""The one place that talks to the `openai` package (the only importer of it).

It owns the clients (chat may live on another OpenAI-compatible server than images), applies the
bot's own bounded retry policy, and turns the package's exceptions into the bot's errors. The
package's automatic retries are switched off so that every request is counted here: a request
that must not be repeated (an exhausted quota) is sent exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from bot.core.errors import (
    BadAnswer,
    ChatRefused,
    InvalidRequest,
    Misconfigured,
    MuralError,
    OutOfCredit,
    SafetyRejected,
    ServiceBusy,
    ServiceTimeout,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)

SAFETY_CODES = frozenset({"moderation_blocked", "content_policy_violation", "content_filter"})
RetryNotice = Callable[[MuralError, float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff: tuple[float, ...] = (1.0, 3.0)
    longest_wait: float = 30.0

    def delay(self, error: MuralError, attempt: int) -> float | None:
        """Seconds to wait before trying again after `attempt` failed, or None to give up."""
        if attempt >= self.attempts or type(error) not in (ServiceBusy, ServiceUnavailable):
            return None
        wait = self.backoff[min(attempt - 1, len(self.backoff) - 1)] if self.backoff else 0.0
        if isinstance(error, ServiceBusy) and error.retry_after is not None:
            wait = error.retry_after
        return wait if wait <= self.longest_wait else None


@dataclass(frozen=True)
class ChatAnswer:
    """The model's text and what it cost in tokens; `estimated` when the server reported no usage."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    estimated: bool


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


def _error_code(exc: openai.APIStatusError) -> str | None:
    if exc.code:
        return exc.code
    body: dict[str, Any] = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    inner: dict[str, Any] = error if isinstance(error, dict) else body
    code = inner.get("code") or inner.get("type")
    return str(code) if code else None


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / divisor)
            except ValueError:
                continue
    return None


def translate(exc: Exception, *, service: str, model: str, setting: str) -> MuralError:
    """Map an `openai` exception onto the bot's own errors, with a log-only detail."""
    where = f"{service} model {model}"
    if isinstance(exc, openai.APITimeoutError):
        return ServiceTimeout(f"{where}: timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ServiceUnavailable(
            f"{where}: cannot connect",
            user_message=f"The {service} service cannot be reached right now. Please try again in a few minutes.",
        )
    if not isinstance(exc, openai.APIStatusError):
        return BadAnswer(f"{where}: {type(exc).__name__}")
    code = _error_code(exc)
    status = exc.status_code
    if status == 429 and code == "insufficient_quota":
        return OutOfCredit(f"{where}: the OpenAI account is out of credit (insufficient_quota)")
    if status == 429:
        return ServiceBusy(f"{where}: rate limited", retry_after=_retry_after(exc))
    if code in SAFETY_CODES:
        if service == "image":
            return SafetyRejected(f"{where}: refused for safety ({code})")
        return ChatRefused(f"{where}: refused for safety ({code})")
    if status in (401, 403):
        return Misconfigured(f"{where}: the API key was refused (HTTP {status}); check the key settings")
    if status == 404:
        return Misconfigured(f"{where}: model not found or retired (HTTP 404, {code}); change {setting}")
    if status >= 500:
        return ServiceUnavailable(f"{where}: server error HTTP {status}")
    if status == 400 and exc.param == "prompt":
        return InvalidRequest("The image service did not accept this prompt. Try refining it first.")
    return Misconfigured(f"{where}: request rejected (HTTP {status}, {code or 'no code'}); check {setting}")


class OpenAIService:
    """Chat and image calls with timeouts, bounded retries and the bot's error taxonomy."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        chat_model: str,
        chat_api_key: str | None = None,
        chat_base_url: str | None = None,
        chat_timeout: float = 60.0,
        image_timeout: float = 180.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.chat_model = chat_model
        self.retry = retry or RetryPolicy()
        self._images = AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=image_timeout, max_retries=0)
        self._chat = AsyncOpenAI(
            api_key=chat_api_key or api_key,
            base_url=chat_base_url or base_url,
            timeout=chat_timeout,
            max_retries=0,
        )
        self._reported: set[str] = set()

    async def close(self) -> None:
        await self._images.close()
        await self._chat.close()

    async def chat(
        self, messages: Sequence[dict[str, str]], *, user_hash: str, on_retry: RetryNotice | None = None
    ) -> ChatAnswer:
        payload = _chat_messages(messages)

        async def call() -> ChatAnswer:
            completion = await self._chat.chat.completions.create(
                model=self.chat_model,
                messages=payload,
                safety_identifier=user_hash,
            )
            if not completion.choices:
                raise BadAnswer("chat: no choices in the answer")
            choice = completion.choices[0]
            if getattr(choice.message, "refusal", None) or choice.finish_reason == "content_filter":
                raise ChatRefused("chat: the model refused")
            text = choice.message.content or ""
            usage = completion.usage
            if usage is not None:
                return ChatAnswer(text, self.chat_model, usage.prompt_tokens, usage.completion_tokens, False)
            sent = sum(estimate_tokens(message.get("content", "")) for message in messages)
            return ChatAnswer(text, self.chat_model, sent, estimate_tokens(text), True)

        return await self._with_retries(
            call, service="chat", model=self.chat_model, setting="CHAT_MODEL", on_retry=on_retry
        )

    async def generate_image(self, request: dict[str, Any], *, on_retry: RetryNotice | None = None) -> Any:
        async def call() -> Any:
            return await self._images.images.generate(**request)

        return await self._with_retries(
            call, service="image", model=request["model"], setting="IMAGE_MODEL", on_retry=on_retry
        )

    async def _with_retries(
        self,
        call: Callable[[], Awaitable[Any]],
        *,
        service: str,
        model: str,
        setting: str,
        on_retry: RetryNotice | None,
    ) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call()
            except MuralError as error:
                failure = error
            except openai.OpenAIError as exc:
                failure = translate(exc, service=service, model=model, setting=setting)
            wait = self.retry.delay(failure, attempt)
            if wait is None:
                self._log_failure(failure)
                raise failure
            log.warning(
                "%s [%s]; retrying in %.1fs (attempt %d)", failure.detail, failure.code, wait, attempt
            )
            if on_retry is not None:
                await on_retry(failure, wait)
            await asyncio.sleep(wait)

    def _log_failure(self, failure: MuralError) -> None:
        if not failure.operator_problem:
            log.info("%s [%s]", failure.detail, failure.code)
        elif failure.detail not in self._reported:
            # Operators need to hear about a bad key once, not on every command.
            self._reported.add(failure.detail)
            log.error("Operator action needed: %s [%s]", failure.detail, failure.code)
