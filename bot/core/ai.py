"""The one place that talks to the `openai` package (the only importer of it).

It owns the clients (chat may live on another OpenAI-compatible server than images), applies the
bot's own bounded retry policy, and turns the package's exceptions into the bot's errors. The
package's automatic retries are switched off so that every request is counted here: a request
that must not be repeated (an exhausted quota) is sent exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import openai
from openai import AsyncOpenAI
from openai.types import (
    ImageEditCompletedEvent,
    ImageEditPartialImageEvent,
    ImageGenCompletedEvent,
    ImageGenPartialImageEvent,
)
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
    VisionUnavailable,
)

log = logging.getLogger(__name__)


def safety_identifier(user_id: int, salt: str) -> str:
    """OpenAI asks for a stable per-user id for abuse monitoring; a salted hash keeps the Discord id private.

    Unsalted, a hash of a Discord id could be reversed by hashing every plausible id; the salt is this
    bot's own (configured, or generated once and kept in the store).
    """
    return hashlib.sha256(f"{salt}:{user_id}".encode()).hexdigest()


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


@dataclass(frozen=True)
class InputImage:
    """A picture sent to a model: to the edit endpoint as a file, or to a vision model inline."""

    filename: str
    data: bytes
    mime: str


MODERATION_MODEL = "omni-moderation-latest"


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


PreviewCallback = Callable[[bytes], Awaitable[None]]


def _image_usage(usage: Any) -> ImageUsage | None:
    if usage is None:
        return None
    details = getattr(usage, "input_tokens_details", None)
    return ImageUsage(
        text_input=details.text_tokens if details else usage.input_tokens,
        image_input=details.image_tokens if details else 0,
        output=usage.output_tokens,
    )


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
        # An error inside a stream arrives as a plain APIError with its code and no status.
        code = getattr(exc, "code", None)
        if isinstance(exc, openai.APIError) and code in SAFETY_CODES:
            if service == "image":
                return SafetyRejected(f"{where}: refused for safety mid-stream ({code})")
            return ChatRefused(f"{where}: refused for safety mid-stream ({code})")
        return BadAnswer(f"{where}: {type(exc).__name__} ({code or 'no code'})")
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
        vision_model: str | None = None,
        chat_api_key: str | None = None,
        chat_base_url: str | None = None,
        chat_timeout: float = 60.0,
        image_timeout: float = 180.0,
        retry: RetryPolicy | None = None,
        safety_salt: str = "",
    ) -> None:
        self.chat_model = chat_model
        self._safety_salt = safety_salt
        self.vision_model = vision_model or chat_model
        self.retry = retry or RetryPolicy()
        self._images = AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=image_timeout, max_retries=0)
        self._chat = AsyncOpenAI(
            api_key=chat_api_key or api_key,
            base_url=chat_base_url or base_url,
            timeout=chat_timeout,
            max_retries=0,
        )
        self._reported: set[str] = set()
        # False once the server answered 404 on /moderations (an OpenAI-compatible server without it).
        self.moderation_available = True

    def user_hash(self, user_id: int) -> str:
        """The `safety_identifier` OpenAI gets for a member: never the Discord id itself."""
        return safety_identifier(user_id, self._safety_salt)

    async def close(self) -> None:
        await self._images.close()
        await self._chat.close()

    async def chat(
        self, messages: Sequence[dict[str, str]], *, user_hash: str, on_retry: RetryNotice | None = None
    ) -> ChatAnswer:
        payload = _chat_messages(messages)

        async def call() -> ChatAnswer:
            completion = await self._chat.chat.completions.create(
                model=self.chat_model, messages=payload, safety_identifier=user_hash
            )
            sent = sum(estimate_tokens(message.get("content", "")) for message in messages)
            return self._answer(completion, self.chat_model, sent_tokens=sent)

        return await self._with_retries(
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
                completion = await self._chat.chat.completions.create(
                    model=model, messages=payload, safety_identifier=user_hash
                )
            except openai.BadRequestError as exc:
                if _error_code(exc) in SAFETY_CODES:
                    raise
                raise VisionUnavailable(
                    f"vision model {model} did not accept an image (HTTP 400, {_error_code(exc)}); "
                    "set VISION_MODEL to a model that reads images"
                ) from exc
            return self._answer(completion, model, sent_tokens=estimate_tokens(instructions) + 800)

        return await self._with_retries(
            call, service="chat", model=model, setting="VISION_MODEL", on_retry=on_retry
        )

    def _answer(self, completion: Any, model: str, *, sent_tokens: int) -> ChatAnswer:
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
        files = [(image.filename, image.data, image.mime) for image in inputs]

        async def call() -> ImageAnswer:
            if partial_images and on_preview is not None:
                return await self._streamed(request, files, partial_images, on_preview)
            if files:
                response = await self._images.images.edit(image=files, **request)
            else:
                response = await self._images.images.generate(**request)
            data = response.data or []
            return ImageAnswer(
                images_b64=[item.b64_json or "" for item in data],
                revised_prompts=[getattr(item, "revised_prompt", None) or None for item in data],
                usage=_image_usage(response.usage),
            )

        return await self._with_retries(
            call, service="image", model=request["model"], setting="IMAGE_MODEL", on_retry=on_retry
        )

    async def _streamed(
        self,
        request: dict[str, Any],
        files: list[tuple[str, bytes, str]],
        partial_images: int,
        on_preview: PreviewCallback,
    ) -> ImageAnswer:
        if files:
            stream = await self._images.images.edit(
                image=files, stream=True, partial_images=partial_images, **request
            )
        else:
            stream = await self._images.images.generate(stream=True, partial_images=partial_images, **request)
        # Closed whichever way this ends, so no half-read response (nor its async generator, which the
        # garbage collector would otherwise finalize on whatever thread it runs) outlives the call.
        async with stream, contextlib.aclosing(cast(AsyncGenerator[Any, None], aiter(stream))) as events:
            async for event in events:
                if isinstance(event, ImageGenPartialImageEvent | ImageEditPartialImageEvent):
                    await on_preview(base64.b64decode(event.b64_json))
                elif isinstance(event, ImageGenCompletedEvent | ImageEditCompletedEvent):
                    return ImageAnswer([event.b64_json], [None], _image_usage(getattr(event, "usage", None)))
        raise BadAnswer("image stream ended without a picture")

    async def moderate(self, texts: Sequence[str], image: InputImage | None = None) -> Moderation | None:
        """OpenAI's moderation verdict on texts (and one picture); None where the server has no such endpoint.

        The endpoint costs nothing. An OpenAI-compatible server without it answers 404: that is
        logged once and requests go on; any other failure is an outage like any other.
        """
        if not self.moderation_available:
            return None
        parts: list[dict[str, Any]] = [{"type": "text", "text": text} for text in texts if text.strip()]
        if image is not None:
            data_url = f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}"
            parts.append({"type": "image_url", "image_url": {"url": data_url}})
        if not parts:
            return Moderation(flagged=False, categories=(), scores={})

        async def call() -> Moderation | None:
            try:
                response = await self._images.moderations.create(
                    model=MODERATION_MODEL,
                    input=parts,  # pyright: ignore[reportArgumentType] - the SDK's TypedDict union is narrower
                )
            except openai.NotFoundError:
                self.moderation_available = False
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

        return await self._with_retries(
            call, service="moderation", model=MODERATION_MODEL, setting="OPENAI_BASE_URL", on_retry=None
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


# -- the set-up check (`python -m bot check`) --------------------------------------------------------

ProbeStatus = Literal["ok", "missing", "key-refused", "unreachable", "error"]


@dataclass(frozen=True)
class Probe:
    """What an OpenAI-compatible server answered the set-up check, without the openai types."""

    status: ProbeStatus
    detail: str = ""
    model_ids: frozenset[str] = frozenset()


def _probe_failure(exc: openai.OpenAIError) -> Probe:
    if isinstance(exc, openai.APITimeoutError):
        return Probe("unreachable", "timed out")
    if isinstance(exc, openai.APIConnectionError):
        return Probe("unreachable", "cannot connect")
    if isinstance(exc, openai.APIStatusError):
        code = _error_code(exc)
        detail = f"HTTP {exc.status_code}" + (f", {code}" if code else "")
        if exc.status_code in (401, 403):
            return Probe("key-refused", detail)
        if exc.status_code == 404:
            return Probe("missing", detail)
        return Probe("error", detail)
    return Probe("error", type(exc).__name__)


class ModelCatalogue:
    """One server's view for the set-up check: is the key accepted (GET /models), does a model exist
    (GET /models/{id}). Separate from `OpenAIService`: a check must not retry for minutes or count usage."""

    def __init__(self, *, api_key: str, base_url: str | None, timeout: float = 15.0) -> None:
        self._client = AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    async def close(self) -> None:
        await self._client.close()

    async def list_models(self) -> Probe:
        try:
            ids = frozenset([model.id async for model in self._client.models.list()])
        except openai.OpenAIError as exc:
            return _probe_failure(exc)
        return Probe("ok", f"{len(ids)} models", ids)

    async def lookup(self, model: str, *, listed: frozenset[str] = frozenset()) -> Probe:
        """Whether `model` exists; `listed` (from `list_models`) settles it on servers without the route."""
        try:
            found = await self._client.models.retrieve(model)
        except openai.OpenAIError as exc:
            failure = _probe_failure(exc)
            if failure.status in ("missing", "error") and model in listed:
                return Probe("ok", "listed by the server")
            return failure
        return Probe("ok", f"owned by {found.owned_by}" if found.owned_by else "")
