"""The fake's ``/images/edits``, through the real ``openai.AsyncOpenAI`` client: the uploads it records,
the ones the real API refuses, its adjustable limits, and edit streams.
"""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest
from openai.types import ImageEditCompletedEvent, ImageEditPartialImageEvent

from loopback.fake_openai import FakeOpenAI, ImageReply, make_png

pytestmark = pytest.mark.asyncio


def decode_png(b64: str | None) -> bytes:
    assert b64 is not None
    data = base64.b64decode(b64)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return data


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
