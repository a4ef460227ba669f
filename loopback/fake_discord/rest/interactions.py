"""REST: interaction callbacks and the interaction webhook (followups, ``@original``).

``POST /interactions/{id}/{token}/callback`` (types 1, 4, 5, 6, 7, 8, 9; JSON or multipart; with
``with_response=1`` it answers ``{"interaction": {...}, "resource": {"type", "message"?}}``);
``POST /webhooks/{app}/{token}`` (``wait``, ``thread_id``; ``with_components`` is accepted and not
needed, as for every application-owned webhook) and ``GET|PATCH|DELETE
/webhooks/{app}/{token}/messages/{@original|id}``.

    * a second callback for an interaction -> 400/40060; a callback later than
      ``interaction_deadline`` seconds -> 404/10062; followups or ``@original`` before any
      callback -> 404/10015;
    * autocomplete interactions take only a type 8 callback, and type 8 answers only them
      (400/40043); autocomplete tokens have no webhook (followups -> 404/10015);
    * after a deferred (type 5) response the first followup *replaces* the loading message and
      keeps the deferral's ephemerality, as Discord does (a type 5 ignores IS_COMPONENTS_V2; the
      followup or ``@original`` edit sets it);
    * replies to context menu commands are message type 23 with
      ``interaction_metadata.target_message_id``/``target_user``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from loopback.fake_discord.interaction import FakeInteraction
from loopback.fake_discord.server import RecordedRequest, UploadedFile
from loopback.fake_discord.wire import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    CB_AUTOCOMPLETE,
    CB_DEFERRED_MESSAGE,
    CB_DEFERRED_UPDATE,
    CB_MESSAGE,
    CB_MODAL,
    CB_PONG,
    CB_UPDATE,
    CHAT_INPUT,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    MESSAGE_COMMAND,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    PING,
    USER_COMMAND,
    ApiError,
    as_int,
    form_error,
    unknown,
)


class InteractionRoutes:
    """Interaction callback and webhook routes of :class:`~loopback.fake_discord.FakeDiscord`."""

    async def _post_callback(self, req: RecordedRequest, interaction_id: str, token: str) -> web.Response:
        inter = self._interactions_by_id.get(int(interaction_id))
        if inter is None or inter.token != token:
            raise unknown("interaction", 10062)
        if inter.responses:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if (
            self.interaction_deadline is not None
            and time.monotonic() - inter.dispatched_at > self.interaction_deadline
        ):
            inter.errors.append({"code": 10062, "late_by": time.monotonic() - inter.dispatched_at})
            raise unknown("interaction", 10062)
        body = req.json
        if not isinstance(body, dict) or "type" not in body:
            raise form_error("type", "BASE_TYPE_REQUIRED", "This field is required")
        cb_type = body["type"]
        data: dict[str, Any] = body.get("data") or {}
        if (inter.type == AUTOCOMPLETE) != (cb_type == CB_AUTOCOMPLETE):
            # Autocomplete interactions take only type 8, and type 8 answers only them.
            raise ApiError(400, 40043, "Interaction callback type is not valid for this interaction")
        message: dict[str, Any] | None = None
        ephemeral = bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)
        channel = self.channels.get(inter.channel_id)
        if channel is None:
            raise unknown("Channel", 10003)

        if cb_type == CB_MESSAGE:
            if inter.type not in (APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT):
                raise ApiError(400, 40043, "Interaction callback type is not valid for this interaction")
            self._validate_message_body(data, req.files, "data.", new=True)
            message = self._interaction_message(inter, channel, data, req.files)
            inter._original_id = int(message["id"])
            await self._dispatch_message("MESSAGE_CREATE", message)
        elif cb_type == CB_DEFERRED_MESSAGE:
            if inter.type not in (APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT):
                raise ApiError(400, 40043, "Interaction callback type is not valid for this interaction")
            loading = {"content": ""}
            message = self._interaction_message(
                inter, channel, loading, [], flags=FLAG_LOADING | (FLAG_EPHEMERAL if ephemeral else 0)
            )
            inter._original_id = int(message["id"])
            await self._dispatch_message("MESSAGE_CREATE", message)
        elif cb_type in (CB_DEFERRED_UPDATE, CB_UPDATE):
            if inter.type not in (MESSAGE_COMPONENT, MODAL_SUBMIT) or inter.message_id is None:
                raise ApiError(400, 40043, "Interaction callback type is not valid for this interaction")
            target = self.messages.get(inter.message_id)
            if target is None:
                raise unknown("Message", 10008)
            inter._original_id = inter.message_id
            if cb_type == CB_UPDATE:
                self._validate_message_body(data, req.files, "data.", new=False, existing=target)
                self._apply_edit(target, data, req.files)
                message = target
                await self._dispatch_message("MESSAGE_UPDATE", target)
        elif cb_type == CB_MODAL:
            if inter.type == MODAL_SUBMIT or inter.type == PING:
                raise ApiError(400, 40043, "Interaction callback type is not valid for this interaction")
            self._validate_modal(data)
            modal = copy.deepcopy(data)
            modal["components"] = self._with_component_ids(modal["components"])
            inter.modal = modal
            self._opened_modals.append((inter, modal))
        elif cb_type == CB_AUTOCOMPLETE:
            self._validate_autocomplete_result(body.get("data"))
        elif cb_type == CB_PONG and inter.type == PING:
            pass
        else:
            raise ApiError(400, 40043, "Interaction callback type is not valid for this interaction")

        inter.responses.append(copy.deepcopy(body))
        inter.responded_at = time.monotonic()
        self._notify()
        if req.query.get("with_response") not in ("1", "true", "True"):
            return self._no_content()
        interaction_info: dict[str, Any] = {"id": str(inter.id), "type": inter.type}
        if inter._original_id is not None and cb_type in (CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_UPDATE):
            interaction_info["response_message_id"] = str(inter._original_id)
            interaction_info["response_message_loading"] = cb_type == CB_DEFERRED_MESSAGE
            interaction_info["response_message_ephemeral"] = ephemeral
        resource: dict[str, Any] = {"type": cb_type}
        if message is not None and cb_type in (CB_MESSAGE, CB_UPDATE):
            resource["message"] = message
        return self._json({"interaction": interaction_info, "resource": resource})

    def _interaction_message(
        self,
        inter: FakeInteraction,
        channel: dict[str, Any],
        data: Mapping[str, Any],
        files: Sequence[UploadedFile],
        *,
        flags: int | None = None,
        followup: bool = False,
    ) -> dict[str, Any]:
        if flags is None:
            flags = int(data.get("flags") or 0) & ~FLAG_LOADING
        metadata: dict[str, Any] = {
            "id": str(inter.id),
            "type": inter.type,
            "user": inter.user,
            "authorizing_integration_owners": copy.deepcopy(inter.payload["authorizing_integration_owners"]),
        }
        if followup and inter._original_id is not None:
            metadata["original_response_message_id"] = str(inter._original_id)
        if inter.type == MESSAGE_COMPONENT and inter.message_id is not None:
            metadata["interacted_message_id"] = str(inter.message_id)
        command_type = inter.data.get("type", CHAT_INPUT) if inter.type == APPLICATION_COMMAND else None
        if command_type == MESSAGE_COMMAND:
            metadata["target_message_id"] = inter.data["target_id"]
        elif command_type == USER_COMMAND:
            metadata["target_user"] = inter.data["resolved"]["users"][inter.data["target_id"]]
        extra = {
            "webhook_id": str(self.application_id),
            "application_id": str(self.application_id),
            "interaction_metadata": metadata,
        }
        # 20 CHAT_INPUT_COMMAND, 23 CONTEXT_MENU_COMMAND, 0 DEFAULT (components and modals)
        message_type = {None: 0, CHAT_INPUT: 20}.get(command_type, 23)
        return self._new_message(
            channel, self.bot_user, data, files, flags=flags, message_type=message_type, extra=extra
        )

    def _webhook_interaction(self, app_id: str, token: str) -> FakeInteraction:
        inter = self._interactions_by_token.get(token)
        if int(app_id) != self.application_id or inter is None or not inter.responses:
            raise unknown("Webhook", 10015)
        if inter.type == AUTOCOMPLETE:  # its answer is the choices; there is no message to follow up
            raise unknown("Webhook", 10015)
        return inter

    async def _post_followup(self, req: RecordedRequest, app_id: str, token: str) -> web.Response:
        inter = self._webhook_interaction(app_id, token)
        body = req.json or {}
        self._validate_message_body(body, req.files, "", new=True)
        thread_id = as_int(req.query.get("thread_id"))
        channel = self._channel_or_404(thread_id) if thread_id else self.channels[inter.channel_id]
        original = inter.original
        loading = original is not None and int(original.get("flags", 0)) & FLAG_LOADING and not thread_id
        ephemeral = int(body.get("flags") or 0) & FLAG_EPHEMERAL or (
            loading and original is not None and int(original["flags"]) & FLAG_EPHEMERAL
        )
        if not ephemeral:
            # A public answer is a message in the channel like any other: a thread's rules apply to it.
            if loading:
                self._check_editable_in(channel["id"])
            else:
                await self._admit_new_message(channel, self._bot_id())
        if loading:
            assert original is not None
            # The first followup after a "thinking" defer becomes the original response; its
            # ephemerality is the deferral's, whatever flags the followup carries.
            keep = int(original["flags"]) & FLAG_EPHEMERAL
            self._apply_edit(original, body, req.files)
            original["flags"] = keep | (int(body.get("flags") or 0) & ~(FLAG_EPHEMERAL | FLAG_LOADING))
            original["edited_timestamp"] = None
            message = original
            await self._dispatch_message("MESSAGE_UPDATE", message)
        else:
            message = self._interaction_message(inter, channel, body, req.files, followup=True)
            await self._dispatch_message("MESSAGE_CREATE", message)
        inter._followups.append(message)
        self._notify()
        if req.query.get("wait") in ("1", "true", "True"):
            return self._json(message)
        return self._no_content()

    def _webhook_message(self, inter: FakeInteraction, message_id: str) -> dict[str, Any]:
        if message_id == "@original":
            mid = inter._original_id
        else:
            mid = int(message_id)
            owned = {int(m["id"]) for m in inter._followups}
            if inter._original_id is not None:
                owned.add(inter._original_id)
            if mid not in owned:
                mid = None
        message = self.messages.get(mid) if mid is not None else None
        if message is None:
            raise unknown("Message", 10008)
        return message

    async def _get_webhook_message(
        self, req: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> web.Response:
        inter = self._webhook_interaction(app_id, token)
        return self._json(self._webhook_message(inter, message_id))

    async def _patch_webhook_message(
        self, req: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> web.Response:
        inter = self._webhook_interaction(app_id, token)
        message = self._webhook_message(inter, message_id)
        body = req.json or {}
        self._validate_message_body(body, req.files, "", new=False, existing=message)
        if not int(message.get("flags", 0)) & FLAG_EPHEMERAL:
            self._check_editable_in(message["channel_id"])
        was_loading = int(message.get("flags", 0)) & FLAG_LOADING
        self._apply_edit(message, body, req.files)
        if was_loading:
            message["flags"] = int(message["flags"]) & ~FLAG_LOADING
        await self._dispatch_message("MESSAGE_UPDATE", message)
        self._notify()
        return self._json(message)

    async def _delete_webhook_message(
        self, req: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> web.Response:
        inter = self._webhook_interaction(app_id, token)
        message = self._webhook_message(inter, message_id)
        await self._remove_message(message)
        return self._no_content()
