"""Making a picture fit an upload limit: re-encode as WebP, then JPEG, then scale down.

The image API returns lossless PNGs that can exceed a server's upload limit (10 MiB by default,
less in a thread of a small server); a slightly lossy copy that arrives beats a perfect one that
does not.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from bot.core.errors import ImageTooLarge

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
