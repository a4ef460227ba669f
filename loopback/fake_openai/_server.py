"""``FakeOpenAI``: the loopback OpenAI server, one route family per base class, its knobs, its start and
stop, and the ``/v1/models`` routes."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from loopback.fake_openai._chat import ChatResult, ChatRoutes
from loopback.fake_openai._edits import MAX_EDIT_IMAGE_BYTES, MAX_EDIT_IMAGES, MAX_MASK_BYTES
from loopback.fake_openai._images import DEFAULT_IMAGE_DIMENSIONS, ImageResult, ImageRoutes
from loopback.fake_openai._moderations import (
    DEFAULT_MODERATION_IMAGE_MARKERS,
    MAX_MODERATION_IMAGES,
    ModerationResult,
    ModerationRoutes,
)
from loopback.fake_openai._recorded import (
    CHAT_PATH,
    EDITS_PATH,
    GENERATIONS_PATH,
    MODERATIONS_PATH,
    RecordedRequest,
)
from loopback.openai_faults import model_not_found

DEFAULT_MODELS = (
    "gpt-5.4-mini",
    "gpt-image-2",
    "gpt-image-2.5-flare",
    "gpt-image-2.5-sunburst",
    "dall-e-3",
    "dall-e-2",
)


class FakeOpenAI(ChatRoutes, ImageRoutes, ModerationRoutes):
    """See the package docstring. One instance = one server on 127.0.0.1, random port."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        image_dimensions: tuple[int, int] | None = DEFAULT_IMAGE_DIMENSIONS,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        vision_models: set[str] | None = None,
    ) -> None:
        super().__init__(latency=latency, api_key=api_key)
        self.models = list(models)
        self.vision_models = vision_models  # None: every chat model accepts image parts
        self.image_dimensions = image_dimensions
        self.max_edit_images = MAX_EDIT_IMAGES
        self.max_edit_image_bytes = MAX_EDIT_IMAGE_BYTES
        self.max_mask_bytes = MAX_MASK_BYTES
        self.moderations_available = True  # False: /moderations answers the unknown-route 404
        self.max_moderation_images = MAX_MODERATION_IMAGES
        self.moderation_image_markers = dict(DEFAULT_MODERATION_IMAGE_MARKERS)
        self.chat_handler = None
        self.image_handler = None
        self.moderation_handler = None
        self._chat_queue: list[ChatResult] = []
        self._image_queue: list[ImageResult] = []
        self._moderation_queue: list[ModerationResult] = []
        self._files: dict[str, bytes] = {}
        self._runner: web.AppRunner | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> FakeOpenAI:
        if self._runner is not None:
            raise RuntimeError("FakeOpenAI is already started")
        self._closing.clear()
        # Room for 16 images of up to 50 MB each, so the size checks below answer, not aiohttp's 413.
        app = web.Application(middlewares=[self._errors_middleware], client_max_size=1024 * 1024 * 1024)
        app.router.add_post(CHAT_PATH, self._chat)
        app.router.add_post(GENERATIONS_PATH, self._generations)
        app.router.add_post(EDITS_PATH, self._edits)
        app.router.add_post(MODERATIONS_PATH, self._moderations)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        app.router.add_route("*", "/v1/{tail:.*}", self._unknown)
        app.router.add_get("/files/{name}", self._serve_file)
        # handler_cancellation: a client that times out and disconnects cancels a hanging handler
        # instead of leaving it running; a short shutdown_timeout keeps close() fast.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        # Bind the socket ourselves: port 0 picks a free port and we can read it back without private API.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        self._closing.set()  # wakes hanging / sleeping handlers so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- scripting -------------------------------------------------------------------------------------

    def pending(self) -> dict[str, int]:
        """Scripted replies not consumed yet -- a test can assert its script was fully used."""
        return {
            "chat": len(self._chat_queue),
            "images": len(self._image_queue),
            "moderations": len(self._moderation_queue),
        }

    def reset(self) -> None:
        self.requests.clear()
        self.handler_errors.clear()
        self._chat_queue.clear()
        self._image_queue.clear()
        self._moderation_queue.clear()
        self.chat_handler = None
        self.image_handler = None
        self.moderation_handler = None
        self.peak_in_flight = self.in_flight

    # ---- models ----------------------------------------------------------------------------------------

    def _model_object(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "system"}

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        async def answer(recorded: RecordedRequest) -> web.StreamResponse:
            return self._json({"object": "list", "data": [self._model_object(m) for m in self.models]})

        return await self._serve(request, answer)

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        async def answer(recorded: RecordedRequest) -> web.StreamResponse:
            model = request.match_info["model"]
            if model not in self.models:
                fault = model_not_found(model)
                return self._json(fault.body, fault.status)
            return self._json(self._model_object(model))

        return await self._serve(request, answer)
