"""Reward models: last-real-token scoring, ensembles, HF-format save/load, and the report statistics."""

import json
import math
import statistics

import pytest
import torch

from alignlab.data.preference import EncodedPair
from alignlab.data.templating import EncodedExample, fit_to_length
from alignlab.losses.reward import bradley_terry_loss
from alignlab.losses.sft import IGNORE_INDEX
from alignlab.modeling.reward_model import (
    MANIFEST,
    build_reward_model,
    last_token_indices,
    load_reward_model,
    save_reward_model,
)
from alignlab.training.reward import reward_report

X = IGNORE_INDEX


def test_last_token_index_handles_right_left_and_no_padding():
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]])
    assert last_token_indices(mask).tolist() == [2, 4, 4, 0]


def _batch(tok, texts):
    enc = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, enc))
    ids = torch.full((len(enc), width), tok.pad_token_id)
    mask = torch.zeros((len(enc), width), dtype=torch.long)
    for i, e in enumerate(enc):
        ids[i, : len(e)], mask[i, : len(e)] = torch.tensor(e), 1
    return ids, mask


TEXTS = ["Hello! How can I help you today?", "The sky.", "Paris is the capital of France."]


@pytest.fixture
def llama(tiny_model_dir, tiny_tokenizer):
    return tiny_model_dir("llama"), tiny_tokenizer


