"""`HFLogLikelihood` on a tiny Llama: reply log-probs equal a direct full-softmax computation, batching
and padding change nothing, and TruthfulQA MC runs end to end."""

from __future__ import annotations

import math

import pytest
import torch
from evals_support import write_truthfulqa

from alignlab.data.schema import assistant, system, user
from alignlab.data.templating import encode_prompt_response, fit_to_length
from alignlab.evals.likelihood import HFLogLikelihood, LogLikelihood
from alignlab.evals.registry import build_suite
from alignlab.evals.runner import run_suite
from alignlab.losses.sft import IGNORE_INDEX


@pytest.fixture(scope="module")
def llama(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model_dir("llama")
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def _direct(model, tokenizer, prompt, reply, max_length=None) -> float:
    ex = encode_prompt_response(tokenizer, prompt, [assistant(reply)])
    ex = fit_to_length(ex, max_length) if max_length else ex
    with torch.no_grad():
        logits = model(torch.tensor([ex.input_ids])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    return sum(logp[t - 1, ex.input_ids[t]].item() for t in range(1, len(ex)) if ex.labels[t] != IGNORE_INDEX)


def test_reply_logprob_matches_a_full_softmax_and_is_batch_invariant(llama):
    model, tokenizer = llama
    requests = [
        ([user("What is the capital of France?")], "Paris."),
        ([system("Be brief."), user("Hello!")], "Hello! How can I help you today? I am a helpful assistant."),
        ([user("What is the capital of France?")], "The capital of France is Paris."),
    ]
    scorer = HFLogLikelihood(model, tokenizer, batch_size=2)
    assert isinstance(scorer, LogLikelihood)
    batched = scorer.loglikelihood(requests)
    one_by_one = HFLogLikelihood(model, tokenizer, batch_size=1).loglikelihood(requests)
    for got, single, (prompt, reply) in zip(batched, one_by_one, requests, strict=True):
        assert got == pytest.approx(_direct(model, tokenizer, prompt, reply), abs=1e-4)
        assert got == pytest.approx(single, abs=1e-4) and got < 0
    assert not model.training
    # A prompt longer than max_length loses its start; the reply is kept whole.
    prompt, reply = requests[1]
    cut = HFLogLikelihood(model, tokenizer, max_length=24).loglikelihood([requests[1]])[0]
    assert cut == pytest.approx(_direct(model, tokenizer, prompt, reply, max_length=24), abs=1e-4)


def test_truthfulqa_mc_runs_on_a_tiny_model(llama, tmp_path):
    model, tokenizer = llama
    suite = build_suite("truthfulqa_mc", str(write_truthfulqa(tmp_path / "TruthfulQA.csv")))
    summary = run_suite(suite, HFLogLikelihood(model, tokenizer), tmp_path / "out")
    mc2 = summary.metrics["default"]["mc/mc2"].estimate
    assert mc2.n == 2 and 0 < mc2.value < 1 and not math.isnan(mc2.value)
    assert summary.metrics["default"]["mc/mc1"].interval == "wilson"


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_every_suite_prompt_renders_with_real_chat_templates(tiny_model_dir, tmp_path, arch):
    from evals_support import suite_data
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignlab.data.templating import encode_prompt
    from alignlab.evals.registry import suite_names
    from alignlab.generation.hf import HFGenerator

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir(arch))
    white_box = HFGenerator(AutoModelForCausalLM.from_pretrained(tiny_model_dir(arch)), tokenizer)
    options = {"win_rate": {"judge": object(), "baseline": object()}, "injection": {"placement": "auto"},
               "gcg": {"white_box": white_box, "steps": 0, "num_tokens": 3}}  # the initial attack string
    rendered = 0
    for name in suite_names():  # system prompts, many-shot turns, tool turns, multi-turn follow-ups
        suite = build_suite(name, suite_data(name, tmp_path), limit=2, **options.get(name, {}))
        for sample in suite.samples:
            for solver in suite.solvers.values():
                assert encode_prompt(tokenizer, solver(sample).messages)
                rendered += 1
    assert rendered > 40
