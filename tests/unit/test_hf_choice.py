"""The in-process choice scorer: option probabilities equal a hand computation from the model's logits,
"A" and " A" both count, batching changes nothing, and the AI labeller's label survives swapping A and B."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from alignlab.data.schema import assistant, system, user
from alignlab.data.templating import encode_prompt
from alignlab.feedback.constitution import Constitution, Principle
from alignlab.feedback.hf_choice import HFChoiceScorer
from alignlab.feedback.judge import ANSWER_PREFIX, AIJudge
from alignlab.feedback.labeller import PairToLabel
from alignlab.feedback.rlaif import label_pairs

PROMPTS = [
    [user("What is the capital of France?")],
    [system("You are a helpful assistant."), user("Hello! How can I help you today?")],
    [user("Please write a short poem about the sea.")],
]


def _load(tiny_model_dir, arch: str):
    path = tiny_model_dir(arch)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def llama(tiny_model_dir):
    return _load(tiny_model_dir, "llama")


def _manual(model, tok, prompt, prefix, options) -> list[float]:
    """P(option) = sum over " o" and "o" of the product of their token probabilities, normalised."""
    context = encode_prompt(tok, prompt) + tok(prefix, add_special_tokens=False)["input_ids"]
    masses = []
    for option in options:
        spellings = {tuple(tok(t, add_special_tokens=False)["input_ids"]) for t in (option, " " + option)}
        mass = 0.0
        for ids in spellings:
            seq = torch.tensor([context + list(ids)])
            with torch.no_grad():
                logps = model(seq).logits[0].double().log_softmax(-1)
            mass += math.exp(sum(logps[len(context) - 1 + j, t].item() for j, t in enumerate(ids)))
        masses.append(mass)
    return [m / sum(masses) for m in masses]


def test_a_and_space_a_are_different_tokens_and_both_count(llama):
    model, tok = llama
    scorer = HFChoiceScorer(model, tok, batch_size=4)
    assert len(scorer.spellings("A")) == 2  # "A" and " A" differ in this vocabulary
    got = scorer.choice_probabilities(PROMPTS, ["A", "B"], [ANSWER_PREFIX, ANSWER_PREFIX, ""])
    for prompt, prefix, row in zip(PROMPTS, [ANSWER_PREFIX, ANSWER_PREFIX, ""], got, strict=True):
        assert row == pytest.approx(_manual(model, tok, prompt, prefix, ["A", "B"]), abs=1e-6)
        assert sum(row) == pytest.approx(1.0)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_single_token_options_take_one_forward_pass_with_the_same_result(tiny_model_dir, arch):
    model, tok = _load(tiny_model_dir, arch)
    scorer = HFChoiceScorer(model, tok, batch_size=2)
    options = ["Paris", "is"]  # both spellings of each are single tokens here
    assert all(len(ids) == 1 for o in options for ids in scorer.spellings(o))
    calls = []
    hook = model.register_forward_hook(lambda module, args, out: calls.append(1))
    try:
        got = scorer.choice_probabilities(PROMPTS, options, [ANSWER_PREFIX] * 3)
    finally:
        hook.remove()
    assert len(calls) == 2  # 3 prompts in batches of 2, one row each (not one per spelling)
    for prompt, row in zip(PROMPTS, got, strict=True):
        assert row == pytest.approx(_manual(model, tok, prompt, ANSWER_PREFIX, options), abs=1e-6)
    one_by_one = HFChoiceScorer(model, tok, batch_size=1).choice_probabilities(
        PROMPTS, options, [ANSWER_PREFIX] * 3
    )
    assert sum(got, []) == pytest.approx(sum(one_by_one, []), abs=1e-6)


def test_swapping_a_and_b_leaves_the_label_unchanged_with_the_in_process_scorer(llama):
    model, tok = llama
    judge = AIJudge("tiny-llama", scorer=HFChoiceScorer(model, tok))
    constitution = Constitution(name="c", principles=(Principle(id="better", comparison="Which is better?"),))
    x, y = (assistant("The capital of France is Paris."),), (assistant("I am a helpful assistant."),)
    items = [
        PairToLabel((user(f"Question {i}: what is the capital of France?"),), x, y, id=f"p{i}")
        for i in range(4)
    ]
    flipped = [PairToLabel(it.prompt, it.second, it.first, it.id) for it in items]
    pairs, report = label_pairs(judge, items, constitution, tie_band=0.0)
    pairs_sw, report_sw = label_pairs(judge, flipped, constitution, tie_band=0.0)
    for r, r_sw, p, p_sw in zip(report.records, report_sw.records, pairs, pairs_sw, strict=True):
        ab, ba = (o["p_a"] for o in r["orders"])
        ab_sw, ba_sw = (o["p_a"] for o in r_sw["orders"])
        assert (ab_sw, ba_sw) == pytest.approx((ba, ab), abs=1e-6)  # the same prompts, in the other order
        assert r["p_first"] == pytest.approx((ab + 1 - ba) / 2, abs=1e-9)
        assert r_sw["p_first"] == pytest.approx(1 - r["p_first"], abs=1e-6)
        assert p.chosen == p_sw.chosen and p.confidence == pytest.approx(p_sw.confidence, abs=1e-6)
        assert p.metadata["label_source"] == "scorer"
