"""The set-up check's view of a server (`python -m bot check`): is the key accepted, does a model exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import openai
from openai import AsyncOpenAI

from bot.core.ai.retries import error_code

ProbeStatus = Literal["ok", "missing", "key-refused", "unreachable", "error"]


@dataclass(frozen=True)
class Probe:
    """What an OpenAI-compatible server answered the set-up check, without the openai types."""

    status: ProbeStatus
    detail: str = ""
    model_ids: frozenset[str] = frozenset()


def _probe_failure(exc: openai.OpenAIError) -> Probe:
    if isinstance(exc, openai.APITimeoutError):
        return Probe("unreachable", "timed out")
    if isinstance(exc, openai.APIConnectionError):
        return Probe("unreachable", "cannot connect")
    if isinstance(exc, openai.APIStatusError):
        code = error_code(exc)
        detail = f"HTTP {exc.status_code}" + (f", {code}" if code else "")
        if exc.status_code in (401, 403):
            return Probe("key-refused", detail)
        if exc.status_code == 404:
            return Probe("missing", detail)
        return Probe("error", detail)
    return Probe("error", type(exc).__name__)


class ModelCatalogue:
    """One server's view for the set-up check: is the key accepted (GET /models), does a model exist
    (GET /models/{id}). Separate from `OpenAIService`: a check must not retry for minutes or count usage."""

    def __init__(self, *, api_key: str, base_url: str | None, timeout: float = 15.0) -> None:
        self._client = AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    async def close(self) -> None:
        await self._client.close()

    async def list_models(self) -> Probe:
        try:
            ids = frozenset([model.id async for model in self._client.models.list()])
        except openai.OpenAIError as exc:
            return _probe_failure(exc)
        return Probe("ok", f"{len(ids)} models", ids)

    async def lookup(self, model: str, *, listed: frozenset[str] = frozenset()) -> Probe:
        """Whether `model` exists; `listed` (from `list_models`) settles it on servers without the route."""
        try:
            found = await self._client.models.retrieve(model)
        except openai.OpenAIError as exc:
            failure = _probe_failure(exc)
            if failure.status in ("missing", "error") and model in listed:
                return Probe("ok", "listed by the server")
            return failure
        return Probe("ok", f"owned by {found.owned_by}" if found.owned_by else "")
