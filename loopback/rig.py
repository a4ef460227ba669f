"""The test rig: the real bot, the loopback Discord, the loopback OpenAI server and a real SQLite file.

A scenario test gets a `Rig`, starts the bot, and then acts as members would (slash commands, thread
messages, button clicks) while asserting on what reached the fake Discord and the fake OpenAI.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.app import MuralBot, build_bot
from bot.config import Settings, settings_from
from bot.core.ai import RetryPolicy
from loopback.fake_discord import FakeDiscord
from loopback.fake_openai import FakeOpenAI

DISCORD_TOKEN = "fake-discord-token.SECRET-123"
OPENAI_KEY = "sk-test-SECRET-openai-key-456"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Retries as the bot makes them, only with short waits so failure tests stay quick.
FAST_RETRIES = RetryPolicy(attempts=3, backoff=(0.05, 0.1), longest_wait=5.0)


@dataclass
class Rig:
    discord: FakeDiscord
    openai: FakeOpenAI
    database: Path
    overrides: dict[str, str] = field(default_factory=dict)
    bot: MuralBot | None = None
    _task: asyncio.Task[None] | None = None

    def settings(self) -> Settings:
        return settings_from(
            {
                "DISCORD_TOKEN": DISCORD_TOKEN,
                "OPENAI_API_KEY": OPENAI_KEY,
                "OPENAI_BASE_URL": self.openai.base_url,
                "DATABASE_PATH": str(self.database),
                "CHAT_TIMEOUT": "5",
                "IMAGE_TIMEOUT": "5",
                **self.overrides,
            }
        )

    async def start_bot(self) -> MuralBot:
        self.bot = await build_bot(self.settings(), retry=FAST_RETRIES, guild_ready_timeout=0.05)
        self._task = asyncio.create_task(self.bot.start(DISCORD_TOKEN), name="bot-under-test")
        bot, task = self.bot, self._task
        await self.discord.wait_for(
            lambda: bot.is_ready() or task.done(), 15, message="the bot to become ready"
        )
        if task.done():
            task.result()
            raise RuntimeError("the bot stopped before it was ready")
        return self.bot

    async def stop_bot(self) -> None:
        if self.bot is not None:
            await self.bot.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 10)
        self.bot, self._task = None, None

    async def restart(self) -> MuralBot:
        await self.stop_bot()
        return await self.start_bot()

    # -- looking at what happened -------------------------------------------------------------

    def bot_messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        bot_id = str(self.discord.bot_user["id"])
        return [m for m in self.discord.messages_in(channel_id) if m["author"]["id"] == bot_id]

    def threads(self) -> list[dict[str, Any]]:
        return [c for c in self.discord.channels.values() if c.get("type") in (10, 11, 12)]

    async def answer_containing(self, interaction: Any, needle: str, within: float = 10) -> dict[str, Any]:
        """The interaction's visible message, once its text contains `needle`."""

        def answer() -> dict[str, Any] | None:
            message = interaction.original
            return message if message and needle in self.discord.text_of(message) else None

        return await self.discord.wait_for(answer, within, message=f"the answer to contain {needle!r}")

    async def settled_thread(self) -> dict[str, Any]:
        """The session thread, once the bot has stored it (it posts its hint after that)."""
        thread = await self.discord.wait_for(lambda: next(iter(self.threads()), None), message="a thread")
        await self.wait_for_bot_message(int(thread["id"]), "Reply here")
        return thread

    async def wait_for_bot_message(self, channel_id: int, needle: str, within: float = 10) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for message in self.bot_messages_in(channel_id):
                if needle in self.discord.text_of(message):
                    return message
            return None

        return await self.discord.wait_for(found, within, message=f"a bot message containing {needle!r}")

    async def wait_for_upload(self, start: int = 0, within: float = 10) -> tuple[Any, Any]:
        """The first request after index `start` that uploaded a file successfully: (request, file)."""

        def upload() -> tuple[Any, Any] | None:
            for request in self.discord.requests[start:]:
                if request.files and 200 <= request.status < 300:
                    return request, request.files[0]
            return None

        return await self.discord.wait_for(upload, within, message="an uploaded file")


def custom_ids(message: dict[str, Any]) -> list[str]:
    """Every component custom_id on a message, in order."""
    found: list[str] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "custom_id" in item:
                found.append(item["custom_id"])
            walk(item.get("components", []))

    walk(message.get("components", []))
    return found


def button(message: dict[str, Any], action: str) -> str:
    """The custom_id of the message's `mural:<action>:…` button."""
    return next(cid for cid in custom_ids(message) if cid.startswith(f"mural:{action}:"))


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
