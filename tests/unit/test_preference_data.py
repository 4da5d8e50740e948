"""The preference data layer every stage shares: encoding pairs and unpaired feedback, the system
prompt, held-out splits, and the one pair collator with its (2B, T) contract."""


import pytest
import torch

from alignlab.config import DataConfig, RewardLossConfig
from alignlab.data.labels import IGNORE_INDEX
from alignlab.data.preference import (
    EncodedFeedback,
    EncodedPair,
    collate_feedback,
    collate_pairs,
    count_feedback,
    count_pairs,
    encode_feedback_split,
    encode_preference_split,
    item_width,
    with_reference,
    with_system_prompt,
)
from alignlab.data.schema import Message
from alignlab.data.templating import (
    EncodedExample,
    encode_prompt_response,
    ensure_chat_template,
    fit_to_length,
)
from alignlab.errors import ConfigError, DataError
from records import pair, write_jsonl


def quiet(_):
    pass


@pytest.fixture
def tok(tiny_tokenizer):
    ensure_chat_template(tiny_tokenizer)
    return tiny_tokenizer


def test_targets_from_ties_confidence_smoothing_and_margins(tmp_path, tok):
    f = write_jsonl(tmp_path / "p.jsonl", [
        pair("Say hello.", "Hello!", "No."),
        pair("Say hello.", "Hello!", "Hi!", tie=True),
        pair("Say hello.", "Hello there!", "No.", confidence=0.8, margin=2.0),
        pair("Say hello.", "Same.", "Same."),  # identical responses: no signal, dropped
    ])
    loss = RewardLossConfig(label_smoothing=0.1, margin_scale=0.5)
    split = encode_preference_split(tok, DataConfig(path=str(f)), loss=loss, log=quiet)
    assert [p.target_prob for p in split.train] == pytest.approx([0.9, 0.5, 0.8 * 0.9 + 0.2 * 0.1])
    assert [p.margin for p in split.train] == [0.0, 0.0, 1.0] and split.dropped == 1
    no_ties = encode_preference_split(tok, DataConfig(path=str(f)), keep_ties=False, log=quiet)
    assert len(no_ties.train) == 2 and no_ties.dropped == 2
    # Truncation keeps whole responses and drops prompt tokens first.
    short = encode_preference_split(tok, DataConfig(path=str(f), max_length=12), log=quiet)
    full = encode_prompt_response(tok, [{"role": "user", "content": "Say hello."}],
                                  [{"role": "assistant", "content": "Hello!"}])
    assert short.train[0].chosen == fit_to_length(full, 12) and len(short.train[0].chosen) == 12
    # A pair is as wide as its longer side: both share one padded batch.
    first = split.train[2]
    assert item_width(first) == max(len(first.chosen), len(first.rejected)) > len(first.rejected)


def test_eval_fraction_and_eval_file_give_the_held_out_pairs(tmp_path, tok):
    rows = [pair(f"Question {i}?", f"Answer {i}.", "No.") for i in range(10)]
    f = write_jsonl(tmp_path / "p.jsonl", rows)
    split = encode_preference_split(tok, DataConfig(path=str(f), eval_fraction=0.2), log=quiet)
    assert (len(split.train), len(split.eval)) == (8, 2)
    again = encode_preference_split(tok, DataConfig(path=str(f), eval_fraction=0.2), log=quiet)
    assert again.eval == split.eval  # seeded: every run holds out the same pairs
    held = write_jsonl(tmp_path / "held.jsonl", rows[:3])
    split = encode_preference_split(tok, DataConfig(path=str(f), eval_path=str(held)), log=quiet)
    assert (len(split.train), len(split.eval)) == (10, 3)


def test_no_usable_pair_and_packing_are_clear_errors(tmp_path, tok):
    f = write_jsonl(tmp_path / "same.jsonl", [pair("Hi.", "Same.", "Same.")])
    with pytest.raises(DataError, match="same.jsonl: no usable preference pairs left"):
        encode_preference_split(tok, DataConfig(path=str(f)), log=quiet)
    with pytest.raises(ConfigError, match="config key 'data.packing'"):
        encode_preference_split(tok, DataConfig(path=str(f), packing=True), log=quiet)


def test_system_prompt_is_added_only_where_there_is_none():
    user = [Message(role="user", content="hi")]
    assert with_system_prompt(user, None) == user
    assert [m.role for m in with_system_prompt(user, "Be brief.")] == ["system", "user"]
    own = [Message(role="system", content="Mine."), *user]
    assert with_system_prompt(own, "Be brief.") == own


def ex(n: int, first: int = 1) -> EncodedExample:
    ids = list(range(first, first + n))
    return EncodedExample(ids, [IGNORE_INDEX] + ids[1:])


def test_the_pair_collator_stacks_chosen_then_rejected_in_one_padded_batch():
    pairs = [EncodedPair(ex(3), ex(5), target_prob=0.8, margin=1.0), EncodedPair(ex(2), ex(4))]
    batch = collate_pairs(pairs, pad_token_id=0)
    assert batch["input_ids"].shape == (4, 5) and count_pairs(batch) == 2
    assert batch["input_ids"][2].tolist() == [1, 2, 3, 4, 5]  # row B + i is pair i's rejected side
    assert batch["attention_mask"].sum(1).tolist() == [3, 2, 5, 4]
    assert batch["labels"][0].tolist() == [IGNORE_INDEX, 2, 3, IGNORE_INDEX, IGNORE_INDEX]
    assert batch["target_prob"].tolist() == pytest.approx([0.8,
                                                           1.0]) and batch["margin"].tolist() == [1.0, 0.0]
    assert "ref_chosen" not in batch  # no cached reference yet
    cached = with_reference(with_reference(pairs, "chosen", [-1.0, -2.0]), "rejected", [-3.0, -4.0])
    batch = collate_pairs(cached, pad_token_id=0)
    assert batch["ref_chosen"].tolist() == [-1.0, -2.0] and batch["ref_rejected"].tolist() == [-3.0, -4.0]


def test_feedback_batches_and_item_lengths():
    items = [EncodedFeedback(ex(5), ex(2), True), EncodedFeedback(ex(2), ex(3), False)]
    batch = collate_feedback(items, pad_token_id=0)
    assert batch["completion_input_ids"].shape == (2, 5) and batch["kl_input_ids"].shape == (2, 3)
    assert batch["label"].tolist() == [True, False] and count_feedback(batch) == 2
    assert [item_width(it) for it in items] == [5, 3]
    assert item_width(EncodedPair(ex(2), ex(5))) == 5


def test_feedback_pairs_each_prompt_with_the_next_records_completion(tmp_path, tok):
    rows = [{"prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": a}],
             "label": good} for q, a, good in [("Say hi.", "Hi!", True), ("Name a fruit.", "Apple.", False)]]
    f = write_jsonl(tmp_path / "kto.jsonl", rows)
    split = encode_feedback_split(tok, DataConfig(path=str(f), system_prompt="Be brief."), log=quiet)
    assert [it.desirable for it in split.train] == [True, False]
    first = tok.decode(split.train[0].kl.input_ids)
    assert "Say hi." in first and "Apple." in first and "Be brief." in first
    assert torch.is_tensor(collate_feedback(split.train, tok.pad_token_id)["label"])
