"""The fake's ``/moderations``, through the real ``openai.AsyncOpenAI`` client: the answer's shape, the
default verdicts on texts and pictures, scripting, faults, an unavailable endpoint and refused inputs.
"""

from __future__ import annotations

import base64
import json

import openai
import pytest
from openai.types import ModerationImageURLInputParam, ModerationMultiModalInputParam

from loopback.fake_openai import (
    MODERATION_CATEGORIES,
    MODERATION_IMAGE_CATEGORIES,
    FakeOpenAI,
    Fault,
    ImageReply,
    ModerationReply,
    hang,
    make_png,
    rate_limited,
    server_error,
)

pytestmark = pytest.mark.asyncio


RED, MAGENTA = (255, 0, 0), (255, 0, 255)


def png_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def image_part(png: bytes) -> ModerationImageURLInputParam:
    return {"type": "image_url", "image_url": {"url": png_url(png)}}


async def test_moderation_text_answer_has_every_category_in_the_real_shape(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    raw = await client.moderations.with_raw_response.create(
        model="omni-moderation-latest", input="a lighthouse at dusk"
    )
    response = raw.parse()
    body = json.loads(raw.text)

    assert response.id.startswith("modr-") and len(response.id) == len("modr-") + 32
    assert response.model == "omni-moderation-latest"
    [result] = response.results
    assert result.flagged is False
    assert not any(result.categories.model_dump().values())
    [answer] = body["results"]
    assert set(answer) == {"flagged", "categories", "category_scores", "category_applied_input_types"}
    for key in ("categories", "category_scores", "category_applied_input_types"):
        assert list(answer[key]) == list(MODERATION_CATEGORIES)
    assert all(0 < score < 0.01 for score in answer["category_scores"].values())
    assert all(types == ["text"] for types in answer["category_applied_input_types"].values())
    assert fake.moderation_inputs() == ["a lighthouse at dusk"]
    assert fake.moderation_requests[0].json == {
        "model": "omni-moderation-latest",
        "input": "a lighthouse at dusk",
    }

    # No model: the SDK sends none and the answer names the default one.
    response = await client.moderations.create(input="hello")
    assert "model" not in fake.moderation_requests[-1].json
    assert response.model == "omni-moderation-latest"


async def test_moderation_text_marker_flags_that_category(client: openai.AsyncOpenAI) -> None:
    response = await client.moderations.create(input="a duel, FLAG:violence/graphic, at dawn")
    [result] = response.results
    assert result.flagged is True
    assert result.categories.violence_graphic is True
    assert result.categories.violence is False  # only the named category
    assert result.category_scores.violence_graphic == 0.9
    assert result.category_scores.violence < 0.01

    response = await client.moderations.create(input="FLAG:self-harm/intent")
    assert response.results[0].categories.self_harm_intent is True

    response = await client.moderations.create(input="FLAG:nonsense and flag:sexual (lower case)")
    assert response.results[0].flagged is False


async def test_moderation_list_of_strings_answers_one_result_each(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    texts = ["a calm sea", "FLAG:harassment you fool", "FLAG:illicit how to pick a lock"]
    response = await client.moderations.create(model="omni-moderation-latest", input=texts)

    assert [r.flagged for r in response.results] == [False, True, True]
    assert response.results[1].categories.harassment is True
    assert response.results[1].categories.illicit is False
    assert response.results[2].categories.illicit is True
    assert fake.moderation_inputs() == texts
    assert [i.index for i in fake.moderation_requests[0].moderation_items] == [0, 1, 2]
    assert len(fake.moderation_requests) == 1


async def test_moderation_image_marker_colour_flags_and_parts_give_one_result(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    red = make_png(16, 16, RED)
    parts: list[ModerationMultiModalInputParam] = [{"type": "text", "text": "my picture"}, image_part(red)]
    response = await client.moderations.create(model="omni-moderation-latest", input=parts)

    [result] = response.results  # text and image parts are classified together
    assert result.flagged is True
    assert result.categories.sexual is True
    assert [k for k, v in result.categories.model_dump(by_alias=True).items() if v] == ["sexual"]
    applied = result.category_applied_input_types.model_dump(by_alias=True)
    assert applied == {
        c: ["text", "image"] if c in MODERATION_IMAGE_CATEGORIES else ["text"] for c in applied
    }
    assert fake.moderation_inputs() == ["my picture", red]
    items = fake.moderation_requests[-1].moderation_items
    assert [(i.kind, i.media_type) for i in items] == [("text", None), ("image", "image/png")]

    # Image only: the text-only categories do not apply (empty list, score 0), as in the guide's example.
    response = await client.moderations.create(input=[image_part(make_png(8, 8, MAGENTA))])
    [result] = response.results
    assert result.categories.violence is True and result.categories.sexual is False
    applied = result.category_applied_input_types.model_dump(by_alias=True)
    assert applied["harassment"] == [] and applied["sexual/minors"] == []
    assert applied["violence"] == ["image"]
    assert result.category_scores.harassment == 0.0

    # Any other colour is clean; a remote URL is accepted but never fetched (nor flagged).
    response = await client.moderations.create(input=[image_part(make_png(8, 8, (254, 0, 0)))])
    assert response.results[0].flagged is False
    response = await client.moderations.create(
        input=[{"type": "image_url", "image_url": {"url": "https://example.com/red.png"}}]
    )
    assert response.results[0].flagged is False
    with pytest.raises(ValueError, match="not a base64 data URL"):
        fake.moderation_inputs()

    # Markers are configurable, for image-capable categories only (harassment cannot come from a picture).
    fake.moderation_image_markers = {(0, 0, 255): "self-harm", (0, 255, 0): "harassment"}
    blue = await client.moderations.create(input=[image_part(make_png(4, 4, (0, 0, 255)))])
    green = await client.moderations.create(input=[image_part(make_png(4, 4, (0, 255, 0)))])
    assert blue.results[0].categories.self_harm is True
    assert green.results[0].flagged is False


async def test_scripted_moderation_replies_then_the_default_resumes(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_moderations(
        ModerationReply(
            flagged_categories={"harassment", "harassment/threatening"},
            scores={"harassment": 0.42},
            model="omni-moderation-2024-09-26",
        ),
        ModerationReply(),  # clean, whatever the text says
    )

    first = await client.moderations.create(input=["harmless", "also harmless"])
    second = await client.moderations.create(input="FLAG:hate")
    third = await client.moderations.create(input="FLAG:hate")

    assert first.model == "omni-moderation-2024-09-26"
    assert len(first.results) == 2  # one verdict, given to every result
    for result in first.results:
        assert result.flagged is True
        assert result.categories.harassment is True and result.categories.harassment_threatening is True
        assert result.category_scores.harassment == 0.42
        assert result.category_scores.harassment_threatening == 0.9
    assert second.results[0].flagged is False
    assert third.results[0].categories.hate is True
    assert fake.pending()["moderations"] == 0

    fake.moderation_handler = lambda body: ModerationReply("illicit") if "shoplift" in body["input"] else None
    assert (await client.moderations.create(input="how to shoplift")).results[0].categories.illicit is True
    assert (await client.moderations.create(input="how to bake")).results[0].flagged is False

    with pytest.raises(ValueError, match="unknown moderation categories"):
        ModerationReply(flagged_categories={"violent"})
    with pytest.raises(TypeError):
        fake.script_moderations(ImageReply())  # type: ignore[arg-type]


async def test_moderations_unavailable_answer_the_unknown_route_404(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script_moderations(ModerationReply("sexual"))
    fake.moderations_available = False

    with pytest.raises(openai.NotFoundError) as caught:
        await client.moderations.create(model="omni-moderation-latest", input="hello")
    with pytest.raises(openai.NotFoundError) as unknown:
        await client.post("/no/such/route", cast_to=object, body={})

    assert caught.value.status_code == 404
    assert caught.value.body == {
        "message": "Invalid URL (POST /v1/moderations)",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert isinstance(unknown.value.body, dict)
    assert unknown.value.body["message"] == "Invalid URL (POST /v1/no/such/route)"
    assert unknown.value.body.keys() == {"message", "type", "param", "code"}
    assert fake.calls("/moderations") == 1  # recorded, and a 404 is not retried
    assert fake.pending()["moderations"] == 1  # the script is left for when the route comes back

    fake.moderations_available = True
    response = await client.moderations.create(input="hello")
    assert response.results[0].categories.sexual is True


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (server_error(500), openai.InternalServerError),
        (rate_limited(None, model="omni-moderation-latest"), openai.RateLimitError),
        (hang(), openai.APITimeoutError),
    ],
)
async def test_moderation_faults_through_scripting(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI, fault: Fault, error: type[Exception]
) -> None:
    fake.script_moderations(fault)
    with pytest.raises(error):
        await no_retry.moderations.create(input="hello", timeout=0.5)
    assert fake.calls("/moderations") == 1


async def test_moderation_500_is_retried_by_the_sdk(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script_moderations(server_error(500, retry_after=0.05), ModerationReply("violence"))
    response = await client.moderations.create(input="hello")
    assert response.results[0].categories.violence is True
    assert fake.calls("/moderations") == 2

    fake.script_moderations(*(server_error(500, retry_after=0.05) for _ in range(3)))
    with pytest.raises(openai.InternalServerError) as caught:
        await client.moderations.create(input="hello")
    assert caught.value.status_code == 500
    assert fake.calls("/moderations") == 5


async def test_moderation_rejects_what_the_api_rejects(
    fake: FakeOpenAI, no_retry: openai.AsyncOpenAI
) -> None:
    two_images = [image_part(make_png(2, 2, RED)), image_part(make_png(2, 2, MAGENTA))]
    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.moderations.create(input=two_images)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["message"] == "Number of images (2) exceeds maximum of 1"
    assert (caught.value.code, caught.value.param, caught.value.type) == (
        "too_many_images",
        "input",
        "invalid_request_error",
    )

    corrupt: list[ModerationMultiModalInputParam] = [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,bm90IGEgcG5n"}}
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.moderations.create(input=corrupt)
    assert caught.value.code == "invalid_image_format"

    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.moderations.create(input=[])
    assert caught.value.code == "empty_array"

    with pytest.raises(openai.BadRequestError) as caught:
        await no_retry.post("/moderations", cast_to=object, body={"model": "omni-moderation-latest"})
    assert (caught.value.code, caught.value.param) == ("missing_required_parameter", "input")
    assert fake.calls("/moderations") == 4
