"""The OpenAI layer against the loopback server: real `AsyncOpenAI`, the bot's retries and error mapping."""

from __future__ import annotations

import pytest
import pytest_asyncio

from bot.core.ai import OpenAIService, RetryPolicy
from bot.core.errors import (
    ChatRefused,
    InvalidRequest,
    Misconfigured,
    OutOfCredit,
    SafetyRejected,
    ServiceBusy,
    ServiceTimeout,
    ServiceUnavailable,
)
from bot.core.images import ImageOptions, ImageService
from loopback.fake_openai import (
    FakeOpenAI,
    ImageReply,
    Reply,
    content_policy_violation,
    hang,
    insufficient_quota,
    model_not_found,
    moderation_blocked,
    permission_denied,
    rate_limited,
    server_error,
    unauthorized,
)
from loopback.rig import unused_port

pytestmark = pytest.mark.asyncio
MESSAGES = [{"role": "user", "content": "a beach"}]
FAST_RETRIES = RetryPolicy(attempts=3, backoff=(0.05, 0.05), longest_wait=5.0)


@pytest_asyncio.fixture
async def fake():
    async with FakeOpenAI() as server:
        yield server


def _service(base_url: str, **kwargs) -> OpenAIService:
    options = dict(
        api_key="sk-test-key-123456",
        base_url=base_url,
        chat_model="gpt-5.4-mini",
        chat_timeout=5,
        image_timeout=5,
        retry=FAST_RETRIES,
    )
    options.update(kwargs)
    return OpenAIService(**options)


@pytest_asyncio.fixture
async def service(fake: FakeOpenAI):
    ai = _service(fake.base_url)
    yield ai
    await ai.close()


async def test_chat_answer_comes_back(fake: FakeOpenAI, service: OpenAIService) -> None:
    fake.script_chat("A quiet beach at dusk.")
    answer = await service.chat(MESSAGES, user_hash="abc")
    assert answer.text == "A quiet beach at dusk."
    assert fake.chat_requests[0].json["model"] == "gpt-5.4-mini"
    assert fake.chat_requests[0].json["safety_identifier"] == "abc"


async def test_rate_limit_is_retried_honouring_retry_after(fake: FakeOpenAI, service: OpenAIService) -> None:
    fake.script_chat(rate_limited(retry_after=0.2), "ok")
    notices = []

    async def on_retry(error, wait):
        notices.append((type(error), wait))

    assert (await service.chat(MESSAGES, user_hash="u", on_retry=on_retry)).text == "ok"
    assert fake.calls("/chat/completions") == 2
    assert notices == [(ServiceBusy, pytest.approx(0.2))]


async def test_persistent_rate_limit_gives_up_after_bounded_attempts(
    fake: FakeOpenAI, service: OpenAIService
) -> None:
    fake.script_chat(*(rate_limited(retry_after=0.05) for _ in range(5)))
    with pytest.raises(ServiceBusy):
        await service.chat(MESSAGES, user_hash="u")
    assert fake.calls("/chat/completions") == FAST_RETRIES.attempts


async def test_insufficient_quota_is_sent_exactly_once(fake: FakeOpenAI, service: OpenAIService) -> None:
    fake.script_images(insufficient_quota(), insufficient_quota())
    with pytest.raises(OutOfCredit) as caught:
        await service.images({"model": "gpt-image-2", "prompt": "x"})
    assert fake.calls("/images/generations") == 1
    assert "admins have been told" in caught.value.user_message


async def test_server_errors_are_retried_then_succeed(fake: FakeOpenAI, service: OpenAIService) -> None:
    fake.script_chat(server_error(502), server_error(503), "recovered")
    assert (await service.chat(MESSAGES, user_hash="u")).text == "recovered"
    assert fake.calls("/chat/completions") == 3


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (moderation_blocked(), SafetyRejected),
        (content_policy_violation(), SafetyRejected),
        (unauthorized(), Misconfigured),
        (permission_denied(), Misconfigured),
        (model_not_found("gpt-image-1"), Misconfigured),
        (server_error(500), ServiceUnavailable),
    ],
)
async def test_image_faults_map_to_bot_errors(fake: FakeOpenAI, service: OpenAIService, fault, error) -> None:
    fake.script_images(fault, fault, fault)
    with pytest.raises(error):
        await service.images({"model": "gpt-image-2", "prompt": "x"})


async def test_safety_refusal_is_not_retried(fake: FakeOpenAI, service: OpenAIService) -> None:
    fake.script_images(moderation_blocked(), moderation_blocked())
    with pytest.raises(SafetyRejected):
        await service.images({"model": "gpt-image-2", "prompt": "x"})
    assert fake.calls("/images/generations") == 1


async def test_chat_safety_refusal(fake: FakeOpenAI, service: OpenAIService) -> None:
    fake.script_chat(Reply(content=None, refusal="I can't help with that."))
    with pytest.raises(ChatRefused):
        await service.chat(MESSAGES, user_hash="u")


