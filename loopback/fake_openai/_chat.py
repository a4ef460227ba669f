"""The loopback OpenAI's ``POST /v1/chat/completions``: answers, streams, vision input and its checks.

* Request: JSON, or ``stream=True`` SSE chunks ending in ``data: [DONE]`` (``stream_options.include_usage``
  adds the trailing usage chunk). User content may be a list of parts (``{"type": "text"}`` /
  ``{"type": "image_url", "image_url": {"url", "detail"}}``): vision input.
* Default answer: :func:`default_chat_content` -- ``"[fake-openai] Prompt: <last user message text>"``
  (text parts only when the content is a list), model echoed, ``finish_reason="stop"``, word-count
  ``usage`` (plus a flat 85 tokens per ``detail="low"`` image and 765 per other image).
* Validation (400s in the real shape): an ``image_url`` part sent to a model not in
  ``fake.vision_models`` (``None``, the default, means every model takes images) -> ``"Invalid content
  type. image_url is only supported by certain models."``, ``param="messages.[i].content.[j].type"``,
  ``code=None``. A ``data:`` URL that is not base64 png/jpeg/gif/webp -> ``code="invalid_image_format"``.
  ``http(s)`` URLs are accepted unchecked (never fetched).
* Scripting: ``fake.script_chat(*replies)`` -- each a ``str`` (assistant content), a :class:`Reply` or a
  :class:`~loopback.openai_faults.Fault`, one request each, in order; then ``fake.chat_handler``
  (``(request_json) -> reply | None``, sync or async) if set; then the default.
* Inspection: ``fake.chat_requests``; ``fake.chat_image_inputs(request=None)`` -> the decoded bytes of
  each ``data:`` URL image of a chat request (default: the last one).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from loopback.fake_openai._recorded import (
    CHAT_PATH,
    ChatImage,
    RecordedRequest,
    chat_images,
    last_user_text,
    text_of,
)
from loopback.fake_openai._transport import Transport
from loopback.openai_faults import Fault
from loopback.png import sniff_image_format

DEFAULT_CHAT_PREFIX = "[fake-openai] "
# Chat vision input tokens per image: 85 is the published flat cost of detail="low"; 765 is what a
# 1024x1024 picture costs at high detail (85 + 4 tiles x 170). Used for every other detail value.
_CHAT_IMAGE_TOKENS_LOW = 85
_CHAT_IMAGE_TOKENS = 765


@dataclass
class Reply:
    """A scripted chat completion.

    ``content=None`` (with no ``tool_calls`` / ``refusal``) means "the default text for this request", so
    e.g. ``Reply(finish_reason="length")`` only changes the finish reason.
    """

    content: str | None = None
    finish_reason: str = "stop"
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None  # [{"id", "type": "function", "function": {...}}]
    usage: dict[str, Any] | None = None  # replaces the computed usage
    omit_usage: bool = False  # answer without `usage`, as some OpenAI-compatible servers do
    model: str | None = None  # replaces the echoed model
    chunks: list[str] | None = None  # stream: explicit content pieces (default: split on words)
    chunk_delay: float = 0.0  # stream: pause between chunks
    drop_after_chunks: int | None = None  # stream: cut the connection after this many chunks
    delay: float = 0.0  # added to fake.latency
    headers: dict[str, str] = field(default_factory=dict)


ChatResult = str | Reply | Fault
ChatHandler = Callable[[dict[str, Any]], ChatResult | Awaitable[ChatResult | None] | None]


def default_chat_content(request_json: Mapping[str, Any]) -> str:
    """The assistant text the fake answers when nothing is scripted.

    ``"[fake-openai] Prompt: <last user message text>"`` -- deterministic, derived from the request, and
    prefixed so a test can tell a default answer from a scripted one.
    """
    return f"{DEFAULT_CHAT_PREFIX}Prompt: {last_user_text(request_json)}"


def _words(text: str) -> int:
    return len(text.split())


class ChatRoutes(Transport):
    """``/chat/completions`` and its scripting and inspection; the state is set up by ``FakeOpenAI``."""

    vision_models: set[str] | None  # None: every chat model accepts image parts
    chat_handler: ChatHandler | None
    _chat_queue: list[ChatResult]

    def script_chat(self, *replies: ChatResult) -> None:
        for reply in replies:
            if not isinstance(reply, str | Reply | Fault):
                raise TypeError(f"script_chat takes str, Reply or Fault, not {type(reply).__name__}")
        self._chat_queue.extend(replies)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == CHAT_PATH]

    def chat_image_inputs(self, request: RecordedRequest | None = None) -> list[bytes]:
        """The decoded bytes of each image part of a chat request (default: the last chat request).

        ValueError if an image is not a base64 ``data:`` URL (the fake never fetches remote URLs).
        """
        if request is None:
            if not self.chat_requests:
                raise LookupError("no /chat/completions request was recorded")
            request = self.chat_requests[-1]
        decoded: list[bytes] = []
        for image in request.chat_images:
            if image.data is None:
                raise ValueError(
                    f"image part {image.part_index} is not a base64 data URL: {image.url[:60]!r}"
                )
            decoded.append(image.data)
        return decoded

    # ---- answers ---------------------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, lambda recorded: self._chat_answer(request, recorded))

    async def _chat_answer(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        params = recorded.json
        if not isinstance(params, dict):
            return self._error(400, "We could not parse the JSON body of your request.")
        if not params.get("messages"):
            return self._error(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        images = chat_images(params)
        rejected = self._vision_error(params, images)
        if rejected is not None:
            return rejected
        try:
            result = await self._resolve(self._chat_queue, self.chat_handler, params, (str, Reply, Fault))
        except Exception as exc:  # a broken test handler must surface, not hang the client
            self.handler_errors.append(exc)
            return self._error(500, f"fake chat_handler raised {exc!r}", "server_error")
        if isinstance(result, Fault):
            return await self._fault(request, result)
        reply = Reply(content=result) if isinstance(result, str) else result or Reply()
        await self._pause(reply.delay)

        content = reply.content
        if content is None and reply.tool_calls is None and reply.refusal is None:
            content = default_chat_content(params)
        model = reply.model or str(params.get("model") or "gpt-fake")
        prompt_tokens = sum(
            _words(text_of(m.get("content"))) for m in params["messages"] if isinstance(m, dict)
        ) + sum(_CHAT_IMAGE_TOKENS_LOW if i.detail == "low" else _CHAT_IMAGE_TOKENS for i in images)
        completion_tokens = _words(content or "") + _words(reply.refusal or "")
        usage = reply.usage or {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        completion_id = self._next_id("chatcmpl-fake")
        created = int(time.time())

        if params.get("stream"):
            return await self._chat_stream(
                request, params, reply, content, model, usage, completion_id, created
            )

        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": reply.refusal}
        if reply.tool_calls is not None:
            message["tool_calls"] = reply.tool_calls
        body = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}
            ],
            "usage": usage,
            "system_fingerprint": "fp_fake",
        }
        if reply.omit_usage:
            del body["usage"]
        return self._json(body, headers=reply.headers)

    def _vision_error(self, params: Mapping[str, Any], images: list[ChatImage]) -> web.Response | None:
        """400 for image parts the real API would refuse, else None."""
        model = str(params.get("model") or "")
        for image in images:
            if self.vision_models is not None and model not in self.vision_models:
                # Exact body OpenAI answers a text-only model (e.g. gpt-3.5-turbo), as quoted in
                # vllm-project/vllm#11629 and browser-use/web-ui#274: code is null, param is the path.
                return self._error(
                    400,
                    "Invalid content type. image_url is only supported by certain models.",
                    param=f"messages.[{image.message_index}].content.[{image.part_index}].type",
                )
            if image.url.startswith("data:") and (
                image.data is None or sniff_image_format(image.data) is None
            ):
                # Message as reported by users of the real API (marketing-factory/ai-filemetadata#20,
                # CosmosShadow/gptpdf#6); the code has varied over time (sanitizer_server_error in 2024),
                # invalid_image_format is the current one as far as known -- not verified live.
                return self._error(
                    400,
                    "You uploaded an unsupported image. Please make sure your image has of one the "
                    "following formats: ['png', 'jpeg', 'gif', 'webp'].",
                    code="invalid_image_format",
                )
        return None

    async def _chat_stream(
        self,
        request: web.Request,
        params: dict[str, Any],
        reply: Reply,
        content: str | None,
        model: str,
        usage: dict[str, Any],
        completion_id: str,
        created: int,
    ) -> web.StreamResponse:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            }

        pieces = reply.chunks if reply.chunks is not None else re.findall(r"\s*\S+", content or "")
        events: list[dict[str, Any]] = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": piece}) for piece in pieces]
        if reply.refusal is not None:
            events.append(chunk({"refusal": reply.refusal}))
        if reply.tool_calls:
            events.append(
                chunk({"tool_calls": [{"index": i, **call} for i, call in enumerate(reply.tool_calls)]})
            )
        events.append(chunk({}, reply.finish_reason))
        if (params.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk({}), "choices": [], "usage": usage})

        response = await self._sse(request, reply.headers)
        for sent, event in enumerate(events):
            if reply.drop_after_chunks is not None and sent >= reply.drop_after_chunks:
                self._abort(request)
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
            await self._pause(reply.chunk_delay)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
