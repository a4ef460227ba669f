"""Tests of the fake OpenAI server, driven through the real ``openai.AsyncOpenAI`` client.

They pin down that the SDK accepts the fake's answers unchanged and maps its faults to the same exceptions
(and automatic retries) the bot will meet in production, so the bot's own tests can rely on the fake.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
import pytest_asyncio
from openai.types import (
    ImageEditCompletedEvent,
    ImageEditPartialImageEvent,
    ImageGenCompletedEvent,
    ImageGenPartialImageEvent,
    ModerationImageURLInputParam,
    ModerationMultiModalInputParam,
)

from loopback.fake_openai import (
    DEFAULT_CHAT_PREFIX,
    MODERATION_CATEGORIES,
    MODERATION_IMAGE_CATEGORIES,
    FakeOpenAI,
    Fault,
    ImageReply,
    ModerationReply,
    Reply,
    content_policy_violation,
    decode_data_url,
    default_chat_content,
    drop,
    hang,
    insufficient_quota,
    last_user_text,
    make_png,
    model_not_found,
    moderation_blocked,
    permission_denied,
    png_dimensions,
    png_solid_colour,
    rate_limited,
    server_error,
    sniff_image_format,
    unauthorized,
)

pytestmark = pytest.mark.asyncio

USER = [{"role": "user", "content": "a lighthouse at dusk"}]


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.close()


@pytest_asyncio.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    api = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test")
    yield api
    await api.close()


@pytest_asyncio.fixture
async def no_retry(client: openai.AsyncOpenAI) -> openai.AsyncOpenAI:
    """Same connection pool, no automatic retries: one scripted fault = one raised exception."""
    return client.with_options(max_retries=0)


def decode_png(b64: str | None) -> bytes:
    assert b64 is not None
    data = base64.b64decode(b64)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return data


# ---- PNG helper -------------------------------------------------------------------------------------------


async def test_make_png_is_a_well_formed_png() -> None:
    data = make_png(5, 3, (1, 2, 3))
    assert png_dimensions(data) == (5, 3)
    # Walk the chunks: every CRC must match and IDAT must inflate to height rows of (filter byte + RGB).
    pos, tags, idat = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF
        tags.append(tag)
        idat += body if tag == b"IDAT" else b""
        pos += 12 + length
    assert tags == [b"IHDR", b"IDAT", b"IEND"]
    assert zlib.decompress(idat) == (b"\x00" + bytes((1, 2, 3)) * 5) * 3
    with pytest.raises(ValueError):
        png_dimensions(b"GIF89a" + b"\x00" * 30)


# ---- chat ------------------------------------------------------------------------------------------------


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


async def test_requests_are_recorded_with_json_body_and_headers(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    await client.chat.completions.create(model="gpt-5.4-mini", messages=USER, temperature=0.2)

    [recorded] = fake.requests
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.json == {"model": "gpt-5.4-mini", "messages": USER, "temperature": 0.2}
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert recorded.model == "gpt-5.4-mini"
    assert fake.chat_requests == [recorded]
    assert fake.image_requests == []
    assert fake.calls("/chat/completions") == fake.calls("/v1/chat/completions") == 1


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


# ---- vision chat -----------------------------------------------------------------------------------------


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


async def test_data_url_and_format_helpers() -> None:
    picture = make_png(2, 2)
    assert decode_data_url(data_url(picture)) == ("image/png", picture)
    assert sniff_image_format(picture) == "png"
    assert sniff_image_format(b"\xff\xd8\xff\xe0rest") == "jpeg"
    assert sniff_image_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image_format(b"GIF89a....") == "gif"
    assert sniff_image_format(b"BM bitmap") is None
    for bad in ("https://example.com/x.png", "data:image/png,plain", "data:image/png;base64,%%%"):
        with pytest.raises(ValueError):
            decode_data_url(bad)


# ---- images ----------------------------------------------------------------------------------------------


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


async def test_image_edit_records_uploaded_files(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    source = make_png(16, 16, (10, 20, 30))
    reference = make_png(16, 16, (200, 200, 200))
    mask = make_png(16, 16, (0, 0, 0))

    result = await client.images.edit(
        model="gpt-image-2",
        prompt="add a moon",
        image=[("source.png", source, "image/png"), ("ref.png", reference, "image/png")],
        mask=("mask.png", mask, "image/png"),
        size="1024x1024",
    )

    [recorded] = fake.image_requests
    assert recorded.path == "/v1/images/edits"
    assert recorded.json is None
    assert recorded.form["prompt"] == "add a moon"
    assert recorded.form["model"] == "gpt-image-2"
    assert [(f.field, f.filename, f.content_type, f.data) for f in recorded.files] == [
        ("image[]", "source.png", "image/png", source),
        ("image[]", "ref.png", "image/png", reference),
        ("mask", "mask.png", "image/png", mask),
    ]
    assert result.data is not None
    decode_png(result.data[0].b64_json)
    assert result.usage is not None
    assert result.usage.input_tokens_details.image_tokens > 0  # two input images were billed


async def test_image_edit_single_file_field(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    picture = make_png(8, 8, (1, 2, 3))
    await client.images.edit(model="gpt-image-2", prompt="tidy", image=("one.png", picture, "image/png"))
    [file] = fake.image_requests[0].files
    assert (file.field, file.data) == ("image", picture)
    assert fake.edit_inputs() == [picture]
    assert fake.edit_requests == fake.image_requests
    assert fake.generation_requests == []


JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 16  # only the magic bytes matter to the fake
WEBP_BYTES = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 16


async def test_image_edit_accepts_png_jpeg_webp_and_bills_each_input(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    inputs = [
        ("a.png", make_png(8, 8), "image/png"),
        ("b.jpg", JPEG_BYTES, "image/jpeg"),
        ("c.webp", WEBP_BYTES, "image/webp"),
    ]
    result = await client.images.edit(model="gpt-image-2", prompt="merge these", image=inputs, n=3)

    assert fake.edit_inputs() == [data for _, data, _ in inputs]
    assert [f.content_type for f in fake.edit_requests[0].edit_images] == [
        "image/png",
        "image/jpeg",
        "image/webp",
    ]
    assert fake.edit_requests[0].edit_mask is None
    assert result.data is not None
    assert len(result.data) == 3
    assert result.usage is not None
    assert result.usage.input_tokens_details.image_tokens == 3 * 323
    assert result.usage.input_tokens == result.usage.input_tokens_details.text_tokens + 3 * 323
    assert result.usage.output_tokens_details is not None
    assert result.usage.output_tokens == result.usage.output_tokens_details.image_tokens


EDIT_REJECTIONS = [
    pytest.param(
        {"image": make_png(4, 4)},  # bare bytes: the SDK names the part "upload", application/octet-stream
        {
            "message": "Invalid file 'image': unsupported mimetype ('application/octet-stream'). Supported "
            "file formats are 'image/jpeg', 'image/png', and 'image/webp'.",
            "param": "image",
            "code": "unsupported_file_mimetype",
        },
        id="bare-bytes",
    ),
    pytest.param(
        {"image": [("a.png", make_png(4, 4), "image/png"), make_png(4, 4)]},
        {"param": "image[1]", "code": "unsupported_file_mimetype"},
        id="second-of-a-list",
    ),
    pytest.param(
        {"image": ("a.gif", b"GIF89a" + b"\x00" * 20, "image/gif")},
        {"param": "image", "code": "unsupported_file_mimetype"},
        id="gif",
    ),
    pytest.param(
        {"image": ("a.png", b"not a picture at all", "image/png")},
        {
            "message": "Invalid image file or mode for image 1, please check your image file.",
            "param": "image",
            "code": "invalid_image_file",
        },
        id="corrupt-bytes",
    ),
    pytest.param(
        {"image": [("a.png", make_png(2, 2), "image/png")] * 17},
        {
            "message": "Invalid 'image': array too long. Expected an array with maximum length 16, but got an "
            "array with length 17 instead.",
            "param": "image",
            "code": "array_above_max_length",
        },
        id="seventeen-images",
    ),
    pytest.param(
        {"image": ("a.png", make_png(4, 4), "image/png"), "mask": ("m.jpg", JPEG_BYTES, "image/jpeg")},
        {
            "message": "Invalid file 'mask': unsupported mimetype ('image/jpeg'). Supported file formats are "
            "'image/png'.",
            "param": "mask",
            "code": "unsupported_file_mimetype",
        },
        id="jpeg-mask",
    ),
    pytest.param(
        {"image": ("a.png", make_png(4, 4), "image/png"), "extra_body": {"moderation": "low"}},
        {
            "message": "Unknown parameter: 'moderation'.",
            "param": "moderation",
            "code": "unknown_parameter",
        },
        id="moderation-is-not-an-edit-parameter",
    ),
]


@pytest.mark.parametrize(("kwargs", "expected"), EDIT_REJECTIONS)
async def test_image_edit_rejects_what_the_api_rejects(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI, kwargs: dict[str, Any], expected: dict[str, Any]
) -> None:
    fake.script_images(ImageReply())  # validation answers before the script is consulted
    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.images.edit(model="gpt-image-2", prompt="edit", **kwargs)

    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "invalid_request_error"
    assert {key: body[key] for key in expected} == expected
    assert fake.pending()["images"] == 1
    assert len(fake.edit_requests) == 1  # recorded even though rejected


async def test_image_edit_size_limits_are_adjustable(fake: FakeOpenAI, no_retry: openai.AsyncOpenAI) -> None:
    fake.max_edit_image_bytes = 100
    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.images.edit(
            model="gpt-image-2", prompt="big", image=("big.png", make_png(64, 64, (1, 99, 7)) + b"\x00" * 200)
        )
    assert (caught.value.code, caught.value.param) == ("image_file_too_large", "image")

    fake.max_edit_image_bytes = 50 * 1024 * 1024
    fake.max_mask_bytes = 10
    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.images.edit(
            model="gpt-image-2",
            prompt="masked",
            image=("a.png", make_png(4, 4)),
            mask=("m.png", make_png(4, 4)),
        )
    assert (caught.value.code, caught.value.param) == ("image_file_too_large", "mask")


async def test_image_edit_stream_yields_edit_events(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    source = make_png(8, 8, (50, 60, 70))
    stream = await client.images.edit(
        model="gpt-image-2",
        prompt="add snow",
        image=[("a.png", source, "image/png")],
        mask=("m.png", make_png(8, 8, (0, 0, 0)), "image/png"),
        stream=True,
        partial_images=2,
    )
    events = [event async for event in stream]

    assert [type(e) for e in events] == [
        ImageEditPartialImageEvent,
        ImageEditPartialImageEvent,
        ImageEditCompletedEvent,
    ]
    completed = events[-1]
    assert isinstance(completed, ImageEditCompletedEvent)
    assert completed.type == "image_edit.completed"
    assert completed.usage.input_tokens_details.image_tokens == 323  # the mask is not an input image
    assert len({decode_png(e.b64_json) for e in events}) == 3
    recorded = fake.edit_requests[0]
    assert (recorded.form["stream"], recorded.form["partial_images"]) == ("true", "2")
    assert fake.edit_inputs(recorded) == [source]


async def test_image_stream_partial_counts(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    none = await client.images.generate(model="gpt-image-2", prompt="quick", stream=True, partial_images=0)
    assert [type(e) for e in [event async for event in none]] == [ImageGenCompletedEvent]

    early = make_png(4, 4, (1, 1, 1))
    fake.script_images(ImageReply(partial_pngs=[early]))  # the API may finish before all partials
    fewer = await client.images.generate(model="gpt-image-2", prompt="fast", stream=True, partial_images=3)
    events = [event async for event in fewer]
    assert [type(e) for e in events] == [ImageGenPartialImageEvent, ImageGenCompletedEvent]
    assert decode_png(events[0].b64_json) == early


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


# ---- moderations -----------------------------------------------------------------------------------------

RED, MAGENTA = (255, 0, 0), (255, 0, 255)


def png_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def image_part(png: bytes) -> ModerationImageURLInputParam:
    return {"type": "image_url", "image_url": {"url": png_url(png)}}


def filtered_png(rows: list[bytes], filters: list[int], bpp: int, colour_type: int = 2) -> bytes:
    """An 8-bit PNG of these pixel rows, written with the given scanline filters (cycled), as encoders do."""
    width = len(rows[0]) // bpp
    prev, raw = bytes(len(rows[0])), b""
    for y, row in enumerate(rows):
        kind, out = filters[y % len(filters)], bytearray()
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            paeth = a if pa <= pb and pa <= pc else b if pb <= pc else c
            out.append((x - [0, a, b, (a + b) >> 1, paeth][kind]) & 0xFF)
        raw += bytes([kind]) + bytes(out)
        prev = row

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        return struct.pack(">I", len(data)) + tag + data + crc

    header = struct.pack(">IIBBBBB", width, len(rows), 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def solid_rows(pixel: bytes, width: int = 5, height: int = 4) -> list[bytes]:
    return [pixel * width] * height


async def test_moderation_text_answer_has_every_category_in_the_real_shape(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    raw = await client.moderations.with_raw_response.create(
        model="omni-moderation-latest", input="a lighthouse at dusk"
    )
    response = raw.parse()
    body = json.loads(raw.text)

    assert response.id.startswith("modr-") and len(response.id) == len("modr-") + 32
    assert response.model == "omni-moderation-latest"
    [result] = response.results
    assert result.flagged is False
    assert not any(result.categories.model_dump().values())
    [answer] = body["results"]
    assert set(answer) == {"flagged", "categories", "category_scores", "category_applied_input_types"}
    for key in ("categories", "category_scores", "category_applied_input_types"):
        assert list(answer[key]) == list(MODERATION_CATEGORIES)
    assert all(0 < score < 0.01 for score in answer["category_scores"].values())
    assert all(types == ["text"] for types in answer["category_applied_input_types"].values())
    assert fake.moderation_inputs() == ["a lighthouse at dusk"]
    assert fake.moderation_requests[0].json == {
        "model": "omni-moderation-latest",
        "input": "a lighthouse at dusk",
    }

    # No model: the SDK sends none and the answer names the default one.
    response = await client.moderations.create(input="hello")
    assert "model" not in fake.moderation_requests[-1].json
    assert response.model == "omni-moderation-latest"


async def test_moderation_text_marker_flags_that_category(client: openai.AsyncOpenAI) -> None:
    response = await client.moderations.create(input="a duel, FLAG:violence/graphic, at dawn")
    [result] = response.results
    assert result.flagged is True
    assert result.categories.violence_graphic is True
    assert result.categories.violence is False  # only the named category
    assert result.category_scores.violence_graphic == 0.9
    assert result.category_scores.violence < 0.01

    response = await client.moderations.create(input="FLAG:self-harm/intent")
    assert response.results[0].categories.self_harm_intent is True

    response = await client.moderations.create(input="FLAG:nonsense and flag:sexual (lower case)")
    assert response.results[0].flagged is False


async def test_moderation_list_of_strings_answers_one_result_each(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    texts = ["a calm sea", "FLAG:harassment you fool", "FLAG:illicit how to pick a lock"]
    response = await client.moderations.create(model="omni-moderation-latest", input=texts)

    assert [r.flagged for r in response.results] == [False, True, True]
    assert response.results[1].categories.harassment is True
    assert response.results[1].categories.illicit is False
    assert response.results[2].categories.illicit is True
    assert fake.moderation_inputs() == texts
    assert [i.index for i in fake.moderation_requests[0].moderation_items] == [0, 1, 2]
    assert len(fake.moderation_requests) == 1


async def test_moderation_image_marker_colour_flags_and_parts_give_one_result(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    red = make_png(16, 16, RED)
    parts: list[ModerationMultiModalInputParam] = [{"type": "text", "text": "my picture"}, image_part(red)]
    response = await client.moderations.create(model="omni-moderation-latest", input=parts)

    [result] = response.results  # text and image parts are classified together
    assert result.flagged is True
    assert result.categories.sexual is True
    assert [k for k, v in result.categories.model_dump(by_alias=True).items() if v] == ["sexual"]
    applied = result.category_applied_input_types.model_dump(by_alias=True)
    assert applied == {
        c: ["text", "image"] if c in MODERATION_IMAGE_CATEGORIES else ["text"] for c in applied
    }
    assert fake.moderation_inputs() == ["my picture", red]
    items = fake.moderation_requests[-1].moderation_items
    assert [(i.kind, i.media_type) for i in items] == [("text", None), ("image", "image/png")]

    # Image only: the text-only categories do not apply (empty list, score 0), as in the guide's example.
    response = await client.moderations.create(input=[image_part(make_png(8, 8, MAGENTA))])
    [result] = response.results
    assert result.categories.violence is True and result.categories.sexual is False
    applied = result.category_applied_input_types.model_dump(by_alias=True)
    assert applied["harassment"] == [] and applied["sexual/minors"] == []
    assert applied["violence"] == ["image"]
    assert result.category_scores.harassment == 0.0

    # Any other colour is clean; a remote URL is accepted but never fetched (nor flagged).
    response = await client.moderations.create(input=[image_part(make_png(8, 8, (254, 0, 0)))])
    assert response.results[0].flagged is False
    response = await client.moderations.create(
        input=[{"type": "image_url", "image_url": {"url": "https://example.com/red.png"}}]
    )
    assert response.results[0].flagged is False
    with pytest.raises(ValueError, match="not a base64 data URL"):
        fake.moderation_inputs()

    # Markers are configurable, for image-capable categories only (harassment cannot come from a picture).
    fake.moderation_image_markers = {(0, 0, 255): "self-harm", (0, 255, 0): "harassment"}
    blue = await client.moderations.create(input=[image_part(make_png(4, 4, (0, 0, 255)))])
    green = await client.moderations.create(input=[image_part(make_png(4, 4, (0, 255, 0)))])
    assert blue.results[0].categories.self_harm is True
    assert green.results[0].flagged is False


async def test_png_solid_colour_reads_any_filter_and_colour_type() -> None:
    assert png_solid_colour(make_png(3, 2, RED)) == RED
    for filters in ([1], [2], [3], [4], [0, 1, 2, 3, 4]):
        assert png_solid_colour(filtered_png(solid_rows(bytes(MAGENTA)), filters, 3)) == MAGENTA, filters
    rgba = solid_rows(bytes([255, 0, 0, 128]))
    assert png_solid_colour(filtered_png(rgba, [4], 4, colour_type=6)) == RED  # alpha ignored
    assert png_solid_colour(filtered_png(solid_rows(b"\x07"), [1], 1, colour_type=0)) == (7, 7, 7)
    last_pixel_differs = [*solid_rows(bytes(RED))[:-1], bytes(RED) * 4 + bytes(MAGENTA)]
    assert png_solid_colour(filtered_png(last_pixel_differs, [4], 3)) is None
    assert png_solid_colour(make_png(2, 1, RED)[:-12]) == RED  # no IEND: read what is there
    assert png_solid_colour(b"GIF89a" + b"\x00" * 30) is None
    assert png_solid_colour(b"\xff\xd8\xff\xe0 jpeg") is None

    image_module = pytest.importorskip("PIL.Image")  # Pillow is a bot dependency; it filters adaptively
    import io

    def pillow_png(mode: str, colour: Any, size: tuple[int, int] = (300, 200)) -> bytes:
        out = io.BytesIO()
        image_module.new(mode, size, colour).save(out, format="PNG")
        return out.getvalue()

    assert png_solid_colour(pillow_png("RGB", RED)) == RED
    assert png_solid_colour(pillow_png("RGBA", (255, 0, 255, 255))) == MAGENTA
    assert png_solid_colour(pillow_png("P", RED)) == RED  # a 1-bit palette image
    assert png_solid_colour(pillow_png("L", 200)) == (200, 200, 200)
    assert png_solid_colour(pillow_png("1", 1)) == (255, 255, 255)
    assert png_solid_colour(pillow_png("I;16", 0xFF00)) == (255, 255, 255)
    half = image_module.new("RGB", (10, 10), RED)
    half.paste((0, 0, 0), (0, 5, 10, 10))
    out = io.BytesIO()
    half.save(out, format="PNG")
    assert png_solid_colour(out.getvalue()) is None


async def test_scripted_moderation_replies_then_the_default_resumes(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_moderations(
        ModerationReply(
            flagged_categories={"harassment", "harassment/threatening"},
            scores={"harassment": 0.42},
            model="omni-moderation-2024-09-26",
        ),
        ModerationReply(),  # clean, whatever the text says
    )

    first = await client.moderations.create(input=["harmless", "also harmless"])
    second = await client.moderations.create(input="FLAG:hate")
    third = await client.moderations.create(input="FLAG:hate")

    assert first.model == "omni-moderation-2024-09-26"
    assert len(first.results) == 2  # one verdict, given to every result
    for result in first.results:
        assert result.flagged is True
        assert result.categories.harassment is True and result.categories.harassment_threatening is True
        assert result.category_scores.harassment == 0.42
        assert result.category_scores.harassment_threatening == 0.9
    assert second.results[0].flagged is False
    assert third.results[0].categories.hate is True
    assert fake.pending()["moderations"] == 0

    fake.moderation_handler = lambda body: ModerationReply("illicit") if "shoplift" in body["input"] else None
    assert (await client.moderations.create(input="how to shoplift")).results[0].categories.illicit is True
    assert (await client.moderations.create(input="how to bake")).results[0].flagged is False

    with pytest.raises(ValueError, match="unknown moderation categories"):
        ModerationReply(flagged_categories={"violent"})
    with pytest.raises(TypeError):
        fake.script_moderations(ImageReply())  # type: ignore[arg-type]


async def test_moderations_unavailable_answer_the_unknown_route_404(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_moderations(ModerationReply("sexual"))
    fake.moderations_available = False

    with pytest.raises(openai.NotFoundError) as caught:
        await client.moderations.create(model="omni-moderation-latest", input="hello")
    with pytest.raises(openai.NotFoundError) as unknown:
        await client.post("/no/such/route", cast_to=object, body={})

    assert caught.value.status_code == 404
    assert caught.value.body == {
        "message": "Invalid URL (POST /v1/moderations)",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert isinstance(unknown.value.body, dict)
    assert unknown.value.body["message"] == "Invalid URL (POST /v1/no/such/route)"
    assert unknown.value.body.keys() == {"message", "type", "param", "code"}
    assert fake.calls("/moderations") == 1  # recorded, and a 404 is not retried
    assert fake.pending()["moderations"] == 1  # the script is left for when the route comes back

    fake.moderations_available = True
    response = await client.moderations.create(input="hello")
    assert response.results[0].categories.sexual is True


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (server_error(500), openai.InternalServerError),
        (rate_limited(None, model="omni-moderation-latest"), openai.RateLimitError),
        (hang(), openai.APITimeoutError),
    ],
)
async def test_moderation_faults_through_scripting(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI, fault: Fault, error: type[Exception]
) -> None:
    fake.script_moderations(fault)
    with pytest.raises(error):
        await no_retry.moderations.create(input="hello", timeout=0.5)
    assert fake.calls("/moderations") == 1


async def test_moderation_500_is_retried_by_the_sdk(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script_moderations(server_error(500, retry_after=0.05), ModerationReply("violence"))
    response = await client.moderations.create(input="hello")
    assert response.results[0].categories.violence is True
    assert fake.calls("/moderations") == 2

    fake.script_moderations(*(server_error(500, retry_after=0.05) for _ in range(3)))
    with pytest.raises(openai.InternalServerError) as caught:
        await client.moderations.create(input="hello")
    assert caught.value.status_code == 500
    assert fake.calls("/moderations") == 5


async def test_moderation_rejects_what_the_api_rejects(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI
) -> None:
    two_images = [image_part(make_png(2, 2, RED)), image_part(make_png(2, 2, MAGENTA))]
    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.moderations.create(input=two_images)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["message"] == "Number of images (2) exceeds maximum of 1"
    assert (caught.value.code, caught.value.param, caught.value.type) == (
        "too_many_images",
        "input",
        "invalid_request_error",
    )

    corrupt: list[ModerationMultiModalInputParam] = [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,bm90IGEgcG5n"}}
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.moderations.create(input=corrupt)
    assert caught.value.code == "invalid_image_format"

    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.moderations.create(input=[])
    assert caught.value.code == "empty_array"

    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.post("/moderations", cast_to=object, body={"model": "omni-moderation-latest"})
    assert (caught.value.code, caught.value.param) == ("missing_required_parameter", "input")
    assert fake.calls("/moderations") == 4


# ---- faults and the SDK's retries ------------------------------------------------------------------------


async def test_rate_limit_with_retry_after_is_retried_by_the_sdk(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_chat(rate_limited(retry_after=1.5), "ok")

    started = time.monotonic()
    completion = await client.chat.completions.create(model="m", messages=USER)
    elapsed = time.monotonic() - started

    assert completion.choices[0].message.content == "ok"
    assert fake.calls("/chat/completions") == 2
    # The SDK slept the server's 1.5 s, longer than its own first backoff (0.375-0.5 s with jitter);
    # only a lower bound is asserted, since a loaded machine can only make the gap longer.
    gap = fake.chat_requests[1].received_at - fake.chat_requests[0].received_at
    assert gap >= 1.45
    assert elapsed >= 0.1
    assert [r.headers["x-stainless-retry-count"] for r in fake.chat_requests] == ["0", "1"]
    assert fake.chat_requests[0].json == fake.chat_requests[1].json  # the same request, re-sent


async def test_rate_limit_without_retries_raises_with_code_and_body(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI
) -> None:
    fake.script_images(rate_limited(retry_after=2))

    with pytest.raises(openai.RateLimitError) as caught:
        await no_retry.images.generate(model="gpt-image-2", prompt="x")

    error = caught.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert isinstance(error.body, dict)
    assert error.body["code"] == "rate_limit_exceeded"
    assert "Rate limit reached" in error.message
    assert error.response.headers["retry-after"] == "2"
    assert error.response.headers["retry-after-ms"] == "2000"
    assert error.request_id is not None
    assert fake.calls("/images/generations") == 1


async def test_insufficient_quota(fake: FakeOpenAI, no_retry: openai.AsyncOpenAI) -> None:
    fake.script_chat(insufficient_quota())
    with pytest.raises(openai.RateLimitError) as caught:
        await no_retry.chat.completions.create(model="m", messages=USER)
    assert caught.value.code == "insufficient_quota"
    assert caught.value.type == "insufficient_quota"


async def test_server_errors_are_retried_until_the_budget_runs_out(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_chat(server_error(503, retry_after=0.05), server_error(502, retry_after=0.05), "recovered")
    completion = await client.chat.completions.create(model="m", messages=USER)
    assert completion.choices[0].message.content == "recovered"
    assert fake.calls("/chat/completions") == 3

    fake.script_chat(*(server_error(500, retry_after=0.05) for _ in range(3)))
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="m", messages=USER)
    assert caught.value.status_code == 500
    assert fake.calls("/chat/completions") == 6  # 1 try + max_retries=2


async def test_moderation_blocked_is_not_retried(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script_images(moderation_blocked(), moderation_blocked(), moderation_blocked())
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.generate(model="gpt-image-2", prompt="something forbidden")
    assert caught.value.code == "moderation_blocked"
    assert fake.calls("/images/generations") == 1
    assert fake.pending()["images"] == 2


async def test_content_policy_violation(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script_images(content_policy_violation())
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.generate(model="dall-e-3", prompt="something forbidden")
    assert caught.value.code == "content_policy_violation"


async def test_model_not_found(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script_chat(model_not_found("gpt-nope"))
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="gpt-nope", messages=USER)
    assert caught.value.code == "model_not_found"
    assert "gpt-nope" in caught.value.message


async def test_auth_faults(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script_chat(unauthorized(), permission_denied())
    with pytest.raises(openai.AuthenticationError) as wrong_key:
        await client.chat.completions.create(model="m", messages=USER)
    with pytest.raises(openai.PermissionDeniedError):
        await client.chat.completions.create(model="m", messages=USER)
    assert wrong_key.value.code == "invalid_api_key"


async def test_missing_authorization_header_is_a_401(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        await client.chat.completions.create(
            model="m", messages=USER, extra_headers={"Authorization": openai.omit}
        )
    assert "didn't provide an API key" in caught.value.message
    assert "authorization" not in fake.requests[0].headers  # recorded even though rejected


async def test_exact_api_key_can_be_required(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.api_key = "sk-other"
    with pytest.raises(openai.AuthenticationError) as caught:
        await client.models.list()
    assert caught.value.code == "invalid_api_key"


async def test_a_model_is_looked_up_like_the_api_does(fake: FakeOpenAI, no_retry: openai.AsyncOpenAI) -> None:
    """GET /models/{id}: the model object, or 404 model_not_found; the list follows `fake.models`."""
    found = await no_retry.models.retrieve("gpt-image-2")
    assert (found.id, found.object, found.owned_by) == ("gpt-image-2", "model", "system")
    assert isinstance(found.created, int)
    with pytest.raises(openai.NotFoundError) as missing:
        await no_retry.models.retrieve("gpt-image-1")
    assert missing.value.code == "model_not_found" and missing.value.type == "invalid_request_error"
    assert "`gpt-image-1` does not exist" in missing.value.message
    fake.models.remove("gpt-image-2")
    assert "gpt-image-2" not in [model.id async for model in no_retry.models.list()]
    fake.api_key = "sk-another"
    with pytest.raises(openai.AuthenticationError) as refused:
        await no_retry.models.retrieve("gpt-5.4-mini")
    assert refused.value.code == "invalid_api_key"


async def test_hang_times_out_quickly(fake: FakeOpenAI, no_retry: openai.AsyncOpenAI) -> None:
    fake.script_chat(hang())
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await no_retry.chat.completions.create(model="m", messages=USER, timeout=0.5)
    assert time.monotonic() - started < 2.0
    # The client hung up, which cancels the hanging handler on the server side.
    await asyncio.sleep(0.05)
    assert fake.in_flight == 0


async def test_dropped_connection_is_retried_then_raises(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_chat(drop(), "after the drop")
    completion = await client.chat.completions.create(model="m", messages=USER)
    assert completion.choices[0].message.content == "after the drop"
    assert fake.calls("/chat/completions") == 2

    fake.script_chat(drop())
    with pytest.raises(openai.APIConnectionError):
        await client.with_options(max_retries=0).chat.completions.create(model="m", messages=USER)


async def test_custom_fault_with_non_json_body(fake: FakeOpenAI, no_retry: openai.AsyncOpenAI) -> None:
    fake.script_chat(Fault(status=502, body="<html>Bad Gateway</html>", headers={"x-custom": "1"}))
    with pytest.raises(openai.InternalServerError) as caught:
        await no_retry.chat.completions.create(model="m", messages=USER)
    assert caught.value.status_code == 502
    assert caught.value.body == "<html>Bad Gateway</html>"
    assert caught.value.response.headers["x-custom"] == "1"


async def test_server_not_listening_is_a_fast_connection_error() -> None:
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0)
    try:
        started = time.monotonic()
        with pytest.raises(openai.APIConnectionError) as caught:
            await api.chat.completions.create(model="m", messages=USER)
        assert time.monotonic() - started < 2.0
        assert not isinstance(caught.value, openai.APITimeoutError)
    finally:
        await api.close()


# ---- latency, concurrency and the rest ---------------------------------------------------------------------


async def test_latency_is_added_to_every_answer(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.latency = 0.3
    started = time.monotonic()
    await client.chat.completions.create(model="m", messages=USER)
    assert time.monotonic() - started >= 0.3


async def test_concurrent_requests_are_answered_in_parallel(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.latency = 0.3
    started = time.monotonic()
    results = await asyncio.gather(
        *(client.images.generate(model="gpt-image-2", prompt=f"picture {i}") for i in range(3))
    )
    assert time.monotonic() - started < 0.8  # not 3 x 0.3 s one after the other
    assert len(results) == 3
    assert fake.peak_in_flight == 3
    assert fake.in_flight == 0


async def test_wait_for_calls_sees_a_background_request(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.latency = 0.2
    task = asyncio.create_task(client.chat.completions.create(model="m", messages=USER))
    await fake.wait_for_calls("/chat/completions", 1, wait_s=2.0)
    assert fake.calls("/chat/completions") == 1
    assert not task.done()  # the request arrived; its answer is still being delayed
    await task
    with pytest.raises(TimeoutError):
        await fake.wait_for_calls("/chat/completions", 2, wait_s=0.1)


async def test_models_list_and_unknown_route(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    models = [model.id async for model in client.models.list()]
    assert models == fake.models
    assert "gpt-image-2" in models
    with pytest.raises(openai.NotFoundError) as caught:
        await client.post("/no/such/route", cast_to=object, body={})
    assert "Invalid URL (POST /v1/no/such/route)" in caught.value.message


async def test_reset_forgets_requests_and_script(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script_chat("never used")
    await client.models.list()
    fake.reset()
    assert fake.requests == []
    assert fake.pending() == {"chat": 0, "images": 0, "moderations": 0}
    with pytest.raises(TypeError):
        fake.script_images("not an ImageReply")  # type: ignore[arg-type]


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
