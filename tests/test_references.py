"""A member's own picture is checked the way the image API checks it, before anything is spent."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.core.errors import InvalidRequest
from bot.core.picture_files import MAX_REFERENCE_BYTES, check_reference_size, read_reference


def encoded(image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("image_format", "mime", "filename"),
    [("PNG", "image/png", "fox.png"), ("JPEG", "image/jpeg", "fox.jpg"), ("WEBP", "image/webp", "fox.webp")],
)
def test_png_jpeg_and_webp_are_accepted_by_their_content(image_format: str, mime: str, filename: str) -> None:
    reference = read_reference("upload.bin", encoded(image_format))
    assert (reference.mime, reference.filename) == (mime, filename.replace("fox", "upload"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.7 not a picture at all", "is not a picture"),
        (encoded("GIF"), "is a GIF"),
        (encoded("BMP"), "is a BMP"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "cannot be read"),
        (b"", "is not a picture"),
    ],
    ids=["not-an-image", "gif", "bmp", "damaged-png", "empty"],
)
def test_bad_references_are_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        read_reference("upload.png", data)


def test_a_reference_over_the_api_limit_is_refused_before_download() -> None:
    check_reference_size("big.png", MAX_REFERENCE_BYTES)
    with pytest.raises(InvalidRequest, match="under 50 MB"):
        check_reference_size("big.png", MAX_REFERENCE_BYTES + 1)
