from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

import bot.app
from loopback.rig import loopback_rig


@pytest_asyncio.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake Discord and a fake OpenAI on loopback, and a database file; the test starts the bot."""
    # On ready the bot runs a full garbage collection and freezes what survives (a production tuning that
    # bench/ack.py measures). In this process that walks every earlier test's leftovers too: ~0.1 s a
    # start, a tenth of the suite. Bot processes (`rig.start_process()`) still do it.
    monkeypatch.setattr(bot.app, "freeze_startup_heap", lambda: None)
    async with loopback_rig(tmp_path, monkeypatch=monkeypatch) as harness:
        yield harness
