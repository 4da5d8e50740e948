"""The server's parts without HTTP: streamed text deltas, request validation and conversion, error
bodies, and the worker's batches."""

from __future__ import annotations

import logging
import random
import threading

import pytest

from alignlab.generation.base import Completion, SamplingParams
from alignlab.generation.replies import reply_text
from alignlab.serving.engine import Engine, Job
from alignlab.serving.errors import APIError, from_validation
from alignlab.serving.protocol import ChatCompletionRequest
from alignlab.serving.stream import TextStream, settled


@pytest.mark.parametrize(
    ("text", "stops", "expected"),
    [
        ("  Hi there ", [], "Hi there"),  # leading whitespace never sent, trailing held
        ("Hello wor", ["world!"], "Hello"),  # "wor" may begin the stop string; then the space is trailing
        ("Hello wor", ["xyz"], "Hello wor"),
        ("caf\ufffd", [], "caf"),  # the first byte of a split character
        ("ok\ufffd \ufffd", [], "ok"),
        (" U", [" User:"], ""),  # a stop string beginning with the whitespace stripping would drop
        ("a\n", ["\n\n", "###"], "a"),
        ("x##", ["\n\n", "###"], "x"),
    ],
)
def test_settled_holds_back_what_a_later_token_could_change(text, stops, expected) -> None:
    assert settled(text, stops) == expected


def test_streamed_deltas_add_up_to_the_reply_for_random_tokens(tiny_tokenizer, caplog) -> None:
    """Random token ids (split UTF-8 characters, special tokens, whitespace) and stop strings taken
    from the reply: at every step what was sent begins the final reply, and in the end equals it."""
    rng = random.Random(0)
    vocab = len(tiny_tokenizer)
    text_ids = tiny_tokenizer("Café 😀 – naïve “quotes”\n\n  spaced  ", add_special_tokens=False)["input_ids"]
    caplog.set_level(logging.WARNING, logger="alignlab.serving")
    for trial in range(300):
        ids = [
            rng.choice(text_ids) if rng.random() < 0.4 else rng.randrange(vocab)
            for _ in range(rng.randint(1, 30))
        ]
        full = tiny_tokenizer.decode(ids, skip_special_tokens=True)
        stops = (
            [full[i : i + rng.randint(1, 4)] for i in rng.sample(range(len(full)), min(2, len(full)))]
            if trial % 2
            else []
        )
        stream, sent, fed = TextStream(tiny_tokenizer, stops), "", []
        for token in ids:
            fed.append(token)
            sent += stream.push(token)
            final_so_far = reply_text(tiny_tokenizer, fed, stops)[0]
            assert final_so_far.startswith(sent) or stream.cut, (ids, stops)
            if stream.cut:  # generation stops at the token that completes a stop string
                break
        final = reply_text(tiny_tokenizer, fed, stops)[0]
        assert sent + stream.finish(final) == final, (ids, stops)
    assert not caplog.records


def test_a_stream_sends_text_as_it_settles(tiny_tokenizer) -> None:
    ids = tiny_tokenizer(
        "Hello there. The capital of France is Paris.", add_special_tokens=False
    )["input_ids"]
    stream = TextStream(tiny_tokenizer, ["France"])
    deltas = [stream.push(t) for t in ids]
    assert stream.cut and "".join(deltas) == "Hello there. The capital of"
    assert len([d for d in deltas if d]) > 3, "text goes out token by token"
    assert stream.finish("Hello there. The capital of") == ""


def request(**fields) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def test_messages_become_the_projects_messages() -> None:
    body = request(
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "2+2?"}],
            },
            {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "4"},
        ]
    )
    system, user, call, reply = body.conversation()
    assert (system.role, system.content) == ("system", "Be brief.")
    assert user.content == "What is 2+2?"
    assert (
        call.tool_calls[0].name == "add"
        and call.tool_calls[0].arguments == '{"a": 2, "b": 2}'
        and call.content == ""
    )
    assert (reply.role, reply.tool_call_id, reply.content) == ("tool", "c1", "4")


