"""The server's listening socket: connections it accepts must have Nagle's algorithm off."""

from __future__ import annotations

import asyncio
import socket

from mmsearch.server.http import _bind


def test_accepted_connections_have_nodelay() -> None:
    """uvicorn serves on the socket _bind makes; asyncio sets TCP_NODELAY on an accepted connection only when
    the listening socket's proto is TCP. Without it each answer on a kept-alive connection (http.client,
    httpx, gradio_client, browsers) waited ~40 ms for the delayed ACK (bench/bench_serving.py found it)."""
    sock = _bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            conn = transport.get_extra_info("socket")
            seen.append(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def serve_one() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(serve_one())
    assert seen and seen[0] != 0, f"accepted connection has TCP_NODELAY={seen}"
