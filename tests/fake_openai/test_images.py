"""The fake's ``/images/generations`` (and what it shares with edits), through the real
``openai.AsyncOpenAI`` client: GPT Image and legacy answers, scripting and handlers, parameter ranges,
streams of partial pictures, and errors inside a stream.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import aiohttp
import openai
import pytest
from openai.types import ImageGenCompletedEvent, ImageGenPartialImageEvent

from loopback.fake_openai import FakeOpenAI, ImageReply, make_png, moderation_blocked, png_dimensions

pytestmark = pytest.mark.asyncio


def decode_png(b64: str | None) -> bytes:
    assert b64 is not None
    data = base64.b64decode(b64)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return data


async def test_image_generate_returns_valid_png_and_gpt_image_fields(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    result = await client.images.generate(
        model="gpt-image-2", prompt="a red fox", size="1536x1024", quality="high", n=2
    )

    assert result.data is not None
    assert len(result.data) == 2
    first, second = (decode_png(image.b64_json) for image in result.data)
    assert png_dimensions(first) == (64, 64)  # small by default, whatever size was asked for
    assert first != second  # each picture gets its own colour
    assert (result.size, result.quality, result.output_format, result.background) == (
        "1536x1024",
        "high",
        "png",
        "opaque",
    )
    assert result.created > 0
    assert result.usage is not None
    assert result.usage.input_tokens_details.text_tokens == 3
    assert result.usage.input_tokens_details.image_tokens == 0
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens
    assert result.data[0].revised_prompt is None
    assert fake.image_requests[0].json["prompt"] == "a red fox"


async def test_image_dimensions_none_renders_the_requested_size(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.image_dimensions = None
    result = await client.images.generate(model="gpt-image-2", prompt="wide", size="320x160")
    assert result.data is not None
    assert png_dimensions(decode_png(result.data[0].b64_json)) == (320, 160)


async def test_scripted_image_reply_and_usage(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    custom = make_png(8, 8, (0, 255, 0))
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
        "output_tokens": 99,
        "total_tokens": 109,
    }
    fake.script_images(ImageReply(png=custom, usage=usage))

    result = await client.images.generate(model="gpt-image-2", prompt="anything")

    assert result.data is not None
    assert decode_png(result.data[0].b64_json) == custom
    assert result.usage is not None
    assert result.usage.output_tokens == 99


async def test_image_handler_answers_dynamically_and_rejects_wrong_types(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI
) -> None:
    def handler(request_json: dict[str, Any]) -> ImageReply | None:
        if request_json["prompt"] == "wrong type":
            return "not an ImageReply"  # type: ignore[return-value]
        return ImageReply(revised_prompt=f"handled: {request_json['prompt']}")

    fake.image_handler = handler
    result = await no_retry.images.generate(model="gpt-image-2", prompt="a bridge")
    assert result.data is not None
    assert result.data[0].revised_prompt == "handled: a bridge"

    with pytest.raises(openai.InternalServerError):
        await no_retry.images.generate(model="gpt-image-2", prompt="wrong type")
    assert isinstance(fake.handler_errors[0], TypeError)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_an_image_answer_can_omit_usage_like_some_compatible_servers(
    fake: FakeOpenAI, client: openai.AsyncOpenAI, stream: bool
) -> None:
    fake.script_images(ImageReply(omit_usage=True))
    if not stream:
        response = await client.images.generate(model="gpt-image-2", prompt="a fox")
        assert response.data and response.data[0].b64_json and response.usage is None
        return
    events = [
        event
        async for event in await client.images.generate(model="gpt-image-2", prompt="a fox", stream=True)
    ]
    assert events[-1].type == "image_generation.completed"
    assert getattr(events[-1], "usage", None) is None


async def test_dalle3_revised_prompt_url_and_b64(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    by_url = await client.images.generate(model="dall-e-3", prompt="a castle", response_format="url")
    as_b64 = await client.images.generate(model="dall-e-3", prompt="a castle", response_format="b64_json")

    assert by_url.data is not None
    assert as_b64.data is not None
    assert by_url.data[0].revised_prompt is not None
    assert "a castle" in by_url.data[0].revised_prompt
    assert by_url.data[0].b64_json is None
    assert by_url.data[0].url is not None
    async with aiohttp.ClientSession() as http, http.get(by_url.data[0].url) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        downloaded = await response.read()
    assert png_dimensions(downloaded) == (64, 64)
    assert as_b64.data[0].url is None
    assert decode_png(as_b64.data[0].b64_json) == downloaded  # same prompt, same deterministic picture
    assert as_b64.usage is None  # the legacy models do not report token usage


async def test_dalle3_rejects_more_than_one_image(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.generate(model="dall-e-3", prompt="two castles", n=2)
    assert caught.value.param == "n"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"stream": True, "partial_images": 4}, "integer_above_max_value"),
        ({"stream": True, "partial_images": -1}, "integer_below_min_value"),
        ({"n": 11}, "integer_above_max_value"),
        ({"n": 0}, "integer_below_min_value"),
    ],
)
async def test_image_integer_ranges(no_retry: openai.AsyncOpenAI, kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.images.generate(model="gpt-image-2", prompt="x", **kwargs)
    assert caught.value.code == code
    assert caught.value.param == next(iter(key for key in kwargs if key != "stream"))


async def test_image_stream_yields_partials_then_completed(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    stream = await client.images.generate(model="gpt-image-2", prompt="a kite", stream=True, partial_images=2)
    events = [event async for event in stream]

    assert [type(e) for e in events] == [
        ImageGenPartialImageEvent,
        ImageGenPartialImageEvent,
        ImageGenCompletedEvent,
    ]
    partials = [e for e in events if isinstance(e, ImageGenPartialImageEvent)]
    assert [p.partial_image_index for p in partials] == [0, 1]
    assert all(p.type == "image_generation.partial_image" for p in partials)
    completed = events[-1]
    assert isinstance(completed, ImageGenCompletedEvent)
    assert completed.type == "image_generation.completed"
    assert completed.usage.output_tokens > 0
    images = [decode_png(e.b64_json) for e in events]
    assert len(set(images)) == 3  # partial images differ from each other and from the final one
    assert fake.image_requests[0].json["partial_images"] == 2


async def test_image_stream_partial_counts(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    none = await client.images.generate(model="gpt-image-2", prompt="quick", stream=True, partial_images=0)
    assert [type(e) for e in [event async for event in none]] == [ImageGenCompletedEvent]

    early = make_png(4, 4, (1, 1, 1))
    fake.script_images(ImageReply(partial_pngs=[early]))  # the API may finish before all partials
    fewer = await client.images.generate(model="gpt-image-2", prompt="fast", stream=True, partial_images=3)
    events = [event async for event in fewer]
    assert [type(e) for e in events] == [ImageGenPartialImageEvent, ImageGenCompletedEvent]
    assert decode_png(events[0].b64_json) == early


async def test_moderation_block_mid_stream_raises_plain_api_error_while_iterating(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_images(ImageReply(stream_error=moderation_blocked()))
    stream = await client.images.generate(
        model="gpt-image-2", prompt="borderline", stream=True, partial_images=2
    )
    received: list[object] = []

    with pytest.raises(openai.APIError) as caught:
        async for event in stream:
            received.append(event)

    error = caught.value
    assert type(error) is openai.APIError  # not an APIStatusError: the HTTP status was 200
    assert not hasattr(error, "status_code")
    assert error.code == "moderation_blocked"
    assert error.type == "image_generation_user_error"
    assert error.message.startswith("Your request was rejected by the safety system.")
    assert isinstance(error.body, dict)
    assert error.body["code"] == "moderation_blocked"
    assert [type(e) for e in received] == [ImageGenPartialImageEvent, ImageGenPartialImageEvent]
    assert fake.calls("/images/generations") == 1  # an error inside a 200 stream is never retried


async def test_stream_error_wire_format_and_error_after(fake: FakeOpenAI) -> None:
    fake.script_images(ImageReply(stream_error=moderation_blocked(), error_after=1))
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{fake.base_url}/images/generations",
            json={"model": "gpt-image-2", "prompt": "x", "stream": True, "partial_images": 3},
            headers={"Authorization": "Bearer sk-test"},
        ) as response,
    ):
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        raw = (await response.read()).decode()

    blocks = [block for block in raw.split("\n\n") if block]
    assert [block.split("\n")[0] for block in blocks] == [
        "event: image_generation.partial_image",
        "event: error",
    ]
    error_event = json.loads(blocks[1].split("\n", 1)[1].removeprefix("data: "))
    assert error_event["type"] == "error"
    assert error_event["sequence_number"] == 1
    assert error_event["error"]["code"] == "moderation_blocked"
    assert error_event["error"]["type"] == "image_generation_user_error"
    assert set(error_event["error"]) >= {"message", "type", "param", "code"}


async def test_stream_error_on_edits_and_without_stream(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI
) -> None:
    custom = {
        "message": "Image generation failed.",
        "type": "server_error",
        "param": None,
        "code": "server_error",
    }
    fake.script_images(ImageReply(stream_error=custom, error_after=0))
    stream = await no_retry.images.edit(
        model="gpt-image-2", prompt="x", image=("a.png", make_png(4, 4)), stream=True, partial_images=1
    )
    with pytest.raises(openai.APIError) as caught:
        _ = [event async for event in stream]
    assert (caught.value.code, caught.value.message) == ("server_error", "Image generation failed.")

    # The same scripted reply on a non-streamed request is an ordinary HTTP error.
    fake.script_images(ImageReply(stream_error=moderation_blocked()))
    with pytest.raises(openai.BadRequestError) as status_error:
        await no_retry.images.generate(model="gpt-image-2", prompt="x")
    assert status_error.value.code == "moderation_blocked"


async def test_stream_partial_delay_sets_time_to_first_preview(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_images(ImageReply(partial_delay=0.4, completed_delay=0.0))
    started = time.monotonic()
    stream = await client.images.generate(model="gpt-image-2", prompt="slow", stream=True, partial_images=2)
    arrivals: list[tuple[str, float]] = []
    async for event in stream:
        arrivals.append((event.type, time.monotonic() - started))

    assert [kind for kind, _ in arrivals] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    first, second, completed = (at for _, at in arrivals)
    assert first >= 0.4
    assert second - first >= 0.35
    assert completed - second < 0.35  # completed_delay=0 overrides the per-event pause


async def test_stream_drop_after_is_a_connection_error(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI
) -> None:
    fake.script_images(ImageReply(drop_after=1))
    stream = await no_retry.images.generate(model="gpt-image-2", prompt="x", stream=True, partial_images=2)
    received: list[object] = []
    with pytest.raises(openai.APIConnectionError):
        async for event in stream:
            received.append(event)
    assert len(received) == 1
