"""The server through the official `openai` client: a completion, a streamed one, n = 2, log-probs, a
bad request (OpenAI-style 4xx body; the server goes on serving), a wrong API key (401), 32
concurrent requests (each answered as the model answers it alone), and a LoRA adapter directory."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from serving_support import HELLO, MODEL, client

from alignlab.data.templating import encode_prompt
from alignlab.generation.base import SamplingParams
from alignlab.serving.settings import ServerSettings

openai = pytest.importorskip("openai", reason="the official openai client is a dev dependency")

POEM = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Please write a short poem about the sea and the sky."}]  # fmt: skip


def test_a_completion_is_the_models_own_reply(server, reference) -> None:
    r = client(server).chat.completions.create(model=MODEL, messages=POEM, max_tokens=12, temperature=0)
    (want,) = reference.generate([POEM], SamplingParams(max_new_tokens=12))[0]
    assert r.object == "chat.completion" and r.model == MODEL and r.id.startswith("chatcmpl-")
    (choice,) = r.choices
    assert choice.index == 0 and choice.message.role == "assistant"
    assert choice.message.content == want.text and choice.finish_reason == want.finish_reason
    assert r.usage.prompt_tokens == len(encode_prompt(reference.tokenizer, POEM))
    assert r.usage.completion_tokens == len(want.token_ids) == 12
    assert choice.logprobs is None


def test_sampling_settings_reach_the_model(server, reference) -> None:
    """temperature, top_p, max_completion_tokens, stop and seed mean what they mean in process."""
    free = reference.generate(
        [POEM], SamplingParams(max_new_tokens=20, temperature=0.9, top_p=0.8, seed=4)
    )[0][0]
    stop = next(free.text[i : i + 2] for i in range(6, len(free.text) - 1) if free.text[i : i + 2].isalpha())
    params = SamplingParams(max_new_tokens=20, temperature=0.9, top_p=0.8, seed=4, stop=(stop,))
    (want,) = reference.generate([POEM], params)[0]
    r = client(server).chat.completions.create(
        model=MODEL, messages=POEM, max_completion_tokens=20, temperature=0.9, top_p=0.8, seed=4, stop=stop
    )
    assert r.choices[0].message.content == want.text == free.text[: free.text.find(stop)].strip()
    assert r.choices[0].finish_reason == "stop"


def test_a_streamed_completion_adds_up_to_the_whole_one(server) -> None:
    c = client(server)
    kwargs = dict(model=MODEL, messages=POEM, max_tokens=40, temperature=1.0, seed=7, n=2)
    whole = c.chat.completions.create(**kwargs)
    chunks = list(c.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    assert {ch.id for ch in chunks} == {chunks[0].id} and all(
        ch.object == "chat.completion.chunk" for ch in chunks
    )
    for i in range(2):
        mine = [ch.choices[0] for ch in chunks if ch.choices and ch.choices[0].index == i]
        assert mine[0].delta.role == "assistant"
        deltas = [m.delta.content for m in mine if m.delta.content]
        assert len(deltas) > 3, "tokens should arrive one chunk at a time, not all at the end"
        assert "".join(deltas) == whole.choices[i].message.content
        assert [m.finish_reason for m in mine if m.finish_reason] == [whole.choices[i].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_streamed_logprobs_equal_the_whole_ones(server) -> None:
    c = client(server)
    kwargs = dict(
        model=MODEL, messages=HELLO, max_tokens=12, temperature=0.8, seed=2, logprobs=True, top_logprobs=2
    )
    whole = c.chat.completions.create(**kwargs).choices[0]
    chunks = [ch.choices[0] for ch in c.chat.completions.create(**kwargs, stream=True) if ch.choices]
    streamed = [e for ch in chunks if ch.logprobs for e in ch.logprobs.content]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in whole.logprobs.content]
    assert [[t.token for t in e.top_logprobs] for e in streamed] == [
        [t.token for t in e.top_logprobs] for e in whole.logprobs.content
    ]
    assert "".join(ch.delta.content or "" for ch in chunks) == whole.message.content


def test_n_2_gives_two_different_choices(server) -> None:
    r = client(server).chat.completions.create(
        model=MODEL, messages=HELLO, n=2, max_tokens=10, temperature=1.0, seed=1
    )
    assert [c.index for c in r.choices] == [0, 1]
    assert r.choices[0].message.content != r.choices[1].message.content
    assert [c.finish_reason for c in r.choices] == ["length", "length"] and r.usage.completion_tokens == 20


def test_logprobs_and_top_logprobs_in_openais_shape(server, reference) -> None:
    r = client(server).chat.completions.create(model=MODEL, messages=HELLO, max_tokens=6, temperature=0,
                                               logprobs=True, top_logprobs=3)  # fmt: skip
    (want,) = reference.generate([HELLO], SamplingParams(max_new_tokens=6, top_logprobs=3))[0]
    content = r.choices[0].logprobs.content
    assert [t.logprob for t in content] == pytest.approx(list(want.logprobs), abs=1e-4)
    assert [t.token for t in content] == reference.tokenizer.batch_decode([[i] for i in want.token_ids])
    for entry, top in zip(content, want.top_logprobs, strict=True):
        assert [t.token for t in entry.top_logprobs] == list(top)
        # Greedy: the top token.
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-5)
        assert entry.bytes == list(entry.token.encode())


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"temperature": 5}, "temperature", "invalid_value"),
        ({"messages": []}, "messages", "invalid_value"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role", "invalid_value"),
        ({"top_logprobs": 2}, "top_logprobs", "invalid_value"),
        ({"frequency_penalty": 0.5}, "frequency_penalty", "unsupported_parameter"),
        ({"extra_body": {"beam_width": 4}}, "beam_width", "unknown_parameter"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
         "messages[0].content", "invalid_value"),
    ],
)  # fmt: skip
def test_a_bad_request_gets_an_openai_style_400_and_the_server_goes_on(server, kwargs, param, code) -> None:
    c = client(server)
    with pytest.raises(openai.BadRequestError) as caught:
        c.chat.completions.create(**{"model": MODEL, "messages": HELLO, "max_tokens": 2, **kwargs})
    err = caught.value
    assert err.status_code == 400 and set(err.body) == {"message", "type", "param", "code"}
    assert err.type == "invalid_request_error" and err.param == param and err.code == code
    assert param.split("[")[0] in err.message
    ok = c.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=2)
    assert ok.choices[0].finish_reason in ("stop", "length")


def test_malformed_bodies_unknown_models_and_routes(server) -> None:
    bad_json = httpx.post(
        f"{server}/v1/chat/completions", content=b'{"model": "tiny", "messages": [', timeout=30
    )
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    not_object = httpx.post(f"{server}/v1/chat/completions", json=[1, 2], timeout=30)
    assert not_object.status_code == 400 and not_object.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as caught:
        client(server).chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.code == "model_not_found" and caught.value.param == "model"
    route = httpx.get(f"{server}/v1/nothing", timeout=30)
    assert route.status_code == 404 and route.json()["error"]["code"] == "not_found"
    method = httpx.get(f"{server}/v1/chat/completions", timeout=30)
    assert method.status_code == 405 and set(method.json()["error"]) == {"message", "type", "param", "code"}
    huge = httpx.post(f"{server}/v1/chat/completions", content=b" " * (33 * 2**20), timeout=60)
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "request_too_large"
    too_long = httpx.post(
        f"{server}/v1/chat/completions",
        timeout=30,
        json={"model": MODEL, "messages": [{"role": "user", "content": "Hello! " * 300}]},
    )
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "context_length_exceeded"
    fits = client(server).chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=100_000, temperature=0
    )
    assert fits.usage.prompt_tokens + fits.usage.completion_tokens <= 256  # cut at the tiny model's context


def test_models_and_health(server) -> None:
    c = client(server)
    assert [m.id for m in c.models.list().data] == [MODEL]
    assert c.models.retrieve(MODEL).owned_by == "alignlab"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("other")
    health = httpx.get(f"{server}/health", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["model"] == MODEL


def test_a_wrong_api_key_gets_401(start) -> None:
    with start(ServerSettings(api_key="s3cret", model_name=MODEL)) as url:
        with pytest.raises(openai.AuthenticationError) as caught:
            client(url, api_key="wrong").chat.completions.create(model=MODEL, messages=HELLO, max_tokens=2)
        assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
        assert caught.value.type == "invalid_request_error"
        for headers in ({}, {"Authorization": "Basic s3cret"}, {"Authorization": "Bearer s3cret2"}):
            r = httpx.post(
                f"{url}/v1/chat/completions", content=b"not even json", headers=headers, timeout=30
            )
            assert r.status_code == 401, "the key is checked before the body is read"
            assert (
                r.headers["www-authenticate"] == "Bearer" and r.json()["error"]["code"] == "invalid_api_key"
            )
        with pytest.raises(openai.AuthenticationError):
            client(url, api_key="wrong").models.list()
        ok = client(url, api_key="s3cret").chat.completions.create(model=MODEL, messages=HELLO, max_tokens=2)
        assert len(ok.choices) == 1
        assert httpx.get(f"{url}/health", timeout=30).status_code == 200  # health needs no key


def test_32_concurrent_requests_are_batched_and_each_answered_as_alone(start, reference) -> None:
    """32 clients at once with 32 prompts and seeds: every reply equals the model's reply to that
    request alone, and the worker decoded several requests per batch."""
    prompts = [
        [{"role": "user", "content": f"Numbers: {i} {i + 1} {i * 7}. Please write about the sea."}]
        for i in range(32)
    ]
    with start(ServerSettings(model_name=MODEL, batch_window_ms=50)) as url:
        c = client(url)

        def ask(i: int):
            return c.chat.completions.create(model=MODEL, messages=prompts[i], max_tokens=8 + i % 5,
                                             temperature=0.8 if i % 2 else 0, seed=i)  # fmt: skip

        with ThreadPoolExecutor(32) as pool:
            replies = list(pool.map(ask, range(32)))
        stats = httpx.get(f"{url}/health", timeout=30).json()
    for i, r in enumerate(replies):
        params = SamplingParams(max_new_tokens=8 + i % 5, temperature=0.8 if i % 2 else 0, seed=i)
        (want,) = reference.generate([prompts[i]], params)[0]
        assert r.choices[0].message.content == want.text, f"request {i}"
    assert stats["requests"] == 32 and stats["batches"] < 32 and stats["largest_batch_rows"] > 1


def test_a_lora_adapter_directory_is_served(start, model_dir, tmp_path, reference) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    lora = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    adapter = get_peft_model(base, lora)
    adapter_dir = tmp_path / "my-adapter"
    adapter.save_pretrained(adapter_dir)
    assert (adapter_dir / "adapter_config.json").exists() and not (adapter_dir / "config.json").exists()
    merged = adapter.merge_and_unload().eval()
    (want,) = type(reference)(merged, reference.tokenizer).generate(
        [POEM], SamplingParams(max_new_tokens=10)
    )[0]
    (base_reply,) = reference.generate([POEM], SamplingParams(max_new_tokens=10))[0]
    assert want.text != base_reply.text, "the adapter should change the reply"
    from alignlab.serving.app import create_app
    from alignlab.webserver import serve_in_thread

    with serve_in_thread(create_app(adapter_dir)) as url:
        c = client(url)
        assert [m.id for m in c.models.list().data] == ["my-adapter"]
        r = c.chat.completions.create(model="my-adapter", messages=POEM, max_tokens=10, temperature=0)
    assert r.choices[0].message.content == want.text


def test_tools_and_tool_turns_reach_the_chat_template(model_dir, tmp_path) -> None:
    """A template that names the tools (the full schemas would not fit the tiny model's 256 positions);
    tool calls, which it does not render, are written into the conversation as text."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignlab.data.schema import Message, ToolCall
    from alignlab.generation.hf import HFGenerator
    from alignlab.serving.app import create_app
    from alignlab.webserver import serve_in_thread

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = (
        "{% if tools %}{{ '<|start_header_id|>system<|end_header_id|>\\n\\nTools: ' }}"
        "{{ tools | map(attribute='function') | map(attribute='name') | join(', ') }}{{ '<|eot_id|>' }}"
        "{% endif %}" + tok.chat_template
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tok.save_pretrained(tmp_path / "m")
    model.save_pretrained(tmp_path / "m")
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    messages = [
        {"role": "user", "content": "The weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny, 21 degrees"},
    ]
    ours = [
        Message(role="user", content="The weather in Paris?"),
        Message(
            role="assistant", tool_calls=[ToolCall(id="c1", name="weather", arguments='{"city": "Paris"}')]
        ),
        Message(role="tool", tool_call_id="c1", content="sunny, 21 degrees"),
    ]
    with pytest.warns(UserWarning, match="does not render tool calls"):
        prompt = encode_prompt(tok, ours, tools)
        (want,) = HFGenerator(model, tok).generate([ours], SamplingParams(max_new_tokens=6), tools=tools)[0]
    assert "Tools: weather" in tok.decode(prompt) and '<tool_call>{"name": "weather"' in tok.decode(prompt)
    with serve_in_thread(create_app(tmp_path / "m")) as url:
        c = client(url)
        r = c.chat.completions.create(model="m", messages=messages, tools=tools, max_tokens=6, temperature=0)
        unused = c.chat.completions.create(
            model="m", messages=messages, tools=tools, tool_choice="none", max_tokens=1
        )
    assert r.usage.prompt_tokens == len(prompt) and r.choices[0].message.content == want.text
    assert unused.usage.prompt_tokens == len(encode_prompt(tok, ours)) < len(prompt)
