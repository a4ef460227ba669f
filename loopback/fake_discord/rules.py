"""Discord's rules on what the bot sends: message bodies, components, modals, commands, threads.

Each is something real Discord does and a real bug would trip over:
    * content over 2,000 characters -> 400/50035; empty message -> 400/50006; duplicate component
      custom_ids or custom_id over 100 -> 400/50035; thread names over 100 -> 400/50035;
    * legacy messages (no IS_COMPONENTS_V2 flag; 32768 = ``MessageFlags.components_v2``): content
      up to 2,000 characters; ``components`` are at most 5 top-level action rows, each 1-5
      buttons or one select (else 400/50035: ``UNION_TYPE_CHOICES``, ``BASE_TYPE_MAX_LENGTH``,
      ``BASE_TYPE_BAD_LENGTH``, ``COMPONENT_LAYOUT_WIDTH_EXCEEDED``); buttons need a custom_id (a
      url for links, style 5).
    * Components v2 messages (flags & 32768, on any create/edit route, JSON or multipart), all
      400/50035 with these inner codes: ``content``, ``embeds``, ``sticker_ids`` or ``poll`` ->
      ``MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2``; top level takes 1, 9, 10, 12, 13, 14,
      17, a container 1, 9, 10, 12, 13, 14, a section 1-3 text displays plus a button or thumbnail
      accessory (thumbnails nowhere else), else ``UNION_TYPE_CHOICES``/``BASE_TYPE_BAD_LENGTH``;
      more than 40 components counting every nested one (accessories too) or more than 4,000
      characters over all text displays -> ``BASE_TYPE_MAX_LENGTH`` at ``components``; a gallery
      of 0 or more than 10 items -> ``BASE_TYPE_BAD_LENGTH``; a File component not pointing at
      ``attachment://`` or a media URL that is neither that nor http(s) -> ``URL_TYPE_INVALID_URL``;
      ``attachment://name`` naming no attachment of the message after the request (new uploads
      plus kept ones on edits), or a name Discord would rewrite (anything but ASCII letters,
      digits, ``_.-``) -> ``UNFURLED_MEDIA_ITEM_REFERENCED_ATTACHMENT_NOT_FOUND``.
    * edits: the v2 flag can be set but never cleared (``flags`` without it ->
      ``MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG``); upgrading a message to v2 needs its content,
      embeds and old attachments cleared in that same edit (``content=None, embed=None,
      attachments=[...new files only]`` in discord.py), else the legacy-fields code above.
    * application commands: slash names are lowercase (letters, digits, ``-_'``, 1-32) with a
      1-100 character description; user/message context menus (types 2/3) take 1-32 characters
      with capitals and spaces, no description and no options (400/50035); at most 100 slash, 15
      user and 15 message commands per scope (400/50035, 400/30032; see ``rest/commands.py``).
    * modals: top level takes action rows (text inputs/selects), text displays and labels; a File
      Upload (type 19) only inside a label.
    * autocomplete: the only valid callback is type 8 with at most 25 choices, names 1-100
      characters, string values at most 100 (else 400/50035).
    * threads: a new message unarchives an archived thread unless it is locked (400/50083); in a
      locked thread only members with Manage Threads may post or edit; nothing in an archived
      thread may be edited (400/50083); no threads in DMs (400/50003) or in threads (400/50024).

The outer 400/50035 (what discord.py's ``HTTPException.code`` shows) is certain for every rule
above; the inner codes ``MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2``,
``MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG``, ``UNFURLED_MEDIA_ITEM_REFERENCED_ATTACHMENT_NOT_FOUND``
and ``COMPONENT_LAYOUT_WIDTH_EXCEEDED`` are Discord's, the others (and all the messages' wording
except the legacy-fields one) are the fake's best guess.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from loopback.fake_discord.server import UploadedFile
from loopback.fake_discord.wire import (
    ACTION_ROW,
    ATTACHMENT_SCHEME,
    BUTTON,
    CHAT_INPUT,
    CONTAINER,
    CONTAINER_CHILDREN,
    DM,
    FILE_COMPONENT,
    FILE_UPLOAD,
    FLAG_COMPONENTS_V2,
    GROUP_DM,
    LABEL,
    LEGACY_FIELDS_CODE,
    MAX_ATTACHMENTS,
    MAX_CONTENT,
    MAX_GALLERY_ITEMS,
    MAX_LEGACY_ROWS,
    MAX_THREAD_NAME,
    MAX_V2_COMPONENTS,
    MAX_V2_TEXT,
    MEDIA_GALLERY,
    MESSAGE_COMMAND,
    REFERENCE_NOT_FOUND_CODE,
    SAFE_ATTACHMENT_NAME,
    SECTION,
    SELECT_TYPES,
    SEPARATOR,
    TEXT_DISPLAY,
    TEXT_INPUT,
    THUMBNAIL,
    USER_COMMAND,
    V2_TOP_LEVEL,
    ApiError,
    Permissions,
    form_error,
    missing_permissions,
    now_iso,
)


class Rules:
    """Discord's validation, as methods of :class:`~loopback.fake_discord.FakeDiscord`."""

    # ------------------------------------------------------------------ message bodies and components

    def _validate_message_body(
        self,
        body: Mapping[str, Any],
        files: Sequence[UploadedFile],
        prefix: str,
        *,
        new: bool,
        existing: Mapping[str, Any] | None = None,
    ) -> None:
        """Discord's checks on message create/edit bodies (with ``prefix`` like ``data.`` for callbacks).

        ``existing`` is the message an edit applies to: its flags decide whether the result is a
        Components v2 message, and its attachments may be kept and referenced.
        """
        content = body.get("content")
        if content is not None:
            if not isinstance(content, str):
                raise form_error(f"{prefix}content", "BASE_TYPE_STRING", "Must be a string.")
            if len(content) > MAX_CONTENT:
                raise form_error(
                    f"{prefix}content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
                )
        embeds = body.get("embeds")
        if embeds:
            if len(embeds) > 10:
                raise form_error(f"{prefix}embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
            total = 0
            for index, embed in enumerate(embeds):
                limits = {"title": 256, "description": 4096}
                for key, limit in limits.items():
                    value = embed.get(key) or ""
                    total += len(value)
                    if len(value) > limit:
                        raise form_error(
                            f"{prefix}embeds.{index}.{key}",
                            "BASE_TYPE_MAX_LENGTH",
                            f"Must be {limit} or fewer in length.",
                        )
                if len(embed.get("fields", [])) > 25:
                    raise form_error(
                        f"{prefix}embeds.{index}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer."
                    )
                for fld in embed.get("fields", []):
                    total += len(fld.get("name", "")) + len(fld.get("value", ""))
            if total > 6000:
                raise form_error(
                    f"{prefix}embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
                )

        old_flags = int(existing.get("flags") or 0) if existing is not None else 0
        new_flags = body.get("flags")
        if (
            old_flags & FLAG_COMPONENTS_V2
            and new_flags is not None
            and not int(new_flags) & FLAG_COMPONENTS_V2
        ):
            raise form_error(
                f"{prefix}flags",
                "MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG",
                "The IS_COMPONENTS_V2 flag cannot be removed from a message.",
            )
        v2 = bool((old_flags | int(new_flags or 0)) & FLAG_COMPONENTS_V2)
        kept_files = self._message_files(existing) if existing is not None else []
        plan = self._plan_attachments(body, files, kept_files)
        if len(plan) > MAX_ATTACHMENTS:
            raise form_error(
                f"{prefix}attachments",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_ATTACHMENTS} or fewer in length.",
            )
        upgrading = v2 and existing is not None and not old_flags & FLAG_COMPONENTS_V2
        if v2:
            after_content = content if "content" in body else (existing or {}).get("content")
            after_embeds = embeds if "embeds" in body else (existing or {}).get("embeds")
            for key, value in (
                ("content", after_content),
                ("embeds", after_embeds),
                ("sticker_ids", body.get("sticker_ids")),
                ("poll", body.get("poll")),
            ):
                if value:
                    raise form_error(
                        f"{prefix}{key}",
                        LEGACY_FIELDS_CODE,
                        f"The '{key}' field cannot be used when using MessageFlags.IS_COMPONENTS_V2",
                    )
            if upgrading and any(kept is not None for kept, _, _, _ in plan):
                # Upgrading a message to v2: its old (displayed) attachments must be dropped.
                raise form_error(
                    f"{prefix}attachments",
                    LEGACY_FIELDS_CODE,
                    "The 'attachments' field cannot be used when using MessageFlags.IS_COMPONENTS_V2",
                )
        if "components" in body and body["components"] is not None:
            available = {name for _, _, name, _ in plan}
            self._validate_message_components(
                body["components"], f"{prefix}components", v2=v2, available=available
            )
        elif upgrading and existing is not None:
            # Upgrading with the old components: they must be valid v2 components too.
            self._validate_message_components(
                existing.get("components") or [], f"{prefix}components", v2=True, available=set()
            )
        if sum(len(f.data) for f in files) > self.attachment_size_limit:
            raise ApiError(413, 40005, "Request entity too large")
        if new and not (
            content
            or embeds
            or files
            or body.get("components")
            or body.get("sticker_ids")
            or body.get("poll")
        ):
            raise ApiError(400, 50006, "Cannot send an empty message")

    def _validate_message_components(
        self, components: Any, path: str, *, v2: bool, available: set[str]
    ) -> None:
        """Discord's checks on a message's ``components``.

        Legacy messages take up to 5 top-level action rows.  Components v2 messages take any
        top-level layout/content component, at most 40 components in all (every nested one
        counts, section accessories included) and at most 4,000 characters over all text displays;
        ``attachment://name`` media must name one of ``available`` (the message's attachments
        after this request).
        """
        if not isinstance(components, list):
            raise form_error(path, "LIST_TYPE_CONVERT", "Must be a list.")
        if not v2 and len(components) > MAX_LEGACY_ROWS:
            raise form_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_LEGACY_ROWS} or fewer in length.")
        seen: set[str] = set()
        totals = {"components": 0, "text": 0}

        def union(here: str, allowed: tuple[int, ...]) -> ApiError:
            return form_error(
                f"{here}.type", "UNION_TYPE_CHOICES", f'Value of field "type" must be one of {allowed}.'
            )

        def media(item: Any, here: str, *, attachment_only: bool = False) -> None:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise form_error(f"{here}.url", "BASE_TYPE_REQUIRED", "This field is required")
            url = item["url"]
            if url.startswith(ATTACHMENT_SCHEME):
                name = url[len(ATTACHMENT_SCHEME) :]
                if not SAFE_ATTACHMENT_NAME.fullmatch(name) or name not in available:
                    raise form_error(
                        f"{here}.url",
                        REFERENCE_NOT_FOUND_CODE,
                        f"Referenced attachment {name!r} was not found in the message's attachments",
                    )
                return
            if attachment_only:
                raise form_error(
                    f"{here}.url", "URL_TYPE_INVALID_URL", "File components only support attachment:// URLs."
                )
            if not re.match(r"https?://[^/\s]+", url):
                raise form_error(f"{here}.url", "URL_TYPE_INVALID_URL", "Not a well formed URL.")

        def button(comp: dict[str, Any], here: str) -> None:
            style = comp.get("style")
            if style not in (1, 2, 3, 4, 5, 6):
                raise form_error(
                    f"{here}.style", "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5, 6}."
                )
            if style == 5:
                if not comp.get("url") or comp.get("custom_id") is not None:
                    raise form_error(here, "BUTTON_COMPONENT_URL_REQUIRED", "A url is required")
            elif style == 6:
                if not comp.get("sku_id"):
                    raise form_error(here, "BUTTON_COMPONENT_SKU_ID_REQUIRED", "A sku id is required")
            elif comp.get("custom_id") is None or comp.get("url") is not None:
                raise form_error(here, "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED", "A custom id is required")
            if len(comp.get("label") or "") > 80:
                raise form_error(f"{here}.label", "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length.")

        def node(comp: Any, here: str, allowed: tuple[int, ...]) -> None:
            if not isinstance(comp, dict) or "type" not in comp:
                raise form_error(here, "BASE_TYPE_REQUIRED", "This field is required")
            kind = comp["type"]
            if kind not in allowed:
                raise union(here, allowed)
            totals["components"] += 1
            self._check_custom_id(comp, here, seen)
            children = comp.get("components")
            if kind == ACTION_ROW:
                row_types = (BUTTON, *SELECT_TYPES)
                if not isinstance(children, list) or not 1 <= len(children) <= 5:
                    raise form_error(
                        f"{here}.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
                    )
                for position, child in enumerate(children):
                    node(child, f"{here}.components.{position}", row_types)
                if len(children) > 1 and any(c["type"] != BUTTON for c in children):
                    raise form_error(
                        f"{here}.components",
                        "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                        "The specified component exceeds the maximum width",
                    )
            elif kind == BUTTON:
                button(comp, here)
            elif kind in SELECT_TYPES:
                if comp.get("custom_id") is None:
                    raise form_error(f"{here}.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
                if kind == 3 and not 1 <= len(comp.get("options") or []) <= 25:
                    raise form_error(
                        f"{here}.options", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 25 in length."
                    )
            elif kind == TEXT_DISPLAY:
                if not isinstance(comp.get("content"), str):
                    raise form_error(f"{here}.content", "BASE_TYPE_REQUIRED", "This field is required")
                totals["text"] += len(comp["content"])
            elif kind == SECTION:
                if not isinstance(children, list) or not 1 <= len(children) <= 3:
                    raise form_error(
                        f"{here}.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 3 in length."
                    )
                for position, child in enumerate(children):
                    node(child, f"{here}.components.{position}", (TEXT_DISPLAY,))
                if not isinstance(comp.get("accessory"), dict):
                    raise form_error(f"{here}.accessory", "BASE_TYPE_REQUIRED", "This field is required")
                node(comp["accessory"], f"{here}.accessory", (BUTTON, THUMBNAIL))
            elif kind == THUMBNAIL:
                media(comp.get("media"), f"{here}.media")
            elif kind == MEDIA_GALLERY:
                items = comp.get("items")
                if not isinstance(items, list) or not 1 <= len(items) <= MAX_GALLERY_ITEMS:
                    raise form_error(
                        f"{here}.items",
                        "BASE_TYPE_BAD_LENGTH",
                        f"Must be between 1 and {MAX_GALLERY_ITEMS} in length.",
                    )
                for position, item in enumerate(items):
                    if not isinstance(item, dict):
                        raise form_error(
                            f"{here}.items.{position}",
                            "DICT_TYPE_CONVERT",
                            "Only dictionaries may be used in a DictType",
                        )
                    media(item.get("media"), f"{here}.items.{position}.media")
                    if len(item.get("description") or "") > 1024:
                        raise form_error(
                            f"{here}.items.{position}.description",
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 1024 or fewer in length.",
                        )
            elif kind == FILE_COMPONENT:
                media(comp.get("file"), f"{here}.file", attachment_only=True)
            elif kind == SEPARATOR:
                if comp.get("spacing") not in (None, 1, 2):
                    raise form_error(f"{here}.spacing", "BASE_TYPE_CHOICES", "Value must be one of {1, 2}.")
            elif kind == CONTAINER:
                if not isinstance(children, list) or not children:
                    raise form_error(
                        f"{here}.components", "BASE_TYPE_MIN_LENGTH", "Must be 1 or more in length."
                    )
                for position, child in enumerate(children):
                    node(child, f"{here}.components.{position}", CONTAINER_CHILDREN)
                color = comp.get("accent_color")
                if color is not None and (not isinstance(color, int) or not 0 <= color <= 0xFFFFFF):
                    raise form_error(
                        f"{here}.accent_color",
                        "NUMBER_TYPE_MAX",
                        "int value should be less than or equal to 16777215.",
                    )

        top_level = V2_TOP_LEVEL if v2 else (ACTION_ROW,)
        for index, comp in enumerate(components):
            node(comp, f"{path}.{index}", top_level)
        if v2 and totals["components"] > MAX_V2_COMPONENTS:
            raise form_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_V2_COMPONENTS} or fewer in length.")
        if v2 and totals["text"] > MAX_V2_TEXT:
            raise form_error(
                path,
                "BASE_TYPE_MAX_LENGTH",
                f"The total length of all text displays must be {MAX_V2_TEXT} or fewer characters.",
            )

    @staticmethod
    def _check_custom_id(comp: Mapping[str, Any], here: str, seen: set[str]) -> None:
        custom_id = comp.get("custom_id")
        if custom_id is None:
            return
        if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
            raise form_error(f"{here}.custom_id", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100.")
        if custom_id in seen:
            raise form_error(
                f"{here}.custom_id",
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(custom_id)

    # ------------------------------------------------------------------ modals and autocomplete

    def _validate_modal(self, data: Mapping[str, Any]) -> None:
        custom_id = data.get("custom_id")
        if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
            raise form_error("data.custom_id", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        title = data.get("title")
        if not isinstance(title, str) or not 1 <= len(title) <= 45:
            raise form_error("data.title", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
        components = data.get("components")
        if not isinstance(components, list) or not 1 <= len(components) <= 5:
            raise form_error("data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        self._validate_modal_components(components, "data.components")

    def _validate_modal_components(self, components: Any, path: str) -> None:
        """Modal layouts: text displays, labels (wrapping one input) and deprecated action rows."""
        if not isinstance(components, list):
            raise form_error(path, "LIST_TYPE_CONVERT", "Must be a list.")
        seen: set[str] = set()

        def walk(items: list[Any], where: str, allowed: tuple[int, ...]) -> None:
            for index, comp in enumerate(items):
                here = f"{where}.{index}"
                if not isinstance(comp, dict) or "type" not in comp:
                    raise form_error(here, "BASE_TYPE_REQUIRED", "This field is required")
                if comp["type"] not in allowed:
                    raise form_error(
                        f"{here}.type",
                        "UNION_TYPE_CHOICES",
                        f'Value of field "type" must be one of {allowed}.',
                    )
                self._check_custom_id(comp, here, seen)
                if comp["type"] == ACTION_ROW:
                    if not 1 <= len(comp.get("components") or []) <= 5:
                        raise form_error(
                            f"{here}.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
                        )
                    walk(comp["components"], f"{here}.components", (TEXT_INPUT, *SELECT_TYPES))
                elif comp["type"] == LABEL:
                    for key, limit in (("label", 45), ("description", 100)):
                        if len(comp.get(key) or "") > limit:
                            raise form_error(
                                f"{here}.{key}",
                                "BASE_TYPE_MAX_LENGTH",
                                f"Must be {limit} or fewer in length.",
                            )
                    if not isinstance(comp.get("component"), dict):
                        raise form_error(f"{here}.component", "BASE_TYPE_REQUIRED", "This field is required")
                    walk(
                        [comp["component"]],
                        f"{here}.component",
                        (TEXT_INPUT, *SELECT_TYPES, FILE_UPLOAD, 21, 22, 23),
                    )
                elif comp["type"] == TEXT_INPUT:
                    if len(comp.get("placeholder") or "") > 100:
                        raise form_error(
                            f"{here}.placeholder", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."
                        )
                    if len(comp.get("label") or "") > 45:
                        raise form_error(
                            f"{here}.label", "BASE_TYPE_MAX_LENGTH", "Must be 45 or fewer in length."
                        )
                elif comp["type"] == FILE_UPLOAD:
                    low, high = comp.get("min_values"), comp.get("max_values")
                    if low is not None and not 0 <= low <= 10:
                        raise form_error(
                            f"{here}.min_values",
                            "NUMBER_TYPE_MAX",
                            "int value should be less than or equal to 10.",
                        )
                    if high is not None and not 1 <= high <= 10:
                        raise form_error(
                            f"{here}.max_values",
                            "NUMBER_TYPE_MAX",
                            "int value should be less than or equal to 10.",
                        )

        walk(components, path, (ACTION_ROW, TEXT_DISPLAY, LABEL))

    @staticmethod
    def _validate_autocomplete_result(data: Any) -> None:
        """Discord's limits on a type 8 answer: 0-25 choices, names 1-100, string values up to 100."""
        if not isinstance(data, dict) or "choices" not in data:
            raise form_error("data.choices", "BASE_TYPE_REQUIRED", "This field is required")
        choices = data["choices"]
        if not isinstance(choices, list):
            raise form_error("data.choices", "LIST_TYPE_CONVERT", "Must be a list.")
        if len(choices) > 25:
            raise form_error("data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for index, choice in enumerate(choices):
            where = f"data.choices.{index}"
            if not isinstance(choice, dict):
                raise form_error(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            name = choice.get("name")
            if not isinstance(name, str) or not 1 <= len(name) <= 100:
                raise form_error(
                    f"{where}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            value = choice.get("value")
            if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
                raise form_error(f"{where}.value", "BASE_TYPE_REQUIRED", "This field is required")
            if isinstance(value, str) and len(value) > 100:
                raise form_error(f"{where}.value", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")

    # ------------------------------------------------------------------ commands

    @staticmethod
    def _validate_command_definition(index: int, command: Mapping[str, Any]) -> None:
        """Discord's rules per command type: slash names are lowercase words with a description;
        user/message (context menu) names may have capitals and spaces, and take no description
        and no options."""
        ctype = command.get("type", 1)
        name = command.get("name", "")
        if ctype not in (CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND):
            raise form_error(f"{index}.type", "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3}.")
        if not isinstance(name, str) or not 1 <= len(name) <= 32:
            raise form_error(f"{index}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        description = command.get("description") or ""
        if ctype == CHAT_INPUT:
            if not re.fullmatch(r"[-_'\w]{1,32}", name):
                raise form_error(f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Invalid command name")
            if name != name.lower():
                raise form_error(
                    f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Name must be lowercase"
                )
            if not 1 <= len(description) <= 100:
                raise form_error(f"{index}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100.")
            return
        if not name.strip():
            raise form_error(f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Invalid command name")
        if description:
            raise form_error(
                f"{index}.description",
                "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
                "Context menu commands cannot have a description.",
            )
        if command.get("options"):
            raise form_error(
                f"{index}.options",
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Only chat input commands can have options.",
            )

    # ------------------------------------------------------------------ threads

    def _validate_thread_request(self, parent: dict[str, Any], body: Any) -> str:
        if parent["type"] in (DM, GROUP_DM):
            raise ApiError(400, 50003, "Cannot execute action on a DM channel")
        if self._is_thread(parent):
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        if not isinstance(body, dict):
            raise form_error("name", "BASE_TYPE_REQUIRED", "This field is required")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise form_error("name", "BASE_TYPE_REQUIRED", "This field is required")
        if len(name) > MAX_THREAD_NAME:
            raise form_error(
                "name", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_THREAD_NAME} in length."
            )
        duration = body.get("auto_archive_duration")
        if duration is not None and duration not in (60, 1440, 4320, 10080):
            raise form_error(
                "auto_archive_duration", "BASE_TYPE_CHOICES", "Value must be one of {60, 1440, 4320, 10080}."
            )
        return name

    async def _admit_new_message(self, channel: dict[str, Any], author_id: int) -> None:
        """Discord's thread rules for a new message, as since its 2023 change to locked threads.

        An archived thread is unarchived by a new message unless it is locked (50083, whoever posts);
        in a locked thread only members with Manage Threads may post at all.
        """
        if not self._is_thread(channel):
            return
        metadata = channel["thread_metadata"]
        if metadata["archived"]:
            if metadata.get("locked"):
                raise ApiError(400, 50083, "Thread is archived")
            metadata["archived"] = False
            metadata["archive_timestamp"] = now_iso()
            await self._broadcast("THREAD_UPDATE", copy.deepcopy(channel))
        elif (
            metadata.get("locked")
            and not self.permissions_for(author_id, self._guild_id_of(channel), channel_id=int(channel["id"]))
            & Permissions.MANAGE_THREADS
        ):
            raise missing_permissions()

    def _check_editable_in(self, channel_id: Any) -> None:
        """Nothing in an archived thread may be edited (it must be reopened first); in a locked one, only by
        those with Manage Threads, the bot's own messages included."""
        channel = self.channels.get(int(channel_id))
        if channel is None or not self._is_thread(channel):
            return
        metadata = channel["thread_metadata"]
        if metadata["archived"]:
            raise ApiError(400, 50083, "Thread is archived")
        bot_permissions = self.permissions_for(
            self._bot_id(), self._guild_id_of(channel), channel_id=int(channel["id"])
        )
        if metadata.get("locked") and not bot_permissions & Permissions.MANAGE_THREADS:
            raise missing_permissions()
