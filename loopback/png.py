"""Picture bytes without Pillow: write a PNG, read one back, and name or decode what a client uploads.

The loopback OpenAI answers with these PNGs and judges uploads with these readers; tests use them to
build inputs and check outputs. Only zlib and struct are needed (Pillow is not a test dependency).

* :func:`make_png` writes a solid-colour 8-bit RGB PNG; :func:`png_dimensions` reads a PNG's size.
* :func:`png_solid_colour` gives the colour of a one-colour PNG, whatever filters, bit depth and colour
  type wrote it (as Pillow does), or ``None``.
* :func:`sniff_image_format` names png/jpeg/webp/gif bytes from their magic bytes.
* :func:`decode_data_url` decodes a base64 ``data:`` URL into its media type and bytes.
"""

from __future__ import annotations

import base64
import re
import struct
import zlib

__all__ = [
    "PNG_SIGNATURE",
    "decode_data_url",
    "make_png",
    "png_dimensions",
    "png_solid_colour",
    "sniff_image_format",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def make_png(width: int = 64, height: int = 64, rgb: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    """A valid, solid-colour 8-bit RGB PNG built with zlib and struct only (no Pillow in the test deps).

    Solid colours compress to almost nothing, so even 1536x1024 stays a few kilobytes.
    """
    if width <= 0 or height <= 0:
        raise ValueError("PNG dimensions must be positive")
    row = b"\x00" + bytes(rgb) * width  # filter byte 0 ("None") then the pixels
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit depth, colour type 2 (RGB)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(row * height, 6))
        + _png_chunk(b"IEND", b"")
    )


def png_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError if ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _unfilter_row(filter_type: int, raw: bytes, prev: bytes, bpp: int) -> bytes:
    """Undo one PNG scanline filter (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth)."""
    if filter_type == 0:
        return raw
    # Fast paths for what encoders choose for flat areas: Up with an all-zero row repeats the row
    # above, Sub with all zeros after the first pixel repeats that pixel.
    if filter_type == 2 and not raw.strip(b"\x00"):
        return prev
    if filter_type == 1 and not raw[bpp:].strip(b"\x00"):
        return raw[:bpp] * (len(raw) // bpp)
    if filter_type not in (1, 2, 3, 4):
        raise ValueError(f"unknown PNG filter type {filter_type}")
    out = bytearray(len(raw))
    for i, x in enumerate(raw):
        a = out[i - bpp] if i >= bpp else 0
        b = prev[i]
        if filter_type == 1:
            predicted = a
        elif filter_type == 2:
            predicted = b
        elif filter_type == 3:
            predicted = (a + b) >> 1
        else:
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            predicted = a if pa <= pb and pa <= pc else b if pb <= pc else c
        out[i] = (x + predicted) & 0xFF
    return bytes(out)


def png_solid_colour(data: bytes) -> tuple[int, int, int] | None:
    """The RGB colour of a PNG whose every pixel has that colour (alpha ignored), else ``None``.

    Reads every non-interlaced PNG -- greyscale, RGB, palette, grey+alpha, RGBA; 1- to 16-bit; any
    scanline filters -- so pictures written by Pillow (which filters adaptively and stores a one-colour
    palette image at 1 bit) or by :func:`make_png` both work. 16-bit samples are read by their high
    byte. ``None`` as well for anything it cannot read: not a PNG, interlaced, truncated.
    """
    if not data.startswith(PNG_SIGNATURE):
        return None
    pos, header, palette, idat = 8, b"", b"", bytearray()
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if tag == b"IHDR":
            header = body
        elif tag == b"PLTE":
            palette = body
        elif tag == b"IDAT":
            idat += body
        elif tag == b"IEND":
            break
    if len(header) != 13:
        return None
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour_type)
    if channels is None or depth not in (1, 2, 4, 8, 16) or interlace != 0 or width == 0 or height == 0:
        return None
    bits = channels * depth
    bpp, stride = max(1, bits // 8), (width * bits + 7) // 8
    try:
        pixels = zlib.decompress(bytes(idat))
    except zlib.error:
        return None
    if len(pixels) < (stride + 1) * height:
        return None
    prev, first = bytes(stride), b""
    try:
        for y in range(height):
            start = y * (stride + 1)
            row = _unfilter_row(pixels[start], pixels[start + 1 : start + 1 + stride], prev, bpp)
            if y == 0:
                first = row
                if depth >= 8 and row != row[:bpp] * width:
                    return None
            elif row != first:
                return None
            prev = row
    except ValueError:
        return None
    if depth < 8:  # greyscale or palette packed several pixels a byte: unpack the first row
        per_byte, mask = 8 // depth, (1 << depth) - 1
        samples = [(byte >> (8 - depth * (k + 1))) & mask for byte in first for k in range(per_byte)]
        if len(set(samples[:width])) != 1:
            return None
        sample = samples[0]
    else:
        if first != first[:bpp] * width:
            return None
        sample = first[0]
    if colour_type == 3:
        if sample * 3 + 3 > len(palette):
            return None
        return palette[sample * 3], palette[sample * 3 + 1], palette[sample * 3 + 2]
    if colour_type in (0, 4):
        grey = sample * 255 // ((1 << depth) - 1) if depth < 8 else sample
        return grey, grey, grey
    step = depth // 8  # RGB / RGBA: the (high) byte of each sample
    return first[0], first[step], first[2 * step]


def sniff_image_format(data: bytes) -> str | None:
    """``"png"``, ``"jpeg"``, ``"webp"`` or ``"gif"`` from the file's magic bytes; ``None`` otherwise."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


_DATA_URL = re.compile(r"data:(?P<media>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<payload>.*)", re.DOTALL)


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``(media_type, bytes)`` of a base64 ``data:`` URL; ValueError for anything else (incl. bad base64)."""
    match = _DATA_URL.fullmatch(url)
    if match is None or "base64" not in match["params"].lower().split(";"):
        raise ValueError(f"not a base64 data URL: {url[:40]!r}")
    return match["media"].lower(), base64.b64decode(match["payload"], validate=True)
