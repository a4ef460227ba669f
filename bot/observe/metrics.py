"""Mural's Prometheus series: their one definition, and the hooks that move them.

Each bot has its own registry (tests and benchmarks run several bots in one process). Counters and
histograms move as the work happens: the core's `Watcher` (jobs, pictures posted, spend), the UI's
`ActionWatcher` (every member's action, by name and outcome) and the acknowledgement trace (time to
the first answer). Gauges that describe the deployment (the queue, budgets, the gateway) are set at
scrape time by `bot.observe.server`, never on the hot path. Labels are low-cardinality: a command or
action name, an outcome code, a model, a status, a shard; never a user, a server or a prompt.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from bot.core.errors import (
    BadAnswer,
    ChatRefused,
    Misconfigured,
    OutOfCredit,
    SafetyRejected,
    ServiceBusy,
    ServiceTimeout,
    ServiceUnavailable,
    VisionUnavailable,
)
from bot.core.watching import SpendKind
from bot.ui.actions import Action

# The codes of failures that came back from OpenAI (or a compatible server), as members see them.
OPENAI_CODES = tuple(
    error.code
    for error in (
        ServiceBusy,
        ServiceUnavailable,
        ServiceTimeout,
        OutOfCredit,
        Misconfigured,
        VisionUnavailable,
        SafetyRejected,
        ChatRefused,
        BadAnswer,
    )
)
JOB_STATUSES = ("done", "failed", "cancelled", "interrupted")
QUEUE_STATES = ("queued", "running")
SPEND_KINDS: tuple[SpendKind, ...] = ("chat", "image")
# Discord wants the first answer within 3 s: the buckets are finest below that.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
RENDER_BUCKETS = (1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0)
# An interaction whose acknowledgement never came is forgotten after this long.
FORGET_ARRIVALS_AFTER = 60.0

# Every series this module defines, by the name Prometheus shows (a test keeps deploy/ on these).
SERIES = (
    "mural_interactions_total",
    "mural_ack_seconds",
    "mural_renders_total",
    "mural_render_seconds",
    "mural_queue_jobs",
    "mural_spend_dollars_total",
    "mural_openai_errors_total",
    "mural_gateway_latency_seconds",
    "mural_gateway_connected",
    "mural_servers_near_monthly_budget",
    "mural_healthy",
)


def outcome_label(outcome: str) -> str:
    """`ok`, `cancelled` or the code shown; an incident number (`E-BUG-1a2b3c`) counts as `E-BUG`."""
    return "E-BUG" if outcome.startswith("E-BUG-") else outcome


class Metrics:
    """One bot's series in its own registry, with the library's process and Python series beside them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        registry = self.registry
        self.interactions = Counter(
            "mural_interactions",
            "Commands, buttons and modals handled, by command or action and by the outcome the member saw",
            ["command", "outcome"],
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "mural_ack_seconds",
            "Time from an interaction's arrival to its acknowledgement (its first answer to Discord)",
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.renders = Counter(
            "mural_renders",
            "Renders and edits finished, by image model and status",
            ["model", "status"],
            registry=registry,
        )
        self.render_seconds = Histogram(
            "mural_render_seconds",
            "Time from a job's start to its pictures posted, by image model",
            ["model"],
            buckets=RENDER_BUCKETS,
            registry=registry,
        )
        self.queue_jobs = Gauge(
            "mural_queue_jobs",
            "Jobs queued and running in the whole deployment (read from the database at scrape time)",
            ["state"],
            registry=registry,
        )
        self.spend = Counter(
            "mural_spend_dollars",
            "US dollars spent, from the recorded cost of each chat call and render",
            ["kind"],
            registry=registry,
        )
        self.openai_errors = Counter(
            "mural_openai_errors",
            "Failures from OpenAI, by the code the member saw",
            ["code"],
            registry=registry,
        )
        self.gateway_latency = Gauge(
            "mural_gateway_latency_seconds",
            "Discord gateway heartbeat latency, by shard of this process",
            ["shard"],
            registry=registry,
        )
        self.gateway_connected = Gauge(
            "mural_gateway_connected",
            "1 while the shard is connected (READY or RESUMED since its last disconnect), else 0",
            ["shard"],
            registry=registry,
        )
        self.servers_near_budget = Gauge(
            "mural_servers_near_monthly_budget",
            "Servers that have used 90 % or more of their monthly budget",
            registry=registry,
        )
        self.healthy = Gauge(
            "mural_healthy",
            "1 when /healthz would answer 200 (every shard of this process connected, the database answering)",
            registry=registry,
        )
        # Series that exist from the start, at 0, so that rates and alerts see their first increase.
        for state in QUEUE_STATES:
            self.queue_jobs.labels(state=state)
        for kind in SPEND_KINDS:
            self.spend.labels(kind=kind)
        for code in OPENAI_CODES:
            self.openai_errors.labels(code=code)
        self._arrivals: dict[int, float] = {}  # interaction id -> when it arrived, oldest first

    # -- the core's Watcher ---------------------------------------------------------------------

    def job_ended(self, model: str, status: str) -> None:
        self.renders.labels(model=model, status=status).inc()

    def pictures_posted(self, model: str, seconds: float) -> None:
        self.render_seconds.labels(model=model).observe(seconds)

    def spent(self, kind: SpendKind, dollars: float) -> None:
        if dollars > 0:
            self.spend.labels(kind=kind).inc(dollars)

    # -- the UI's ActionWatcher -----------------------------------------------------------------

    def action_finished(self, action: Action) -> None:
        outcome = outcome_label(action.outcome or "ok")
        self.interactions.labels(command=action.name, outcome=outcome).inc()
        if outcome in OPENAI_CODES:
            self.openai_errors.labels(code=outcome).inc()

    # -- acknowledgements -----------------------------------------------------------------------

    def arrived(self, interaction_id: int) -> None:
        now = time.monotonic()
        self._arrivals[interaction_id] = now
        # Drop the oldest if it was never acknowledged (its answer failed), so nothing piles up.
        oldest = next(iter(self._arrivals))
        if now - self._arrivals[oldest] >= FORGET_ARRIVALS_AFTER:
            del self._arrivals[oldest]

    def acknowledged(self, interaction_id: int) -> None:
        arrived = self._arrivals.pop(interaction_id, None)
        if arrived is not None:
            self.ack_seconds.observe(time.monotonic() - arrived)

    # -- read at scrape time --------------------------------------------------------------------

    def show_queue(self, counts: Mapping[str, int]) -> None:
        for state in QUEUE_STATES:
            self.queue_jobs.labels(state=state).set(counts.get(state, 0))

    def show_gateway(self, connected: Mapping[int, bool], latencies: Mapping[int, float]) -> None:
        for shard, up in connected.items():
            self.gateway_connected.labels(shard=str(shard)).set(1 if up else 0)
        for shard, seconds in latencies.items():
            self.gateway_latency.labels(shard=str(shard)).set(seconds)
