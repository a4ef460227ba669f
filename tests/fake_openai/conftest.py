"""A fresh fake OpenAI per test, and the real ``openai.AsyncOpenAI`` client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest_asyncio

from loopback.fake_openai import FakeOpenAI


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.close()


@pytest_asyncio.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    api = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test")
    yield api
    await api.close()


@pytest_asyncio.fixture
async def no_retry(client: openai.AsyncOpenAI) -> openai.AsyncOpenAI:
    """Same connection pool, no automatic retries: one scripted fault = one raised exception."""
    return client.with_options(max_retries=0)
