"""The bot's own bounded retries, and the `openai` package's exceptions turned into the bot's errors.

The package's automatic retries are switched off so that every request is counted here: a request
that must not be repeated (an exhausted quota) is sent exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import openai

from bot.core.ai.values import RetryNotice
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


def error_code(exc: openai.APIStatusError) -> str | None:
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
        # An error inside a stream arrives as a plain APIError with its code and no status.
        code = getattr(exc, "code", None)
        if isinstance(exc, openai.APIError) and code in SAFETY_CODES:
            if service == "image":
                return SafetyRejected(f"{where}: refused for safety mid-stream ({code})")
            return ChatRefused(f"{where}: refused for safety mid-stream ({code})")
        return BadAnswer(f"{where}: {type(exc).__name__} ({code or 'no code'})")
    code = error_code(exc)
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


class Retrying:
    """Runs each call under the retry policy; what finally fails is logged, an operator's problem once."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self._reported: set[str] = set()

    async def run(
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
            wait = self.policy.delay(failure, attempt)
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
