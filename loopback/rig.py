"""The test rig: the real bot, the loopback Discord, the loopback OpenAI server and a real SQLite file.

A test gets a `Rig`, starts the bot, and then acts as members would (slash commands, thread messages,
button clicks) while asserting on what reached the fake Discord, the fake OpenAI and the database.

The bot runs one of two ways, against the same fakes and the same helpers:

* `start_bot()`: in this process, on this event loop, built by `bot.app.build_bot` (fast; most tests).
* `start_process()`: as its own process running the production entry point (`python -m
  loopback.launch_bot`, settings from the environment), so that SIGKILL, SIGTERM and SIGINT are real
  signals. The fakes keep serving from this process over loopback. One such process is kept ready
  (more with `keep_processes_ready`), its imports done, for the next start (see `launch_bot`'s
  `--stand-by`). Several may run at once against the same fakes: a deployment of processes sharing
  one PostgreSQL database (`env=` with DATABASE_URL), each with its own `shards=` of SHARD_COUNT.

`loopback_rig()` starts the fakes, hands out a `Rig` and stops everything again; `tests/conftest.py`
and the crash tests build their fixtures on it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.app import MuralBot, build_bot
from bot.config import Settings, settings_from
from bot.core.ai import RetryPolicy
from loopback.fake_discord import (
    API_PREFIX,
    TEXT_DISPLAY,
    FakeDiscord,
    FakeInteraction,
    RecordedRequest,
    UploadedFile,
)
from loopback.fake_openai import FakeOpenAI, hang
from loopback.launch_bot import API_VARIABLE, GATEWAY_VARIABLE, GUILD_READY_VARIABLE, STAND_BY

REPO = Path(__file__).resolve().parents[1]
DISCORD_TOKEN = "fake-discord-token.SECRET-123"
OPENAI_KEY = "sk-test-SECRET-openai-key-456"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What the bot names a finished picture's file (`mural-<session>-<render>-<n>.png`); previews are `preview-…`.
PICTURE_PREFIX = "mural-"
# Discord's numbers that tests compare answers with: the ephemeral message flag, and the callback types
# of a deferred answer and of a modal.
EPHEMERAL = 64
DEFERRED = 5
MODAL = 9
# The path of an interaction's original response, the token in the middle: what the bot edits to answer.
ORIGINAL = r"/webhooks/\d+/[^/]+/messages/@original"
# Retries as the bot makes them, only with short waits so failure tests stay quick.
FAST_RETRIES = RetryPolicy(attempts=3, backoff=(0.05, 0.1), longest_wait=5.0)
# How long discord.py waits for more GUILD_CREATEs before on_ready (2 s by default); the fake has one guild.
GUILD_READY_TIMEOUT = 0.05
# A bot process imports discord.py and openai first: on a loaded 2-core machine that alone takes seconds.
PROCESS_START_WITHIN = 30.0


class BotProcess:
    """One run of the bot as a child process, its stdout and stderr captured in one log file.

    A `subprocess.Popen` polled from the event loop, not an asyncio subprocess: the process is started
    ahead of need, possibly while an earlier test's event loop was running.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        log: Path,
        early_log: Path,
        *,
        env: Mapping[str, str] | None = None,
        shards: Sequence[int] | None = None,
    ) -> None:
        self.process = process
        self.log = log
        self.early_log = early_log  # what it printed before it was handed its run (normally nothing)
        # What it was started with beyond the rig's settings, so that it can be started again alike.
        self.env = dict(env or {})
        self.shards = tuple(shards) if shards is not None else None
        # Its gateway sessions at the fake Discord, by shard (known once it identified; see `start_process`).
        self.sessions: dict[int, str] = {}

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return "".join(
            path.read_text(errors="replace") for path in (self.early_log, self.log) if path.exists()
        )

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def wait(self, within: float) -> int:
        """The exit status (negative: the signal that ended it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (status := self.process.poll()) is None:
            if loop.time() > deadline:
                raise TimeoutError(f"the bot process {self.process.pid} still runs after {within}s")
            await asyncio.sleep(0.01)
        return status

    async def kill(self, within: float = 10.0) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.wait(within)


def _interpreter_environment() -> dict[str, str]:
    """What a bot process needs from its start on, whatever run it is later handed."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        # Unclosed sockets and transports are otherwise silent; shutdown tests look for them.
        "PYTHONWARNINGS": "default::ResourceWarning",
    }


