"""The in-process backend: greedy equals `model.generate`, log-probs equal a forward pass, n samples,
stop tokens and strings, length limits, wrappers (DDP, PEFT) and the model's modes."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import replace

import pytest
import torch

from alignlab.data.templating import encode_prompt
from alignlab.generation.base import Generator, SamplingParams
from alignlab.generation.hf import HFGenerator, left_pad
from alignlab.generation.kv_cache import supports_growing_cache
from alignlab.losses.sft import IGNORE_INDEX
from alignlab.modeling.logprobs import token_logps

PROMPTS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "user", "content": "What is the capital of France? Please write a short poem about the sea."}],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Numbers: 0 1 2"},
    ],
]


def load(tiny_model_dir, arch: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model_dir(arch)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def reference_greedy(model, gen: HFGenerator, prompts: list[list[int]], max_new: int) -> list[list[int]]:
    """`model.generate`'s greedy replies, each cut after its first stop token."""
    ids, mask = left_pad(prompts, gen.pad_token_id, "cpu")
    out = model.generate(
        input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new,
        eos_token_id=gen.stop_token_ids, pad_token_id=gen.pad_token_id,
    )[:, ids.shape[1]:].tolist()  # fmt: skip
    return [r[: next((i + 1 for i, t in enumerate(r) if t in gen.stop_token_ids), len(r))] for r in out]


def replies(rollout) -> list[list[int]]:
    return [rollout.response_ids[r, : int(m.sum())].tolist() for r, m in enumerate(rollout.response_mask)]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_greedy_equals_model_generate_on_prompts_of_different_lengths(tiny_model_dir, arch: str) -> None:
    model, tok = load(tiny_model_dir, arch)
    prompts = [encode_prompt(tok, p) for p in PROMPTS]
    assert len({len(p) for p in prompts}) == 3
    gen = HFGenerator(model, tok, max_batch_rows=8)
    # 40 new tokens cross the cache's growth by chunks of 32.
    rollout = gen.generate_ids(prompts, SamplingParams(max_new_tokens=40))
    assert replies(rollout) == reference_greedy(model, gen, prompts, 40)


MORE_ARCHS = {  # sliding windows shorter than the prompts, soft-capped logits, other attention layouts
    "mistral": {"sliding_window": 8},
    "gemma2": {"head_dim": 8, "final_logit_softcapping": 30.0, "sliding_window": 8},
    "phi3": {},
    "gpt_neox": {"num_key_value_heads": None},
    "olmo2": {},
}


@pytest.mark.parametrize("arch", list(MORE_ARCHS))
def test_greedy_equals_model_generate_on_more_architectures(tiny_model_dir, arch: str) -> None:
    """Models the growing cache does not serve (sliding windows, hybrid layers) use `DynamicCache`."""
    from transformers import AutoConfig, AutoModelForCausalLM

    _, tok = load(tiny_model_dir, "llama")
    sizes = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                 pad_token_id=tok.pad_token_id)  # fmt: skip
    kwargs = {k: v for k, v in {**sizes, **MORE_ARCHS[arch]}.items() if v is not None}
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(arch, **kwargs)).eval()
    assert supports_growing_cache(model.config) == (arch not in ("mistral", "gemma2"))
    prompts = [encode_prompt(tok, p) for p in PROMPTS]
    gen = HFGenerator(model, tok)
    assert replies(gen.generate_ids(prompts, SamplingParams(max_new_tokens=20))) == reference_greedy(
        model, gen, prompts, 20
    )


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_greedy_equals_model_generate_when_rows_stop_at_different_steps(tiny_model_dir, arch: str) -> None:
    """A frequent token as the stop token ends rows early; finished rows leave the batch at once."""
    model, tok = load(tiny_model_dir, arch)
    prompts = [encode_prompt(tok, p) for p in PROMPTS]
    free = HFGenerator(model, tok, stop_token_ids=[])
    first = replies(free.generate_ids(prompts, SamplingParams(max_new_tokens=30)))
    stop = Counter(t for r in first for t in r[1:20]).most_common(1)[0][0]
    gen = HFGenerator(model, tok, stop_token_ids=[stop], compact_fraction=0.0)
    rollout = gen.generate_ids(prompts, SamplingParams(max_new_tokens=30))
    got = replies(rollout)
    assert got == reference_greedy(model, gen, prompts, 30)
    assert any(len(r) < 30 for r in got), "the stop token should end some row early"
    assert [f == "stop" for f in rollout.finish_reasons] == [r[-1] == stop for r in got]


