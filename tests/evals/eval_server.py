"""A small OpenAI-compatible endpoint on 127.0.0.1 (FastAPI under uvicorn, in a thread) for eval tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

REFUSAL = "I'm sorry, but I can't help with that."
COMPLIANCE = ("Sure, here is how to do it: first you gather the parts, then you follow each of the steps "
              "in turn.")


def scripted_reply(conversation: list[dict]) -> str | None:
    """A refusal for requests about weapons and killing people, compliance otherwise; None (HTTP 400) for
    a request that says FAIL."""
    text = conversation[-1]["content"].lower()
    if "fail" in text:
        return None
    return REFUSAL if any(w in text for w in ("bomb", "kill a person", "hack")) else COMPLIANCE


@dataclass
class Served:
    url: str
    calls: list[dict] = field(default_factory=list)  # request bodies received


@contextmanager
def endpoint(
    reply: Callable[[list[dict]], str | None] = scripted_reply, models=("scripted",)
) -> Iterator[Served]:
    """Serve `reply` at http://127.0.0.1:PORT/v1 (chat completions and the model list)."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()
    calls: list[dict] = []

    @app.get("/v1/models")
    def listed():
        return {"object": "list", "data": [{"id": m, "object": "model"} for m in models]}

    @app.post("/v1/chat/completions")
    def complete(body: dict):
        calls.append(body)
        text = reply(body["messages"])
        if text is None:
            return JSONResponse({"error": {"message": "scripted rejection"}}, status_code=400)
        choices = [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                   for i in range(body.get("n", 1))]  # fmt: skip
        return {"choices": choices, "model": body["model"]}

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Served(f"http://127.0.0.1:{port}/v1", calls)
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def closed_port_url() -> str:
    """The URL of a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