async def test_missing_model_names_the_setting(fake: FakeOpenAI, service: OpenAIService) -> None:
    fake.script_images(model_not_found("gpt-image-1"))
    with pytest.raises(Misconfigured) as caught:
        await service.images({"model": "gpt-image-2", "prompt": "x"})
    assert "IMAGE_MODEL" in caught.value.detail
    assert "sk-test" not in caught.value.user_message + caught.value.detail


async def test_hang_times_out(fake: FakeOpenAI) -> None:
    ai = _service(fake.base_url, chat_timeout=0.5)
    fake.script_chat(hang())
    try:
        with pytest.raises(ServiceTimeout):
            await ai.chat(MESSAGES, user_hash="u")
    finally:
        await ai.close()
    assert fake.calls("/chat/completions") == 1


async def test_connection_refused_is_unavailable() -> None:
    ai = _service(f"http://127.0.0.1:{unused_port()}/v1", retry=RetryPolicy(attempts=1))
    try:
        with pytest.raises(ServiceUnavailable) as caught:
            await ai.chat(MESSAGES, user_hash="u")
    finally:
        await ai.close()
    assert "cannot be reached" in caught.value.user_message


async def test_chat_can_live_on_another_server(fake: FakeOpenAI) -> None:
    async with FakeOpenAI() as chat_server:
        ai = _service(fake.base_url, chat_base_url=chat_server.base_url, chat_api_key="ollama")
        try:
            chat_server.script_chat("from the local model")
            assert (await ai.chat(MESSAGES, user_hash="u")).text == "from the local model"
            await ai.images({"model": "gpt-image-2", "prompt": "x"})
        finally:
            await ai.close()
        assert chat_server.calls("/chat/completions") == 1
        assert chat_server.chat_requests[0].headers["authorization"] == "Bearer ollama"
    assert fake.calls("/chat/completions") == 0
    assert fake.calls("/images/generations") == 1


def _images(service: OpenAIService, model: str = "gpt-image-2", quality: str = "medium") -> ImageService:
    return ImageService(service, defaults=ImageOptions(model=model, size="1024x1024", quality=quality))


async def test_image_service_decodes_png_and_prices_it(fake: FakeOpenAI, service: OpenAIService) -> None:
    images = _images(service)
    image = await images.render("a fox", images.options(), requester_id=7)
    (picture,) = image.pictures
    assert picture.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert (picture.extension, picture.mime) == ("png", "image/png")
    assert image.cost_usd is not None and image.cost_usd > 0
    sent = fake.image_requests[0].json
    assert (sent["size"], sent["quality"], sent["output_format"]) == ("1024x1024", "medium", "png")


async def test_image_model_is_chosen_per_call(fake: FakeOpenAI, service: OpenAIService) -> None:
    images = _images(service)
    await images.render("a fox", images.options(model="gpt-image-2.5-flare", quality="xhigh"), requester_id=7)
    sent = fake.image_requests[0].json
    assert (sent["model"], sent["quality"]) == ("gpt-image-2.5-flare", "xhigh")


async def test_image_service_shows_legacy_revised_prompt(fake: FakeOpenAI) -> None:
    ai = _service(fake.base_url)
    try:
        images = _images(ai, model="dall-e-3", quality="high")
        image = await images.render("a fox", images.options(), requester_id=7)
    finally:
        await ai.close()
    assert image.revised_prompt
    assert fake.image_requests[0].json["response_format"] == "b64_json"
    assert fake.image_requests[0].json["quality"] == "hd"
    assert image.cost_usd == pytest.approx(0.08)


async def test_image_service_rejects_a_non_image_answer(fake: FakeOpenAI, service: OpenAIService) -> None:
    fake.script_images(ImageReply(png=b"<html>not an image</html>"))
    images = _images(service, quality="low")
    with pytest.raises(Exception, match="not a picture"):
        await images.render("a fox", images.options(), requester_id=7)


async def test_image_service_refuses_options_the_model_lacks(
    fake: FakeOpenAI, service: OpenAIService
) -> None:
    images = _images(service, quality="low")
    with pytest.raises(InvalidRequest):
        images.options(quality="hd")
    with pytest.raises(InvalidRequest):
        images.options(model="dall-e-3", size="1536x1024")
    assert fake.calls("/images/generations") == 0


async def test_chat_usage_comes_from_the_answer_or_is_estimated(
    fake: FakeOpenAI, service: OpenAIService
) -> None:
    fake.script_chat(
        Reply(content="A fox.", usage={"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43})
    )
    reported = await service.chat(MESSAGES, user_hash="u")
    assert (reported.input_tokens, reported.output_tokens, reported.estimated) == (40, 3, False)
    fake.script_chat(Reply(content="A fox in the snow, at dusk.", omit_usage=True))
    estimated = await service.chat(MESSAGES, user_hash="u")
    assert estimated.estimated and estimated.input_tokens > 0 and estimated.output_tokens > 0
