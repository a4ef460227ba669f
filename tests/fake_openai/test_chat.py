"""The fake's ``/chat/completions``, through the real ``openai.AsyncOpenAI`` client: default and scripted
answers, handlers, streams, and vision input with the requests the real API refuses.
"""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest

from loopback.fake_openai import (
    DEFAULT_CHAT_PREFIX,
    FakeOpenAI,
    Reply,
    default_chat_content,
    last_user_text,
    make_png,
)

pytestmark = pytest.mark.asyncio

USER = [{"role": "user", "content": "a lighthouse at dusk"}]


async def test_chat_default_answer_is_derived_from_the_request(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    completion = await client.chat.completions.create(model="gpt-5.4-mini", messages=USER)

    assert completion.choices[0].message.content == "[fake-openai] Prompt: a lighthouse at dusk"
    assert completion.choices[0].message.content == default_chat_content({"messages": USER})
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-5.4-mini"
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.usage is not None
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


async def test_scripted_chat_is_consumed_in_order_then_defaults_resume(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_chat("first answer", Reply(content="cut short", finish_reason="length", model="other-model"))

    first = await client.chat.completions.create(model="m", messages=USER)
    second = await client.chat.completions.create(model="m", messages=USER)
    third = await client.chat.completions.create(model="m", messages=USER)

    assert first.choices[0].message.content == "first answer"
    assert second.choices[0].message.content == "cut short"
    assert second.choices[0].finish_reason == "length"
    assert second.model == "other-model"
    assert third.choices[0].message.content == default_chat_content({"messages": USER})
    assert fake.pending() == {"chat": 0, "images": 0, "moderations": 0}


async def test_chat_answer_can_omit_usage_like_some_compatible_servers(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_chat(Reply(content="no usage here", omit_usage=True))
    completion = await client.chat.completions.create(model="llama3", messages=USER)
    assert completion.choices[0].message.content == "no usage here"
    assert completion.usage is None


async def test_chat_handler_answers_dynamically_sync_or_async(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    async def shout(request_json: dict[str, Any]) -> str | None:
        text = request_json["messages"][-1]["content"]
        return None if text == "default please" else text.upper()

    fake.chat_handler = shout
    loud = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hey"}])
    plain = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "default please"}]
    )
    fake.script_chat("scripted wins over the handler")
    scripted = await client.chat.completions.create(model="m", messages=USER)

    assert loud.choices[0].message.content == "HEY"
    assert plain.choices[0].message.content == f"{DEFAULT_CHAT_PREFIX}Prompt: default please"
    assert scripted.choices[0].message.content == "scripted wins over the handler"


async def test_chat_handler_exception_becomes_a_500(fake: FakeOpenAI, no_retry: openai.AsyncOpenAI) -> None:
    def broken(request_json: dict[str, Any]) -> str:
        raise KeyError("oops")

    fake.chat_handler = broken
    with pytest.raises(openai.InternalServerError):
        await no_retry.chat.completions.create(model="m", messages=USER)
    assert isinstance(fake.handler_errors[0], KeyError)


async def test_chat_stream_assembles_to_the_full_answer(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-5.4-mini", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    pieces: list[str] = []
    finish_reasons: list[str | None] = []
    usage = None
    async for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish_reasons.append(choice.finish_reason)
        usage = chunk.usage or usage

    assert "".join(pieces) == default_chat_content({"messages": USER})
    assert len(pieces) > 3  # really streamed in several chunks
    assert finish_reasons[-1] == "stop"
    assert usage is not None
    assert usage.completion_tokens > 0
    assert fake.chat_requests[0].json["stream"] is True


async def test_chat_stream_cut_mid_way_raises_connection_error(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI
) -> None:
    fake.script_chat(Reply(content="one two three four", drop_after_chunks=2))
    received: list[str] = []
    stream = await no_retry.chat.completions.create(model="m", messages=USER, stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one"


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def vision_messages(url: str, detail: str = "low") -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You describe pictures."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is"},
                {"type": "image_url", "image_url": {"url": url, "detail": detail}},
                {"type": "text", "text": "in this picture?"},
            ],
        },
    ]


async def test_vision_chat_records_the_picture_and_answers_from_the_text(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    picture = make_png(12, 9, (9, 8, 7))
    messages = vision_messages(data_url(picture))

    completion = await client.chat.completions.create(model="gpt-5.4-mini", messages=messages)

    assert completion.choices[0].message.content == "[fake-openai] Prompt: what is in this picture?"
    assert last_user_text({"messages": messages}) == "what is in this picture?"
    assert fake.chat_image_inputs() == [picture]  # the picture's bytes reached the model
    [image] = fake.chat_requests[0].chat_images
    assert (image.message_index, image.part_index, image.detail, image.media_type) == (
        1,
        1,
        "low",
        "image/png",
    )
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 3 + 5 + 85  # system words + user words + a low-detail image


async def test_vision_part_to_a_text_only_model_is_rejected_like_openai(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI
) -> None:
    fake.vision_models = {"gpt-5.4-mini"}
    fake.script_chat("must not be consumed by the rejected request")
    messages = vision_messages(data_url(make_png(4, 4)))

    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.chat.completions.create(model="gpt-3.5-turbo", messages=messages)

    error = caught.value
    assert (
        error.message
        == "Error code: 400 - Invalid content type. image_url is only supported by certain models."
    )
    assert error.body == {
        "message": "Invalid content type. image_url is only supported by certain models.",
        "type": "invalid_request_error",
        "param": "messages.[1].content.[1].type",
        "code": None,
    }
    assert error.code is None
    assert fake.pending()["chat"] == 1
    assert fake.chat_requests[0].chat_images  # recorded even though rejected
    # Text-only requests to the same model and image requests to a vision model still work.
    text_only = await no_retry.chat.completions.create(model="gpt-3.5-turbo", messages=USER)
    assert text_only.choices[0].message.content == "must not be consumed by the rejected request"
    await no_retry.chat.completions.create(model="gpt-5.4-mini", messages=messages)


async def test_vision_corrupt_data_url_and_remote_urls(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.chat.completions.create(
            model="gpt-5.4-mini", messages=vision_messages(data_url(b"%PDF-1.7 not a picture"))
        )
    assert caught.value.code == "invalid_image_format"
    assert "unsupported image" in caught.value.message

    remote = "https://example.com/cat.png"
    await no_retry.chat.completions.create(model="gpt-5.4-mini", messages=vision_messages(remote, "high"))
    [image] = fake.chat_requests[-1].chat_images
    assert (image.url, image.detail, image.data) == (remote, "high", None)
    with pytest.raises(ValueError):
        fake.chat_image_inputs()  # the fake never fetches remote pictures
