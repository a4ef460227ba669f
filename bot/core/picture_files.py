"""Pictures in and out: fitting one to an upload limit, and checking a member's own before it is used.

The image API returns lossless PNGs that can exceed a server's upload limit (10 MiB by default,
less in a thread of a small server); a slightly lossy copy that arrives beats a perfect one that
does not (re-encode as WebP, then JPEG, then scale down). A member's reference picture is checked
the way the image API will check it, so a bad one is refused before anything is spent.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from bot.core.ai import InputImage
from bot.core.errors import ImageTooLarge, InvalidRequest
from bot.models import Reference

# (format, quality) tried in order at each scale.
_ENCODINGS = (("WEBP", 90), ("WEBP", 75), ("JPEG", 85), ("JPEG", 70))
_SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)


@dataclass(frozen=True)
class FittedImage:
    data: bytes
    extension: str
    mime: str
    reencoded: bool


def fit_to_limit(data: bytes, extension: str, mime: str, limit: int) -> FittedImage:
    """The picture unchanged if it fits `limit` bytes, else the best-looking smaller encoding that does."""
    if len(data) <= limit:
        return FittedImage(data, extension, mime, reencoded=False)
    with Image.open(io.BytesIO(data)) as original:
        original.load()
        picture = original.convert("RGBA" if original.mode in ("RGBA", "LA", "P") else "RGB")
    for scale in _SCALES:
        scaled = picture
        if scale < 1.0:
            size = (max(1, int(picture.width * scale)), max(1, int(picture.height * scale)))
            scaled = picture.resize(size, Image.Resampling.LANCZOS)
        for image_format, quality in _ENCODINGS:
            frame = scaled.convert("RGB") if image_format == "JPEG" else scaled
            buffer = io.BytesIO()
            frame.save(buffer, format=image_format, quality=quality)
            if buffer.tell() <= limit:
                if image_format == "WEBP":
                    return FittedImage(buffer.getvalue(), "webp", "image/webp", reencoded=True)
                return FittedImage(buffer.getvalue(), "jpg", "image/jpeg", reencoded=True)
    raise ImageTooLarge(f"picture of {len(data)} bytes does not fit {limit} bytes")


# What the image edit endpoint accepts as an input picture.
REFERENCE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
MAX_REFERENCE_BYTES = 50 * 1024 * 1024
_OTHER_PICTURES = ((b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def check_reference_size(filename: str, size: int) -> None:
    """Refuse a file the image API would refuse, before it is even downloaded."""
    if size > MAX_REFERENCE_BYTES:
        raise InvalidRequest(
            f"{filename} is {size / 1024 / 1024:.1f} MB; the image service takes pictures under "
            f"{MAX_REFERENCE_BYTES // 1024 // 1024} MB. Send a smaller copy."
        )


def picture_kind(data: bytes) -> str | None:
    """png, jpeg or webp from the bytes themselves, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def read_reference(filename: str, data: bytes) -> Reference:
    """A member's picture, checked as the image API will check it: type by content, size, readability."""
    check_reference_size(filename, len(data))
    kind = picture_kind(data)
    if kind is None:
        other = next((name for signature, name in _OTHER_PICTURES if data.startswith(signature)), None)
        if other is not None:
            raise InvalidRequest(
                f"{filename} is a {other}; I can start from PNG, JPEG or WebP pictures only."
            )
        raise InvalidRequest(f"{filename} is not a picture. Attach a PNG, JPEG or WebP image.")
    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.verify()
    except Exception:
        raise InvalidRequest(
            f"{filename} looks like a {kind.upper()} but cannot be read; it may be damaged."
        ) from None
    stem = filename.rsplit(".", 1)[0] or "reference"
    return Reference(
        filename=f"{stem}.{'jpg' if kind == 'jpeg' else kind}", mime=REFERENCE_TYPES[kind], data=data
    )


def input_image(reference: Reference) -> InputImage:
    return InputImage(filename=reference.filename, data=reference.data, mime=reference.mime)
