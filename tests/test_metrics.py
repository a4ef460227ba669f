"""Metrics and health as an operator scrapes them: the real bot, the loopback fakes, a real port.

The series move with the work (one /imagine is one done render and one `ok`), a scrape during a
burst reads consistent counters, /healthz follows the gateway, and without METRICS_PORT no port is
opened at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from prometheus_client.parser import text_string_to_metric_families

import bot.app
from bot.config import ConfigError, settings_from
from bot.observe.gateway import Gateway
from bot.observe.metrics import SERIES, Metrics, outcome_label
from loopback.fake_discord import FakeDiscord
from loopback.fake_openai import ImageReply, moderation_blocked
from loopback.rig import DISCORD_TOKEN, Rig, loopback_rig

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gpt-image-2"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest_asyncio.fixture
async def watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    """The rig with METRICS_PORT set, and heartbeats every half second (so latencies show soon)."""
    monkeypatch.setattr(bot.app, "freeze_startup_heap", lambda: None)
    fake = FakeDiscord(token=DISCORD_TOKEN, heartbeat_interval_ms=500)
    overrides = {"METRICS_PORT": str(free_port())}
    async with loopback_rig(tmp_path, discord=fake, monkeypatch=monkeypatch, overrides=overrides) as rig:
        yield rig


def port_of(rig: Rig) -> int:
    return int(rig.overrides["METRICS_PORT"])


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as answer:
        return answer.status, await answer.text()


async def scrape(rig: Rig) -> Samples:
    status, text = await get(port_of(rig), "/metrics")
    assert status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def settled(rig: Rig, name: str, expected: float, **labels: str) -> Samples:
    """Scrapes until `name{labels}` reads `expected` (an action is counted as its handler returns)."""
    found: list[Samples] = []

    async def reads() -> bool:
        found.append(await scrape(rig))
        return value(found[-1], name, **labels) == expected

    deadline = asyncio.get_running_loop().time() + rig.within
    while not await reads():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{name}{labels} is {value(found[-1], name, **labels)}, not {expected}")
        await asyncio.sleep(0.05)
    return found[-1]


# -- the series move with the work -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_one_imagine_is_one_done_render_and_one_ok(watched: Rig) -> None:
    rig = watched
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    before = await scrape(rig)
    assert value(before, "mural_interactions_total", command="imagine", outcome="ok") == 0

    rig.openai.script_chat("A red fox on a snowy hill at dawn.")
    await rig.discord.slash_command(alice, "imagine", {"idea": "a fox"})
    await rig.wait_for_upload()
    after = await settled(rig, "mural_interactions_total", 1, command="imagine", outcome="ok")

    assert value(after, "mural_renders_total", model=MODEL, status="done") == 1
    assert value(after, "mural_render_seconds_count", model=MODEL) == 1
    assert value(after, "mural_ack_seconds_count") == 1
    assert value(after, "mural_spend_dollars_total", kind="image") > 0
    assert value(after, "mural_spend_dollars_total", kind="chat") > 0
    assert value(after, "mural_queue_jobs", state="queued") == 0
    assert value(after, "mural_queue_jobs", state="running") == 0
    assert value(after, "mural_gateway_connected", shard="0") == 1
    interactions = {key: v for key, v in after.items() if key[0] == "mural_interactions_total"}
    assert sum(interactions.values()) == 1, interactions


@pytest.mark.asyncio
async def test_a_refusal_from_openai_adds_its_code_and_a_failed_render(watched: Rig) -> None:
    rig = watched
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    rig.openai.script_chat("A red fox on a snowy hill at dawn.")
    rig.openai.script_images(ImageReply(stream_error=moderation_blocked()))
    imagine = await rig.discord.slash_command(alice, "imagine", {"idea": "a fox"})
    await rig.answer_containing(imagine, "E-SAFETY")

    after = await settled(rig, "mural_interactions_total", 1, command="imagine", outcome="E-SAFETY")
    assert value(after, "mural_openai_errors_total", code="E-SAFETY") == 1
    assert value(after, "mural_openai_errors_total", code="E-BUSY") == 0  # there from the start, at 0
    assert value(after, "mural_renders_total", model=MODEL, status="failed") == 1
    assert value(after, "mural_renders_total", model=MODEL, status="done") == 0
    assert value(after, "mural_interactions_total", command="imagine", outcome="ok") == 0


@pytest.mark.asyncio
async def test_a_refused_request_counts_its_code_and_a_bug_counts_without_its_incident(
    watched: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = watched
    await rig.start_bot()
    alice = rig.discord.add_member("alice")
    await rig.discord.slash_command(alice, "imagine", {"idea": "   "})
    await settled(rig, "mural_interactions_total", 1, command="imagine", outcome="E-INPUT")

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    assert rig.bot is not None
    monkeypatch.setattr(rig.bot.studio, "start_session", broken)
    await rig.discord.slash_command(alice, "prompt", {"idea": "a fox"})
    after = await settled(rig, "mural_interactions_total", 1, command="prompt", outcome="E-BUG")
    assert not [key for key in after if key[0] == "mural_interactions_total" and "E-BUG-" in str(key[1])]
    assert value(after, "mural_openai_errors_total", code="E-INPUT") == 0


@pytest.mark.parametrize(
    ("outcome", "label"),
    [("ok", "ok"), ("cancelled", "cancelled"), ("E-BUG-1a2b3c", "E-BUG"), ("E-INPUT", "E-INPUT")],
)
def test_outcome_labels_keep_codes_and_drop_incident_numbers(outcome: str, label: str) -> None:
    assert outcome_label(outcome) == label


@pytest.mark.asyncio
async def test_scrapes_during_a_burst_read_counters_that_only_grow(watched: Rig) -> None:
    rig = watched
    await rig.start_bot()
    members = [rig.discord.add_member(f"member{n}") for n in range(12)]
    scrapes: list[Samples] = []
    stop = asyncio.Event()

    async def scraper() -> None:
        while not stop.is_set():
            scrapes.append(await scrape(rig))
            await asyncio.sleep(0.01)

    scraping = asyncio.create_task(scraper())
    sent = await asyncio.gather(
        *(
            rig.discord.slash_command(member, "prompt", {"idea": f"a lighthouse {n}"})
            for n, member in enumerate(members)
        )
    )
    for interaction in sent:
        await rig.answer_containing(interaction, "### v1")
    final = await settled(rig, "mural_interactions_total", len(members), command="prompt", outcome="ok")
    stop.set()
    await scraping

    assert len(scrapes) >= 3
    for name, labels in (
        ("mural_interactions_total", {"command": "prompt", "outcome": "ok"}),
        ("mural_ack_seconds_count", {}),
        ("mural_spend_dollars_total", {"kind": "chat"}),
    ):
        seen = [value(samples, name, **labels) for samples in scrapes]
        assert seen == sorted(seen), (name, seen)
    assert value(final, "mural_ack_seconds_count") == len(members)
    assert value(final, "mural_ack_seconds_bucket", le="+Inf") == len(members)
    # The library's own process and Python series are there too.
    assert value(final, "process_cpu_seconds_total") > 0
    assert any(key[0] == "python_info" for key in final)


@pytest.mark.asyncio
async def test_the_gateway_series_name_each_shard_and_its_heartbeat(watched: Rig) -> None:
    rig = watched
    await rig.start_bot()
    samples = await scrape(rig)
    deadline = asyncio.get_running_loop().time() + rig.within
    while ("mural_gateway_latency_seconds", frozenset({("shard", "0")})) not in samples:
        assert asyncio.get_running_loop().time() < deadline, "no heartbeat latency"
        await asyncio.sleep(0.1)
        samples = await scrape(rig)
    assert 0 <= value(samples, "mural_gateway_latency_seconds", shard="0") < 5
    assert value(samples, "mural_gateway_connected", shard="0") == 1
    assert value(samples, "mural_servers_near_monthly_budget") == 0


# -- /healthz -----------------------------------------------------------------------------------------


async def health(rig: Rig) -> tuple[int, dict[str, Any]]:
    status, text = await get(port_of(rig), "/healthz")
    assert "\n" not in text.strip()
    return status, json.loads(text)


async def health_becomes(rig: Rig, status: int, within: float = 15.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found, body = await health(rig)
        if found == status:
            return body
        assert asyncio.get_running_loop().time() < deadline, f"/healthz stayed {found}: {body}"
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
@pytest.mark.parametrize("resumable", [False, True], ids=["invalidated", "resumable"])
async def test_healthz_turns_503_when_the_gateway_drops_and_200_after_the_reconnect(
    watched: Rig, resumable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = watched
    await rig.start_bot()
    body = await health_becomes(rig, 200)
    assert body == {"ok": True, "shards": [0], "database": "ok"}

    # A resume is held at the fake until the test has looked; an invalidated session identifies again
    # only after discord.py's own 5 s pause.
    held = asyncio.Event()
    resume = rig.discord._resume

    async def held_resume(*args: Any) -> None:
        await held.wait()
        await resume(*args)

    monkeypatch.setattr(rig.discord, "_resume", held_resume)
    await rig.discord.drop_gateway(resumable=resumable)
    body = await health_becomes(rig, 503, within=3)
    assert body == {"ok": False, "reason": "gateway shard 0 disconnected"}
    samples = await scrape(rig)
    assert value(samples, "mural_gateway_connected", shard="0") == 0

    held.set()
    await health_becomes(rig, 200, within=20)
    samples = await scrape(rig)
    assert value(samples, "mural_gateway_connected", shard="0") == 1


@pytest.mark.asyncio
async def test_with_two_shards_healthz_names_the_one_that_dropped(watched: Rig) -> None:
    rig = watched
    rig.overrides.update({"SHARD_COUNT": "2", "SHARD_IDS": "0-1"})
    rig.discord.add_guild("Second Server", shard=1, shard_count=2)
    await rig.start_bot()
    assert (await health_becomes(rig, 200))["shards"] == [0, 1]

    await rig.discord.drop_gateway(shard=1, resumable=False)
    assert await health_becomes(rig, 503, within=3) == {"ok": False, "reason": "gateway shard 1 disconnected"}
    samples = await scrape(rig)
    assert value(samples, "mural_gateway_connected", shard="0") == 1
    assert value(samples, "mural_gateway_connected", shard="1") == 0
    assert value(samples, "mural_healthy") == 0
    await health_becomes(rig, 200, within=20)
    assert value(await scrape(rig), "mural_healthy") == 1


@pytest.mark.asyncio
async def test_healthz_names_the_database_when_it_does_not_answer(
    watched: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = watched
    await rig.start_bot()
    await health_becomes(rig, 200)
    assert rig.bot is not None

    async def away() -> None:
        from bot.core.errors import StoreUnavailable

        raise StoreUnavailable("the database is away")

    monkeypatch.setattr(rig.bot.store, "ping", away)
    assert await health(rig) == (503, {"ok": False, "reason": "database not answering"})
    monkeypatch.undo()
    await health_becomes(rig, 200)


@dataclass
class Socket:
    """A shard as discord.py's ShardInfo shows it: its socket open or not, its heartbeat latency."""

    closed: bool = False
    latency: float = math.inf

    def is_closed(self) -> bool:
        return self.closed