def forward_logits(model, rollout) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a forward pass over prompt + reply, and labels marking the reply tokens."""
    ids, mask, positions = rollout.sequences()
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    labels = ids.masked_fill(
        torch.cat([torch.zeros_like(rollout.prompt_mask), rollout.response_mask], 1) == 0, IGNORE_INDEX
    )
    return logits, labels


def test_logprobs_at_temperature_one_equal_a_forward_pass(tiny_model_dir) -> None:
    model, tok = load(tiny_model_dir, "qwen2")
    prompts = [encode_prompt(tok, p) for p in PROMPTS]
    rollout = HFGenerator(model, tok).generate_ids(
        prompts, SamplingParams(max_new_tokens=12, temperature=1.0, n=2)
    )
    logits, labels = forward_logits(model, rollout)
    expected = token_logps(logits, labels)[:, -rollout.response_ids.shape[1] :]  # (B, T-1): t predicts t + 1
    torch.testing.assert_close(rollout.logprobs, expected * rollout.response_mask, atol=1e-4, rtol=0)
    assert bool((rollout.logprobs[rollout.response_mask.bool()] < 0).all())


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"), [(0.7, None, 1.0), (1.3, 20, 1.0), (0.8, None, 0.3), (1.0, 50, 0.5)]
)
def test_logprobs_follow_the_processed_distribution(tiny_model_dir, temperature, top_k, top_p) -> None:
    """Log-probs are those of transformers' temperature / top-k / top-p warpers applied to the logits."""
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    model, tok = load(tiny_model_dir, "llama")
    prompts = [encode_prompt(tok, p) for p in PROMPTS]
    params = SamplingParams(max_new_tokens=10, temperature=temperature, top_k=top_k, top_p=top_p, n=2, seed=3)
    rollout = HFGenerator(model, tok).generate_ids(prompts, params)
    logits, _ = forward_logits(model, rollout)
    width = rollout.response_ids.shape[1]
    steps = logits[:, -width - 1 : -1].float()  # position t predicts reply token t
    warpers = [TemperatureLogitsWarper(temperature)]
    warpers += [TopKLogitsWarper(top_k)] if top_k else []
    warpers += [TopPLogitsWarper(top_p)] if top_p < 1 else []
    flat = LogitsProcessorList(warpers)(None, steps.reshape(-1, steps.shape[-1]))
    expected = flat.log_softmax(-1).view_as(steps).gather(-1, rollout.response_ids[..., None]).squeeze(-1)
    mask = rollout.response_mask.bool()
    assert bool(torch.isfinite(expected[mask]).all()), "a sampled token lies outside the allowed set"
    torch.testing.assert_close(rollout.logprobs[mask], expected[mask], atol=1e-4, rtol=0)


def test_n_samples_per_prompt_are_grouped_and_differ(tiny_model_dir) -> None:
    model, tok = load(tiny_model_dir, "llama")
    prompts = [encode_prompt(tok, p) for p in PROMPTS[:2]]
    rollout = HFGenerator(model, tok, max_batch_rows=3).generate_ids(
        prompts, SamplingParams(max_new_tokens=8, temperature=1.0, n=3)
    )
    assert rollout.prompt_ids.shape[0] == rollout.response_ids.shape[0] == 6
    for i, p in enumerate(prompts):
        for j in range(3):
            row = rollout.prompt_ids[i * 3 + j][rollout.prompt_mask[i * 3 + j].bool()]
            assert row.tolist() == p
    assert len({tuple(r) for r in replies(rollout)[:3]}) == 3


