"""The fake's REST API v10, one module per resource, and the table that routes to them.

Bot routes need ``Authorization: Bot <token>`` (401); webhook and interaction routes don't.  The
bot's calls to a group DM or to a server it is not in -> 403/50001 Missing Access; no permission
checks in a DM with the bot.  Anything not in the table is a recorded 404 ``{"message", "code": 0}``.
"""

from __future__ import annotations

import re

from loopback.fake_discord.rest.application import ApplicationRoutes
from loopback.fake_discord.rest.channels import ChannelRoutes
from loopback.fake_discord.rest.commands import CommandRoutes
from loopback.fake_discord.rest.guilds import GuildRoutes
from loopback.fake_discord.rest.interactions import InteractionRoutes
from loopback.fake_discord.rest.messages import MessageRoutes
from loopback.fake_discord.rest.threads import ThreadRoutes
from loopback.fake_discord.server import Handler, Route


class RestRoutes(
    ApplicationRoutes,
    CommandRoutes,
    GuildRoutes,
    ChannelRoutes,
    ThreadRoutes,
    MessageRoutes,
    InteractionRoutes,
):
    """Every REST route of :class:`~loopback.fake_discord.FakeDiscord`, and their table."""

    def _register_routes(self) -> None:
        snow = r"(?P<{}>\d+)"
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", r"/users/@me", self._get_me, True),
            ("GET", r"/users/" + snow.format("user_id"), self._get_user, True),
            ("GET", r"/gateway", self._get_gateway, False),
            ("GET", r"/gateway/bot", self._get_gateway_bot, True),
            ("GET", r"/oauth2/applications/@me", self._get_application, True),
            ("GET", r"/applications/@me", self._get_application, True),
            ("GET", r"/applications/" + snow.format("app_id") + r"/commands", self._get_commands, True),
            ("PUT", r"/applications/" + snow.format("app_id") + r"/commands", self._put_commands, True),
            (
                "GET",
                r"/applications/"
                + snow.format("app_id")
                + r"/guilds/"
                + snow.format("guild_id")
                + r"/commands",
                self._get_commands,
                True,
            ),
            (
                "PUT",
                r"/applications/"
                + snow.format("app_id")
                + r"/guilds/"
                + snow.format("guild_id")
                + r"/commands",
                self._put_commands,
                True,
            ),
            ("GET", r"/guilds/" + snow.format("guild_id"), self._get_guild, True),
            ("GET", r"/guilds/" + snow.format("guild_id") + r"/channels", self._get_guild_channels, True),
            (
                "GET",
                r"/guilds/" + snow.format("guild_id") + r"/members/" + snow.format("user_id"),
                self._get_guild_member,
                True,
            ),
            (
                "GET",
                r"/guilds/" + snow.format("guild_id") + r"/threads/active",
                self._get_active_threads,
                True,
            ),
            ("GET", r"/channels/" + snow.format("channel_id"), self._get_channel, True),
            ("PATCH", r"/channels/" + snow.format("channel_id"), self._patch_channel, True),
            ("GET", r"/channels/" + snow.format("channel_id") + r"/messages", self._get_messages, True),
            ("POST", r"/channels/" + snow.format("channel_id") + r"/messages", self._post_message, True),
            (
                "GET",
                r"/channels/" + snow.format("channel_id") + r"/messages/" + snow.format("message_id"),
                self._get_message,
                True,
            ),
            (
                "PATCH",
                r"/channels/" + snow.format("channel_id") + r"/messages/" + snow.format("message_id"),
                self._patch_message,
                True,
            ),
            (
                "DELETE",
                r"/channels/" + snow.format("channel_id") + r"/messages/" + snow.format("message_id"),
                self._delete_message,
                True,
            ),
            (
                "POST",
                r"/channels/"
                + snow.format("channel_id")
                + r"/messages/"
                + snow.format("message_id")
                + r"/threads",
                self._post_thread_from_message,
                True,
            ),
            (
                "PUT",
                r"/channels/"
                + snow.format("channel_id")
                + r"/messages/"
                + snow.format("message_id")
                + r"/reactions/(?P<emoji>[^/]+)/@me",
                self._put_reaction,
                True,
            ),
            ("POST", r"/channels/" + snow.format("channel_id") + r"/threads", self._post_thread, True),
            (
                "GET",
                r"/channels/" + snow.format("channel_id") + r"/threads/archived/public",
                self._get_archived_threads,
                True,
            ),
            ("POST", r"/channels/" + snow.format("channel_id") + r"/typing", self._post_typing, True),
            (
                "GET",
                r"/channels/" + snow.format("channel_id") + r"/thread-members/(?P<user_id>@me|\d+)",
                self._get_thread_member,
                True,
            ),
            (
                "PUT",
                r"/channels/" + snow.format("channel_id") + r"/thread-members/(?P<user_id>@me|\d+)",
                self._put_thread_member,
                True,
            ),
            (
                "POST",
                r"/interactions/" + snow.format("interaction_id") + r"/(?P<token>[^/]+)/callback",
                self._post_callback,
                False,
            ),
            (
                "POST",
                r"/webhooks/" + snow.format("app_id") + r"/(?P<token>[^/]+)",
                self._post_followup,
                False,
            ),
            (
                "GET",
                r"/webhooks/"
                + snow.format("app_id")
                + r"/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._get_webhook_message,
                False,
            ),
            (
                "PATCH",
                r"/webhooks/"
                + snow.format("app_id")
                + r"/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._patch_webhook_message,
                False,
            ),
            (
                "DELETE",
                r"/webhooks/"
                + snow.format("app_id")
                + r"/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._delete_webhook_message,
                False,
            ),
        ]
        self._routes = [Route(m, re.compile(p), h, a) for m, p, h, a in table]