def test_a_shard_is_connected_from_ready_or_resumed_until_its_next_disconnect() -> None:
    gateway = Gateway()
    shards = {0: Socket(latency=0.04), 1: Socket()}
    assert gateway.problem(None, {}) == "gateway not connected yet"
    assert gateway.problem([0, 1], shards) == "gateway shard 0 not connected yet"
    gateway.heard("shard_connect", 0)
    gateway.heard("shard_connect", 1)
    gateway.heard("shard_ready", 1)  # not a change of connection
    assert gateway.problem([0, 1], shards) is None
    gateway.heard("shard_disconnect", 1)
    assert gateway.problem([0, 1], shards) == "gateway shard 1 disconnected"
    gateway.heard("shard_resumed", 1)
    assert gateway.problem([0, 1], shards) is None
    shards[0].closed = True  # a socket found closed before its event arrives
    assert gateway.connected(shards) == {0: False, 1: True}
    assert gateway.latencies(shards) == {0: 0.04}  # no heartbeat acknowledged yet on shard 1


# -- ports ----------------------------------------------------------------------------------------------


def listening_ports(pid: int) -> set[int]:
    """TCP ports process `pid` listens on: its socket inodes matched against /proc/net/tcp{,6} (LISTEN)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if found := re.fullmatch(r"socket:\[(\d+)\]", target):
            inodes.add(found[1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.asyncio
@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="reads Linux's /proc")
async def test_no_port_is_opened_without_metrics_port_and_one_with_it(rig: Rig) -> None:
    quiet = await rig.start_process()
    assert listening_ports(quiet.process.pid) == set()
    await quiet.kill()

    port = free_port()
    rig.overrides["METRICS_PORT"] = str(port)
    serving = await rig.start_process()
    assert listening_ports(serving.process.pid) == {port}
    status, _ = await get(port, "/healthz")
    assert status == 200
    await serving.kill()


@pytest.mark.asyncio
async def test_a_port_already_taken_is_one_error_line_and_the_bot_runs_on(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        rig.overrides["METRICS_PORT"] = str(holder.getsockname()[1])
        await rig.start_bot()
        said = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(said) == 1 and said[0].exc_info is None
        assert said[0].getMessage().startswith("METRICS_PORT: 127.0.0.1:")
        assert "already in use" in said[0].getMessage()
        # Members are served all the same.
        await rig.start_prompt(rig.discord.add_member("alice"), "a fox", "A red fox on a snowy hill.")


@pytest.mark.parametrize(
    ("variable", "raw"),
    [("METRICS_PORT", "0"), ("METRICS_PORT", "65536"), ("METRICS_PORT", "http"), ("METRICS_HOST", "a b")],
)
def test_a_metrics_address_that_is_not_one_names_its_setting(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError) as refused:
        settings_from({"DISCORD_TOKEN": "token", "OPENAI_API_KEY": "key", variable: raw})
    assert refused.value.variable == variable


def test_metrics_are_off_and_local_unless_asked() -> None:
    settings = settings_from({"DISCORD_TOKEN": "token", "OPENAI_API_KEY": "key"})
    assert (settings.metrics_port, settings.metrics_host, settings.log_format) == (None, "127.0.0.1", "text")


# -- deploy/: every panel and alert on a series the bot exports ----------------------------------------

# PromQL words that are not series: functions, aggregations, keywords and the label names Mural uses.
PROMQL_WORDS = {
    "sum",
    "rate",
    "irate",
    "increase",
    "histogram_quantile",
    "max",
    "min",
    "avg",
    "count",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "deriv",
    "delta",
    "clamp_min",
    "clamp_max",
    "max_over_time",
    "min_over_time",
    "avg_over_time",
    "abs",
    "topk",
    "le",
    "command",
    "outcome",
    "model",
    "status",
    "state",
    "kind",
    "code",
    "shard",
    "job",
    "instance",
    "vector",
    "scalar",
    "time",
    "absent",
    "changes",
    "resets",
    "label_replace",
    "sort_desc",
    "sgn",
}
# Series Prometheus itself records for every target.
PROMETHEUS_SERIES = {"up"}


SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def exported_series() -> set[str]:
    """Every series name a bot's registry exports, its own and the library's, observed yet or not."""
    return {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def series_in(expression: str) -> set[str]:
    """The metric names an expression reads: identifiers outside strings, durations and label matchers."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # ranges
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"(?<![A-Za-z0-9_:])\d+(?:\.\d+)?(?:ms|[smhdwy])?", " ", bare)  # numbers, durations
    return set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare)) - PROMQL_WORDS


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    found = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            found.extend(target["expr"] for target in panel.get("targets", []) if "expr" in target)
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    return found


