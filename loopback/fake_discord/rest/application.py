"""REST: who the bot is, where the gateway is, the application.

``GET /users/@me``, ``/users/{id}``, ``/gateway``, ``/gateway/bot``, ``/oauth2/applications/@me``
(the application's flags carry bit 19 only when the MESSAGE_CONTENT intent is allowed).
"""

from __future__ import annotations

from aiohttp import web

from loopback.fake_discord.server import RecordedRequest
from loopback.fake_discord.wire import unknown


class ApplicationRoutes:
    """Identity routes of :class:`~loopback.fake_discord.FakeDiscord`."""

    async def _get_me(self, req: RecordedRequest) -> web.Response:
        return self._json(
            {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"}
        )

    async def _get_user(self, req: RecordedRequest, user_id: str) -> web.Response:
        user = self.users.get(int(user_id))
        if user is None:
            raise unknown("User", 10013)
        return self._json(user)

    async def _get_gateway(self, req: RecordedRequest) -> web.Response:
        return self._json({"url": self.ws_url})

    async def _get_gateway_bot(self, req: RecordedRequest) -> web.Response:
        return self._json(
            {
                "url": self.ws_url,
                "shards": self.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14400000,
                    "max_concurrency": self.max_concurrency,
                },
            }
        )

    async def _get_application(self, req: RecordedRequest) -> web.Response:
        return self._json(
            {
                "id": str(self.application_id),
                "name": "Mural",
                "icon": None,
                "description": "Mural test application",
                "summary": "",
                "verify_key": "0" * 64,
                "flags": self._application_flags(),
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": self.owner_user,
                "team": None,
                "bot": self.bot_user,
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "rpc_origins": [],
                "tags": [],
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            }
        )
