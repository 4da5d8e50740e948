"""Run an ASGI app (the labelling app, the OpenAI-compatible server) with uvicorn in a background
thread, for tests, notebooks and benchmarks. The app's lifespan runs (startup and shutdown)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve `app` on `host` (a free port unless given) until the block ends; yield its base URL."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port or 0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on {host}:{port or 'a free port'}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
