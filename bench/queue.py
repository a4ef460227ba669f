"""Queue overhead: the bot's own time between a render slot freeing and the next job's request leaving.

Run from the repository root: `.venv/bin/python -m bench.queue [jobs] [members] [image_seconds] [limit]
[postgresql://… [queues]]` (defaults 200, 50, 0.02, on, SQLite, 1). With a PostgreSQL server URL, a fresh
database is made on it (and dropped after), and `queues` RenderQueues, each over its own store and pool
with its own holder id, as processes of one deployment have, share it: jobs are queued through them in
turn and RENDER_CONCURRENCY holds for all of them together; they share this process's event loop and CPU. Every job is queued first (the first pictures wait until all are), one
after another from each member in turn, into the real `RenderQueue` over a real SQLite store, drawing through the real `openai` client against
the loopback OpenAI server (which answers each picture after `image_seconds`). With RENDER_CONCURRENCY
slots, each finished job frees exactly one slot and some member always has a job that may start, so the
k-th job to finish pairs with the (concurrency + k)-th request to arrive. The gap between the two is
the queue's overhead: recording the finished job, waking the dispatcher, claiming the next job in the
fair order from the store, telling the waiting jobs their places, building the request and sending
it. `limit` on reserves every job against budgets, as the bot does. The loopback server runs in this process,
so the second figure includes its own share of the event loop (previews streamed to the other jobs
in flight); the first is the queue's part alone. Tests never assert on these numbers.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.app import build_ai
from bot.config import settings_from
from bot.core.images import ImageOptions, ImageService
from bot.core.jobs import JobEvent, RenderRequest
from bot.core.queue import RenderQueue
from bot.models import Limits
from bot.store import PostgresStore, SQLiteStore, Store
from loopback.fake_openai import FakeOpenAI, ImageReply
from loopback.postgres_admin import fresh_database

CONCURRENCY = 4
GUILD = 1


class Clock:
    """When each image request arrived at the fake, and when each job's slot freed in the bot."""

    def __init__(self, image_seconds: float) -> None:
        self.image_seconds = image_seconds
        self.arrivals: list[float] = []
        self.freed: list[float] = []
        self.claimed: list[float] = []
        # The first pictures wait until every job is queued, so each gap is measured with all of them waiting.
        self.all_queued = asyncio.Event()

    async def __call__(self, params: Mapping[str, Any]) -> ImageReply:
        self.arrivals.append(time.perf_counter())
        await self.all_queued.wait()
        await asyncio.sleep(self.image_seconds)
        return ImageReply()