class _StandBy:
    """`launch_bot --stand-by` processes kept ready: their imports are done when a test starts a bot.

    One is kept ready by default; tests that start several bots at once ask for more (`keep_ready`).
    """

    def __init__(self) -> None:
        self._ready: list[tuple[subprocess.Popen[bytes], Path]] = []
        self._keep = 1
        self._spawned = 0
        self._folder: Path | None = None
        atexit.register(self.close)

    def _spawn(self) -> tuple[subprocess.Popen[bytes], Path]:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="mural-stand-by-"))
        self._spawned += 1
        early_log = self._folder / f"{self._spawned}.log"
        with early_log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "loopback.launch_bot", STAND_BY],
                cwd=REPO,
                env=_interpreter_environment(),
                stdin=subprocess.PIPE,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        return process, early_log

    def keep_ready(self, count: int) -> None:
        """Keep at least `count` processes ready from now on (for the rest of the test session)."""
        self._keep = max(self._keep, count)
        self._fill()

    def _fill(self) -> None:
        while len(self._ready) < self._keep:
            self._ready.append(self._spawn())

    def take(self) -> tuple[subprocess.Popen[bytes], Path]:
        """A ready process (or a new one if none is), and new ones started for next time."""
        taken = self._ready.pop(0) if self._ready else self._spawn()
        self._fill()
        return taken

    def close(self) -> None:
        for process, _ in self._ready:
            process.kill()
            process.wait()
        self._ready.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


_stand_by = _StandBy()


