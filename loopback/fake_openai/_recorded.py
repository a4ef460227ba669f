"""What the loopback OpenAI was asked: every ``/v1`` request as a :class:`RecordedRequest`, and readers
for the parts of a request body a test checks (a chat request's pictures, a moderations request's inputs).

``fake.requests`` holds every request, rejected ones included, with its method, path, decoded JSON body,
lower-cased headers, multipart form fields and files, query and arrival time.
``RecordedRequest.chat_images`` lists the image parts of a chat request as :class:`ChatImage` (indexes,
url, detail, decoded media_type / data); ``RecordedRequest.edit_images`` / ``.edit_mask`` the uploaded
files of an edit; ``RecordedRequest.moderation_items`` the inputs of a moderations request as
:class:`ModerationItem` (index, kind ``"text"`` / ``"image"``, text, url, decoded media_type / data).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loopback.png import decode_data_url

CHAT_PATH = "/v1/chat/completions"
GENERATIONS_PATH = "/v1/images/generations"
EDITS_PATH = "/v1/images/edits"
IMAGE_PATHS = (GENERATIONS_PATH, EDITS_PATH)
MODERATIONS_PATH = "/v1/moderations"
EDIT_IMAGE_FIELDS = ("image", "image[]")  # the multipart fields of an edit's input pictures


def text_of(content: Any) -> str:
    """Text of a message ``content``: a plain string or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def last_user_text(request_json: Mapping[str, Any]) -> str:
    """The text of the last ``role="user"`` message, or "" if there is none."""
    messages = request_json.get("messages") or []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


@dataclass
class RecordedFile:
    field: str  # "image", "image[]", "mask", ...
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class ChatImage:
    """One ``image_url`` part of a chat request. ``data`` / ``media_type`` are decoded from a base64
    ``data:`` URL (``None`` for a remote URL or an undecodable one)."""

    message_index: int
    part_index: int
    url: str
    detail: str | None
    media_type: str | None
    data: bytes | None


def chat_images(request_json: Mapping[str, Any] | None) -> list[ChatImage]:
    """The ``image_url`` parts of a chat completion request body, in message / part order."""
    found: list[ChatImage] = []
    messages = (request_json or {}).get("messages") or []
    for message_index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part_index, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "image_url":
                continue
            image_url = part.get("image_url")
            url = str(image_url.get("url", "")) if isinstance(image_url, dict) else str(image_url or "")
            detail = image_url.get("detail") if isinstance(image_url, dict) else None
            media_type: str | None = None
            data: bytes | None = None
            with contextlib.suppress(ValueError):
                media_type, data = decode_data_url(url)
            found.append(ChatImage(message_index, part_index, url, detail, media_type, data))
    return found


@dataclass(frozen=True)
class ModerationItem:
    """One input of a ``/moderations`` request: a string of a string list, or one part of a list of parts.

    ``kind`` is ``"text"`` or ``"image"``. For images, ``data`` / ``media_type`` are decoded from a base64
    ``data:`` URL (``None`` for a remote URL or an undecodable one).
    """

    index: int  # position in ``input`` (0 for a plain string)
    kind: str
    text: str | None = None
    url: str | None = None
    media_type: str | None = None
    data: bytes | None = None


def moderation_items(request_json: Mapping[str, Any] | None) -> list[ModerationItem]:
    """The inputs of a ``/moderations`` request body, in order (malformed entries are skipped)."""
    raw = (request_json or {}).get("input")
    entries = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    found: list[ModerationItem] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            found.append(ModerationItem(index, "text", text=entry))
        elif isinstance(entry, dict) and entry.get("type") == "text":
            found.append(ModerationItem(index, "text", text=str(entry.get("text", ""))))
        elif isinstance(entry, dict) and entry.get("type") == "image_url":
            image_url = entry.get("image_url")
            url = str(image_url.get("url", "")) if isinstance(image_url, dict) else str(image_url or "")
            media_type: str | None = None
            data: bytes | None = None
            with contextlib.suppress(ValueError):
                media_type, data = decode_data_url(url)
            found.append(ModerationItem(index, "image", url=url, media_type=media_type, data=data))
    return found


@dataclass
class RecordedRequest:
    method: str
    path: str  # full path, e.g. "/v1/chat/completions"
    json: Any  # decoded JSON body, or None (multipart, GET, bad JSON)
    headers: dict[str, str]  # lower-cased names
    form: dict[str, str]  # multipart non-file fields (last value wins when repeated)
    files: list[RecordedFile]
    received_at: float  # time.monotonic()
    query: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> Mapping[str, Any]:
        """The JSON body or, for multipart requests, the form fields."""
        return self.json if isinstance(self.json, dict) else self.form

    @property
    def model(self) -> str | None:
        value = self.params.get("model")
        return str(value) if value is not None else None

    @property
    def chat_images(self) -> list[ChatImage]:
        """Image parts of a chat request (empty for anything else)."""
        return chat_images(self.json) if isinstance(self.json, dict) else []

    @property
    def edit_images(self) -> list[RecordedFile]:
        """The ``image`` / ``image[]`` files of an edit request, in the order they were sent."""
        return [f for f in self.files if f.field in EDIT_IMAGE_FIELDS]

    @property
    def edit_mask(self) -> RecordedFile | None:
        return next((f for f in self.files if f.field == "mask"), None)

    @property
    def moderation_items(self) -> list[ModerationItem]:
        """The inputs of a moderations request (empty for anything else)."""
        return (
            moderation_items(self.json)
            if self.path == MODERATIONS_PATH and isinstance(self.json, dict)
            else []
        )
