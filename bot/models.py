"""The records Mural keeps: what the store returns and the core works with. No behaviour, no Discord."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Session:
    id: int
    guild_id: int | None
    channel_id: int
    thread_id: int | None
    owner_id: int
    origin: str
    idea: str
    target: str
    style: str | None
    head_version: int


@dataclass(frozen=True)
class Version:
    id: int
    session_id: int
    number: int
    parent: int | None
    prompt: str
    instruction: str | None
    author_id: int
    message_id: int | None


@dataclass(frozen=True)
class Refinement:
    id: int
    session_id: int
    author_id: int
    channel_id: int
    instruction: str
    status: str
    version: int | None


@dataclass(frozen=True)
class Render:
    id: int
    session_id: int
    version: int
    requester_id: int
    channel_id: int
    status: str
    model: str
    size: str
    quality: str
    revised_prompt: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    message_id: int | None
    error_code: str | None
    error: str | None