def test_sampling_is_seeded(tiny_model_dir) -> None:
    model, tok = load(tiny_model_dir, "gpt2")
    gen = HFGenerator(model, tok)
    prompts = [encode_prompt(tok, p) for p in PROMPTS]
    runs = [
        replies(gen.generate_ids(prompts, SamplingParams(max_new_tokens=8, temperature=1.0, seed=s)))
        for s in (1, 1, 2)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_stop_string_cuts_the_text_and_ends_the_reply(tiny_model_dir) -> None:
    model, tok = load(tiny_model_dir, "llama")
    gen = HFGenerator(model, tok, stop_token_ids=[])
    params = SamplingParams(max_new_tokens=30, temperature=1.0, seed=5)
    free = gen.generate([PROMPTS[1]], params)[0][0]
    # A two-letter stop string from the middle of the free reply (sampling is seeded, so it recurs).
    at = next(
        i
        for i in range(6, len(free.text) - 1)
        if free.text[i : i + 2].isascii() and free.text[i : i + 2].isalpha()
    )
    stop = free.text[at : at + 2]
    cut = gen.generate([PROMPTS[1]], replace(params, stop=("zzz", stop)))[0][0]
    assert cut.text == free.text[: free.text.find(stop)].strip()
    assert cut.finish_reason == "stop" and free.finish_reason == "length"
    assert len(cut.token_ids) < len(free.token_ids)
    assert free.token_ids[: len(cut.token_ids)] == cut.token_ids
    assert stop in tok.decode(cut.token_ids) and stop not in tok.decode(cut.token_ids[:-1])


def test_max_new_tokens_gives_length(tiny_model_dir) -> None:
    model, tok = load(tiny_model_dir, "qwen2")
    gen = HFGenerator(model, tok, stop_token_ids=[])
    (c,), _, _ = gen.generate(PROMPTS, SamplingParams(max_new_tokens=3, temperature=1.0))
    assert c.finish_reason == "length" and len(c.token_ids) == 3 and len(c.logprobs) == 3


def test_generation_stops_at_the_context_length(tiny_model_dir) -> None:
    """GPT-2's learned positions end at 256: prompt + reply never exceed them; a longer prompt is an error."""
    model, tok = load(tiny_model_dir, "gpt2")
    gen = HFGenerator(model, tok, stop_token_ids=[])
    ids = encode_prompt(tok, PROMPTS[0])
    rollout = gen.generate_ids([ids * (250 // len(ids))], SamplingParams(max_new_tokens=40))
    assert int(rollout.prompt_mask.sum() + rollout.response_mask.sum()) == 256
    assert rollout.finish_reasons == ("length",)
    long = [{"role": "user", "content": "Hello! " * 200}]
    (bad,), (good,) = gen.generate([long, PROMPTS[0]], SamplingParams(max_new_tokens=2))
    assert bad.failed and "context is 256" in bad.error
    assert not good.failed and len(good.token_ids) == 2


def test_completions_carry_text_tokens_logprobs_and_top_logprobs(tiny_model_dir) -> None:
    model, tok = load(tiny_model_dir, "llama")
    gen = HFGenerator(model, tok)
    assert isinstance(gen, Generator)
    out = gen.generate(PROMPTS, SamplingParams(max_new_tokens=6, top_logprobs=3))
    assert [len(cs) for cs in out] == [1, 1, 1]
    c = out[0][0]
    assert c.text == tok.decode(c.token_ids, skip_special_tokens=True).strip()
    assert len(c.logprobs) == len(c.top_logprobs) == len(c.token_ids)
    for tid, lp, top in zip(c.token_ids, c.logprobs, c.top_logprobs, strict=True):
        assert len(top) <= 3
        best = next(iter(top.items()))
        assert best[0] == tok.decode([tid]) and best[1] == pytest.approx(lp)  # greedy: the top token
        assert list(top.values()) == sorted(top.values(), reverse=True)


def test_tools_reach_the_chat_template(tiny_model_dir) -> None:
    model, tok = load(tiny_model_dir, "qwen2")
    tok.chat_template = (
        "{% if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{% endif %}"
        + tok.chat_template
    )
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    gen = HFGenerator(model, tok)
    with_tools = encode_prompt(tok, PROMPTS[0], tools)
    assert with_tools != encode_prompt(tok, PROMPTS[0])
    (c,), = gen.generate([PROMPTS[0]], SamplingParams(max_new_tokens=5), tools=tools)
    assert list(c.token_ids) == replies(gen.generate_ids([with_tools], SamplingParams(max_new_tokens=5)))[0]


def test_train_mode_is_restored_and_the_weights_are_shared(tiny_model_dir) -> None:
    model, tok = load(tiny_model_dir, "llama")
    model.train()
    model.model.layers[0].eval()  # a submodule the caller froze in eval mode stays so
    gen = HFGenerator(model, tok)
    assert gen.model is model
    before = gen.generate(PROMPTS, SamplingParams(max_new_tokens=5))
    assert model.training and not model.model.layers[0].training and model.model.layers[1].training
    with torch.no_grad():
        model.lm_head.weight.mul_(-1)  # the generator sees the policy's updates at once: no copy
    assert gen.generate(PROMPTS, SamplingParams(max_new_tokens=5)) != before


def test_ddp_wrapped_model_is_unwrapped(tiny_model_dir, tmp_path) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    model, tok = load(tiny_model_dir, "gpt2")
    expected = HFGenerator(model, tok).generate(PROMPTS, SamplingParams(max_new_tokens=6))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        wrapped = DistributedDataParallel(model)
        gen = HFGenerator(wrapped, tok)
        assert gen.model is model
        assert gen.generate(PROMPTS, SamplingParams(max_new_tokens=6)) == expected
    finally:
        dist.destroy_process_group()


def test_peft_model_generates_with_its_adapters(tiny_model_dir) -> None:
    from peft import LoraConfig, get_peft_model

    model, tok = load(tiny_model_dir, "llama")
    prompts = [encode_prompt(tok, p) for p in PROMPTS]
    params = SamplingParams(max_new_tokens=10)
    base = replies(HFGenerator(model, tok).generate_ids(prompts, params))
    torch.manual_seed(0)
    lora = LoraConfig(
        r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(copy.deepcopy(model), lora).eval()
    adapted = replies(HFGenerator(peft_model, tok).generate_ids(prompts, params))
    merged = copy.deepcopy(peft_model).merge_and_unload()
    assert adapted == reference_greedy(merged, HFGenerator(merged, tok), prompts, 10)
    assert adapted != base
    with peft_model.disable_adapter():
        assert replies(HFGenerator(peft_model, tok).generate_ids(prompts, params)) == base
