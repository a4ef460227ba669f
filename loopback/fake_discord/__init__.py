"""A loopback fake of Discord's gateway and REST API v10 for driving an unmodified discord.py bot.

Why this exists: Mural's behaviour lives in the conversation between discord.py and Discord (slash
commands, deferrals, followups with files, threads, buttons, modals, reconnects).  Mocking discord.py
internals would test our mocks; instead this package runs a small aiohttp server on 127.0.0.1 that
speaks enough of the real wire protocol that a stock ``commands.Bot`` logs in, syncs its command
tree and handles interactions exactly as it would against discord.com.  The only patching is
pointing discord.py at the fake's URLs (see :meth:`FakeDiscord.patch` / :meth:`FakeDiscord.patched`).

Payload shapes follow discord.py 2.7.1's own parsers (``state.py``, ``interactions.py``,
``webhook/async_.py``, ``types/*.py``), which are the ground truth for what the client accepts.

Quick start (everything runs in the test's own event loop)::

    fake = FakeDiscord(token="test-token")
    await fake.start()
    with fake.patched():                      # or fake.patch(monkeypatch) under pytest
        task = asyncio.create_task(bot.start("test-token"))
        await fake.wait_until_ready()
        await bot.tree.sync()                 # slash_command() only runs synced commands
        alice = fake.add_member("alice")
        inter = await fake.slash_command(alice, "prompt", {"idea": "a beach"})
        body = await inter.wait_response()
        ...
        await bot.close()
        await task
    await fake.close()

``FakeDiscord(token="test-token", *, interaction_deadline=3.0, require_synced_commands=True,
bot_permissions=None, everyone_permissions=None, allowed_privileged_intents=MESSAGE_CONTENT,
heartbeat_interval_ms=41250, guild_name="Mural Test Guild", recommended_shards=1,
max_concurrency=1, guilds_per_shard_limit=2500)`` is composed of one part per job, each
documenting its share of the API:

    ``world.py``        the state: identity, guilds, members, roles, channels, permissions, ids; waiting
    ``access.py``       channel permission overwrites (computed as Discord does), private channels and
                        private threads: who sees and may do what where
    ``gateway.py``      the websocket: identify, resume, heartbeats, shards, dispatch, intents, drops
    ``server.py``       the aiohttp server, REST plumbing, recorded requests, ``fail_next``
    ``rest/``           the REST routes by resource (application, commands, guilds, channels,
                        threads, messages, interactions and webhooks) and their table
    ``rules.py``        Discord's validation of message bodies, components, modals, commands, threads
    ``messages.py``     how a body becomes a stored message, edits, attachments, gateway echoes
    ``driver.py``       acting as members (slash commands, clicks, modals, messages...) and reading
                        a message as a member does (``text_of``, ``buttons_of``, ``attachments_of``)
    ``moderation.py``   deleting messages (MESSAGE_DELETE, a moderator's MESSAGE_DELETE_BULK) and
                        thread membership (THREAD_MEMBERS_UPDATE)
    ``interaction.py``  :class:`FakeInteraction`, what a member action returns
    ``wire.py``         Discord's numbers (permission and intent bits, types, flags, limits) and errors

Limitations: channel overwrites do not hide channels or private threads from GUILD_CREATE and thread
events (only messages are kept from the bot where it cannot view); a member made with ``add_member`` is in one guild
(the owner and the bot are in all); no voice, forums, group-DM or foreign-server REST reads for
users, zlib compression, presences, webhooks other than interaction webhooks, token expiry, or
identify rate limits (``max_concurrency`` is only reported); reactions are only recorded on the
message; attachments (and so media items) have no width/height or placeholder; external media URLs
are stored un-unfurled (``loading_state`` 0); ``attachment://`` in embeds is not resolved and such
attachments stay in ``attachments``; duplicate component ``id`` values are not refused; a modal may
be submitted again after a successful submit; only one bot application; autocomplete choice values
are not checked against the focused option's type; ``GET /attachments/...`` (the CDN) is not
recorded in ``requests``; 5xx injected with ``fail_next`` are retried by discord.py with 1 s+ sleeps.
"""

from __future__ import annotations

from loopback.fake_discord.access import ChannelAccess
from loopback.fake_discord.driver import Driver
from loopback.fake_discord.gateway import Gateway, GatewayEvent
from loopback.fake_discord.interaction import FakeInteraction
from loopback.fake_discord.messages import MessageStore
from loopback.fake_discord.moderation import Moderation
from loopback.fake_discord.rest import RestRoutes
from loopback.fake_discord.rules import Rules
from loopback.fake_discord.server import RecordedRequest, Server, UploadedFile
from loopback.fake_discord.wire import API_PREFIX, ATTACHMENT_SIZE_LIMIT, TEXT_DISPLAY, Intents, Permissions
from loopback.fake_discord.world import FakeGuild, World

# ATTACHMENT_SIZE_LIMIT is read from here at each use (`World.attachment_size_limit`), so a test may
# patch `loopback.fake_discord.ATTACHMENT_SIZE_LIMIT`; Discord's other numbers live in `wire`.
__all__ = [
    "API_PREFIX",
    "ATTACHMENT_SIZE_LIMIT",
    "TEXT_DISPLAY",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "GatewayEvent",
    "Intents",
    "Permissions",
    "RecordedRequest",
    "UploadedFile",
]


class FakeDiscord(Driver, Moderation, RestRoutes, MessageStore, Rules, ChannelAccess, Gateway, Server, World):
    """In-process fake Discord (gateway + REST v10); see the package docstring for its parts."""

    def __init__(
        self,
        token: str = "test-token",
        *,
        interaction_deadline: float | None = 3.0,
        require_synced_commands: bool = True,
        bot_permissions: int | None = None,
        everyone_permissions: int | None = None,
        allowed_privileged_intents: int = Intents.MESSAGE_CONTENT,
        heartbeat_interval_ms: int = 41250,
        guild_name: str = "Mural Test Guild",
        recommended_shards: int = 1,
        max_concurrency: int = 1,
        guilds_per_shard_limit: int = 2500,
    ) -> None:
        self.token = token
        self.interaction_deadline = interaction_deadline
        self.require_synced_commands = require_synced_commands
        self.allowed_privileged_intents = allowed_privileged_intents
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._init_server()
        self._init_gateway(
            recommended_shards=recommended_shards,
            max_concurrency=max_concurrency,
            guilds_per_shard_limit=guilds_per_shard_limit,
        )
        self._init_world(
            bot_permissions=bot_permissions, everyone_permissions=everyone_permissions, guild_name=guild_name
        )
        self._register_routes()