@dataclass
class Rig:
    discord: FakeDiscord
    openai: FakeOpenAI
    database: Path
    overrides: dict[str, str] = field(default_factory=dict)
    # How long a helper waits for the bot unless told otherwise.
    within: float = 10.0
    bot: MuralBot | None = None
    processes: list[BotProcess] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    # -- configuration ------------------------------------------------------------------------

    def variables(self) -> dict[str, str]:
        """The bot's settings as the environment variables production reads them from."""
        return {
            "DISCORD_TOKEN": DISCORD_TOKEN,
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_BASE_URL": self.openai.base_url,
            "DATABASE_PATH": str(self.database),
            "CHAT_TIMEOUT": "5",
            "IMAGE_TIMEOUT": "5",
            **self.overrides,
        }

    def settings(self) -> Settings:
        return settings_from(self.variables())

    def environment(self) -> dict[str, str]:
        """A bot process's whole environment: what production would have, plus where the fake Discord is."""
        return {
            **_interpreter_environment(),
            API_VARIABLE: f"{self.discord.http_url}{API_PREFIX}",
            GATEWAY_VARIABLE: self.discord.ws_url,
            GUILD_READY_VARIABLE: str(GUILD_READY_TIMEOUT),
            "LOG_LEVEL": "INFO",
            **self.variables(),
        }

    # -- the bot in this process --------------------------------------------------------------

    async def start_bot(self) -> MuralBot:
        self.bot = await build_bot(
            self.settings(), retry=FAST_RETRIES, guild_ready_timeout=GUILD_READY_TIMEOUT
        )
        self._task = asyncio.create_task(self.bot.start(DISCORD_TOKEN), name="bot-under-test")
        bot, task = self.bot, self._task
        await self.discord.wait_for(
            lambda: bot.is_ready() or task.done(), 15, message="the bot to become ready"
        )
        if task.done():
            task.result()
            raise RuntimeError("the bot stopped before it was ready")
        return self.bot

    async def stop_bot(self) -> None:
        if self.bot is not None:
            await self.bot.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 10)
        self.bot, self._task = None, None

    async def restart(self) -> MuralBot:
        await self.stop_bot()
        return await self.start_bot()

    # -- the bot as a process -----------------------------------------------------------------

    async def start_process(
        self,
        *,
        settled: bool = False,
        env: Mapping[str, str] | None = None,
        shards: Sequence[int] | None = None,
    ) -> BotProcess:
        """Start a bot process and wait until its gateway session is live and its commands are synced.

        `settled` also waits for on_ready (its "Connected as" log line); events are handled before
        that, so only tests about the steady state need it.

        `env` adds to (or replaces) the rig's settings for this process only (DATABASE_URL,
        RENDER_LEASE_SECONDS, RENDER_CONCURRENCY...). `shards` makes it one process of a deployment:
        SHARD_IDS are these, of the SHARD_COUNT in `env` or the rig's overrides. Such a process is
        waited for until each of its shards has a new session at the fake (`BotProcess.sessions`) and it
        is settled, so that other processes may be started beside it at the same time.
        """
        environment = {**self.environment(), **(env or {})}
        if shards is not None:
            if "SHARD_COUNT" not in environment:
                raise ValueError("start_process(shards=...) needs SHARD_COUNT in env= or the rig's overrides")
            environment["SHARD_IDS"] = ",".join(str(shard) for shard in shards)
            settled = True
        folder = self.database.parent
        log = folder / f"bot-{len(self.processes) + 1}.log"
        identified = self.discord.identify_count
        known_sessions = {event.session_id for event in self.discord.gateway_events if event.name == "READY"}
        process, early_log = _stand_by.take()
        child = BotProcess(process, log, early_log, env=env, shards=shards)
        self.processes.append(child)
        run = {"cwd": str(folder), "log": str(log), "environment": environment}
        assert process.stdin is not None
        # A process that died before its run (say, an import failed) is reported below, with its output.
        with contextlib.suppress(BrokenPipeError):
            try:
                process.stdin.write(json.dumps(run).encode() + b"\n")
            finally:
                process.stdin.close()

        def new_sessions() -> dict[int, str]:
            return {
                event.shard_id: event.session_id
                for event in self.discord.gateway_events
                if event.name == "READY" and event.session_id not in known_sessions
            }

        # Commands are synced before the gateway connects; a restart with unchanged commands skips the
        # sync, and the fake still holds the earlier registration.
        def identified_or_dead() -> bool:
            if not child.running:
                return True
            if shards is None:
                connected = self.discord.identify_count > identified
            else:
                connected = set(shards) <= set(new_sessions())
            return connected and bool(self.discord.registered_commands.get(None))

        await self.discord.wait_for(
            identified_or_dead, PROCESS_START_WITHIN, message="the bot process to identify"
        )
        if not child.running:
            raise AssertionError(f"the bot exited with {child.process.returncode}:\n{child.output()}")
        if shards is not None:
            child.sessions = {shard: session for shard, session in new_sessions().items() if shard in shards}
        await self.discord.wait_until_ready(timeout=self.within)
        if settled:
            await self.discord.wait_for(
                lambda: "Connected as" in child.output() or not child.running,
                PROCESS_START_WITHIN,
                message="on_ready in the bot's log",
            )
            if not child.running:
                raise AssertionError(f"the bot exited with {child.process.returncode}:\n{child.output()}")
        return child

    async def start_again(self, child: BotProcess, *, settled: bool = False) -> BotProcess:
        """Start a process like `child` (which has stopped): the same settings and shards."""
        if child.running:
            raise RuntimeError(f"the bot process {child.pid} still runs")
        return await self.start_process(settled=settled, env=child.env, shards=child.shards)

    @staticmethod
    def keep_processes_ready(count: int) -> None:
        """Keep `count` bot processes ready to start at once (their imports done), for tests that start
        several together; one is kept otherwise."""
        _stand_by.keep_ready(count)

    def process_output(self) -> str:
        """What every bot process printed, one after another: to show with a failed assertion."""
        return "\n".join(f"--- bot process {child.pid} ---\n{child.output()}" for child in self.processes)

    async def crash(self, child: BotProcess) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        child.send(signal.SIGKILL)
        status = await child.wait(self.within)
        assert status == -signal.SIGKILL, f"exit status {status} after SIGKILL:\n{child.output()}"

    async def stop_processes(self) -> None:
        for child in self.processes:
            with contextlib.suppress(Exception):
                await child.kill(self.within)

    # -- the database -------------------------------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows from the database file, read as an operator would, beside the bot."""
        return query(self.database, sql, params)

    def integrity(self) -> str:
        return self.query("PRAGMA integrity_check")[0][0]

    def snapshot(self) -> list[str]:
        """Every row of every table, to prove an input left the stored data exactly as it was."""
        connection = _read_only(self.database)
        try:
            return list(connection.iterdump())
        finally:
            connection.close()

    def write_ahead_log_exists(self) -> bool:
        # SQLite deletes it when the last connection to the file closes properly.
        return Path(f"{self.database}-wal").exists()

    # -- acting as members --------------------------------------------------------------------

    async def start_prompt(
        self, member: dict[str, Any], idea: str, prompt: str
    ) -> tuple[FakeInteraction, dict[str, Any], dict[str, Any]]:
        """Run `/prompt idea:` with the model answering `prompt`, to the end: (interaction, v1, thread).

        The end is the thread's hint: the bot posts it once the thread is tied to the session, so from
        then on replies there are refinements.
        """
        self.openai.script_chat(prompt)
        interaction = await self.discord.slash_command(member, "prompt", {"idea": idea})
        v1 = await self.answer_containing(interaction, "### v1")
        thread = await self.settled_thread()
        return interaction, v1, thread

    async def refine(
        self, member: dict[str, Any], thread_id: int, instruction: str, answer: str, *, version: int = 2
    ) -> dict[str, Any]:
        """Reply `instruction` in the session's thread, the model answering `answer`: the new version."""
        self.openai.script_chat(answer)
        await self.discord.user_message(member, thread_id, instruction)
        return await self.wait_for_bot_message(thread_id, f"### v{version}")

    async def imagine_hanging_at_openai(
        self, member: dict[str, Any], idea: str, prompt: str
    ) -> FakeInteraction:
        """Run `/imagine idea:` and return once its image request hangs at the fake OpenAI."""
        self.openai.script_chat(prompt)
        self.openai.script_images(hang())
        images = self.openai.calls("/images/generations")
        interaction = await self.discord.slash_command(member, "imagine", {"idea": idea})
        await self.openai.wait_for_calls("/images/generations", images + 1, wait_s=self.within)
        return interaction

    async def refinement_hanging_at_openai(
        self, member: dict[str, Any], thread_id: int, instruction: str
    ) -> None:
        """Reply `instruction` in the thread and return once the model call for it hangs at the fake OpenAI."""
        chats = self.openai.calls("/chat/completions")
        self.openai.script_chat(hang())
        await self.discord.user_message(member, thread_id, instruction)
        await self.openai.wait_for_calls("/chat/completions", chats + 1, wait_s=self.within)

    # -- looking at what happened -------------------------------------------------------------

    def bot_messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        bot_id = str(self.discord.bot_user["id"])
        return [m for m in self.discord.messages_in(channel_id) if m["author"]["id"] == bot_id]

    def threads(self) -> list[dict[str, Any]]:
        return [c for c in self.discord.channels.values() if c.get("type") in (10, 11, 12)]

    async def answer_containing(
        self, interaction: FakeInteraction, needle: str, within: float | None = None
    ) -> dict[str, Any]:
        """The interaction's visible message, once its text contains `needle`."""

        def answer() -> dict[str, Any] | None:
            message = interaction.original
            return message if message and needle in self.discord.text_of(message) else None

        return await self.discord.wait_for(
            answer, within or self.within, message=f"the answer to contain {needle!r}"
        )

    async def settled_thread(self) -> dict[str, Any]:
        """The session thread, once the bot has stored it (it posts its hint after that)."""
        thread = await self.discord.wait_for(
            lambda: next(iter(self.threads()), None), self.within, message="a thread"
        )
        await self.wait_for_bot_message(int(thread["id"]), "Reply here")
        return thread

    async def wait_for_bot_message(
        self, channels: int | Iterable[int], needle: str, within: float | None = None
    ) -> dict[str, Any]:
        """The first message of the bot's in `channels` (one id or several) whose text contains `needle`."""
        channel_ids = [channels] if isinstance(channels, int) else list(channels)

        def found() -> dict[str, Any] | None:
            for channel_id in channel_ids:
                for message in self.bot_messages_in(channel_id):
                    if needle in self.discord.text_of(message):
                        return message
            return None

        return await self.discord.wait_for(
            found, within or self.within, message=f"a bot message containing {needle!r}"
        )

    async def wait_for_upload(self, start: int = 0, within: float | None = None) -> tuple[Any, UploadedFile]:
        """The first request after index `start` that uploaded a finished picture successfully: (request, file).

        Previews shown while a picture forms are uploaded too (`preview-1.png`); they are passed over.
        """

        def upload() -> tuple[Any, UploadedFile] | None:
            for request in self.discord.requests[start:]:
                if 200 <= request.status < 300 and (pictures := finished_pictures(request)):
                    return request, pictures[0]
            return None

        return await self.discord.wait_for(upload, within or self.within, message="an uploaded picture")


