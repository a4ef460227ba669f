"""The `commands.Bot` subclass: wires the services, loads the cogs, owns errors and command sync."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Coroutine
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import actions, ui
from bot.config import Settings
from bot.jobs import RenderQueue
from bot.openai_client import OpenAIService, RetryPolicy
from bot.render import Renderer, capabilities_for
from bot.store import Store
from bot.studio import Studio

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.prompt", "cogs.imagine")


class MuralTree(app_commands.CommandTree):
    """The one owner of slash-command errors: every failure becomes a private, non-pinging answer."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await ui.send_error(interaction, error)


def build_services(settings: Settings, *, retry: RetryPolicy | None = None) -> OpenAIService:
    return OpenAIService(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        chat_model=settings.chat_model,
        chat_api_key=settings.chat_api_key,
        chat_base_url=settings.chat_base_url,
        chat_timeout=settings.chat_timeout,
        image_timeout=settings.image_timeout,
        retry=retry,
    )


# Mural never joins voice; without this, every start warns about missing voice libraries.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False


class MuralBot(commands.Bot):
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
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=MuralTree,
            allowed_mentions=ui.NO_PINGS,
            help_command=None,
            **client_options,
        )
        self.settings = settings
        self.store = store
        self.ai = ai
        # `python -m bot sync` registers commands and leaves other state alone: a live instance may own it.
        self.sync_only = sync_only
        self.studio = Studio(store, ai)
        self.renderer = Renderer(
            ai,
            model=settings.image_model,
            default_size=settings.image_size,
            default_quality=settings.image_quality,
        )
        self.jobs = RenderQueue(store, self.renderer, concurrency=settings.render_concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing: asyncio.Future[None] | None = None
        self.synced_commands = False

    # -- start-up -----------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        retired_on = capabilities_for(self.settings.image_model).retired_on
        if retired_on is not None:
            log.warning(
                "IMAGE_MODEL %s is retired at OpenAI since %s; renders will fail there. Set IMAGE_MODEL to a "
                "current model such as gpt-image-2.",
                self.settings.image_model,
                retired_on.isoformat(),
            )
        self.add_dynamic_items(*actions.DYNAMIC_ITEMS)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.sync_only:
            await self.sync_commands(force=True)
            return
        cut_off = await self.store.interrupt_pending_refinements()
        if cut_off:
            log.warning(
                "%d refinement(s) were interrupted by the last stop; telling their authors", len(cut_off)
            )
            self.spawn(
                actions.report_interrupted_refinements(self, cut_off), name="report-interrupted-refinements"
            )
        interrupted = await self.store.interrupt_unfinished_renders()
        if interrupted:
            log.warning(
                "%d render(s) were interrupted by the last stop; telling their owners", len(interrupted)
            )
            self.spawn(
                actions.report_interrupted_renders(self, interrupted), name="report-interrupted-renders"
            )
        await self.sync_commands()

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
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Background task %s failed", task.get_name(), exc_info=task.exception())

    async def on_ready(self) -> None:
        log.info(
            "Connected as %s (id %s) to %d server(s)",
            self.user,
            self.user.id if self.user else "?",
            len(self.guilds),
        )

    async def close(self) -> None:
        """Stop renders in flight, then the gateway and background work, then the HTTP clients and the database.

        Every caller (the signal handler, `async with`, `serve`'s cleanup) waits for the same single
        shutdown, so nobody reports "stopped" while the database is still closing.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close_once())
        await asyncio.shield(self._closing)

    async def _close_once(self) -> None:
        await asyncio.gather(self.jobs.shutdown(), self.studio.shutdown())
        try:
            await super().close()
        finally:
            await self._close_resources()

    async def _close_resources(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ai.close()
        await self.store.close()