def alert_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def test_every_dashboard_panel_reads_only_series_the_bot_exports() -> None:
    expressions = dashboard_expressions()
    assert len(expressions) >= 8
    read = set().union(*(series_in(expression) for expression in expressions))
    assert read <= exported_series(), sorted(read - exported_series())
    # Every series of Mural's own is on the dashboard.
    assert set(SERIES) <= {name.removesuffix("_bucket") for name in read}


def test_the_series_named_in_the_code_are_the_ones_exported() -> None:
    families = {f.name + ("_total" if f.type == "counter" else "") for f in Metrics().registry.collect()}
    assert {name for name in families if name.startswith("mural_")} == set(SERIES)
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= exported_series()


def test_every_alert_reads_only_series_the_bot_exports() -> None:
    alerts = alert_expressions()
    names = {name for name, _ in alerts}
    assert {
        "MuralUnhealthy",
        "MuralQueueGrowing",
        "MuralOpenAIErrorsHigh",
        "MuralServerNearMonthlyBudget",
    } <= names
    for name, expression in alerts:
        read = series_in(expression)
        assert read, name
        assert read <= exported_series() | PROMETHEUS_SERIES, (name, sorted(read - exported_series()))


def test_the_expression_reader_finds_series_and_skips_the_rest() -> None:
    expression = (
        'histogram_quantile(0.99, sum by (le) (rate(mural_ack_seconds_bucket{job="mural"}[5m])))'
        " / ignoring(shard) mural_queue_jobs offset 10m"
    )
    assert series_in(expression) == {"mural_ack_seconds_bucket", "mural_queue_jobs"}