@contextlib.asynccontextmanager
async def loopback_rig(
    folder: Path,
    *,
    discord: FakeDiscord | None = None,
    monkeypatch: Any = None,
    overrides: dict[str, str] | None = None,
    within: float = 10.0,
) -> AsyncIterator[Rig]:
    """The fakes on loopback and a `Rig` on them with its database in `folder`; afterwards every bot the
    rig started is stopped, the fakes closed, and a crash inside a fake fails the test (it would
    otherwise look like a bot bug).

    `monkeypatch` points this process's discord.py at the fake Discord (the in-process bot needs that);
    bot processes are pointed at it through their environment.
    """
    discord_server = discord or FakeDiscord(token=DISCORD_TOKEN)
    openai_server = FakeOpenAI()
    async with contextlib.AsyncExitStack() as stack:
        await discord_server.start()
        stack.push_async_callback(discord_server.close)
        if monkeypatch is not None:
            discord_server.patch(monkeypatch)
        await openai_server.start()
        stack.push_async_callback(openai_server.close)
        rig = Rig(
            discord=discord_server,
            openai=openai_server,
            database=folder / "mural.db",
            overrides=dict(overrides or {}),
            within=within,
        )
        stack.push_async_callback(rig.stop_processes)
        stack.push_async_callback(rig.stop_bot)
        yield rig
    assert discord_server.internal_errors == [], "the fake Discord crashed"
    assert openai_server.handler_errors == [], "the fake OpenAI crashed"


