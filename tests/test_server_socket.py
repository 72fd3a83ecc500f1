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


SERVE_PROBE = """
import os, sys, types
fake = types.ModuleType("mmsearch.ui.app")
fake.launch = lambda settings: print("launch", os.environ.get("OMP_WAIT_POLICY"), "torch" in sys.modules)
sys.modules["mmsearch.ui.app"] = fake
from mmsearch.cli import main
sys.argv = ["mmsearch", "serve", "--port", "0"]
main()
"""


def test_serve_sets_passive_openmp_before_torch_loads(tmp_path) -> None:
    """libgomp reads OMP_WAIT_POLICY once, when torch loads it: `mmsearch serve` must set it before any import
    of torch, and keep a value the user set."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(PYTHONPATH=str(root), MMSEARCH_DATA_DIR=str(tmp_path / "library"))
    run = lambda e: subprocess.run([sys.executable, "-c", SERVE_PROBE], env=e, capture_output=True,  # noqa: E731
                                   text=True, timeout=120, cwd=root)
    done = run(env)
    assert done.returncode == 0, done.stderr
    assert "launch PASSIVE False" in done.stdout, done.stdout + done.stderr
    done = run({**env, "OMP_WAIT_POLICY": "ACTIVE"})
    assert "launch ACTIVE False" in done.stdout, done.stdout + done.stderr
