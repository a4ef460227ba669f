"""Load benchmark: many `/imagine` commands from many members at once, against a slow fake image API.

Run from the repository root: `.venv/bin/python -m bench.load [commands] [members] [image_seconds]`
(defaults 50, 20, 1.0). It prints acknowledgement latency, the time until every picture was delivered,
throughput, per-command end-to-end times, the most renders seen at the image API at once, and peak
memory. `tests/test_load.py` drives the same load through `loopback.load` and asserts on it; tests
never assert on wall-clock numbers beyond generous bounds, so the numbers belong here.
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
from loopback.load import TimedImageAPI, dispatch, summary, wait_until_finished
from loopback.rig import DISCORD_TOKEN, Rig


async def run(commands: int, members: int, image_seconds: float) -> None:
    discord_server = FakeDiscord(token=DISCORD_TOKEN)  # Discord's own 3 s deadline for the first answer
    await discord_server.start()
    openai_server = FakeOpenAI()
    await openai_server.start()
    images = TimedImageAPI(image_seconds)
    openai_server.image_handler = images
    with tempfile.TemporaryDirectory() as folder, discord_server.patched():
        rig = Rig(discord=discord_server, openai=openai_server, database=Path(folder) / "bench.db")
        # Generous per-picture timeout: a queued render waits for its slot before its own clock starts,
        # but keep headroom for a slow machine.
        rig.overrides["IMAGE_TIMEOUT"] = str(max(30, int(image_seconds * 10)))
        await rig.start_bot()
        concurrency = rig.bot.settings.render_concurrency if rig.bot else 0
        try:
            started = time.monotonic()
            sent = await dispatch(rig, commands, members)
            dispatched = time.monotonic() - started
            ideal = commands * image_seconds / max(1, concurrency)
            await wait_until_finished(rig, sent, within=60 + ideal * 4)
        finally:
            await rig.stop_bot()
            await openai_server.close()
            await discord_server.close()

    acks = [c.interaction.response_latency for c in sent if c.interaction.response_latency is not None]
    delivered = [c for c in sent if c.pictures]
    failed = [c for c in sent if c.failures and not c.pictures]
    late = [c for c in sent if c.interaction.errors]
    end_to_end = [c.finished_at - c.interaction.dispatched_at for c in delivered if c.finished_at]
    all_done = max((c.finished_at for c in delivered if c.finished_at), default=started) - started
    queued_told = sum(1 for c in sent if any("queued" in text for text in c.progress))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"commands={commands} members={members} fake image time={image_seconds:.2f} s"
        f" RENDER_CONCURRENCY={concurrency} (ideal render time {ideal:.1f} s)"
    )
    print(f"{'dispatching all commands took':<34} {dispatched * 1000:.1f} ms")
    print(summary("interaction acknowledged", acks))
    print(f"{'late acknowledgements (>3 s)':<34} {len(late)}")
    print(f"{'pictures delivered / failed':<34} {len(delivered)} / {len(failed)}")
    print(f"{'image API calls':<34} {images.calls}")
    print(f"{'all pictures delivered after':<34} {all_done:.2f} s")
    print(f"{'throughput':<34} {len(delivered) / all_done if all_done > 0 else 0:.2f} pictures/s")
    print(summary("command to picture (end to end)", end_to_end))
    print(f"{'max concurrent renders at the API':<34} {images.peak}")
    print(f"{'commands told they were queued':<34} {queued_told}")
    print(f"{'peak memory (whole process)':<34} {peak_mib:.1f} MiB")


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        run(
            int(args[0]) if len(args) > 0 else 50,
            int(args[1]) if len(args) > 1 else 20,
            float(args[2]) if len(args) > 2 else 1.0,
        )
    )
