"""A TCP proxy on loopback that a test can cut: the database going away under a running bot, and back.

`TcpProxy(target_port=5432)` listens on 127.0.0.1 (a port of its own) and forwards every connection to
the target, bytes untouched, so PostgreSQL's protocol, TLS negotiation and all, passes as it is.
`cut()` is an outage as a client meets it when the server goes down: every open connection is closed
at once (both ways) and new connections are refused (nothing listens on the port any more).
`restore()` listens again on the same port; the clients reconnect by themselves, or do not.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

_CHUNK = 64 * 1024


@dataclass(eq=False)
class _Link:
    """One client's connection and the one the proxy opened to the target for it."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        # No goodbye on either side: a peer that vanishes, as when a server stops or a cable is pulled.
        for writer in (self.client, self.upstream):
            writer.transport.abort()

    def close(self) -> None:
        # One side said goodbye: pass on what it sent last (say, PostgreSQL's reason), then close both.
        for writer in (self.client, self.upstream):
            writer.close()


class TcpProxy:
    def __init__(self, target_port: int = 5432, *, target_host: str = "127.0.0.1", host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._cut = False
        # How many connections were forwarded, ever: a test can tell that a client reconnected.
        self.connections = 0

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> TcpProxy:
        await self._listen()
        return self

    async def close(self) -> None:
        self.cut()

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def cut_off(self) -> bool:
        return self._cut

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def url_for(self, url: str) -> str:
        """`url` (a database URL of the target) pointed at the proxy instead."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@{self.host}:{self.port}" if credentials else f"{self.host}:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    # -- the outage -----------------------------------------------------------------------------------

    def cut(self) -> None:
        """Close every connection and refuse new ones, until `restore()`."""
        self._cut = True
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self._links):
            self._drop(link, abort=True)

    async def restore(self) -> None:
        """Accept connections again, on the same port."""
        self._cut = False
        if self._server is None:
            await self._listen()

    # -- forwarding -----------------------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()  # the target itself refuses: so does the proxy
            return
        if self._cut:  # cut while connecting
            upstream_writer.transport.abort()
            writer.transport.abort()
            return
        link = _Link(writer, upstream_writer)
        self._links.add(link)
        self.connections += 1
        link.pumps = [
            asyncio.create_task(self._pump(reader, upstream_writer, link), name="proxy-up"),
            asyncio.create_task(self._pump(upstream_reader, writer, link), name="proxy-down"),
        ]

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, link: _Link) -> None:
        try:
            while data := await source.read(_CHUNK):
                sink.write(data)
                await sink.drain()
        except OSError:
            self._drop(link, abort=True)
        else:
            # One side ended: so does the other, as with a direct connection.
            self._drop(link, abort=False)

    def _drop(self, link: _Link, *, abort: bool) -> None:
        if link not in self._links:
            return
        self._links.discard(link)
        if abort:
            link.abort()
        else:
            link.close()
        current = asyncio.current_task()
        for pump in link.pumps:
            if pump is not current:
                pump.cancel()
