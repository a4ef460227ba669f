"""`python -m loopback.launch_bot`: the production entry point, pointed at the loopback fake Discord.

Crash and signal tests need the bot in a process of its own, so that SIGKILL, SIGTERM and SIGINT are
real signals. This does exactly what `FakeDiscord.patch()` does in-process -- point discord.py's REST
base, its interaction-webhook base and its gateway at the fake -- and then runs `bot.__main__.main()`
unchanged, which reads its settings from the environment like production does.

    MURAL_TEST_DISCORD_API  the fake's REST base, e.g. http://127.0.0.1:PORT/api/v10
    MURAL_TEST_DISCORD_WS   the fake's gateway, e.g. ws://127.0.0.1:PORT/
"""

from __future__ import annotations

import os
import sys

import discord.gateway
import discord.http
import discord.webhook.async_
import yarl

from bot.__main__ import main

API_VARIABLE = "MURAL_TEST_DISCORD_API"
GATEWAY_VARIABLE = "MURAL_TEST_DISCORD_WS"


def point_discord_at(api_base: str, gateway: str) -> None:
    # In discord.py 2.7 both Route names are the same class; setting both keeps this right if they split.
    discord.http.Route.BASE = api_base
    discord.webhook.async_.Route.BASE = api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


def run() -> int:
    try:
        api_base, gateway = os.environ[API_VARIABLE], os.environ[GATEWAY_VARIABLE]
    except KeyError as missing:
        print(f"launch_bot: {missing.args[0]} is not set", file=sys.stderr)
        return 2
    point_discord_at(api_base, gateway)
    return main([])


if __name__ == "__main__":
    sys.exit(run())
