"""A small OpenAI-compatible chat-completions server for tests, on 127.0.0.1 (FastAPI + uvicorn).

It is scripted, not a model: for a comparison prompt (options `(A) ...` and `(B) ...`) it prefers the
longer response with a lean towards (A), P(A) = sigmoid(len(A) - len(B) + bias) in characters, and
answers `Answer: A` or `Answer: B` with OpenAI-style top log-probs at the answer token; any other
prompt gets `Revised: <its last turn>`. It lists one model at /v1/models, and answers 500 to
requests whose prompt contains `fail_marker` (while one is set). Kept apart so that a test can
swap it for `alignlab serve` of a model that judges.
"""

from __future__ import annotations

import math
import re
import socket
import threading
import time

OPTION = re.compile(r"^\((A|B)\) (.*)$", re.MULTILINE)
MODEL = "stub-judge"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def p_a(a: str, b: str, bias: float) -> float:
    p = 1 / (1 + math.exp(-(len(a) - len(b) + bias)))
    return min(max(p, 1e-6), 1 - 1e-6)


def _choice(text: str, body: dict, probability: float | None) -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if probability is not None and body.get("logprobs"):
        answer = text[-1]
        top = [{"token": " A", "logprob": math.log(probability)},
               {"token": " B", "logprob": math.log(1 - probability)}][: body.get("top_logprobs") or 1]
        chosen = math.log(max(probability, 1 - probability))
        choice["logprobs"] = {"content": [
            {"token": "Answer", "logprob": 0.0, "top_logprobs": []},
            {"token": ":", "logprob": 0.0, "top_logprobs": []},
            {"token": f" {answer}", "logprob": chosen, "top_logprobs": top},
        ]}
    return choice


class StubServer:
    """`with StubServer(bias=1.5) as url:` serves at `url` (http://127.0.0.1:PORT/v1) inside the block."""

    def __init__(self, bias: float = 0.0, port: int | None = None, fail_marker: str | None = None):
        self.bias, self.port, self.fail_marker = bias, port or free_port(), fail_marker
        self.requests: list[dict] = []
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self):
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse

        app = FastAPI()

        @app.get("/v1/models")
        def models():
            return {"object": "list", "data": [{"id": MODEL, "object": "model"}]}

        @app.post("/v1/chat/completions")
        def complete(body: dict):
            self.requests.append(body)
            last = body["messages"][-1]["content"]
            if self.fail_marker is not None and self.fail_marker in last:
                return JSONResponse({"error": {"message": "scripted failure"}}, status_code=500)
            options = dict(OPTION.findall(last))
            if {"A", "B"} <= set(options):
                p = p_a(options["A"], options["B"], self.bias)
                return {"choices": [_choice(f"Answer: {'A' if p >= 0.5 else 'B'}", body, p)]}
            return {"choices": [_choice(f"Revised: {last[-40:]}", body, None)]}

        return app

    def __enter__(self) -> str:
        import uvicorn

        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="error")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.time() + 20
        while not self._server.started:
            if time.time() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the stub server did not start on port {self.port}")
            time.sleep(0.01)
        return self.url

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