async def run(
    jobs: int, members: int, image_seconds: float, with_limits: bool, server_url: str | None, queues: int
) -> None:
    fake = FakeOpenAI()
    await fake.start()
    clock = Clock(image_seconds)
    fake.image_handler = clock
    with tempfile.TemporaryDirectory() as folder, fresh_database(server_url) as database_url:
        settings = settings_from(
            {"DISCORD_TOKEN": "bench", "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": fake.base_url}
        )
        stores: list[Store] = []
        for _ in range(queues):
            stores.append(
                await PostgresStore.open(database_url)
                if database_url
                else await SQLiteStore.open(Path(folder) / "queue.db")
            )
        store = stores[0]
        ai = build_ai(settings, safety_salt="bench-salt-0123456789")
        images = ImageService(ai, defaults=ImageOptions("gpt-image-2", "1024x1024", "low"))
        deployment = [RenderQueue(each, images, concurrency=CONCURRENCY) for each in stores]
        for queue, each in zip(deployment, stores, strict=True):
            _time_slots_and_claims(queue, each, clock)
        place_updates = 0

        async def on_event(event: JobEvent) -> None:
            nonlocal place_updates
            place_updates += event.stage == "queued"

        limits = Limits(member_daily_pictures=1_000, member_daily_spend=1_000.0, server_daily_spend=10_000.0)
        try:
            sessions = [
                (
                    await store.create_session(
                        guild_id=GUILD,
                        channel_id=2,
                        owner_id=1000 + member,
                        origin="prompt",
                        idea="a fox",
                        target="openai",
                        style=None,
                        first_prompt="A red fox on a snowy hill at dawn.",
                    )
                )[0]
                for member in range(members)
            ]
            submitted = []
            started = time.perf_counter()
            for index in range(jobs):
                session = sessions[index % members]
                request = RenderRequest(
                    session_id=session.id,
                    version=1,
                    prompt=f"picture {index}",
                    requester_id=session.owner_id,
                    channel_id=2,
                    options=images.options(quality="low"),
                    guild_id=GUILD,
                    limits=limits if with_limits else None,
                )
                queue = deployment[index % queues]
                submitted.append(await queue.submit(request, on_event=on_event))
            queueing = time.perf_counter() - started
            clock.all_queued.set()
            await asyncio.gather(*(job.result() for job in submitted))
            total = time.perf_counter() - started
        finally:
            for queue in deployment:
                await queue.shutdown()
            await ai.close()
            for each in stores:
                await each.close()
            await fake.close()

    freed = sorted(clock.freed)
    gaps = _gaps(freed, clock.arrivals)
    claims = _gaps(freed, clock.claimed)
    ideal = jobs * image_seconds / CONCURRENCY
    print(
        f"jobs={jobs} members={members} concurrency={CONCURRENCY} fake image time={image_seconds * 1000:.0f} ms"
        f" budgets={'on' if with_limits else 'off'} store={'postgresql' if server_url else 'sqlite'}"
        f" queues={queues}"
    )
    print(f"jobs per second: {jobs / total:.1f}")
    print(f"queueing all {jobs}: {queueing * 1000:.0f} ms ({queueing / jobs * 1000:.2f} ms per job)")
    print(f"all done: {total:.2f} s (ideal {ideal:.2f} s); place updates sent: {place_updates}")
    print(f"slot free -> next job claimed in the store: {_spread(claims)}")
    print(f"slot free -> next request at the API:      {_spread(gaps)}")


def _time_slots_and_claims(queue: RenderQueue, store: Store, clock: Clock) -> None:
    """Note when each of this queue's slots frees and each of its claims lands."""
    original_ended = queue._ended

    def ended(job: Any, task: Any) -> None:
        clock.freed.append(time.perf_counter())  # the slot is free from here on
        original_ended(job, task)

    queue._ended = ended  # type: ignore[method-assign]
    original_claim = store.claim_next_render

    async def claim(candidates: Any, **kwargs: Any) -> Any:
        claimed = await original_claim(candidates, **kwargs)
        if claimed is not None:
            clock.claimed.append(time.perf_counter())  # the next job is chosen and marked running
        return claimed

    store.claim_next_render = claim  # type: ignore[method-assign]


def _gaps(freed: list[float], later: list[float]) -> list[float]:
    """Milliseconds from the k-th freed slot to the (concurrency + k)-th event after it."""
    return sorted(
        (after - before) * 1000 for before, after in zip(freed, sorted(later)[CONCURRENCY:], strict=False)
    )


def _spread(gaps: list[float]) -> str:
    p99 = gaps[max(0, int(len(gaps) * 0.99) - 1)]
    return f"median {statistics.median(gaps):.2f} ms, p99 {p99:.2f} ms, max {gaps[-1]:.2f} ms (n={len(gaps)})"


def main() -> None:
    args = sys.argv[1:]
    jobs = int(args[0]) if args else 200
    members = int(args[1]) if len(args) > 1 else 50
    image_seconds = float(args[2]) if len(args) > 2 else 0.02
    with_limits = (args[3] != "off") if len(args) > 3 else True
    server_url = args[4] if len(args) > 4 else None
    queues = int(args[5]) if len(args) > 5 else 1
    if queues > 1 and server_url is None:
        sys.exit("several queues share a PostgreSQL database: give its server's URL too")
    asyncio.run(run(jobs, members, image_seconds, with_limits, server_url, queues))


if __name__ == "__main__":
    main()
