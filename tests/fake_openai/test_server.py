"""The fake OpenAI's shared machinery, through the real ``openai.AsyncOpenAI`` client: what it records,
the bearer-token check, ``/models`` and unknown routes, latency and concurrency, waiting for calls, reset.
"""

from __future__ import annotations

import asyncio
import socket
import time

import openai
import pytest

from loopback.fake_openai import FakeOpenAI

pytestmark = pytest.mark.asyncio

USER = [{"role": "user", "content": "a lighthouse at dusk"}]


async def test_requests_are_recorded_with_json_body_and_headers(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    await client.chat.completions.create(model="gpt-5.4-mini", messages=USER, temperature=0.2)

    [recorded] = fake.requests
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.json == {"model": "gpt-5.4-mini", "messages": USER, "temperature": 0.2}
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert recorded.model == "gpt-5.4-mini"
    assert fake.chat_requests == [recorded]
    assert fake.image_requests == []
    assert fake.calls("/chat/completions") == fake.calls("/v1/chat/completions") == 1


async def test_missing_authorization_header_is_a_401(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        await client.chat.completions.create(
            model="m", messages=USER, extra_headers={"Authorization": openai.omit}
        )
    assert "didn't provide an API key" in caught.value.message
    assert "authorization" not in fake.requests[0].headers  # recorded even though rejected


async def test_exact_api_key_can_be_required(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.api_key = "sk-other"
    with pytest.raises(openai.AuthenticationError) as caught:
        await client.models.list()
    assert caught.value.code == "invalid_api_key"


async def test_a_model_is_looked_up_like_the_api_does(fake: FakeOpenAI, no_retry: openai.AsyncOpenAI) -> None:
    """GET /models/{id}: the model object, or 404 model_not_found; the list follows `fake.models`."""
    found = await no_retry.models.retrieve("gpt-image-2")
    assert (found.id, found.object, found.owned_by) == ("gpt-image-2", "model", "system")
    assert isinstance(found.created, int)
    with pytest.raises(openai.NotFoundError) as missing:
        await no_retry.models.retrieve("gpt-image-1")
    assert missing.value.code == "model_not_found" and missing.value.type == "invalid_request_error"
    assert "`gpt-image-1` does not exist" in missing.value.message
    fake.models.remove("gpt-image-2")
    assert "gpt-image-2" not in [model.id async for model in no_retry.models.list()]
    fake.api_key = "sk-another"
    with pytest.raises(openai.AuthenticationError) as refused:
        await no_retry.models.retrieve("gpt-5.4-mini")
    assert refused.value.code == "invalid_api_key"


async def test_models_list_and_unknown_route(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    models = [model.id async for model in client.models.list()]
    assert models == fake.models
    assert "gpt-image-2" in models
    with pytest.raises(openai.NotFoundError) as caught:
        await client.post("/no/such/route", cast_to=object, body={})
    assert "Invalid URL (POST /v1/no/such/route)" in caught.value.message


async def test_latency_is_added_to_every_answer(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.latency = 0.3
    started = time.monotonic()
    await client.chat.completions.create(model="m", messages=USER)
    assert time.monotonic() - started >= 0.3


async def test_concurrent_requests_are_answered_in_parallel(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.latency = 0.3
    started = time.monotonic()
    results = await asyncio.gather(
        *(client.images.generate(model="gpt-image-2", prompt=f"picture {i}") for i in range(3))
    )
    assert time.monotonic() - started < 0.8  # not 3 x 0.3 s one after the other
    assert len(results) == 3
    assert fake.peak_in_flight == 3
    assert fake.in_flight == 0


async def test_wait_for_calls_sees_a_background_request(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.latency = 0.2
    task = asyncio.create_task(client.chat.completions.create(model="m", messages=USER))
    await fake.wait_for_calls("/chat/completions", 1, wait_s=2.0)
    assert fake.calls("/chat/completions") == 1
    assert not task.done()  # the request arrived; its answer is still being delayed
    await task
    with pytest.raises(TimeoutError):
        await fake.wait_for_calls("/chat/completions", 2, wait_s=0.1)


async def test_reset_forgets_requests_and_script(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script_chat("never used")
    await client.models.list()
    fake.reset()
    assert fake.requests == []
    assert fake.pending() == {"chat": 0, "images": 0, "moderations": 0}
    with pytest.raises(TypeError):
        fake.script_images("not an ImageReply")  # type: ignore[arg-type]


async def test_server_not_listening_is_a_fast_connection_error() -> None:
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0)
    try:
        started = time.monotonic()
        with pytest.raises(openai.APIConnectionError) as caught:
            await api.chat.completions.create(model="m", messages=USER)
        assert time.monotonic() - started < 2.0
        assert not isinstance(caught.value, openai.APITimeoutError)
    finally:
        await api.close()
