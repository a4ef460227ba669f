"""The web gallery: how long a page of a server with many pictures takes to serve.

Run from the repository root: `.venv/bin/python -m bench.gallery [pictures] [postgresql://server]`
(default 5,000 pictures in a SQLite file; with a server URL, in a fresh PostgreSQL database made for the
run and dropped afterwards). The store is filled as the bot fills it (`keep_gallery_picture`: 20 channels,
50 members, prompts of about 60 words), a server link's scope is kept with its channels, and the gallery
is served on loopback on this loop; each page is then fetched over HTTP with keep-alive, as a browser
does, and timed from request to last byte. Tests never assert on these numbers.
"""

from __future__ import annotations

import asyncio
import io
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from PIL import Image, ImageFilter

from bot.core.gallery import (
    PAGE_SIZE,
    GalleryScope,
    KeptPicture,
    LinkClaims,
    new_scope_id,
    read_link,
    sign_link,
)
from bot.store import PostgresStore, SQLiteStore, Store
from bot.web import serve_gallery

GUILD = 1
CHANNELS = 20
MEMBERS = 50
ROUNDS = 200
SECRET = secrets.token_urlsafe(40)
WORDS = (
    "lighthouse",
    "dusk",
    "harbour",
    "fox",
    "meadow",
    "neon",
    "city",
    "rain",
    "portrait",
    "oil",
    "painting",
    "watercolor",
    "cinematic",
    "golden",
    "hour",
    "misty",
    "forest",
    "castle",
    "dragon",
    "robot",
    "garden",
    "ocean",
    "sunrise",
    "desert",
    "canyon",
    "snow",
    "mountain",
    "village",
    "lantern",
)


def picture_webp() -> bytes:
    """One 1024 px WebP with some texture (a flat colour would compress to nothing; real pictures vary)."""
    noise = Image.effect_noise((1024, 1024), 30).filter(ImageFilter.GaussianBlur(1))
    gradient = Image.linear_gradient("L").resize((1024, 1024))
    fractal = Image.effect_mandelbrot((1024, 1024), (-2, -1.5, 1, 1.5), 60)
    out = io.BytesIO()
    Image.merge("RGB", (noise, gradient, fractal)).save(out, format="WEBP", quality=80)
    return out.getvalue()


def file_size(path: Path) -> int:
    return path.stat().st_size


async def fill(store: Store, pictures: int, webp: bytes) -> None:
    await store.change_server_settings(GUILD, {"gallery": True})
    chance = random.Random(16)
    for number in range(pictures):
        prompt = " ".join(chance.choice(WORDS) for _ in range(60))
        await store.keep_gallery_picture(
            KeptPicture(
                render_id=number + 1,
                picture_index=0,
                guild_id=GUILD,
                in_server=True,
                channel_id=100 + number % CHANNELS,
                parent_id=None,
                private_thread=False,
                message_id=10**17 + number,
                owner_id=1000 + number % MEMBERS,
                owner_name=f"member {number % MEMBERS}",
                prompt=prompt,
                model="gpt-image-2",
                size="1024x1024",
                width=1024,
                height=1024,
                webp=webp,
            )
        )


async def link(store: Store) -> str:
    expires = int(time.time()) + 3600
    scope = GalleryScope(
        new_scope_id(), 1000, GUILD, frozenset(100 + channel for channel in range(CHANNELS)), expires
    )
    await store.save_gallery_scope(scope)
    return sign_link(LinkClaims(scope.scope_id, scope.user_id, GUILD, expires), SECRET)


async def timed(session: aiohttp.ClientSession, url: str) -> tuple[float, int]:
    started = time.perf_counter()
    async with session.get(url) as response:
        body = await response.read()
        assert response.status == 200, response.status
    return (time.perf_counter() - started) * 1000, len(body)


async def measure(store: Store, label: str) -> None:
    token = await link(store)
    server = await serve_gallery(store, secret=SECRET, host="127.0.0.1", port=0)
    assert server is not None
    base = f"http://127.0.0.1:{server.port}/g/{token}"
    newest = (await store.gallery_page(await _scope(store, token), limit=1))[0].id
    pages = {
        "first page (48)": base,
        "page 50 (before=…)": f"{base}?before={newest - 49 * PAGE_SIZE}",
        "search, 2 words": f"{base}?q=lighthouse+dusk",
        "search, rare word": f"{base}?q=zeppelin",
        "only mine": f"{base}?mine=1",
        "one picture's page": f"{base}/p/{newest}",
        "one picture (WebP)": f"{base}/img/{newest}.webp",
    }
    print(f"\n{label}: ms from request to last byte over loopback, {ROUNDS} rounds after 10 warm-ups")
    print(f"{'page':<22}{'median':>8}{'p95':>8}{'max':>8}{'bytes':>9}")
    try:
        async with aiohttp.ClientSession() as session:
            for name, url in pages.items():
                for _ in range(10):
                    await timed(session, url)
                times, size = [], 0
                for _ in range(ROUNDS):
                    took, size = await timed(session, url)
                    times.append(took)
                times.sort()
                p95 = times[int(len(times) * 0.95) - 1]
                print(f"{name:<22}{statistics.median(times):8.2f}{p95:8.2f}{times[-1]:8.2f}{size:9d}")
    finally:
        await server.close()


async def _scope(store: Store, token: str) -> GalleryScope:
    claims = read_link(token, SECRET, now=time.time())
    assert claims is not None
    scope = await store.gallery_scope(claims.scope_id)
    assert scope is not None
    return scope


async def run(pictures: int, server_url: str | None) -> None:
    webp = picture_webp()
    print(
        f"{pictures} pictures of one server, {CHANNELS} channels, {MEMBERS} members; WebP {len(webp)} bytes each"
    )
    if server_url is None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "mural.db"
            store = await SQLiteStore.open(path)
            try:
                before = file_size(path)
                started = time.perf_counter()
                await fill(store, pictures, webp)
                print(f"filled in {time.perf_counter() - started:.1f} s")
                await measure(store, "SQLite")
            finally:
                await store.close()
            grown = file_size(path) - before
            print(
                f"\nSQLite file grew {grown / pictures / 1024:.1f} KiB per picture (WebP {len(webp) / 1024:.1f} KiB)"
            )
        return
    name = f"mural_bench_gallery_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        store = await PostgresStore.open(urlunsplit(urlsplit(server_url)._replace(path=f"/{name}")))
        try:
            started = time.perf_counter()
            await fill(store, pictures, webp)
            print(f"filled in {time.perf_counter() - started:.1f} s")
            await measure(store, "PostgreSQL")
        finally:
            await store.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    pictures = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    asyncio.run(run(pictures, sys.argv[2] if len(sys.argv) > 2 else None))


if __name__ == "__main__":
    main()
