"""Error answers for the loopback OpenAI: :class:`Fault` and builders for the errors the real API gives.

A :class:`Fault` is scripted like any reply (``fake.script_chat(rate_limited())``,
``fake.script_images(server_error(503))``, ``fake.script_moderations(hang())``) and answers one request.
The builders return bodies in the real ``{"error": {"message", "type", "param", "code"}}`` shape:
:func:`rate_limited`, :func:`insufficient_quota`, :func:`server_error`, :func:`moderation_blocked`,
:func:`content_policy_violation`, :func:`model_not_found`, :func:`unauthorized`,
:func:`permission_denied`, :func:`bad_request`, :func:`hang` (never answers until the client gives up)
and :func:`drop` (closes the connection without an answer). ``Fault(status, body, headers, delay)``
covers anything else.

Remember the SDK retries 408/409/429/5xx and connection errors ``max_retries`` times (2 by default), so
each retry consumes another scripted entry. An error event inside a 200 stream
(``ImageReply(stream_error=moderation_blocked())``) is never retried by the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Fault",
    "bad_request",
    "content_policy_violation",
    "drop",
    "error_body",
    "hang",
    "inner_error",
    "insufficient_quota",
    "model_not_found",
    "moderation_blocked",
    "permission_denied",
    "rate_limited",
    "server_error",
    "unauthorized",
]


@dataclass
class Fault:
    """An error answer (or a non-answer) for one request.

    ``body=None`` gives a generic OpenAI-shaped error for ``status``; a ``str``/``bytes`` body is sent
    verbatim (e.g. an HTML 502 page from a proxy). ``hang`` holds the request open for that many seconds
    (or until the client disconnects / the fake closes); ``drop`` closes the connection with no answer.
    """

    status: int = 500
    body: dict[str, Any] | str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: float | None = None
    drop: bool = False


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """An error answer's JSON body, ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def inner_error(error: Fault | Mapping[str, Any]) -> dict[str, Any]:
    """The inner ``{"message", "type", "param", "code"}`` object of a Fault's body or an error dict."""
    body: Any = error.body if isinstance(error, Fault) else error
    if not isinstance(body, Mapping):
        status = error.status if isinstance(error, Fault) else 500
        body = error_body(f"Error {status}", "server_error")
    inner = body.get("error")
    return dict(inner) if isinstance(inner, Mapping) else dict(body)


def _retry_headers(retry_after: float | None) -> dict[str, str]:
    # The SDK prefers retry-after-ms, then retry-after (a float is accepted there too).
    if retry_after is None:
        return {}
    return {"retry-after": f"{retry_after:g}", "retry-after-ms": str(round(retry_after * 1000))}


def rate_limited(retry_after: float | None = 1.0, *, model: str = "gpt-image-2") -> Fault:
    """429 requests-per-minute limit, with retry-after / retry-after-ms (omitted when ``None``).

    The SDK sleeps exactly ``retry_after`` when 0 < retry_after <= 120, otherwise its own backoff.
    """
    message = (
        f"Rate limit reached for {model} in organization org-fake on requests per min (RPM): Limit 5, "
        f"Used 5, Requested 1. Please try again in {retry_after or 1:g}s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    headers = {
        **_retry_headers(retry_after),
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": f"{retry_after or 1:g}s",
    }
    return Fault(429, error_body(message, "requests", "rate_limit_exceeded"), headers)


def insufficient_quota() -> Fault:
    """429 out-of-credit. The SDK still retries it like any 429 unless max_retries=0."""
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
    )
    return Fault(429, error_body(message, "insufficient_quota", "insufficient_quota"))


def server_error(status: int = 500, *, retry_after: float | None = None) -> Fault:
    """500/502/503 (any 5xx) -- retried by the SDK."""
    messages = {
        500: "The server had an error while processing your request. Sorry about that!",
        502: "Bad gateway.",
        503: "The server is overloaded or not ready yet.",
    }
    message = messages.get(status, "The server had an error while processing your request.")
    return Fault(status, error_body(message, "server_error"), _retry_headers(retry_after))


def moderation_blocked() -> Fault:
    """400 from a GPT Image model's safety system (not retried).

    Body as captured live from ``POST /v1/images/generations`` (2026-09), ``moderation_details``
    included. Also usable as ``ImageReply(stream_error=moderation_blocked())`` for the in-stream variant.
    """
    message = (
        "Your request was rejected by the safety system. If you believe this is an error, contact us at "
        "help.openai.com and include the request ID req_fake."
    )
    body = error_body(message, "image_generation_user_error", "moderation_blocked")
    body["error"]["moderation_details"] = {"moderation_stage": "input", "categories": ["other"]}
    return Fault(400, body)


def content_policy_violation() -> Fault:
    """400 from the legacy DALL-E safety system."""
    message = (
        "Your request was rejected as a result of our safety system. Your prompt may contain text that is "
        "not allowed by our safety system."
    )
    return Fault(400, error_body(message, "invalid_request_error", "content_policy_violation"))


def model_not_found(model: str = "gpt-image-2") -> Fault:
    """404 for an unknown or inaccessible model."""
    message = f"The model `{model}` does not exist or you do not have access to it."
    return Fault(404, error_body(message, "invalid_request_error", "model_not_found", "model"))


def unauthorized() -> Fault:
    """401 invalid_api_key (a wrong key, as opposed to the missing-header 401 the fake gives by itself)."""
    message = (
        "Incorrect API key provided: sk-****. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    return Fault(401, error_body(message, "invalid_request_error", "invalid_api_key"))


def permission_denied(message: str | None = None, *, code: str | None = None) -> Fault:
    """403, by default the "organization must be verified" refusal GPT Image models give."""
    message = message or (
        "Your organization must be verified to use the model `gpt-image-2`. Please go to: "
        "https://platform.openai.com/settings/organization/general and click on Verify Organization."
    )
    return Fault(403, error_body(message, "invalid_request_error", code))


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> Fault:
    """Any other 400 invalid_request_error."""
    return Fault(400, error_body(message, "invalid_request_error", code, param))


def hang(seconds: float = 3600) -> Fault:
    """Never answer (until the client times out and disconnects, or the fake closes)."""
    return Fault(status=0, hang=seconds)


def drop() -> Fault:
    """Close the connection without sending a status line; the SDK sees a connection error."""
    return Fault(status=0, drop=True)
