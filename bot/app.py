"""The `commands.Bot` subclass and the one function that builds it, for `python -m bot`, tests and benchmarks.

The bot holds typed services that cogs reach through it (never module globals); `setup_hook` loads
the extensions (each registers its own buttons); background work is owned and tracked; one shutdown
closes the render queue, the gateway, the HTTP clients and the database, in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
from collections.abc import Coroutine
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.config import Settings
from bot.core.access import Access
from bot.core.ai import OpenAIService, RetryPolicy
from bot.core.budget_checks import Budgets
from bot.core.budgets import window_at
from bot.core.errors import MuralError
from bot.core.gallery_service import GalleryService
from bot.core.images import ImageOptions, ImageService
from bot.core.leases import Holder
from bot.core.moderation import Moderator
from bot.core.pacing import AcknowledgementsFirst
from bot.core.queue import RenderQueue
from bot.core.render_options import RenderOptions
from bot.core.server_rules import ServerRules
from bot.core.settings_changes import SettingsChanges
from bot.core.studio import Studio
from bot.core.tasks import TaskOwner
from bot.core.watching import NOBODY
from bot.logs import keep_secret
from bot.observe import Gateway, Metrics, ObservationServer
from bot.observe.gateway import SHARD_EVENTS
from bot.store import Store, open_store
from bot.ui import actions
from bot.ui.context import place_of
from bot.ui.errors import send_error
from bot.ui.layouts import NO_PINGS
from bot.web import GalleryServer, serve_gallery

log = logging.getLogger(__name__)

# Seconds between two identifies of one bucket, as Discord allows.
IDENTIFY_SPACING = 5.0
EXTENSIONS = ("cogs.studio", "cogs.admin", "cogs.account", "cogs.help", "cogs.gallery")
# Commands an admin needs even where a role is required to use Mural (never lock the admins out), and
# /help, which tells a member about that role.
OPEN_TO_EVERYONE = frozenset({"settings", "help"})


class MuralTree(app_commands.CommandTree):
    """Slash-command errors go to the one error owner: a private, non-pinging answer with a code.

    Every command and menu is a member's action (`bot.ui.actions`), begun here and ended by the error
    owner or, when it returns, by `MuralBot.on_app_command_completion`.
    """

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        await send_error(interaction, error)

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        """A server may require a role to use Mural: refused privately, before anything runs."""
        if interaction.type is not discord.InteractionType.autocomplete:
            actions.begin(interaction)
        command = interaction.command
        if command is None or command.name in OPEN_TO_EVERYONE:
            return True
        bot = interaction.client
        if not isinstance(bot, MuralBot):
            return True
        try:
            # A database known to be away refuses here, privately, before a command defers in public.
            await bot.store.check_reachable()
            await bot.access.check_may_use(place_of(interaction))
        except MuralError as refusal:
            if interaction.type is not discord.InteractionType.autocomplete:
                await send_error(interaction, refusal)
            return False
        return True


def build_ai(settings: Settings, *, retry: RetryPolicy | None = None, safety_salt: str = "") -> OpenAIService:
    return OpenAIService(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        chat_model=settings.chat_model,
        vision_model=settings.vision_model,
        chat_api_key=settings.chat_api_key,
        chat_base_url=settings.chat_base_url,
        chat_timeout=settings.chat_timeout,
        image_timeout=settings.image_timeout,
        retry=retry,
        safety_salt=settings.safety_salt or safety_salt,
    )


async def build_bot(
    settings: Settings, *, retry: RetryPolicy | None = None, sync_only: bool = False, **client_options: Any
) -> MuralBot:
    """Open the store and wire every service into a bot that is ready to `start`."""
    store = await open_store(path=settings.database_path, url=settings.database_url)
    try:
        salt = settings.safety_salt or await store.safety_salt()
        keep_secret(salt)
    except BaseException:
        await store.close()
        raise
    ai = build_ai(settings, retry=retry, safety_salt=salt)
    try:
        return MuralBot(settings=settings, store=store, ai=ai, sync_only=sync_only, **client_options)
    except BaseException:
        # The store's worker thread would keep the process alive.
        await ai.close()
        await store.close()
        raise


def freeze_startup_heap() -> None:
    """Take what start-up built out of the garbage collector's sight for good (`gc.freeze()`).

    discord.py, openai and pydantic internals, the command tree and the guild cache live as long as
    the process. Left in the oldest generation, every full collection walks all of them again: a
    pause of 57-118 ms that lands inside bursts of commands and holds up their acknowledgements
    (bench/ack.py). Collected first, so start-up garbage is not kept; frozen objects that are
    dropped later are still freed by reference counting.
    """
    gc.collect()
    gc.freeze()


def thaw_startup_heap() -> None:
    """Give the frozen objects back to the collector (when the bot closes, so a process that builds
    another bot, like the tests, does not keep the old one's cycles)."""
    gc.unfreeze()


def trace_acknowledgements(
    acknowledgements: AcknowledgementsFirst,
    trace: aiohttp.TraceConfig | None = None,
    *,
    metrics: Metrics | None = None,
) -> aiohttp.TraceConfig:
    """An aiohttp trace (discord.py's `http_trace`) that marks an interaction acknowledged once its
    callback request (`POST /interactions/{id}/{token}/callback`) has been answered or has failed
    (and times it, for `mural_ack_seconds`, when there are metrics)."""
    trace = trace or aiohttp.TraceConfig()

    async def answered(
        session: aiohttp.ClientSession,
        context: Any,
        params: aiohttp.TraceRequestEndParams | aiohttp.TraceRequestExceptionParams,
    ) -> None:
        parts = params.url.parts
        if len(parts) >= 4 and parts[-1] == "callback" and parts[-4] == "interactions":
            with contextlib.suppress(ValueError):
                interaction_id = int(parts[-3])
                acknowledgements.acknowledged(interaction_id)
                if metrics is not None:
                    metrics.acknowledged(interaction_id)

    trace.on_request_end.append(answered)
    trace.on_request_exception.append(answered)
    return trace


# Mural never joins voice; without this, every start warns about missing voice libraries.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False


class MuralBot(commands.AutoShardedBot):
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        ai: OpenAIService,
        sync_only: bool = False,
        **client_options: Any,
    ) -> None:
        intents = discord.Intents.default()
        # Thread replies are refinement instructions; without this intent their text arrives empty.
        intents.message_content = True
        # Acknowledgements go out ahead of the work they start: interactions are counted in as they
        # arrive (`dispatch`) and out when their callback request is done (this trace).
        acknowledgements = AcknowledgementsFirst()
        # Prometheus series in a registry of this bot's own, only where METRICS_PORT asks for them.
        self.metrics = Metrics() if settings.metrics_port and not sync_only else None
        client_options["http_trace"] = trace_acknowledgements(
            acknowledgements, client_options.get("http_trace"), metrics=self.metrics
        )
        if settings.shard_ids is not None:
            # One process of a deployment: exactly these shards of SHARD_COUNT (DMs come to shard 0).
            client_options.setdefault("shard_ids", list(settings.shard_ids))
            client_options.setdefault("shard_count", settings.shard_count)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=MuralTree,
            allowed_mentions=NO_PINGS,
            help_command=None,
            **client_options,
        )
        self.acknowledgements = acknowledgements
        # This process's shard connections (for /healthz and the gateway series).
        self.gateway = Gateway()
        self._observation: ObservationServer | None = None
        # The web gallery's pages, served on GALLERY_PORT from setup_hook until close.
        self._gallery_web: GalleryServer | None = None
        watcher = self.metrics or NOBODY
        self.settings = settings
        self.store = store
        self.ai = ai
        # `python -m bot sync` registers commands and leaves other state alone: a live instance may own it.
        self.sync_only = sync_only
        self.images = ImageService(
            ai,
            defaults=ImageOptions(
                model=settings.image_model, size=settings.image_size, quality=settings.image_quality
            ),
            prices=settings.prices,
        )
        self.background = TaskOwner("bot")
        # What each server chose, and the checks made by it before anything is spent.
        self.server_rules = ServerRules(store, self.background)
        self.access = Access(self.server_rules)
        # Pictures kept for the web gallery, forgotten when deleted, and members' personal links to them.
        self.gallery = GalleryService(
            store,
            self.server_rules,
            base_url=settings.gallery_url if settings.gallery_port else None,
            link_seconds=settings.gallery_link_seconds,
            secret=settings.gallery_secret,
        )
        self.budgets = Budgets(store, self.server_rules, operator_limits=settings.limits)
        self.moderator = Moderator(self.server_rules, ai)
        self.render_options = RenderOptions(
            self.server_rules, self.images, allowed_models=settings.image_models
        )
        self.settings_changes = SettingsChanges(
            store, self.server_rules, self.images, allowed_models=settings.image_models
        )
        # This process, as the jobs and instructions it holds know it (renewed while it lives).
        self.holder = Holder(seconds=settings.render_lease_seconds, shared=store.shared)
        self.studio = Studio(
            store,
            ai,
            ahead=acknowledgements,
            prices=settings.prices,
            moderator=self.moderator,
            budgets=self.budgets,
            holder=self.holder,
            watcher=watcher,
        )
        self.render_queue = RenderQueue(
            store,
            self.images,
            concurrency=settings.render_concurrency,
            ahead=acknowledgements,
            holder=self.holder,
            watcher=watcher,
        )
        # Whether the gateway delivers every message's text (the Message Content intent); decided in setup_hook.
        self.reads_messages = True
        # The one shutdown runs as a task of its own owner, never shut down: closing cancels the bot's
        # background work and must not cancel itself.
        self._shutdown = TaskOwner("shutdown")
        self._closing: asyncio.Task[None] | None = None
        self._heap_frozen = False
        self.synced_commands = False
        self._logged_in = False
        # Discord's identify buckets (`max_concurrency`), read when the first shard identifies.
        self._identify_buckets: int | None = None

    # -- start-up -----------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        if self.metrics is not None and self.settings.metrics_port is not None:
            server = ObservationServer(
                self, self.metrics, host=self.settings.metrics_host, port=self.settings.metrics_port
            )
            if await server.start():
                self._observation = server
        if self.settings.gallery_port is not None and not self.sync_only:
            gallery_secret = await self.gallery.secret()
            keep_secret(gallery_secret)
            self._gallery_web = await serve_gallery(
                self.store,
                secret=gallery_secret,
                host=self.settings.gallery_host,
                port=self.settings.gallery_port,
            )
        self.decide_message_content()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands(force=self.sync_only)
        if not self.sync_only:
            # Today's use counted before the first command arrives, so budget checks ahead of
            # acknowledgements need no trip to the database.
            await self.store.count_use_from_rows(window_at())
            await self.server_rules.read_all()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Discord allows `max_concurrency` identifies per 5 seconds for the whole application. Alone,
        discord.py's own pacing keeps to that; processes that share a database take turns through it,
        so several started together never identify at once."""
        if not self.store.shared or shard_id is None:
            await super().before_identify_hook(shard_id, initial=initial)
            return
        if self._identify_buckets is None:
            self._identify_buckets = max(1, (await self.fetch_session_start_limits()).max_concurrency)
        await self.store.identify_turn(shard_id % self._identify_buckets, spacing=IDENTIFY_SPACING)

    def decide_message_content(self) -> None:
        """Ask for the Message Content intent only when the application may have it.

        Decided up front from the application's flags (fetched at login, before the gateway connects)
        rather than by connecting, being closed with 4014 and reconnecting: that would cost a failed
        identify on every start, and identifies are rate-limited. Without the intent the bot still works:
        thread messages arrive empty unless they reply to the bot or mention it, and Refine always works.
        """
        if self.sync_only:
            return  # `python -m bot sync` never connects to the gateway
        flags = self.application.flags if self.application is not None else None
        if flags is None or flags.gateway_message_content or flags.gateway_message_content_limited:
            return
        self.reads_messages = False
        # discord.py takes the intents at construction only; they are sent with the gateway identify,
        # which has not happened yet.
        self._connection._intents.message_content = False
        log.warning(
            "The Message Content intent is off for this application, so Mural runs without it: messages in "
            "session threads arrive empty unless they reply to the bot or mention it. Members refine with the "
            "Refine button, by replying to the bot's messages, or by mentioning the bot. Switch it on under "
            "Bot -> Privileged Gateway Intents in the Developer Portal to refine with any thread message."
        )

    def command_fingerprint(self, guild: discord.abc.Snowflake | None) -> str:
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        text = json.dumps(sorted(payload, key=lambda c: c["name"]), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Register the slash commands with Discord only when their definitions changed (or forced)."""
        guild = discord.Object(id=self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        scope = f"guild {guild.id}" if guild else "global"
        key = f"commands-fingerprint:{self.application_id}:{scope}"
        fingerprint = self.command_fingerprint(guild)
        if not force and await self.store.get_meta(key) == fingerprint:
            log.info("Slash commands unchanged since the last sync (%s); not syncing", scope)
            return False
        try:
            commands_synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as error:
            log.error(
                "Could not register slash commands (%s): HTTP %s. If DEV_GUILD_ID is set, invite the bot to that "
                "server with the applications.commands scope.",
                scope,
                error.status,
            )
            return False
        await self.store.set_meta(key, fingerprint)
        self.synced_commands = True
        log.info("Registered %d slash commands (%s)", len(commands_synced), scope)
        return True

    # -- background work ----------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Start background work that is kept, named, and whose failure is logged."""
        return self.background.spawn(coro, name=name)

    async def on_message(self, message: discord.Message) -> None:
        """Mural has no text commands: a message that mentions the bot is an instruction for the studio's
        listener, not a command to look up (which would log "command not found" for each)."""

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        # Called as an interaction arrives, right after discord.py has scheduled its handler.
        if event_name == "interaction":
            self.acknowledgements.received(args[0].id)
            if self.metrics is not None:
                self.metrics.arrived(args[0].id)
        elif event_name in SHARD_EVENTS:
            # In the order they happen, before any handler runs: a drop and its reconnect never swap.
            self.gateway.heard(event_name, args[0])
        super().dispatch(event_name, *args, **kwargs)

    async def on_app_command_completion(
        self,
        interaction: discord.Interaction[Any],
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
    ) -> None:
        """A command or menu that returned ends its action: `ok`, or what its member was shown."""
        actions.succeeded(actions.of(interaction))

    async def on_ready(self) -> None:
        # Start-up is done once the gateway is ready and the guild cache filled (setup_hook runs before
        # the gateway connects, so freezing there would leave the cache to every full collection).
        # Once only: a later READY (after a fresh IDENTIFY) must not freeze what happened to be alive.
        if not self._heap_frozen:
            self._heap_frozen = True
            freeze_startup_heap()
        log.info(
            "Connected as %s (id %s) to %d server(s)",
            self.user,
            self.user.id if self.user else "?",
            len(self.guilds),
        )

    async def close(self) -> None:
        """Stop jobs in flight, then the gateway and background work, then the HTTP clients and the database.

        Every caller (the signal handler, `async with`, `serve`'s cleanup) waits for the same single
        shutdown, so nobody reports "stopped" while the database is still closing.
        """
        if self._closing is None:
            self._closing = self._shutdown.spawn(self._close_once(), name="close", awaited=True)
        await asyncio.shield(self._closing)

    async def login(self, token: str) -> None:
        self._logged_in = True
        # Every action of this bot is counted in its own metrics: its tasks all start from this one.
        actions.watch_actions(self.metrics)
        await super().login(token)

    async def _close_once(self) -> None:
        await asyncio.gather(self.render_queue.shutdown(), self.studio.shutdown())
        try:
            if self._logged_in:
                await super().close()
            else:
                # Built but never started (`check`, tests): discord.py's sharded close needs a started client.
                await self.http.close()
        finally:
            if self._observation is not None:
                await self._observation.close()
            if self._gallery_web is not None:
                await self._gallery_web.close()
            await self.background.shutdown()
            await self.ai.close()
            await self.store.close()
            if self._heap_frozen:
                self._heap_frozen = False
                thaw_startup_heap()
