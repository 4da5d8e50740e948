"""The server under pressure: a full queue (429), a request past its timeout (504), a failed batch
(500), shutting down (503), and a client that leaves a stream; after each, it goes on serving.

A gated generator holds the worker inside a batch until the test opens the gate, so which request
is running and which is queued is decided by the test, not by timing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from serving_support import HELLO, MODEL, client

from alignlab.generation.hf import HFGenerator
from alignlab.serving.app import app_for_generator
from alignlab.serving.settings import ServerSettings
from alignlab.webserver import serve_in_thread

openai = pytest.importorskip("openai", reason="the official openai client is a dev dependency")


class GatedGenerator(HFGenerator):
    """Batches wait for `gate`; `fail_next` makes the next batch raise; `token_delay` slows each token."""

    def __init__(self, model, tokenizer) -> None:
        super().__init__(model, tokenizer)
        self.gate, self.entered = threading.Event(), threading.Event()
        self.fail_next, self.token_delay = False, 0.0
        self.results: list = []

    def generate_each(self, prompt_ids, params, *, listener=None):
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("out of memory (simulated)")
        if self.token_delay and listener is not None:
            listener = _Slow(listener, self.token_delay)
        out = super().generate_each(prompt_ids, params, listener=listener)
        self.results.append(out)
        return out


class _Slow:
    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay = inner, delay

    def token(self, *args) -> None:
        time.sleep(self.delay)
        self.inner.token(*args)

    def done(self, *args) -> None:
        self.inner.done(*args)

    def cancelled(self, request: int) -> bool:
        return self.inner.cancelled(request)


@pytest.fixture
def gated(model_dir):
    """(app, generator, base URL) of a server whose worker waits at the gate."""
    from alignlab.modeling.loading import load_causal_lm, load_tokenizer

    def make(**options):
        gen = GatedGenerator(
            load_causal_lm(str(model_dir), device="cpu").eval(), load_tokenizer(str(model_dir))
        )
        settings = ServerSettings(model_name=MODEL, batch_window_ms=0, **options)
        app = app_for_generator(gen, load_tokenizer(str(model_dir)), MODEL, settings)
        return app, gen, serve_in_thread(app)

    return make


def wait_until(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def ask(url: str, **kwargs) -> httpx.Response:
    # Greedy: a sampled first token could be the end-of-turn token and end the reply at once.
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 3, "temperature": 0, **kwargs}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)


def queued(url: str) -> int:
    return httpx.get(f"{url}/health", timeout=30).json()["queued"]


def test_a_full_queue_answers_429_and_the_waiting_requests_are_served(gated) -> None:
    app, gen, serving = gated(max_queue=1)
    with serving as url, ThreadPoolExecutor(2) as pool:
        running = pool.submit(ask, url)
        wait_until(gen.entered.is_set, "the worker holds the first request")
        waiting = pool.submit(ask, url)
        wait_until(lambda: queued(url) == 1, "the second request is queued")
        with pytest.raises(openai.RateLimitError) as caught:
            client(url).chat.completions.create(model=MODEL, messages=HELLO, max_tokens=3)
        err = caught.value
        assert err.status_code == 429 and err.code == "queue_full" and err.type == "rate_limit_error"
        assert err.response.headers["retry-after"] == "1"
        gen.gate.set()
        assert running.result().status_code == 200 and waiting.result().status_code == 200
        assert ask(url).status_code == 200


def test_a_request_past_its_timeout_gets_504_and_stops_generating(gated) -> None:
    app, gen, serving = gated(request_timeout_s=1.0)
    with serving as url, ThreadPoolExecutor(1) as pool:
        late = pool.submit(ask, url, max_tokens=50)
        wait_until(gen.entered.is_set, "the worker holds the request")
        r = late.result()
        assert r.status_code == 504
        assert r.json()["error"] == {"message": r.json()["error"]["message"], "type": "timeout_error",
                                     "param": None, "code": "request_timeout"}  # fmt: skip
        gen.gate.set()
        wait_until(lambda: gen.results, "the worker gives up the late request")
        assert gen.results[0][0][0].error == "cancelled"  # abandoned at its first step, not run to 50 tokens
        assert ask(url).status_code == 200


def test_a_failed_batch_answers_500_and_the_server_goes_on(gated) -> None:
    app, gen, serving = gated()
    gen.fail_next = True
    gen.gate.set()
    with serving as url:
        r = ask(url)
        assert r.status_code == 500
        err = r.json()["error"]
        assert (
            err["type"] == "server_error"
            and err["code"] == "generation_failed"
            and "out of memory" in err["message"]
        )
        assert ask(url).status_code == 200
        assert httpx.get(f"{url}/health", timeout=30).json()["status"] == "ok"


def test_shutting_down_answers_503_to_running_queued_and_new_requests(gated) -> None:
    app, gen, serving = gated()
    with serving as url, ThreadPoolExecutor(2) as pool:
        running = pool.submit(ask, url)
        wait_until(gen.entered.is_set, "the worker holds the first request")
        waiting = pool.submit(ask, url)
        wait_until(lambda: queued(url) == 1, "the second request is queued")
        closing = threading.Thread(target=app.state.serving.engine.close)
        closing.start()
        assert waiting.result().json()["error"]["code"] == "shutting_down"
        gen.gate.set()
        closing.join(30)
        assert (
            running.result().status_code == 503
            and running.result().json()["error"]["code"] == "shutting_down"
        )
        late = ask(url)
        assert late.status_code == 503 and late.json()["error"]["type"] == "server_error"
        assert httpx.get(f"{url}/health", timeout=30).status_code == 503


def test_a_client_that_leaves_a_stream_stops_its_generation(gated) -> None:
    app, gen, serving = gated()
    gen.gate.set()
    gen.token_delay = 0.01  # 200 tokens would take 2 s
    with serving as url:
        # Greedy runs 200 tokens, whitespace only; with log-probs every token still sends a chunk.
        stream = client(url).chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=200, temperature=0, logprobs=True, stream=True
        )
        for i, _ in enumerate(stream):
            if i == 2:
                break
        stream.close()
        wait_until(lambda: gen.results, "the worker ends the abandoned request")
        (completion,) = gen.results[0][0]
        assert completion.error == "cancelled"
        assert ask(url).status_code == 200
