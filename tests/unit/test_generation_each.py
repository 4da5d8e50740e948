"""`HFGenerator.generate_each`: prompts with their own sampling settings share a batch, each gets what
it gets alone; a listener hears tokens as they come, completions as soon as a prompt ends, and can
cancel a prompt. Also: sampled replies do not depend on when finished rows leave the batch."""

from __future__ import annotations

from collections import Counter

import pytest

from alignlab.data.templating import encode_prompt
from alignlab.generation.base import SamplingParams
from alignlab.generation.collect import TokenEvent
from alignlab.generation.hf import HFGenerator

PROMPTS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "user", "content": "What is the capital of France? Please write a short poem about the sea."}],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Numbers: 0 1 2"},
    ],
    [{"role": "user", "content": "The weather in Paris is sunny"}],
]


def load(tiny_model_dir, arch: str = "llama"):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model_dir(arch)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def mixed_params(stop: str) -> list[SamplingParams]:
    return [
        SamplingParams(max_new_tokens=12, temperature=1.0, n=2, seed=3, top_logprobs=2),
        SamplingParams(max_new_tokens=20),  # greedy
        SamplingParams(max_new_tokens=16, temperature=0.7, top_p=0.5, seed=11, stop=(stop,)),
        SamplingParams(max_new_tokens=5, temperature=1.3, top_k=20, n=3, seed=3),
    ]


def a_stop_string(gen: HFGenerator, prompt) -> str:
    """Two letters from the middle of the prompt's greedy-free reply, so the stop string recurs."""
    text = gen.generate(
        [prompt], SamplingParams(max_new_tokens=16, temperature=0.7, top_p=0.5, seed=11)
    )[0][0].text
    at = next(i for i in range(4, len(text) - 1) if text[i : i + 2].isascii() and text[i : i + 2].isalpha())
    return text[at : at + 2]


@pytest.mark.parametrize("max_batch_rows", [64, 3])
def test_each_prompt_gets_what_it_gets_alone(tiny_model_dir, max_batch_rows: int) -> None:
    """Four prompts with four settings (greedy and sampled, n 1-3, top-k / top-p, stop string, top
    log-probs, different lengths) in one batch, or split over batches of 3 rows: equal to alone."""
    model, tok = load(tiny_model_dir)
    gen = HFGenerator(model, tok, stop_token_ids=[], max_batch_rows=max_batch_rows)
    params = mixed_params(a_stop_string(gen, PROMPTS[2]))
    ids = [encode_prompt(tok, p) for p in PROMPTS]
    together = gen.generate_each(ids, params)
    alone = [gen.generate([p], q)[0] for p, q in zip(PROMPTS, params, strict=True)]
    assert [len(c) for c in together] == [2, 1, 1, 3]
    for got, want in zip(together, alone, strict=True):
        assert [(c.text, c.token_ids, c.finish_reason) for c in got] == [
            (c.text, c.token_ids, c.finish_reason) for c in want
        ]
        for g, w in zip(got, want, strict=True):
            assert g.logprobs == pytest.approx(w.logprobs, abs=1e-4)
            assert (g.top_logprobs is None) == (w.top_logprobs is None)
    assert together[2][0].finish_reason == "stop", "the stop string should cut prompt 2's reply"
    assert len(together[3][0].token_ids) == 5 and together[0][0].top_logprobs is not None
    assert len({c.token_ids for c in together[3]}) == 3, "n samples of one prompt differ"


