"""The OpenAI-compatible HTTP backend against httpx's MockTransport and a local uvicorn server."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from alignlab.data.schema import Message, ToolCall
from alignlab.generation.base import Generator, SamplingParams
from alignlab.generation.http import EndpointError, HTTPGenerator, openai_message

URL = "http://endpoint.test/v1"
PROMPTS = [[Message(role="user", content="first")], [Message(role="user", content="second")]]


def choice(i: int, text: str, finish: str = "stop", logprobs: bool = False) -> dict:
    c = {"index": i, "message": {"role": "assistant", "content": f" {text} "}, "finish_reason": finish}
    if logprobs:
        c["logprobs"] = {
            "content": [
                {
                    "token": "A",
                    "logprob": -0.1,
                    "top_logprobs": [{"token": "B", "logprob": -2.4}, {"token": "A", "logprob": -0.1}],
                },
                {"token": ".", "logprob": -0.5, "top_logprobs": [{"token": ".", "logprob": -0.5}]},
            ]
        }
    return c


class Endpoint:
    """A scripted endpoint: `failures` answers (status codes or exceptions) come before each success."""

    def __init__(self, failures: list = ()) -> None:
        self.failures = list(failures)
        self.bodies: list[dict] = []
        self.headers: list[httpx.Headers] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            body = json.loads(request.content)
            self.bodies.append(body)
            self.headers.append(request.headers)
            failure = self.failures.pop(0) if self.failures else None
        if isinstance(failure, Exception):
            raise failure
        if failure is not None:
            return httpx.Response(failure, json={"error": {"message": f"scripted {failure}"}})
        last = body["messages"][-1]["content"]
        choices = [choice(i, f"{last}-{i}", logprobs=body.get("logprobs", False)) for i in range(body["n"])]
        return httpx.Response(200, json={"choices": choices})

    def generator(self, **kw) -> HTTPGenerator:
        return HTTPGenerator(URL, "m", backoff=0.001, transport=httpx.MockTransport(self), **kw)


def test_success_with_n_completions_in_prompt_order() -> None:
    endpoint = Endpoint()
    gen = endpoint.generator(api_key="sk-test", concurrency=2)
    assert isinstance(gen, Generator)
    out = gen.generate(
        PROMPTS, SamplingParams(max_new_tokens=7, temperature=0.5, top_p=0.9, n=3, stop=("\n",), seed=4)
    )
    assert [[c.text for c in cs] for cs in out] == [
        [f"first-{i}" for i in range(3)],
        [f"second-{i}" for i in range(3)],
    ]
    assert all(c.finish_reason == "stop" and c.token_ids == () for cs in out for c in cs)
    assert out[0][0].logprobs == (-0.1, -0.5) and out[0][0].top_logprobs is None
    body = endpoint.bodies[0]
    assert {
        k: body[k] for k in ("model", "n", "max_tokens", "temperature", "top_p", "stop", "seed", "logprobs")
    } == {
        "model": "m",
        "n": 3,
        "max_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["\n"],
        "seed": 4,
        "logprobs": True,
    }
    assert "top_k" not in body and "top_logprobs" not in body
    assert endpoint.headers[0]["authorization"] == "Bearer sk-test"


def test_top_logprobs_are_asked_for_and_read() -> None:
    endpoint = Endpoint()
    (c,), _ = endpoint.generator(logprobs=False).generate(PROMPTS, SamplingParams(top_logprobs=2, top_k=5))
    assert endpoint.bodies[0]["top_logprobs"] == 2 and endpoint.bodies[0]["logprobs"] is True
    assert endpoint.bodies[0]["top_k"] == 5
    assert c.top_logprobs == ({"A": -0.1, "B": -2.4}, {".": -0.5})
    assert list(c.top_logprobs[0]) == ["A", "B"]  # most likely first


def test_retries_on_429_5xx_and_connection_errors_then_succeeds() -> None:
    endpoint = Endpoint([429, 503, httpx.ConnectError("reset"), 500])
    gen = endpoint.generator(max_retries=4)
    (c,) = gen.generate(PROMPTS[:1], SamplingParams())[0]
    assert c.text == "first-0" and not c.failed
    assert gen.requests_sent == 5


def test_failure_after_retries_is_an_error_completion_and_the_rest_go_on() -> None:
    endpoint = Endpoint([503, 503, 503])
    gen = endpoint.generator(max_retries=2, concurrency=1)
    bad, good = gen.generate(PROMPTS, SamplingParams(n=2))
    assert [c.finish_reason for c in bad] == ["error", "error"]
    assert "HTTP 503: scripted 503" in bad[0].error
    assert [c.text for c in good] == ["second-0", "second-1"]


def test_a_lost_connection_after_the_start_is_an_error_completion() -> None:
    endpoint = Endpoint()
    gen = endpoint.generator(max_retries=0, concurrency=1)
    gen.generate(PROMPTS[:1], SamplingParams())
    endpoint.failures = [httpx.ConnectError("refused")]
    (c,) = gen.generate(PROMPTS[:1], SamplingParams())[0]
    assert c.failed and "ConnectError" in c.error


def test_a_rejected_request_is_not_retried() -> None:
    endpoint = Endpoint([400])
    gen = endpoint.generator(max_retries=3, concurrency=1)
    bad, good = gen.generate(PROMPTS, SamplingParams())
    assert bad[0].failed and "HTTP 400" in bad[0].error and not good[0].failed
    assert gen.requests_sent == 2


def test_wrong_api_key_and_unknown_model_stop_the_run() -> None:
    with pytest.raises(EndpointError, match="check the API key"):
        Endpoint([401]).generator().generate(PROMPTS[:1], SamplingParams())
    with pytest.raises(EndpointError, match="serves model 'm'"):
        Endpoint([404]).generator().generate(PROMPTS[:1], SamplingParams())


def test_missing_choices_and_malformed_responses_are_errors() -> None:
    short = httpx.MockTransport(lambda r: httpx.Response(200, json={"choices": [choice(0, "only")]}))
    first, second = HTTPGenerator(URL, "m", transport=short).generate(PROMPTS[:1], SamplingParams(n=2))[0]
    assert first.text == "only" and second.failed and "1 of 2 choices" in second.error
    broken = httpx.MockTransport(lambda r: httpx.Response(200, json={"no": "choices"}))
    (c,) = HTTPGenerator(URL, "m", transport=broken).generate(PROMPTS[:1], SamplingParams())[0]
    assert c.failed and "malformed response" in c.error


def test_cache_answers_a_rerun_without_a_request(tmp_path) -> None:
    endpoint = Endpoint()
    params = SamplingParams(temperature=1.0, n=2)
    first = endpoint.generator(cache_dir=tmp_path).generate(PROMPTS, params)
    assert len(endpoint.bodies) == 2
    gen = Endpoint([500] * 10).generator(cache_dir=tmp_path, max_retries=0)
    assert gen.generate(PROMPTS, params) == first
    assert gen.requests_sent == 0
    assert not list(tmp_path.rglob("*.tmp"))
    # Another sampling parameter is another request.
    gen.generate(PROMPTS[:1], SamplingParams(temperature=1.0, n=2, seed=1))
    assert gen.requests_sent == 1


def test_failed_requests_are_not_cached(tmp_path) -> None:
    Endpoint([503]).generator(cache_dir=tmp_path, max_retries=0).generate(PROMPTS[:1], SamplingParams())
    endpoint = Endpoint()
    (c,) = endpoint.generator(cache_dir=tmp_path).generate(PROMPTS[:1], SamplingParams())[0]
    assert c.text == "first-0" and len(endpoint.bodies) == 1


def test_connection_refused_from_the_start_is_one_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    gen = HTTPGenerator(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff=0.001)
    with pytest.raises(EndpointError) as info:
        gen.generate(PROMPTS, SamplingParams())
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in message and "start the server" in message
    assert "\n" not in message


def test_messages_take_the_openai_shape() -> None:
    call = Message(role="assistant", content="", tool_calls=[ToolCall(id="c1", name="f", arguments={"x": 1})])
    assert openai_message(call)["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    ]
    reply = openai_message(Message(role="tool", content="42", tool_call_id="c1"))
    assert reply == {"role": "tool", "content": "42", "tool_call_id": "c1"}
    assert openai_message({"role": "user", "content": "hi"}) == {"role": "user", "content": "hi"}


def test_against_a_local_server_with_concurrency_limit() -> None:
    """A FastAPI app under uvicorn on 127.0.0.1: n > 1, a 503 retried, and at most 2 requests at once."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app, state = FastAPI(), {"calls": 0, "active": 0, "peak": 0}
    lock = threading.Lock()

    @app.post("/v1/chat/completions")
    def complete(body: dict):
        with lock:
            state["calls"] += 1
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
            first = state["calls"] == 1
        time.sleep(0.05)
        with lock:
            state["active"] -= 1
        if first:
            return JSONResponse({"error": {"message": "warming up"}}, status_code=503)
        text = body["messages"][-1]["content"]
        return {"choices": [choice(i, f"{text}-{i}") for i in range(body["n"])]}

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        prompts = [[Message(role="user", content=f"p{i}")] for i in range(6)]
        with HTTPGenerator(f"http://127.0.0.1:{port}/v1", "m", backoff=0.001, concurrency=2) as gen:
            out = gen.generate(prompts, SamplingParams(n=2))
        assert [[c.text for c in cs] for cs in out] == [[f"p{i}-0", f"p{i}-1"] for i in range(6)]
        assert state["calls"] == 7 and state["peak"] <= 2
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def test_served_models_lists_the_ids_or_says_what_is_wrong() -> None:
    from alignlab.generation.http import served_models

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/missing/models"):
            return httpx.Response(404, json={"detail": "Not Found"})
        if request.url.path.endswith("/empty/models"):  # a judge backend would take [0] of this list
            return httpx.Response(200, json={"object": "list", "data": []})
        if request.headers.get("authorization") != "Bearer sk-test":
            return httpx.Response(401, json={"error": {"message": "bad key"}})
        return httpx.Response(200, json={"object": "list", "data": [{"id": "m1"}, {"id": "m2"}]})

    transport = httpx.MockTransport(handler)
    assert served_models(URL, api_key="sk-test", transport=transport) == ["m1", "m2"]
    with pytest.raises(EndpointError, match="refused the request .*bad key.*check the API key"):
        served_models(URL, api_key="wrong", transport=transport)
    with pytest.raises(
        EndpointError, match=r"missing/models does not list its models \(HTTP 404\).*name the model"
    ):
        served_models("http://endpoint.test/missing", api_key="sk-test", transport=transport)
    empty = r"empty/models does not list its models \(HTTP 200\).*name the model"
    with pytest.raises(EndpointError, match=empty):
        served_models("http://endpoint.test/empty", api_key="sk-test", transport=transport)
