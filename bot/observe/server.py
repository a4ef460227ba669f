"""`GET /metrics` and `GET /healthz` on METRICS_HOST:METRICS_PORT, served on the bot's own event loop.

`/metrics` is the Prometheus text format of the bot's registry (`generate_latest`), after the gauges
that describe the deployment are read: the queue from the database (the whole deployment's, so any
process can be scraped), the servers near their monthly budget (at most once a minute: it adds up a
month of spending), the gateway from this process's shards. `/healthz` answers for this process only:
200 when every one of its shards is connected and the database answers, else 503 with the reason.
A scrape never waits long on the database: what it cannot read in time keeps its last value.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.config import Settings
from bot.core.budgets import window_at
from bot.core.errors import StoreUnavailable
from bot.observe.gateway import Gateway, Shard
from bot.observe.metrics import Metrics
from bot.store import Store

log = logging.getLogger(__name__)

# How long a scrape or a health check waits for the database.
DATABASE_WAIT = 2.0
# The monthly-budget count adds up a month of spending: read at most this often.
BUDGET_EVERY = 60.0
# "Near" the monthly budget: this share of it used, or more.
NEAR_BUDGET = 0.9


class Observed(Protocol):
    """What the server reads from the bot (`bot.app.MuralBot`)."""

    settings: Settings
    store: Store
    gateway: Gateway

    @property
    def shards(self) -> Mapping[int, Shard]: ...

    @property
    def shard_ids(self) -> Iterable[int] | None: ...

    @property
    def shard_count(self) -> int | None: ...

    def is_closed(self) -> bool: ...


class ObservationServer:
    def __init__(self, bot: Observed, metrics: Metrics, *, host: str, port: int) -> None:
        self._bot = bot
        self._metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._budget_read_at: float | None = None
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._serve_health)
        self._app = app

    async def start(self) -> bool:
        """Listen; False, after one error line naming METRICS_PORT, when the address cannot be had (the
        bot then runs on without /metrics and /healthz)."""
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as error:
            await runner.cleanup()
            why = (
                "is already in use"
                if error.errno == errno.EADDRINUSE
                else f"cannot be used ({error.strerror})"
            )
            log.error(
                "METRICS_PORT: %s:%d %s; Mural runs on without /metrics and /healthz. Choose another "
                "METRICS_PORT (or METRICS_HOST), or stop what listens there, and restart",
                self.host,
                self.port,
                why,
            )
            return False
        self._runner = runner
        log.info("Serving /metrics and /healthz on http://%s:%d", self.host, self.port)
        return True

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # -- /healthz -------------------------------------------------------------------------------

    async def problem(self) -> str | None:
        """Why this process is not healthy, or None."""
        bot = self._bot
        if bot.is_closed():
            return "stopping"
        # This process's shards: those of SHARD_IDS, or all Discord advised once it said how many.
        expected = bot.shard_ids if bot.shard_ids is not None else range(bot.shard_count or 0) or None
        if (gateway := bot.gateway.problem(expected, bot.shards)) is not None:
            return gateway
        try:
            await asyncio.wait_for(bot.store.ping(), DATABASE_WAIT)
        except TimeoutError:
            return f"database did not answer within {DATABASE_WAIT:g} s"
        except StoreUnavailable:
            return "database not answering"
        except Exception as error:
            return f"database check failed ({type(error).__name__})"
        return None

    async def _serve_health(self, request: web.Request) -> web.Response:
        problem = await self.problem()
        if problem is None:
            shards = sorted(self._bot.shards)
            body = {"ok": True, "shards": shards, "database": "ok"}
            return web.json_response(body, dumps=_one_line)
        return web.json_response({"ok": False, "reason": problem}, status=503, dumps=_one_line)

    # -- /metrics -------------------------------------------------------------------------------

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        await self.read_deployment()
        return web.Response(
            body=generate_latest(self._metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def read_deployment(self) -> None:
        """Set the gauges read at scrape time: the gateway, health, the queue, the servers near their budget."""
        bot, metrics = self._bot, self._metrics
        shards = bot.shards
        metrics.show_gateway(bot.gateway.connected(shards), bot.gateway.latencies(shards))
        metrics.healthy.set(1 if await self.problem() is None else 0)
        try:
            metrics.show_queue(await asyncio.wait_for(bot.store.count_jobs(), DATABASE_WAIT))
        except Exception as error:  # the database is away: the last value stays
            log.debug("Could not read the queue for /metrics (%s)", type(error).__name__)
        now = time.monotonic()
        if self._budget_read_at is not None and now - self._budget_read_at < BUDGET_EVERY:
            return
        try:
            near = await asyncio.wait_for(
                bot.store.servers_near_monthly_limit(
                    window_at().month_start, bot.settings.server_monthly_spend, NEAR_BUDGET
                ),
                DATABASE_WAIT,
            )
        except Exception as error:
            log.debug("Could not count servers near their budget for /metrics (%s)", type(error).__name__)
            return
        metrics.servers_near_budget.set(near)
        self._budget_read_at = now


def _one_line(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))