def _read_only(path: Path) -> sqlite3.Connection:
    # Read-only, so the write-ahead log a crash left is not checkpointed away by looking at it.
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows from the SQLite file at `path`, read-only; the connection is closed again."""
    connection = _read_only(path)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """custom_id → label of every component on a message (rows, containers, sections), in order.

    This message as given, so a snapshot taken earlier stays as it was; `FakeDiscord.buttons_of()` reads
    the stored message as it is now.
    """
    return {
        component["custom_id"]: component.get("label") or ""
        for component in FakeDiscord._walk_components(message.get("components") or [])
        if component.get("custom_id")
    }


def sent_text(request: RecordedRequest) -> str:
    """What a message create or edit asked Discord to show: its content and every text display, one a line."""
    body = request.json if isinstance(request.json, dict) else {}
    parts = [body.get("content") or ""]
    parts += [
        component.get("content") or ""
        for component in FakeDiscord._walk_components(body.get("components") or [])
        if component.get("type") == TEXT_DISPLAY
    ]
    return "\n".join(part for part in parts if part)


def finished_pictures(request: RecordedRequest) -> list[UploadedFile]:
    """The finished pictures a request uploaded (`mural-<session>-<render>-<n>.<ext>`), previews left out."""
    return [upload for upload in request.files if upload.filename.startswith(PICTURE_PREFIX)]


def custom_ids(message: dict[str, Any]) -> list[str]:
    """Every component custom_id on a message, in order."""
    return list(buttons(message))


def button(message: dict[str, Any], action: str) -> str:
    """The custom_id of the message's `mural:<action>:…` button."""
    return next(cid for cid in custom_ids(message) if cid.startswith(f"mural:{action}:"))


def unused_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
