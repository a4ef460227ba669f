"""What ``POST /v1/images/edits`` accepts: the multipart fields and files the real API takes, and the
400 it answers otherwise (in the real ``{"error": {...}}`` shape).

* An unknown form field (``moderation`` included: only generations take it) -> ``unknown_parameter``;
  a string where a file belongs -> ``invalid_type``; no image -> ``missing_required_parameter``.
* More than ``fake.max_edit_images`` (16) images -> ``array_above_max_length``.
* A file whose part content type is missing / not ``image/png|jpeg|webp`` -> ``missing_file_mimetype`` /
  ``unsupported_file_mimetype`` (the real API trusts the declared type: the SDK sends bare ``bytes`` as
  ``application/octet-stream`` and they are rejected); bytes that are not a png/jpeg/webp ->
  ``invalid_image_file``; a file over ``fake.max_edit_image_bytes`` (50 MB) -> ``image_file_too_large``.
* A ``mask`` that is not an ``image/png`` PNG or is over ``fake.max_mask_bytes`` (4 MB) -> the same codes.

Sources of the bodies: ``unknown_parameter`` (moderation on edits) as answered by the real API and quoted
by several projects' fallback tests; ``unsupported_file_mimetype`` / ``missing_file_mimetype`` from
openai-node#1468, anasfik/openai#216, go-openai#1012 (the API looks at the part's Content-Type, not at the
bytes or the file name); ``invalid_image_file`` ("Invalid image file or mode for image N") from
QuantumNous/new-api#1159; the ``array_above_max_length`` wording is OpenAI's generic one for arrays. The
too-large message and code and the mask wording are guesses in the same style (no real sample found).
"""

from __future__ import annotations

from collections.abc import Sequence

from loopback.fake_openai._recorded import EDIT_IMAGE_FIELDS, RecordedFile, RecordedRequest
from loopback.openai_faults import Fault, bad_request
from loopback.png import sniff_image_format

# /images/edits: the form fields the SDK's images.edit() can send (image_edit_params.py, openai 3.57).
# Anything else -- notably ``moderation``, which only generations take -- is an unknown parameter.
EDIT_FORM_FIELDS = frozenset(
    {
        "prompt",
        "background",
        "complexity",
        "frame_count",
        "frame_duration_ms",
        "input_fidelity",
        "model",
        "n",
        "output_compression",
        "output_format",
        "partial_images",
        "quality",
        "response_format",
        "safety_identifier",
        "size",
        "stream",
        "user",
    }
)
EDIT_FILE_FIELDS = frozenset({"image", "image[]", "mask", "markup"})
EDIT_IMAGE_MIME_TYPES = ("image/jpeg", "image/png", "image/webp")
MAX_EDIT_IMAGES = 16
MAX_EDIT_IMAGE_BYTES = 50 * 1024 * 1024  # "each image should be a png, webp, or jpg file less than 50MB"
MAX_MASK_BYTES = 4 * 1024 * 1024  # "Must be a valid PNG file, less than 4MB"


def edit_error(
    recorded: RecordedRequest,
    *,
    max_images: int = MAX_EDIT_IMAGES,
    max_image_bytes: int = MAX_EDIT_IMAGE_BYTES,
    max_mask_bytes: int = MAX_MASK_BYTES,
) -> Fault | None:
    """The 400 the real API would answer this edit request with, else None."""
    for name in recorded.form:
        if name in EDIT_IMAGE_FIELDS or name == "mask":
            # A string where a file belongs (openai-ruby#147).
            return bad_request(
                f"Invalid type for '{name}': expected one of an array of files or file, but got a "
                "string instead.",
                param=name,
                code="invalid_type",
            )
        if name not in EDIT_FORM_FIELDS and not name.startswith("svg["):
            return bad_request(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    for file in recorded.files:
        if file.field not in EDIT_FILE_FIELDS:
            return bad_request(
                f"Unknown parameter: '{file.field}'.", param=file.field, code="unknown_parameter"
            )

    images = recorded.edit_images
    if not images:
        return bad_request(
            "Missing required parameter: 'image'.", param="image", code="missing_required_parameter"
        )
    if len(images) > max_images:
        return bad_request(
            f"Invalid 'image': array too long. Expected an array with maximum length "
            f"{max_images}, but got an array with length {len(images)} instead.",
            param="image",
            code="array_above_max_length",
        )
    bracket_index = 0
    for position, file in enumerate(images, start=1):
        if file.field == "image[]":
            name, bracket_index = f"image[{bracket_index}]", bracket_index + 1
        else:
            name = "image"
        rejected = _file_error(file, name, EDIT_IMAGE_MIME_TYPES, max_image_bytes, f"image {position}")
        if rejected is not None:
            return rejected
    mask = recorded.edit_mask
    if mask is not None:
        return _file_error(mask, "mask", ("image/png",), max_mask_bytes, "mask")
    return None


def _file_error(
    file: RecordedFile, name: str, mime_types: Sequence[str], max_bytes: int, label: str
) -> Fault | None:
    content_type = (file.content_type or "").split(";")[0].strip().lower()
    if not content_type:
        return bad_request(
            f"Invalid file '{name}': failed to determine mimetype. Ensure you are providing the file's "
            "mimetype as part of the 'Content-Type' header.",
            param=name,
            code="missing_file_mimetype",
        )
    if content_type not in mime_types:
        quoted = [f"'{m}'" for m in mime_types]
        listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
        return bad_request(
            f"Invalid file '{name}': unsupported mimetype ('{content_type}'). Supported file formats "
            f"are {listed}.",
            param=name,
            code="unsupported_file_mimetype",
        )
    if len(file.data) > max_bytes:
        return bad_request(  # wording and code guessed: no real sample found
            f"Invalid file '{name}': file too large ({len(file.data)} bytes). The maximum size is "
            f"{max_bytes // (1024 * 1024)} MB.",
            param=name,
            code="image_file_too_large",
        )
    allowed = {m.removeprefix("image/") for m in mime_types}
    if sniff_image_format(file.data) not in allowed:
        return bad_request(
            f"Invalid image file or mode for {label}, please check your image file.",
            param=name,
            code="invalid_image_file",
        )
    return None