def test_heads_score_at_last_real_token_like_hf_and_independent_of_padding(llama):
    path, tok = llama
    model = build_reward_model(str(path), num_members=3, pad_token_id=tok.pad_token_id, device="cpu").eval()
    ids, mask = _batch(tok, TEXTS)
    with torch.no_grad():
        rewards = model(ids, mask)
        hf = model.members[0](input_ids=ids, attention_mask=mask).logits  # HF pools at the last non-pad id
    assert rewards.shape == (3, 3)
    torch.testing.assert_close(rewards, hf.t().float())
    # Each row alone, without any padding, gives the same rewards.
    for i, text in enumerate(TEXTS):
        one_ids, one_mask = _batch(tok, [text])
        with torch.no_grad():
            torch.testing.assert_close(model(one_ids, one_mask)[:, 0], rewards[:, i], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(rewards[0], rewards[1])  # three heads, three different rewards


def test_heads_model_saves_as_plain_hf_sequence_classifier(llama, tmp_path):
    from transformers import AutoModelForSequenceClassification

    path, tok = llama
    model = build_reward_model(str(path), num_members=2, pad_token_id=tok.pad_token_id, device="cpu").eval()
    save_reward_model(model, tok, tmp_path, aggregate="min")
    ids, mask = _batch(tok, TEXTS)
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert hf.config.num_labels == 2 and hf.config.pad_token_id == tok.pad_token_id
    with torch.no_grad():
        expected = model(ids, mask)
        torch.testing.assert_close(hf(input_ids=ids, attention_mask=mask).logits.t(), expected)
    loaded, manifest = load_reward_model(str(tmp_path), device="cpu")
    assert (manifest.kind, manifest.num_members, manifest.aggregate) == ("heads", 2, "min")
    torch.testing.assert_close(loaded.reward(ids, mask, manifest.aggregate), expected.min(0).values)


def test_separate_models_ensemble_round_trips(llama, tmp_path):
    from transformers import AutoModelForSequenceClassification

    path, tok = llama
    model = build_reward_model(str(path), num_members=2, kind="models", pad_token_id=tok.pad_token_id,
                               device="cpu")
    model.eval()
    ids, mask = _batch(tok, TEXTS)
    with torch.no_grad():
        rewards = model(ids, mask)
    assert rewards.shape == (2, 3) and not torch.allclose(rewards[0], rewards[1])  # heads seeded apart
    save_reward_model(model, tok, tmp_path, aggregate="mean_minus_std", std_coef=0.5)
    assert json.loads((tmp_path / MANIFEST).read_text())["members"] == ["member-0", "member-1"]
    member1 = AutoModelForSequenceClassification.from_pretrained(tmp_path / "member-1").eval()
    with torch.no_grad():
        torch.testing.assert_close(member1(input_ids=ids, attention_mask=mask).logits[:, 0], rewards[1])
    loaded, manifest = load_reward_model(str(tmp_path), device="cpu")
    expected = rewards.mean(0) - 0.5 * rewards.std(0, correction=0)
    torch.testing.assert_close(loaded.reward(ids, mask, manifest.aggregate, manifest.std_coef), expected)


def test_reward_model_on_a_lora_adapter_uses_the_merged_backbone(llama, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    path, tok = llama
    lm = AutoModelForCausalLM.from_pretrained(path)
    peft_model = get_peft_model(lm, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    merged = peft_model.merge_and_unload()
    rm = build_reward_model(str(tmp_path / "adapter"), pad_token_id=tok.pad_token_id, device="cpu")
    q = "layers.0.self_attn.q_proj.weight"
    backbone = rm.members[0].model.state_dict()
    torch.testing.assert_close(backbone[q], merged.model.state_dict()[q])
    assert not torch.allclose(backbone[q], AutoModelForCausalLM.from_pretrained(path).model.state_dict()[q])


# ------------------------------------------------------------------------------------ report


def _pair(len_c, len_r, tie=False, category=None):
    def ex(n):
        return EncodedExample([7] * (2 + n), [X, X] + [7] * n)

    return EncodedPair(ex(len_c), ex(len_r), 0.5 if tie else 1.0, 0.0, tie, category)


PAIRS = [_pair(5, 2, category="a"), _pair(3, 3, category="a"), _pair(4, 4, tie=True, category="b"),
         _pair(6, 1, category="b")]
CHOSEN = torch.tensor([[2.0, 0.0, 1.0, 3.0]])
REJECTED = torch.tensor([[0.0, 1.0, 1.0, 1.0]])


def test_report_hand_computed():
    rep = reward_report(CHOSEN, REJECTED, PAIRS, num_bins=10)
    # Ties are left out: pairs 0 and 3 are right (margin 2), pair 1 wrong (margin -1).
    assert rep["pairs"] == 4 and rep["ties"] == 1
    assert rep["accuracy"] == pytest.approx(2 / 3) and rep["member_accuracy"] == [pytest.approx(2 / 3)]
    assert rep["per_category"] == {"a": {"pairs": 2, "accuracy": 0.5}, "b": {"pairs": 1, "accuracy": 1.0}}
    # Longer chosen in pairs 0 and 3, equal lengths (half) in pair 1.
    assert rep["longer_is_chosen"] == pytest.approx(2.5 / 3)
    # Confidences σ(1) (wrong) and σ(2) twice (right), in separate bins.
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert rep["ece"] == pytest.approx(sig(1) / 3 + 2 / 3 * (1 - sig(2)))
    assert [(b["count"], b["accuracy"]) for b in rep["reliability"]] == [(1, 0.0), (2, 1.0)]
    rewards = [2.0, 0.0, 1.0, 3.0, 0.0, 1.0, 1.0, 1.0]
    lengths = [5.0, 3.0, 4.0, 6.0, 2.0, 3.0, 4.0, 1.0]
    assert rep["length_correlation"] == pytest.approx(statistics.correlation(rewards, lengths))


def test_preference_statistics_are_invariant_to_a_constant_reward_shift():
    base = reward_report(CHOSEN, REJECTED, PAIRS)
    shifted = reward_report(CHOSEN + 5.0, REJECTED + 5.0, PAIRS)
    for key in ("accuracy", "ece", "reliability", "per_category", "length_correlation", "longer_is_chosen"):
        assert shifted[key] == pytest.approx(base[key]) if isinstance(base[key],
                                                                      float) else shifted[key] == base[key]
    assert shifted["mean_reward_chosen"] == pytest.approx(base["mean_reward_chosen"] + 5.0)
    p0 = bradley_terry_loss(CHOSEN[0], REJECTED[0]).probs
    torch.testing.assert_close(bradley_terry_loss(CHOSEN[0] - 3.0, REJECTED[0] - 3.0).probs, p0)


def test_ensemble_report_aggregates_members():
    chosen = torch.tensor([[1.0, 1.0], [-1.0, 3.0]])  # member 1 gets pair 0 wrong
    rejected = torch.zeros(2, 2)
    pairs = [_pair(2, 2), _pair(2, 2)]
    # Means 0 (a reward tie counts one half) and 2 (right); minima -1 (wrong) and 1 (right).
    assert reward_report(chosen, rejected, pairs, aggregate="mean")["accuracy"] == 0.75
    assert reward_report(chosen, rejected, pairs, aggregate="mean")["member_accuracy"] == [1.0, 0.5]
    assert reward_report(chosen, rejected, pairs, aggregate="min")["accuracy"] == 0.5


def test_fit_to_length_drops_prompt_tokens_first():
    ex = EncodedExample(list(range(10)), [X] * 6 + [6, 7, 8, 9])
    assert fit_to_length(ex, 6) == EncodedExample([4, 5, 6, 7, 8, 9], [X, X, 6, 7, 8, 9])
    long = EncodedExample(list(range(10)), [X, X] + list(range(2, 10)))
    assert fit_to_length(long, 5) == EncodedExample([2, 3, 4, 5, 6], [2, 3, 4, 5, 6])
    assert fit_to_length(ex, 10) is ex


def test_save_writes_each_member_from_the_gathered_state_dict(llama, tmp_path):
    """Under FSDP / ZeRO-3 a member's own weights are shards: the gathered state dict must be saved."""
    from safetensors.torch import load_file

    path, tok = llama
    model = build_reward_model(str(path), num_members=2, kind="models", pad_token_id=tok.pad_token_id,
                               device="cpu")
    gathered = {k: torch.full_like(v, 0.5 if k.startswith("members.1.") else -0.5) for k,
                v in model.state_dict().items()}
    save_reward_model(model, tok, tmp_path, state_dict=gathered)
    for i, value in ((0, -0.5), (1, 0.5)):
        saved = load_file(tmp_path / f"member-{i}" / "model.safetensors")
        assert saved and all(torch.all(t == value) for t in saved.values()), f"member {i}"
