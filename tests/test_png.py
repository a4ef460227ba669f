"""The PNG codec of ``loopback.png``: PNGs it writes are well formed, it reads back any one-colour PNG
(whatever filters, depth and colour type wrote it, Pillow's included), and it names and decodes uploads.
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest

from loopback.png import decode_data_url, make_png, png_dimensions, png_solid_colour, sniff_image_format

RED, MAGENTA = (255, 0, 0), (255, 0, 255)


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


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


def test_make_png_is_a_well_formed_png() -> None:
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


def test_png_solid_colour_reads_any_filter_and_colour_type() -> None:
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


def test_data_url_and_format_helpers() -> None:
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
