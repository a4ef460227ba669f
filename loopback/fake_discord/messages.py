"""Stored messages: how a body and its uploads become a message, how edits apply, how it reaches the gateway.

Uploads (``payload_json`` + ``files[N]``) become attachments ``{id, filename, size, content_type,
url, proxy_url}`` served by the fake.  Stored media become the attachment (``url``, ``proxy_url``,
``content_type``, ``attachment_id``, ``loading_state`` 2; File components get ``name``/``size``) and
referenced attachments leave the message's ``attachments``, as on Discord; the fake keeps the full
list (see ``attachments_of``).  Components without an ``id`` (or 0) are numbered 1, 2, ... depth
first, skipping ids already used.  An edit without ``attachments`` keeps every attachment, with
``attachments`` only the listed ones (discord.py lists ``Message.attachments``, which lacks those
the components show).
"""

from __future__ import annotations

import copy
import itertools
import mimetypes
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from loopback.fake_discord.server import UploadedFile
from loopback.fake_discord.wire import (
    ATTACHMENT_SCHEME,
    FILE_COMPONENT,
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_HAS_THREAD,
    FLAG_LOADING,
    MEDIA_GALLERY,
    REFERENCE_NOT_FOUND_CODE,
    THUMBNAIL,
    ApiError,
    as_int,
    form_error,
    now_iso,
    unknown,
    walk_components,
)


