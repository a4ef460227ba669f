"""Watching a picture form: time from Generate to the first preview and to the final picture, and how
often the message is edited while it streams.

Run from the repository root: `.venv/bin/python -m bench.stream [rounds] [seconds_per_event]`
(defaults 10 and 0.5). The fake image API streams two partial previews and then the picture, each
`seconds_per_event` apart, so the ideal is: first preview after one step, the picture after three.
Every round is a Generate pressed inside the session's thread (the picture answers the press). Numbers
go in issue notes; tests never assert on wall-clock time.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from loopback.fake_discord import FakeDiscord, RecordedRequest
from loopback.fake_openai import FakeOpenAI, ImageReply, make_png
from loopback.load import summary
from loopback.rig import DISCORD_TOKEN, Rig

PROMPT = "A red fox on a snowy hill at dawn, soft pink light, long shadows, shallow depth of field."


def _picture_request(request: RecordedRequest, final: bytes) -> bool:
    return any(upload.data == final for upload in request.files)


async def run(rounds: int, step: float) -> None:
    discord_server = FakeDiscord(token=DISCORD_TOKEN, interaction_deadline=30)
    await discord_server.start()
    openai_server = FakeOpenAI()
    await openai_server.start()
    to_preview: list[float] = []
    to_picture: list[float] = []
    edit_rates: list[float] = []
    edits_per_render: list[int] = []
    with tempfile.TemporaryDirectory() as folder, discord_server.patched():
        rig = Rig(discord=discord_server, openai=openai_server, database=Path(folder) / "bench.db", within=30)
        await rig.start_bot()
        try:
            member = discord_server.add_member("member")
            _, _, thread = await rig.start_prompt(member, "a fox in the snow", PROMPT)
            thread_id = int(thread["id"])
            rig.openai.script_chat(PROMPT)
            await discord_server.user_message(member, thread_id, "a little more light")
            head = await rig.wait_for_bot_message(thread_id, "### v2")
            generate = next(b for b in discord_server.buttons_of(head) if b["label"] == "Generate")
            for index in range(rounds):
                previews = [make_png(64, 64, (index % 200, 40, 40)), make_png(64, 64, (index % 200, 80, 80))]
                final = make_png(64, 64, (index % 200, 200, 10))
                openai_server.script_images(ImageReply(png=final, partial_pngs=previews, partial_delay=step))
                start_index = len(discord_server.requests)
                pressed = await discord_server.click(member, int(head["id"]), generate["custom_id"])
                begin = pressed.dispatched_at
                done = await discord_server.wait_for(
                    lambda start=start_index, final=final: next(
                        (r for r in discord_server.requests[start:] if _picture_request(r, final)), None
                    ),
                    30,
                    message="the final picture",
                )
                edits = [
                    r
                    for r in discord_server.requests[start_index:]
                    if r.method == "PATCH" and pressed.token in r.path and 200 <= r.status < 300
                ]
                shown = [r for r in edits if any(u.data in previews for u in r.files)]
                if shown:
                    to_preview.append(shown[0].at - begin)
                to_picture.append(done.at - begin)
                edits_per_render.append(len(edits))
                span = edits[-1].at - edits[0].at if len(edits) > 1 else 0.0
                if span > 0:
                    edit_rates.append((len(edits) - 1) / span)
        finally:
            await rig.stop_bot()
            await openai_server.close()
            await discord_server.close()

    print(f"rounds={rounds} fake stream: 2 previews then the picture, {step:.2f} s apart")
    print(f"ideal: first preview {step * 1000:.0f} ms, picture {3 * step * 1000:.0f} ms after the request")
    print(summary("Generate → first preview shown", to_preview))
    print(summary("Generate → final picture shown", to_picture))
    print(f"{'previews shown':<34} {len(to_preview)} of {rounds} renders")
    print(f"{'message edits per render':<34} {sum(edits_per_render) / max(1, len(edits_per_render)):.1f}")
    rate = max(edit_rates) if edit_rates else 0.0
    print(
        f"{'edits per second while streaming':<34} max {rate:.2f}, mean {sum(edit_rates) / max(1, len(edit_rates)):.2f}"
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(run(int(args[0]) if args else 10, float(args[1]) if len(args) > 1 else 0.5))
