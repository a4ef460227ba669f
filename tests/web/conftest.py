"""One Chromium per test module (starting one costs about a second), a fresh context per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from tests.web.browser import launch_arguments, require_browser


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium() -> AsyncIterator[Any]:
    path = require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path, args=launch_arguments())
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def browser_context(chromium: Any) -> AsyncIterator[Any]:
    """A private window that may use the clipboard (granted as a member who clicks Copy would)."""
    context = await chromium.new_context(permissions=["clipboard-read", "clipboard-write"])
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        await context.close()
