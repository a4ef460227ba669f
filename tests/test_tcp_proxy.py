"""The loopback TCP proxy the outage tests put between the bot and PostgreSQL: it forwards bytes untouched,
`cut()` closes every connection and refuses new ones, `restore()` accepts again on the same port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from loopback.tcp_proxy import TcpProxy

pytestmark = pytest.mark.asyncio


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        if data == b"bye\n":
            writer.write(b"goodbye\n")
            break
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest_asyncio.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    """A proxy in front of an echo server (which says goodbye and closes when told `bye`)."""
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    async with TcpProxy(server.sockets[0].getsockname()[1]) as started:
        yield started
    server.close()


async def connect(proxy: TcpProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(proxy.host, proxy.port)


async def test_bytes_pass_both_ways_untouched(proxy: TcpProxy) -> None:
    reader, writer = await connect(proxy)
    payload = bytes(range(256)) * 1000
    writer.write(payload)
    assert await reader.readexactly(len(payload)) == payload
    assert proxy.open_connections == 1 and proxy.connections == 1
    writer.close()


async def test_what_the_target_says_last_reaches_the_client_before_the_close(proxy: TcpProxy) -> None:
    reader, writer = await connect(proxy)
    writer.write(b"bye\n")
    assert await reader.read() == b"goodbye\n"  # then the end of the stream
    await asyncio.sleep(0.05)
    assert proxy.open_connections == 0
    writer.close()


async def test_a_cut_closes_open_connections_and_refuses_new_ones_until_restored(proxy: TcpProxy) -> None:
    reader, writer = await connect(proxy)
    writer.write(b"ping\n")
    assert await reader.readexactly(5) == b"ping\n"

    proxy.cut()

    assert await reader.read() == b""
    assert proxy.open_connections == 0 and proxy.cut_off
    with pytest.raises(ConnectionRefusedError):
        await connect(proxy)

    port = proxy.port
    await proxy.restore()
    assert proxy.port == port and not proxy.cut_off
    reader, writer = await connect(proxy)
    writer.write(b"again\n")
    assert await reader.readexactly(6) == b"again\n"
    writer.close()


async def test_a_target_that_refuses_is_a_refusal_through_the_proxy() -> None:
    closed = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    async with TcpProxy(port) as proxy:
        reader, writer = await connect(proxy)
        assert await reader.read() == b""
        writer.close()


async def test_postgresql_through_the_proxy_goes_away_on_a_cut_and_answers_after_a_restore(
    postgres_url: str,
) -> None:
    async with TcpProxy() as proxy:
        url = proxy.url_for(postgres_url)
        assert url.startswith(f"postgresql://postgres@127.0.0.1:{proxy.port}/")
        connection = await asyncpg.connect(url)
        assert await connection.fetchval("SELECT 1") == 1

        proxy.cut()

        with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)):
            await connection.fetchval("SELECT 1")
        with pytest.raises(ConnectionRefusedError):
            await asyncpg.connect(url, timeout=2)

        await proxy.restore()
        again = await asyncpg.connect(url)
        assert await again.fetchval("SELECT 2") == 2
        await again.close()


async def test_url_for_keeps_the_credentials_and_the_database() -> None:
    proxy = TcpProxy()
    proxy.port = 6543
    assert (
        proxy.url_for("postgresql://mural:secret@db.example:5432/mural?sslmode=disable")
        == "postgresql://mural:secret@127.0.0.1:6543/mural?sslmode=disable"
    )
