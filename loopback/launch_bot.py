"""`python -m loopback.launch_bot`: the production entry point, pointed at the loopback fake Discord.

Crash and signal tests need the bot in a process of its own, so that SIGKILL, SIGTERM and SIGINT are
real signals (`Rig.start_process()` starts this). It does what `FakeDiscord.patch()` does in-process --
point discord.py's REST base, its interaction-webhook base and its gateway at the fake -- and then runs
`bot.__main__.main()` unchanged, with this command's own arguments (`python -m loopback.launch_bot check`
runs the set-up check against the fakes); it reads its settings from the environment like production.

    MURAL_TEST_DISCORD_API          the fake's REST base, e.g. http://127.0.0.1:PORT/api/v10
    MURAL_TEST_DISCORD_WS           the fake's gateway, e.g. ws://127.0.0.1:PORT/
    MURAL_TEST_GUILD_READY_TIMEOUT  optional: seconds discord.py waits for more guilds before on_ready
                                    (2 s by default; the in-process rig shortens it the same way)

`python -m loopback.launch_bot --stand-by` first does its imports (discord.py, openai, the bot: over a
second of a start) and then waits for one line of JSON on stdin, `{"cwd", "log", "environment"}`: it
moves to `cwd`, sends its stdout and stderr to the file `log`, replaces its whole environment with
`environment` and runs as above. The rig keeps one such process ready, so a test's bot starts at once.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import discord.gateway
import discord.http
import discord.state
import discord.webhook.async_
import yarl

from bot.__main__ import main

API_VARIABLE = "MURAL_TEST_DISCORD_API"
GATEWAY_VARIABLE = "MURAL_TEST_DISCORD_WS"
GUILD_READY_VARIABLE = "MURAL_TEST_GUILD_READY_TIMEOUT"
STAND_BY = "--stand-by"


def point_discord_at(api_base: str, gateway: str) -> None:
    # In discord.py 2.7 both Route names are the same class; setting both keeps this right if they split.
    discord.http.Route.BASE = api_base
    discord.webhook.async_.Route.BASE = api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


def wait_for_guilds(seconds: float) -> None:
    """Make `seconds` the default `guild_ready_timeout` of every client this process builds."""
    original = discord.state.ConnectionState.__init__

    def init(self: discord.state.ConnectionState, *args: Any, **options: Any) -> None:
        options.setdefault("guild_ready_timeout", seconds)
        original(self, *args, **options)

    discord.state.ConnectionState.__init__ = init  # type: ignore[method-assign]


def take_configuration() -> bool:
    """Wait for this run's configuration on stdin and apply it; False if stdin closed first."""
    line = sys.stdin.buffer.readline()
    if not line:
        return False
    configuration = json.loads(line)
    log = os.open(configuration["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        os.dup2(log, stream.fileno())
    os.close(log)
    nothing = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nothing, sys.stdin.fileno())
    os.close(nothing)
    os.chdir(configuration["cwd"])
    os.environ.clear()
    os.environ.update(configuration["environment"])
    return True


def run(argv: list[str] | None = None) -> int:
    """The entry point with `argv` (`[]`: serve; `["check"]`: the set-up check against the fakes)."""
    try:
        api_base, gateway = os.environ[API_VARIABLE], os.environ[GATEWAY_VARIABLE]
    except KeyError as missing:
        print(f"launch_bot: {missing.args[0]} is not set", file=sys.stderr)
        return 2
    point_discord_at(api_base, gateway)
    if guild_ready := os.environ.get(GUILD_READY_VARIABLE):
        wait_for_guilds(float(guild_ready))
    return main(argv or [])


if __name__ == "__main__":
    if sys.argv[1:] == [STAND_BY]:
        if not take_configuration():
            sys.exit(0)
        sys.exit(run())
    sys.exit(run(sys.argv[1:]))
