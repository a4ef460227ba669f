"""Benchmark of the core loop through the loopback fakes: acknowledgement and end-to-end times, memory.

Run from the repository root: `.venv/bin/python -m bench.core_loop [rounds]`. Numbers go in issue notes;
tests never assert on wall-clock time because shared machines are noisy.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

from loopback.fake_discord import FakeDiscord
from loopback.fake_openai import FakeOpenAI
from loopback.load import summary
from loopback.rig import DISCORD_TOKEN, Rig, button


async def run(rounds: int, model_latency: float) -> None:
    discord_server = FakeDiscord(token=DISCORD_TOKEN, interaction_deadline=30)
    await discord_server.start()
    openai_server = FakeOpenAI(latency=model_latency)
    await openai_server.start()
    acks: list[float] = []
    to_v1: list[float] = []
    to_v2: list[float] = []
    to_picture: list[float] = []
    with tempfile.TemporaryDirectory() as folder, discord_server.patched():
        rig = Rig(discord=discord_server, openai=openai_server, database=Path(folder) / "bench.db")
        started = time.monotonic()
        await rig.start_bot()
        startup = time.monotonic() - started
        try:
            for index in range(rounds):
                member = discord_server.add_member(f"member{index}")
                begin = time.monotonic()
                interaction = await discord_server.slash_command(
                    member, "prompt", {"idea": f"a beach, take {index}"}
                )
                await interaction.wait_response(timeout=30)
                acks.append(interaction.response_latency)
                message = await rig.answer_containing(interaction, "### v1", within=30)
                thread_id = await discord_server.wait_for(
                    lambda m=message: int(m["id"]) if int(m["id"]) in discord_server.channels else None, 30
                )
                to_v1.append(time.monotonic() - begin)

                begin = time.monotonic()
                await discord_server.user_message(member, thread_id, "make it night")
                await rig.wait_for_bot_message(thread_id, "### v2", within=30)
                to_v2.append(time.monotonic() - begin)

                generate = button(message, "gen")
                before = len(discord_server.requests)
                begin = time.monotonic()
                click = await discord_server.click(member, int(message["id"]), generate)
                await click.wait_response(timeout=30)
                acks.append(click.response_latency)
                await rig.wait_for_upload(before, within=30)
                to_picture.append(time.monotonic() - begin)
                # The member who pressed is then pointed at the picture; the round ends once they are.
                await rig.answer_containing(click, "is in the thread", within=30)
        finally:
            await rig.stop_bot()
            await openai_server.close()
            await discord_server.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rounds={rounds} fake model latency={model_latency * 1000:.0f} ms per call")
    print(f"{'bot start-up to ready':<28} {startup * 1000:.1f} ms")
    print(summary("interaction acknowledged", acks))
    print(summary("/prompt to v1 + thread", to_v1))
    print(summary("thread reply to v2", to_v2))
    print(summary("Generate to picture", to_picture))
    print(f"{'peak memory (whole process)':<28} {peak_mib:.1f} MiB")


if __name__ == "__main__":
    asyncio.run(
        run(int(sys.argv[1]) if len(sys.argv) > 1 else 30, float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
    )
