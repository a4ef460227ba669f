"""Pictures from the image API: generated, or edited from input pictures; streamed with previews when asked."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast

from openai import AsyncOpenAI
from openai.types import (
    ImageEditCompletedEvent,
    ImageEditPartialImageEvent,
    ImageGenCompletedEvent,
    ImageGenPartialImageEvent,
)

from bot.core.ai.retries import Retrying
from bot.core.ai.values import ImageAnswer, ImageUsage, InputImage, PreviewCallback, RetryNotice
from bot.core.errors import BadAnswer


def _image_usage(usage: Any) -> ImageUsage | None:
    if usage is None:
        return None
    details = getattr(usage, "input_tokens_details", None)
    return ImageUsage(
        text_input=details.text_tokens if details else usage.input_tokens,
        image_input=details.image_tokens if details else 0,
        output=usage.output_tokens,
    )


class ImageCalls:
    def __init__(self, client: AsyncOpenAI, retrying: Retrying) -> None:
        self._client = client
        self._retrying = retrying

    async def images(
        self,
        request: dict[str, Any],
        *,
        inputs: Sequence[InputImage] = (),
        partial_images: int = 0,
        on_preview: PreviewCallback | None = None,
        on_retry: RetryNotice | None = None,
    ) -> ImageAnswer:
        """Generate (or, with `inputs`, edit) pictures; with `partial_images`, stream previews as they form."""
        files = [(image.filename, image.data, image.mime) for image in inputs]

        async def call() -> ImageAnswer:
            if partial_images and on_preview is not None:
                return await self._streamed(request, files, partial_images, on_preview)
            if files:
                response = await self._client.images.edit(image=files, **request)
            else:
                response = await self._client.images.generate(**request)
            data = response.data or []
            return ImageAnswer(
                images_b64=[item.b64_json or "" for item in data],
                revised_prompts=[getattr(item, "revised_prompt", None) or None for item in data],
                usage=_image_usage(response.usage),
            )

        return await self._retrying.run(
            call, service="image", model=request["model"], setting="IMAGE_MODEL", on_retry=on_retry
        )

    async def _streamed(
        self,
        request: dict[str, Any],
        files: list[tuple[str, bytes, str]],
        partial_images: int,
        on_preview: PreviewCallback,
    ) -> ImageAnswer:
        if files:
            stream = await self._client.images.edit(
                image=files, stream=True, partial_images=partial_images, **request
            )
        else:
            stream = await self._client.images.generate(stream=True, partial_images=partial_images, **request)
        # Closed whichever way this ends, so no half-read response (nor its async generator, which the
        # garbage collector would otherwise finalize on whatever thread it runs) outlives the call.
        async with stream, contextlib.aclosing(cast(AsyncGenerator[Any, None], aiter(stream))) as events:
            async for event in events:
                if isinstance(event, ImageGenPartialImageEvent | ImageEditPartialImageEvent):
                    await on_preview(base64.b64decode(event.b64_json))
                elif isinstance(event, ImageGenCompletedEvent | ImageEditCompletedEvent):
                    return ImageAnswer([event.b64_json], [None], _image_usage(getattr(event, "usage", None)))
        raise BadAnswer("image stream ended without a picture")
