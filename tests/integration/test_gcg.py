"""GCG (Zou et al. 2023) on micro models: the search, its loss and gradient, its filters, transfer.

The micro model is the shared tiny Llama (hidden 32, 2 layers) with its weights redrawn at std 0.5.
At the default init (std 0.02) a model this narrow predicts a nearly uniform next token whatever
the context (its target loss sits at log V and no attack moves it), so no search could succeed;
larger weights make the context matter, as training would. "Paris." (two tokens) is not what it
says to the question, which each test checks before attacking.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from alignlab.data.schema import assistant, user
from alignlab.data.templating import encode_prompt
from alignlab.errors import ConfigError, DataError
from alignlab.evals.gcg import (
    GCGConfig,
    GCGTarget,
    _Objective,
    allowed_tokens,
    gcg_attack,
    prompt_layout,
    retokenizes,
    sample_candidates,
    transfer,
    with_attack,
)
from alignlab.generation.base import Completion, Generator, SamplingParams
from alignlab.generation.hf import HFGenerator

QUESTION = GCGTarget([user("What is the capital of France?")], "Paris.")
POEM = GCGTarget([user("Please write a short poem.")], "Paris.")
# Small enough for seconds on one CPU thread: 10 tokens, top-64 per position, 128 candidates a step.
SMALL = GCGConfig(num_tokens=10, steps=100, top_k=64, batch_size=128, seed=0)


def load_micro(path, std: float = 0.5):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model.eval(), tok


@pytest.fixture(scope="module")
def micro(tiny_model_dir):
    return load_micro(tiny_model_dir("llama"))


@pytest.fixture(scope="module")
def found(micro):
    model, tok = micro
    return gcg_attack(model, tok, QUESTION, SMALL)


def greedy(model, tok, messages, n: int = 8) -> str:
    return HFGenerator(model, tok).generate([messages], SamplingParams(max_new_tokens=n))[0][0].text


class InProcess:
    """A `Generator` over an in-process model (what an endpoint would answer, without HTTP)."""

    def __init__(self, model, tok) -> None:
        self.model, self.tok, self.seen = model, tok, []

    def generate(self, prompts, params: SamplingParams) -> list[list[Completion]]:
        self.seen += [list(p) for p in prompts]
        greedy = SamplingParams(max_new_tokens=params.max_new_tokens)
        return HFGenerator(self.model, self.tok).generate(prompts, greedy)


def test_gcg_finds_a_suffix_that_makes_the_micro_model_emit_the_target(micro, found) -> None:
    model, tok = micro
    assert not greedy(model, tok, QUESTION.messages).startswith("Paris.")  # not without the attack
    assert found.success and 0 < found.steps < SMALL.steps
    assert len(found.attack_ids) == 10 and found.responses[0].startswith("Paris.")
    # Checked independently: the attack, sent as text in the user turn, renders to the optimised ids
    # and greedy decoding of that real prompt starts with the target.
    attacked = with_attack(QUESTION.messages, found.attack)
    assert attacked[-1].content == QUESTION.messages[-1].content + found.attack
    ids = encode_prompt(tok, attacked)
    layout = prompt_layout(tok, QUESTION)
    assert ids == [*layout.before_ids, *found.attack_ids, *layout.after_ids]
    assert greedy(model, tok, attacked).startswith("Paris.")
    assert found.best_loss == found.losses[-1] < found.losses[0]
    assert found.to_json()["attack_ids"] == found.attack_ids and found.seconds > 0


def test_loss_is_the_mean_cross_entropy_of_the_target_tokens(micro) -> None:
    model, tok = micro
    result = gcg_attack(model, tok, QUESTION, dataclasses.replace(SMALL, steps=0))
    assert result.steps == 0 and len(result.losses) == 1
    prompt = encode_prompt(tok, with_attack(QUESTION.messages, result.attack))
    target = tok("Paris.", add_special_tokens=False)["input_ids"]
    assert len(target) == 2
    with torch.no_grad():
        logp = model(torch.tensor([prompt + target])).logits[0].double().log_softmax(-1)
    # Position t predicts token t + 1: the target's tokens are read off the two positions before them.
    n = len(prompt)
    expected = -(logp[n - 1, target[0]] + logp[n, target[1]]) / 2
    assert result.losses[0] == pytest.approx(float(expected), rel=1e-5)


def test_universal_loss_is_the_sum_over_prompts_and_forces_every_prompt(micro) -> None:
    model, tok = micro
    cfg = dataclasses.replace(SMALL, position="prefix")
    targets = [dataclasses.replace(t, target=" Paris") for t in (QUESTION, POEM)]
    for t in targets:
        assert not greedy(model, tok, t.messages).startswith("Paris")  # replies come stripped
    single = [gcg_attack(model, tok, t, dataclasses.replace(cfg, steps=0)).losses[0] for t in targets]
    both = gcg_attack(model, tok, targets, dataclasses.replace(cfg, steps=0)).losses[0]
    assert both == pytest.approx(sum(single), rel=1e-5)
    result = gcg_attack(model, tok, targets, cfg)
    assert result.success and result.position == "prefix"
    for t in targets:
        attacked = with_attack(t.messages, result.attack, "prefix")
        assert attacked[-1].content.startswith(result.attack + " ")
        assert greedy(model, tok, attacked).startswith("Paris")


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_prefix_kv_cache_and_chunked_passes_change_nothing_but_speed(arch, tiny_model_dir) -> None:
    model, tok = load_micro(tiny_model_dir(arch))
    target = GCGTarget([user("Hello! How can I help you today?")], "The quick brown fox")
    cfg = GCGConfig(num_tokens=6, steps=3, top_k=16, batch_size=32, seed=1, early_stop=False)
    cached = gcg_attack(model, tok, target, dataclasses.replace(cfg, eval_batch_size=7))  # ragged chunks
    plain = gcg_attack(model, tok, target, dataclasses.replace(cfg, prefix_cache=False))
    assert cached.attack_ids == plain.attack_ids
    assert cached.losses == pytest.approx(plain.losses, rel=1e-4)
    assert cached.steps == plain.steps == 3


@pytest.mark.parametrize("prefix_cache", [True, False])
def test_one_hot_gradient_is_the_embedding_gradient_projected_on_the_vocabulary(micro, prefix_cache) -> None:
    model, tok = micro
    layout = prompt_layout(tok, QUESTION)
    attack = torch.tensor(tok(" the capital of France is", add_special_tokens=False)["input_ids"])
    objective = _Objective(model, [layout], prefix_cache, eval_batch=8)
    got = objective.gradient(attack)  # (k, V)
    ids = torch.tensor([*layout.before_ids, *attack.tolist(), *layout.after_ids, *layout.target_ids])
    embeds = model.get_input_embeddings()(ids)[None].detach().requires_grad_()
    logp = model(inputs_embeds=embeds).logits[0].log_softmax(-1)
    n = len(ids) - len(layout.target_ids)
    loss = -logp[n - 1 : len(ids) - 1].gather(1, ids[n:, None]).mean()
    (grad_embeds,) = torch.autograd.grad(loss, embeds)
    start = len(layout.before_ids)
    # d loss / d one_hot[i, v] = <d loss / d e_i, W[v]>: the chain rule through e = one_hot @ W.
    expected = grad_embeds[0, start : start + len(attack)] @ model.get_input_embeddings().weight.T
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    losses, exact = objective.losses(attack[None])
    assert float(losses[0]) == pytest.approx(loss.item(), rel=1e-5) and not exact[0]


def test_candidates_swap_one_position_for_one_of_its_top_k_allowed_tokens() -> None:
    attack = torch.tensor([0, 1, 2])
    grad = torch.tensor(
        [
            [0.0, -5.0, -4.0, 1.0, -9.0, 2.0],  # id 4 is disallowed: top-2 are 1 and 2
            [3.0, 2.0, 1.0, -1.0, -9.0, -2.0],  # top-2: 5 and 3
            [0.0, 0.0, 0.0, 0.0, -9.0, -7.0],  # top-2: 5, then a tie broken by topk
        ]
    )
    allowed = torch.tensor([True, True, True, True, False, True])
    cands = sample_candidates(attack, grad, allowed, 2, 200, torch.Generator().manual_seed(0))
    assert cands.shape == (200, 3)
    changed = (cands != attack).sum(1)
    assert changed.max() <= 1 and changed.sum() > 150
    assert set(cands[:, 0].tolist()) <= {0, 1, 2} and set(cands[:, 1].tolist()) <= {1, 5, 3}
    assert (cands != 4).all() and 5 in cands[:, 2].tolist()
    again = sample_candidates(attack, grad, allowed, 2, 200, torch.Generator().manual_seed(0))
    assert torch.equal(cands, again)


def test_allowed_tokens_exclude_special_non_ascii_and_rows_beyond_the_vocabulary(tiny_tokenizer) -> None:
    tok = tiny_tokenizer
    n = len(tok)
    ok = allowed_tokens(tok, n + 5)
    assert not ok[n:].any() and not ok[tok.all_special_ids].any()
    assert not ok[tok.convert_tokens_to_ids("<|im_start|>")]
    byte = tok.convert_tokens_to_ids("Ã")  # half of a UTF-8 character: decodes to "\ufffd"
    assert not ok[byte] and ok[tok.convert_tokens_to_ids("!")]
    loose = allowed_tokens(tok, n + 5, allow_non_ascii=True, allow_special=True)
    assert loose[byte] and loose[tok.eos_token_id] and not loose[n:].any()


def test_candidates_whose_text_tokenizes_differently_are_rejected(micro) -> None:
    _, tok = micro
    words = tok(" the capital of France", add_special_tokens=False)["input_ids"]
    paris = tok.convert_tokens_to_ids("Paris")
    assert tok.convert_ids_to_tokens(paris) == "Paris"
    # "P" + "aris" decodes to "Paris", which tokenizes back as one token: not the ids optimised.
    split = [tok.convert_tokens_to_ids("P"), *tok("aris", add_special_tokens=False)["input_ids"]]
    width = max(len(words), len(split) + 1)
    good = words + words[: width - len(words)]
    bad = [*split, *words][:width]
    assert retokenizes(tok, QUESTION, torch.tensor([good, bad])).tolist() == [True, False]
    # The chat template decides too: Llama-3's trims the user's text, so as a prefix an attack
    # starting with a space loses it, while as a suffix the same ids survive.
    assert retokenizes(tok, QUESTION, torch.tensor([words]), "prefix").tolist() == [False]
    assert retokenizes(tok, QUESTION, torch.tensor([words]), "suffix").tolist() == [True]


def test_search_is_reproducible_and_leaves_the_model_as_it_was(micro) -> None:
    model, tok = micro
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = dataclasses.replace(SMALL, steps=4, early_stop=False)
    a, b = gcg_attack(model, tok, QUESTION, cfg), gcg_attack(model, tok, QUESTION, cfg)
    other = gcg_attack(model, tok, QUESTION, dataclasses.replace(cfg, seed=1))
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    assert (a.attack_ids, a.losses) == (b.attack_ids, b.losses) and a.steps == 4
    assert other.attack_ids != a.attack_ids


def test_loss_threshold_and_step_budget_stop_the_search(micro) -> None:
    model, tok = micro
    at_once = gcg_attack(model, tok, QUESTION, dataclasses.replace(SMALL, stop_loss=math.inf))
    assert at_once.steps == 0 and not at_once.success
    budget = gcg_attack(model, tok, QUESTION, dataclasses.replace(SMALL, steps=2, early_stop=False))
    assert budget.steps == 2 and len(budget.losses) == 3


def test_transfer_reports_whether_the_target_appears(micro, found) -> None:
    model, tok = micro
    gen = InProcess(model, tok)
    assert isinstance(gen, Generator)
    hit = transfer(gen, QUESTION, found.attack, params=SamplingParams(max_new_tokens=4))
    baseline = transfer(gen, QUESTION, "", params=SamplingParams(max_new_tokens=4))
    assert [o.hit for o in hit] == [True] and [o.hit for o in baseline] == [False]
    assert gen.seen == [with_attack(QUESTION.messages, found.attack), list(QUESTION.messages)]
    assert hit[0].target == "Paris." and hit[0].response.startswith("Paris.") and hit[0].error is None


def test_transfer_counts_a_failed_generation_as_a_miss_and_keeps_its_error() -> None:
    class Canned:
        def generate(self, prompts, params):
            return [
                [Completion("Sure: Paris."), Completion("No.")],
                [Completion("", finish_reason="error", error="connection refused")],
            ]

    targets = [QUESTION, dataclasses.replace(POEM, target="Paris")]
    out = transfer(Canned(), targets, " !", params=SamplingParams(n=2))
    assert [(o.index, o.hit) for o in out] == [(0, True), (0, False), (1, False)]
    assert out[2].error == "connection refused"


def test_bad_settings_and_prompts_are_one_line_errors(tiny_tokenizer) -> None:
    with pytest.raises(ConfigError, match="gcg.top_k"):
        GCGConfig(top_k=0)
    with pytest.raises(ConfigError, match="gcg.steps"):
        GCGConfig(steps=-1)
    with pytest.raises(ConfigError, match="gcg.position"):
        GCGConfig(position="middle")
    with pytest.raises(DataError, match="end with a user message"):
        GCGTarget([user("hi"), assistant("x")], "Sure")
    with pytest.raises(DataError, match="non-empty"):
        GCGTarget([user("hi")], "  ")
    tiny_tokenizer.chat_template = "{% for m in messages %}{{ m['content'] | lower }}{% endfor %}"
    with pytest.raises(DataError, match="verbatim"):
        prompt_layout(tiny_tokenizer, QUESTION)


def test_nanogcg_reaches_its_own_success_with_comparable_loss(tiny_model_dir, monkeypatch) -> None:
    """Cross-check against nanogcg, an independent implementation, where it is installed.

    nanogcg drops the template's BOS text (expecting the tokenizer to add it back, which this one
    does not), so both run on a template without BOS, where their token sequences are identical.
    Its early stop fires when any candidate is the teacher-forced argmax, yet it returns the
    lowest-loss string, which may not be that one: only its own criterion is compared here.
    """
    nanogcg = pytest.importorskip("nanogcg")
    model, tok = load_micro(tiny_model_dir("llama"))
    tok.chat_template = tok.chat_template.replace("{{ bos_token }}", "")
    ours = gcg_attack(model, tok, QUESTION, SMALL)
    # It runs gc.collect() after every batch, most of its time in a large test process.
    monkeypatch.setattr(nanogcg.gcg.gc, "collect", lambda *args: 0)
    deterministic = torch.are_deterministic_algorithms_enabled()  # nanogcg switches it on globally
    cfg = nanogcg.GCGConfig(
        num_steps=SMALL.steps, optim_str_init="!" * 10, search_width=SMALL.batch_size, topk=SMALL.top_k,
        seed=0, early_stop=True, use_prefix_cache=False, verbosity="WARNING",
    )  # fmt: skip
    try:
        theirs = nanogcg.run(model, tok, [m.to_template_dict() for m in QUESTION.messages], "Paris.", cfg)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    assert ours.success and len(theirs.losses) < SMALL.steps  # both stopped on success
    assert abs(ours.best_loss - theirs.best_loss) < 1.0