class MessageStore:
    """Messages and attachments of :class:`~loopback.fake_discord.FakeDiscord`."""

    _walk_components = staticmethod(walk_components)

    # ------------------------------------------------------------------ attachments

    def _message_files(self, message: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """Every attachment of a stored message, including those its components display.

        Discord leaves attachments referenced by components (or embeds) out of the message's
        ``attachments`` array; the fake keeps the full list here.
        """
        if message is None:
            return []
        kept = self._all_attachments.get(int(message["id"]))
        return list(kept if kept is not None else message.get("attachments") or [])

    def _store_attachment(
        self, channel_id: int, upload: UploadedFile, filename: str, *, ephemeral: bool
    ) -> dict[str, Any]:
        att_id = self._ids.next()
        guessed = mimetypes.guess_type(filename)[0]
        content_type = guessed or upload.content_type or "application/octet-stream"
        url = f"{self.http_url}/attachments/{channel_id}/{att_id}/{quote(filename)}"
        self._attachments[att_id] = (content_type, upload.data)
        attachment: dict[str, Any] = {
            "id": str(att_id),
            "filename": filename,
            "size": len(upload.data),
            "content_type": content_type,
            "url": url,
            "proxy_url": url,
        }
        if ephemeral:
            attachment["ephemeral"] = True
        return attachment

    def _plan_attachments(
        self, body: Mapping[str, Any], files: Sequence[UploadedFile], existing: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any] | None, UploadedFile | None, str, str | None]]:
        """What ``attachments`` + ``files[N]`` ask for: ``(kept, upload, filename, description)``
        per resulting attachment, in order (an edit keeps only the listed old ones)."""
        by_index: dict[int, UploadedFile] = {}
        for position, upload in enumerate(files):
            match = re.fullmatch(r"files\[(\d+)\]", upload.field)
            by_index[int(match.group(1)) if match else position] = upload
        plan: list[tuple[dict[str, Any] | None, UploadedFile | None, str, str | None]] = []
        used: set[int] = set()
        listed = body.get("attachments")
        if listed is None:
            plan.extend((att, None, att["filename"], None) for att in existing)
        else:
            existing_by_id = {a["id"]: a for a in existing}
            for entry in listed:
                entry_id = str(entry.get("id"))
                if entry_id in existing_by_id:
                    kept = existing_by_id[entry_id]
                    plan.append((kept, None, kept["filename"], None))
                    continue
                index = as_int(entry_id)
                if index is None or index not in by_index:
                    raise form_error("attachments", "ATTACHMENT_NOT_FOUND", f"Unknown attachment {entry_id}")
                used.add(index)
                upload = by_index[index]
                plan.append(
                    (None, upload, entry.get("filename") or upload.filename, entry.get("description"))
                )
        for index in sorted(by_index):
            if index not in used:
                plan.append((None, by_index[index], by_index[index].filename, None))
        return plan

    def _build_attachments(
        self,
        channel_id: int,
        body: Mapping[str, Any],
        files: Sequence[UploadedFile],
        existing: list[dict[str, Any]],
        *,
        ephemeral: bool,
    ) -> list[dict[str, Any]]:
        """Resolve ``attachments`` + ``files[N]`` into attachment objects, keeping listed old ones on edit."""
        result: list[dict[str, Any]] = []
        for kept, upload, filename, description in self._plan_attachments(body, files, existing):
            if kept is not None:
                result.append(kept)
                continue
            assert upload is not None
            att = self._store_attachment(channel_id, upload, filename, ephemeral=ephemeral)
            if description:
                att["description"] = description
            result.append(att)
        return result

    @staticmethod
    def _unfurl(media: Mapping[str, Any], by_name: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        """The unfurled media item Discord stores for a ``{"url": ...}`` the bot sent."""
        url = str(media.get("url", ""))
        if not url.startswith(ATTACHMENT_SCHEME):
            return {"url": url, "proxy_url": url, "flags": 0, "loading_state": 0}
        name = url[len(ATTACHMENT_SCHEME) :]
        att = by_name.get(name)
        if att is None:  # validated before; kept for messages created by the fake's own helpers
            raise form_error(
                "components", REFERENCE_NOT_FOUND_CODE, f"Referenced attachment {name!r} not found"
            )
        unfurled: dict[str, Any] = {
            "url": att["url"],
            "proxy_url": att["proxy_url"],
            "content_type": att["content_type"],
            "flags": 0,
            "loading_state": 2,
            "attachment_id": att["id"],
        }
        for key in ("width", "height"):
            if key in att:
                unfurled[key] = att[key]
        return unfurled

    def _resolve_media(self, components: list[Any], attachments: list[dict[str, Any]]) -> list[Any]:
        """Replace ``attachment://name`` media with the uploaded attachment, as Discord stores it."""
        by_name: dict[str, dict[str, Any]] = {}
        for att in attachments:
            by_name.setdefault(att["filename"], att)
        components = copy.deepcopy(components)
        for comp in walk_components(components):
            kind = comp.get("type")
            if kind == THUMBNAIL and isinstance(comp.get("media"), dict):
                comp["media"] = self._unfurl(comp["media"], by_name)
            elif kind == MEDIA_GALLERY:
                for item in comp.get("items") or []:
                    if isinstance(item, dict) and isinstance(item.get("media"), dict):
                        item["media"] = self._unfurl(item["media"], by_name)
            elif kind == FILE_COMPONENT and isinstance(comp.get("file"), dict):
                comp["file"] = self._unfurl(comp["file"], by_name)
                att = next((a for a in attachments if a["id"] == comp["file"].get("attachment_id")), None)
                if att is not None:
                    comp["name"] = att["filename"]
                    comp["size"] = att["size"]
        return components

    def _referenced_attachment_ids(self, components: list[Any]) -> set[str]:
        found: set[str] = set()
        for comp in walk_components(components):
            medias = [comp.get("media"), comp.get("file")]
            medias += [item.get("media") for item in comp.get("items") or [] if isinstance(item, dict)]
            found.update(
                str(m["attachment_id"]) for m in medias if isinstance(m, dict) and m.get("attachment_id")
            )
        return found

    # ------------------------------------------------------------------ creating and editing

    def _mentions(self, content: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for raw_id in re.findall(r"<@!?(\d+)>", content or ""):
            user = self.users.get(int(raw_id))
            if user is not None and user not in found:
                found.append(user)
        return found

    def _new_message(
        self,
        channel: dict[str, Any],
        author: dict[str, Any],
        body: Mapping[str, Any],
        files: Sequence[UploadedFile],
        *,
        flags: int = 0,
        message_type: int = 0,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        channel_id = int(channel["id"])
        content = body.get("content") or ""
        message: dict[str, Any] = {
            "id": str(self._ids.next()),
            "channel_id": channel["id"],
            "author": author,
            "content": content,
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": False,
            "mentions": self._mentions(content),
            "mention_roles": [],
            "attachments": [],
            "embeds": list(body.get("embeds") or []),
            "components": [],
            "pinned": False,
            "type": message_type,
            "flags": flags,
        }
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        reference = body.get("message_reference")
        if reference and reference.get("message_id"):
            referenced = self.messages.get(int(reference["message_id"]))
            if referenced is None:
                if reference.get("fail_if_not_exists", True):
                    raise form_error("message_reference", "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
            else:
                message["type"] = 19
                message["message_reference"] = {
                    "type": 0,
                    "message_id": referenced["id"],
                    "channel_id": referenced["channel_id"],
                }
                if channel.get("guild_id"):
                    message["message_reference"]["guild_id"] = channel["guild_id"]
                message["referenced_message"] = copy.deepcopy(referenced)
                message["referenced_message"].pop("referenced_message", None)
        if extra:
            message.update(extra)
        files_kept = self._build_attachments(
            channel_id, body, files, [], ephemeral=bool(flags & FLAG_EPHEMERAL)
        )
        components = self._resolve_media(list(body.get("components") or []), files_kept)
        message["components"] = self._with_component_ids(components)
        shown = self._referenced_attachment_ids(components)
        message["attachments"] = [a for a in files_kept if a["id"] not in shown]
        self._all_attachments[int(message["id"])] = files_kept
        self.messages[int(message["id"])] = message
        if not flags & FLAG_EPHEMERAL:
            channel["last_message_id"] = message["id"]
            if self._is_thread(channel):
                channel["message_count"] = channel.get("message_count", 0) + 1
                channel["total_message_sent"] = channel.get("total_message_sent", 0) + 1
        return message

    def _with_component_ids(self, components: list[Any]) -> list[Any]:
        """Discord numbers every component; do the same where the bot did not."""
        counter = itertools.count(1)
        used: set[int] = set()

        def collect(items: list[Any]) -> None:
            for comp in items:
                if isinstance(comp, dict):
                    if isinstance(comp.get("id"), int) and comp["id"]:
                        used.add(comp["id"])
                    collect(comp.get("components") or [])
                    collect([c for c in (comp.get("accessory"), comp.get("component")) if c])

        def assign(items: list[Any]) -> None:
            for comp in items:
                if isinstance(comp, dict):
                    if not isinstance(comp.get("id"), int) or not comp["id"]:  # 0 means "assign one"
                        value = next(counter)
                        while value in used:
                            value = next(counter)
                        comp["id"] = value
                    assign(comp.get("components") or [])
                    assign([c for c in (comp.get("accessory"), comp.get("component")) if c])

        components = copy.deepcopy(components)
        collect(components)
        assign(components)
        return components

    def _apply_edit(
        self, message: dict[str, Any], body: Mapping[str, Any], files: Sequence[UploadedFile]
    ) -> dict[str, Any]:
        """Apply an edit body in place (all-or-nothing: a rejected edit leaves the message as it was)."""
        edited = dict(message)
        if "content" in body:
            edited["content"] = body["content"] or ""
            edited["mentions"] = self._mentions(edited["content"])
        if "embeds" in body:
            edited["embeds"] = list(body["embeds"] or [])
        if "flags" in body and body["flags"] is not None:
            keep = int(message.get("flags", 0)) & (
                FLAG_EPHEMERAL | FLAG_HAS_THREAD | FLAG_LOADING | FLAG_COMPONENTS_V2
            )
            edited["flags"] = keep | (int(body["flags"]) & ~(FLAG_EPHEMERAL | FLAG_LOADING))
        every_file = self._message_files(message)
        if "attachments" in body or files:
            every_file = self._build_attachments(
                int(message["channel_id"]),
                body,
                files,
                every_file,
                ephemeral=bool(int(message.get("flags", 0)) & FLAG_EPHEMERAL),
            )
        if "components" in body:
            components = self._resolve_media(list(body["components"] or []), every_file)
            edited["components"] = self._with_component_ids(components)
        shown = self._referenced_attachment_ids(edited["components"])
        edited["attachments"] = [a for a in every_file if a["id"] not in shown]
        edited["edited_timestamp"] = now_iso()
        if not (edited["content"] or edited["embeds"] or every_file or edited["components"]):
            raise ApiError(400, 50006, "Cannot send an empty message")
        message.clear()
        message.update(edited)
        self._all_attachments[int(message["id"])] = every_file
        return message

    def _visible_message(self, channel_id: str, message_id: str) -> dict[str, Any]:
        message = self.messages.get(int(message_id))
        if (
            message is None
            or message["channel_id"] != channel_id
            or int(message.get("flags", 0)) & FLAG_EPHEMERAL
        ):
            raise unknown("Message", 10008)
        return message

    # ------------------------------------------------------------------ reaching the gateway

    def _gateway_message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        data = copy.deepcopy(dict(message))
        if self._channel_place(data["channel_id"]) == "dm":
            return data  # DM messages carry no guild_id and no member
        guild = self._guild_of_channel(data["channel_id"])
        data["guild_id"] = str(guild.id)
        author_id = int(data["author"]["id"])
        if author_id in guild.members and "webhook_id" not in data:
            data["member"] = self._member_payload(author_id, guild_id=guild.id, with_user=False)
        return data

    async def _dispatch_message(self, event: str, message: Mapping[str, Any]) -> None:
        if int(message.get("flags", 0)) & FLAG_EPHEMERAL:
            return  # ephemeral messages never reach the gateway
        place = self._channel_place(message["channel_id"])
        if place in ("group", "foreign"):
            return  # the bot is not there to receive it
        if place == "guild" and not self.can_view(self._bot_id(), int(message["channel_id"])):
            return  # Discord sends a channel's messages only to those who can view it
        await self._broadcast(event, self._gateway_message(message))

    async def _remove_message(self, message: dict[str, Any], *, announce: bool = True) -> None:
        """Delete a message; MESSAGE_DELETE reaches the bot where it is (unless ``announce`` is False: a
        bulk deletion announces all at once)."""
        self.messages.pop(int(message["id"]), None)
        self._all_attachments.pop(int(message["id"]), None)
        if announce and not int(message.get("flags", 0)) & FLAG_EPHEMERAL:
            event = {"id": message["id"], "channel_id": message["channel_id"]}
            place = self._channel_place(message["channel_id"])
            if place == "guild":
                event["guild_id"] = str(self._guild_of_channel(message["channel_id"]).id)
            if place in ("guild", "dm"):
                await self._broadcast("MESSAGE_DELETE", event)
