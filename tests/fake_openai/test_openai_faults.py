"""The fault builders of ``loopback.openai_faults``, scripted into the fake: the SDK raises the same
exceptions, with the same codes and bodies, and retries exactly what it retries against the real API.
"""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

from loopback.fake_openai import FakeOpenAI
from loopback.openai_faults import (
    Fault,
    content_policy_violation,
    drop,
    hang,
    insufficient_quota,
    model_not_found,
    moderation_blocked,
    permission_denied,
    rate_limited,
    server_error,
    unauthorized,
)

pytestmark = pytest.mark.asyncio

USER = [{"role": "user", "content": "a lighthouse at dusk"}]


async def test_rate_limit_with_retry_after_is_retried_by_the_sdk(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_chat(rate_limited(retry_after=1.5), "ok")

    started = time.monotonic()
    completion = await client.chat.completions.create(model="m", messages=USER)
    elapsed = time.monotonic() - started

    assert completion.choices[0].message.content == "ok"
    assert fake.calls("/chat/completions") == 2
    # The SDK slept the server's 1.5 s, longer than its own first backoff (0.375-0.5 s with jitter);
    # only a lower bound is asserted, since a loaded machine can only make the gap longer.
    gap = fake.chat_requests[1].received_at - fake.chat_requests[0].received_at
    assert gap >= 1.45
    assert elapsed >= 0.1
    assert [r.headers["x-stainless-retry-count"] for r in fake.chat_requests] == ["0", "1"]
    assert fake.chat_requests[0].json == fake.chat_requests[1].json  # the same request, re-sent


async def test_rate_limit_without_retries_raises_with_code_and_body(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI
) -> None:
    fake.script_images(rate_limited(retry_after=2))

    with pytest.raises(openai.RateLimitError) as caught:
        await no_retry.images.generate(model="gpt-image-2", prompt="x")

    error = caught.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert isinstance(error.body, dict)
    assert error.body["code"] == "rate_limit_exceeded"
    assert "Rate limit reached" in error.message
    assert error.response.headers["retry-after"] == "2"
    assert error.response.headers["retry-after-ms"] == "2000"
    assert error.request_id is not None
    assert fake.calls("/images/generations") == 1


async def test_insufficient_quota(fake: FakeOpenAI, no_retry: openai.AsyncOpenAI) -> None:
    fake.script_chat(insufficient_quota())
    with pytest.raises(openai.RateLimitError) as caught:
        await no_retry.chat.completions.create(model="m", messages=USER)
    assert caught.value.code == "insufficient_quota"
    assert caught.value.type == "insufficient_quota"


async def test_server_errors_are_retried_until_the_budget_runs_out(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_chat(server_error(503, retry_after=0.05), server_error(502, retry_after=0.05), "recovered")
    completion = await client.chat.completions.create(model="m", messages=USER)
    assert completion.choices[0].message.content == "recovered"
    assert fake.calls("/chat/completions") == 3

    fake.script_chat(*(server_error(500, retry_after=0.05) for _ in range(3)))
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="m", messages=USER)
    assert caught.value.status_code == 500
    assert fake.calls("/chat/completions") == 6  # 1 try + max_retries=2


async def test_moderation_blocked_is_not_retried(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script_images(moderation_blocked(), moderation_blocked(), moderation_blocked())
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.generate(model="gpt-image-2", prompt="something forbidden")
    assert caught.value.code == "moderation_blocked"
    assert fake.calls("/images/generations") == 1
    assert fake.pending()["images"] == 2


async def test_content_policy_violation(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script_images(content_policy_violation())
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.generate(model="dall-e-3", prompt="something forbidden")
    assert caught.value.code == "content_policy_violation"


async def test_model_not_found(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script_chat(model_not_found("gpt-nope"))
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="gpt-nope", messages=USER)
    assert caught.value.code == "model_not_found"
    assert "gpt-nope" in caught.value.message


async def test_auth_faults(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script_chat(unauthorized(), permission_denied())
    with pytest.raises(openai.AuthenticationError) as wrong_key:
        await client.chat.completions.create(model="m", messages=USER)
    with pytest.raises(openai.PermissionDeniedError):
        await client.chat.completions.create(model="m", messages=USER)
    assert wrong_key.value.code == "invalid_api_key"


async def test_hang_times_out_quickly(fake: FakeOpenAI, no_retry: openai.AsyncOpenAI) -> None:
    fake.script_chat(hang())
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await no_retry.chat.completions.create(model="m", messages=USER, timeout=0.5)
    assert time.monotonic() - started < 2.0
    # The client hung up, which cancels the hanging handler on the server side.
    await asyncio.sleep(0.05)
    assert fake.in_flight == 0


async def test_dropped_connection_is_retried_then_raises(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_chat(drop(), "after the drop")
    completion = await client.chat.completions.create(model="m", messages=USER)
    assert completion.choices[0].message.content == "after the drop"
    assert fake.calls("/chat/completions") == 2

    fake.script_chat(drop())
    with pytest.raises(openai.APIConnectionError):
        await client.with_options(max_retries=0).chat.completions.create(model="m", messages=USER)


async def test_custom_fault_with_non_json_body(fake: FakeOpenAI, no_retry: openai.AsyncOpenAI) -> None:
    fake.script_chat(Fault(status=502, body="<html>Bad Gateway</html>", headers={"x-custom": "1"}))
    with pytest.raises(openai.InternalServerError) as caught:
        await no_retry.chat.completions.create(model="m", messages=USER)
    assert caught.value.status_code == 502
    assert caught.value.body == "<html>Bad Gateway</html>"
    assert caught.value.response.headers["x-custom"] == "1"
