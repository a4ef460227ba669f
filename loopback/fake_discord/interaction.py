"""What a test holds after acting as a member: the interaction and every answer the bot gave to it."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from loopback.fake_discord.wire import (
    CB_AUTOCOMPLETE,
    CB_DEFERRED_MESSAGE,
    CB_DEFERRED_UPDATE,
    FLAG_EPHEMERAL,
)

if TYPE_CHECKING:
    from loopback.fake_discord import FakeDiscord


class FakeInteraction:
    """An interaction the fake dispatched, and everything the bot answered to it.

    ``responses`` holds the raw callback bodies (``{"type": ..., "data": ...}``), ``followups`` the
    message payloads created through the interaction webhook, ``original`` the "original response"
    message (for component interactions answered with type 6/7 that is the clicked message),
    ``choices`` the suggestions an autocomplete interaction was answered with (type 8).
    """

    def __init__(self, fake: FakeDiscord, payload: dict[str, Any], user: dict[str, Any]) -> None:
        self._fake = fake
        self.payload = payload
        self.id: int = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.user = user
        self.channel_id: int = int(payload["channel_id"])
        message = payload.get("message")
        self.message_id: int | None = int(message["id"]) if message else None
        self.responses: list[dict[str, Any]] = []
        self.dispatched_at: float = time.monotonic()
        self.responded_at: float | None = None
        self.modal: dict[str, Any] | None = None
        self._original_id: int | None = None
        self._followups: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.shard_id: int | None = None  # the shard whose session it was dispatched to

    def __repr__(self) -> str:
        return f"<FakeInteraction id={self.id} type={self.type} responses={len(self.responses)}>"

    @property
    def data(self) -> dict[str, Any]:
        return self.payload.get("data", {})

    @property
    def followups(self) -> list[dict[str, Any]]:
        return list(self._followups)

    @property
    def original(self) -> dict[str, Any] | None:
        if self._original_id is None:
            return None
        return self._fake.messages.get(self._original_id)

    @property
    def target_id(self) -> int | None:
        """The message or user a context menu command was used on (None for other interactions)."""
        target = self.data.get("target_id")
        return int(target) if target is not None else None

    @property
    def response_type(self) -> int | None:
        return self.responses[0]["type"] if self.responses else None

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        """The ``{"name", "value"}`` choices of a type 8 answer (None before it or for other answers)."""
        if self.response_type != CB_AUTOCOMPLETE:
            return None
        return copy.deepcopy((self.responses[0].get("data") or {}).get("choices") or [])

    @property
    def focused(self) -> dict[str, Any] | None:
        """The option marked ``focused`` in an autocomplete interaction's data (None otherwise)."""
        options = self.data.get("options") or []
        while options:
            hit = next((o for o in options if o.get("focused")), None)
            if hit is not None:
                return hit
            options = next((o.get("options") or [] for o in options if o.get("type") in (1, 2)), [])
        return None

    @property
    def response_latency(self) -> float | None:
        """Seconds between dispatching the interaction and receiving the callback (None if none)."""
        if self.responded_at is None:
            return None
        return self.responded_at - self.dispatched_at

    @property
    def deferred(self) -> bool:
        return self.response_type in (CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE)

    @property
    def ephemeral(self) -> bool:
        """Whether the user-visible reply is ephemeral.

        Decided by the callback's ``data.flags`` (which also covers ``defer(ephemeral=True)``);
        if the callback carried no flags (e.g. a deferred update), by the first followup.
        """
        if self.responses:
            data = self.responses[0].get("data") or {}
            if "flags" in data:
                return bool(int(data["flags"] or 0) & FLAG_EPHEMERAL)
        if self._followups:
            return bool(int(self._followups[0].get("flags", 0)) & FLAG_EPHEMERAL)
        return False

    async def wait_response(self, timeout: float = 5) -> dict[str, Any]:  # noqa: ASYNC109 - part of the agreed test API
        """Wait for the first callback body."""
        await self._fake.wait_for(
            lambda: self.responses, timeout=timeout, message=f"no callback for interaction {self.id}"
        )
        return self.responses[0]

    async def wait_followup(self, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:  # noqa: ASYNC109 - part of the agreed test API
        """Wait until at least ``count`` followup messages exist; returns them all."""
        await self._fake.wait_for(
            lambda: len(self._followups) >= count,
            timeout=timeout,
            message=f"interaction {self.id}: expected {count} followup(s)",
        )
        return self.followups