def test_sampled_replies_do_not_depend_on_when_finished_rows_leave(tiny_model_dir) -> None:
    """Every stream draws for all its rows at each step, so compaction cannot shift later draws."""
    model, tok = load(tiny_model_dir, "gpt2")
    ids = [encode_prompt(tok, p) for p in PROMPTS]
    params = SamplingParams(max_new_tokens=24, temperature=1.0, n=2, seed=7)
    free = HFGenerator(model, tok, stop_token_ids=[]).generate_ids(ids, params)
    lengths = free.response_mask.sum(1)
    common = Counter(free.response_ids[lengths > 0, 1:12].flatten().tolist()).most_common(1)[0][0]
    runs = []
    for fraction in (0.0, 1.0):  # drop finished rows at once, or never
        rollout = HFGenerator(model, tok, stop_token_ids=[common], compact_fraction=fraction).generate_ids(
            ids, params
        )
        runs.append(
            [rollout.response_ids[r, : int(m.sum())].tolist() for r, m in enumerate(rollout.response_mask)]
        )
    assert runs[0] == runs[1]
    assert len({len(r) for r in runs[0]}) > 1, "the stop token should end rows at different steps"


class Recorder:
    """A listener that records events and can cancel one request after some tokens."""

    def __init__(self, cancel: int | None = None, after: int = 3) -> None:
        self.tokens: dict[tuple[int, int], list[TokenEvent]] = {}
        self.finished: list[tuple[int, int]] = []  # (request, tokens seen in total when it was done)
        self.completions: dict[int, list] = {}
        self.cancel, self.after = cancel, after
        self.seen = 0

    def token(self, request: int, sample: int, event: TokenEvent) -> None:
        self.tokens.setdefault((request, sample), []).append(event)
        self.seen += 1

    def done(self, request: int, completions) -> None:
        self.finished.append((request, self.seen))
        self.completions[request] = completions

    def cancelled(self, request: int) -> bool:
        return request == self.cancel and len(self.tokens.get((request, 0), [])) >= self.after


def test_listener_hears_every_token_and_each_prompt_when_it_ends(tiny_model_dir) -> None:
    model, tok = load(tiny_model_dir)
    gen = HFGenerator(model, tok, stop_token_ids=[])
    ids = [encode_prompt(tok, p) for p in PROMPTS[:2]]
    params = [SamplingParams(max_new_tokens=4, temperature=1.0, n=2, seed=1, top_logprobs=3),
              SamplingParams(max_new_tokens=15)]  # fmt: skip
    rec = Recorder()
    out = gen.generate_each(ids, params, listener=rec)
    for i, completions in enumerate(out):
        for j, c in enumerate(completions):
            events = rec.tokens[(i, j)]
            assert tuple(e.token for e in events) == c.token_ids
            assert [e.logprob for e in events] == pytest.approx(c.logprobs)
            assert [e.finish for e in events] == [None] * (len(events) - 1) + [c.finish_reason]
    assert all(len(e.top_ids) == 3 for e in rec.tokens[(0, 0)]) and rec.tokens[(1, 0)][0].top_ids == ()
    # The short prompt is answered after its 4 steps (2 samples + 1 row of the other prompt each),
    # not at the end.
    assert rec.finished == [(0, 12), (1, 8 + 15)]
    assert rec.completions == {0: out[0], 1: out[1]}


def test_a_cancelled_prompt_stops_and_the_others_go_on(tiny_model_dir) -> None:
    model, tok = load(tiny_model_dir)
    gen = HFGenerator(model, tok, stop_token_ids=[])
    ids = [encode_prompt(tok, p) for p in PROMPTS[:2]]
    params = [SamplingParams(max_new_tokens=20, temperature=1.0, seed=2), SamplingParams(max_new_tokens=20)]
    rec = Recorder(cancel=0, after=3)
    out = gen.generate_each(ids, params, listener=rec)
    assert out[0][0].failed and out[0][0].error == "cancelled"
    assert len(rec.tokens[(0, 0)]) == 3, "no token after the cancel"
    assert [r for r, _ in rec.finished] == [1]
    assert out[1] == gen.generate([PROMPTS[1]], params[1])[0]


def test_generate_each_checks_its_arguments(tiny_model_dir) -> None:
    model, tok = load(tiny_model_dir)
    gen = HFGenerator(model, tok)
    with pytest.raises(ValueError, match="2 prompts but 1"):
        gen.generate_each([[1, 2], [3]], [SamplingParams()])
    with pytest.raises(ValueError, match="no prompts"):
        gen.generate_each([], [])
