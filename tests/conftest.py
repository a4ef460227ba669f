from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from loopback.fake_discord import FakeDiscord
from loopback.fake_openai import FakeOpenAI
from loopback.rig import DISCORD_TOKEN, Rig


@pytest_asyncio.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake Discord and a fake OpenAI on loopback, and a database file; the test starts the bot."""
    discord_server = FakeDiscord(token=DISCORD_TOKEN)
    await discord_server.start()
    discord_server.patch(monkeypatch)
    openai_server = FakeOpenAI()
    await openai_server.start()
    harness = Rig(discord=discord_server, openai=openai_server, database=tmp_path / "mural.db")
    try:
        yield harness
    finally:
        await harness.stop_bot()
        await openai_server.close()
        await discord_server.close()
    # A crash inside the fake would otherwise look like a bot bug.
    assert discord_server.internal_errors == []
    assert openai_server.handler_errors == []