def test_request_fields_and_their_defaults() -> None:
    body = request(stop="##", max_tokens=5, max_completion_tokens=7, top_k=-1)
    assert body.stop_strings() == ("##",) and body.asked_max_tokens() == 7 and body.top_k_cut() is None
    assert request(stop=["a", "", "b"]).stop_strings() == ("a", "b")
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert request(tools=tools).tool_schemas() == tools
    assert request(tools=tools, tool_choice="none").tool_schemas() is None


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 9}, "n"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logit_bias": {"42": 5}}, "logit_bias"),
        ({"presence_penalty": 1}, "presence_penalty"),
        ({"stop": [str(i) for i in range(17)]}, "stop"),
        ({"stop": ["x" * 257]}, "stop"),
        ({"top_logprobs": 3, "logprobs": False}, "top_logprobs"),
    ],
)
def test_unsupported_values_are_a_400_naming_the_field(fields, param) -> None:
    with pytest.raises(APIError) as caught:
        request(**fields).check_supported(max_n=8)
    assert caught.value.status == 400 and caught.value.param == param
    request(n=8, response_format={"type": "text"}, tool_choice="auto", frequency_penalty=0).check_supported(
        max_n=8
    )


def test_validation_errors_name_the_field_openai_style() -> None:
    err = from_validation(
        [{"type": "literal_error", "loc": ("body", "messages", 2, "role"), "msg": "Input should be 'user'"}]
    )
    assert err.body() == {
        "error": {
            "message": "messages[2].role: Input should be 'user'",
            "type": "invalid_request_error",
            "param": "messages[2].role",
            "code": "invalid_value",
        }
    }
    assert (
        from_validation([{"type": "missing", "loc": ("model",), "msg": "Field required"}]).code
        == "missing_required_parameter"
    )
    assert from_validation([{"type": "int_type", "loc": ("n",), "msg": "not an int"}]).code == "invalid_type"
    assert from_validation([]).status == 400


class FakeGenerator:
    """Records each batch's rows; answers every prompt with its own index."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()

    def generate_each(self, prompt_ids, params, *, listener=None):
        self.gate.wait(30)
        self.batches.append([p.n for p in params])
        out = [[Completion(str(ids[0]))] * p.n for ids, p in zip(prompt_ids, params, strict=True)]
        for i, cs in enumerate(out):
            listener.done(i, cs)
        return out


class Sink:
    def __init__(self) -> None:
        self.result, self.finished = None, threading.Event()

    def token(self, sample, event) -> None: ...

    def done(self, completions) -> None:
        self.result = completions
        self.finished.set()

    def failed(self, error) -> None:
        self.result = error
        self.finished.set()


def test_the_worker_batches_queued_requests_up_to_max_rows_in_order() -> None:
    gen = FakeGenerator()
    # A window long enough for all six to queue: a batch starts once 4 rows wait (or the window ends).
    engine = Engine(gen, max_batch_rows=4, batch_window_s=0.3)  # type: ignore[arg-type]
    sinks = [Sink() for _ in range(6)]
    ns = [1, 2, 2, 1, 4, 1]
    for i, (n, sink) in enumerate(zip(ns, sinks, strict=True)):
        engine.submit(Job([i], SamplingParams(n=n), sink, timeout_s=60))
    gen.gate.set()
    for sink in sinks:
        assert sink.finished.wait(30)
    engine.close()
    assert gen.batches == [[1, 2], [2, 1], [4], [1]]  # in order, up to 4 rows, a job's n rows never split
    assert [s.result[0].text for s in sinks] == [str(i) for i in range(6)]
    assert engine.stats.requests == 6 and engine.stats.largest_batch <= 4


def test_a_cancelled_request_is_not_generated() -> None:
    gen = FakeGenerator()
    engine = Engine(gen, batch_window_s=0.0)  # type: ignore[arg-type]
    first, second = Sink(), Sink()
    engine.submit(Job([0], SamplingParams(), first, timeout_s=60))
    job = Job([1], SamplingParams(), second, timeout_s=60)
    job.cancel()  # e.g. its client left while it waited
    engine.submit(job)
    gen.gate.set()
    assert first.finished.wait(30) and second.finished.wait(30)
    engine.close()
    assert isinstance(second.result, APIError) and second.result.code == "cancelled"
    assert [n for b in gen.batches for n in b] == [1]
