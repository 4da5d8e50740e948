"""`generation.http.HTTPGenerator` (how judges, evals and RLAIF reach an endpoint) against the server:
the same completions as the checkpoint in process, log-probs and top log-probs included."""

from __future__ import annotations

import pytest
from serving_support import MODEL

from alignlab.data.schema import Message
from alignlab.generation.base import SamplingParams
from alignlab.generation.http import EndpointError, HTTPGenerator
from alignlab.serving.settings import ServerSettings

PROMPTS = [
    [Message(role="user", content="Hello!")],
    [
        Message(role="system", content="You are a helpful assistant."),
        Message(role="user", content="Numbers: 0 1 2"),
    ],
    [Message(role="user", content="What is the capital of France?")],
]


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(max_new_tokens=8, top_logprobs=4),
        SamplingParams(max_new_tokens=12, temperature=1.0, n=2, seed=5, top_logprobs=2),
        SamplingParams(max_new_tokens=10, temperature=0.7, top_k=20, top_p=0.9, seed=9),
    ],
)
def test_http_generator_gets_what_the_model_gives_in_process(server, reference, params) -> None:
    with HTTPGenerator(f"{server}/v1", MODEL, concurrency=3) as gen:
        remote = gen.generate(PROMPTS, params)
    local = [reference.generate([p], params)[0] for p in PROMPTS]  # one request per prompt, each its own seed
    for got, want in zip(remote, local, strict=True):
        assert [c.text for c in got] == [c.text for c in want]
        assert [c.finish_reason for c in got] == [c.finish_reason for c in want]
        for g, w in zip(got, want, strict=True):
            assert not g.failed and g.logprobs == pytest.approx(w.logprobs, abs=1e-4)
            if params.top_logprobs:
                assert [list(t) for t in g.top_logprobs] == [list(t) for t in w.top_logprobs]
                for gt, wt in zip(g.top_logprobs, w.top_logprobs, strict=True):
                    assert list(gt.values()) == pytest.approx(list(wt.values()), abs=1e-4)


def test_http_generator_reports_rejected_requests_and_a_wrong_key(server, start) -> None:
    too_long = [Message(role="user", content="Hello! " * 300)]  # past the tiny model's 256 positions
    with HTTPGenerator(f"{server}/v1", MODEL) as gen:
        bad, good = gen.generate([too_long, PROMPTS[0]], SamplingParams(max_new_tokens=3))
    assert bad[0].failed and "HTTP 400" in bad[0].error and "context is 256" in bad[0].error
    assert not good[0].failed and len(good[0].logprobs) == 3
    with start(ServerSettings(api_key="k", model_name=MODEL)) as url:
        with (
            HTTPGenerator(f"{url}/v1", MODEL, api_key="not-k") as gen,
            pytest.raises(EndpointError, match="API key"),
        ):
            gen.generate(PROMPTS[:1], SamplingParams(max_new_tokens=2))
        with HTTPGenerator(f"{url}/v1", MODEL, api_key="k") as gen:
            assert not gen.generate(PROMPTS[:1], SamplingParams(max_new_tokens=2))[0][0].failed
