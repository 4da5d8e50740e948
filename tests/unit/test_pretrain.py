"""Pretraining from scratch: the tokenizer and model it builds, and the two packings of the corpus."""

from __future__ import annotations

import itertools

import pytest

from alignlab.config import PretrainConfig
from alignlab.errors import DataError
from alignlab.generation.stops import stop_token_ids
from alignlab.lab.build import config_hash
from alignlab.lab.corpus import build_corpus
from alignlab.lab.world import WorldConfig, build_world
from alignlab.modeling.loading import count_parameters
from alignlab.training.pretrain import build_from_scratch, frame_documents, stream_rows, stream_source
from alignlab.training.sources import RunInfo

LAB_INIT = {"arch": "llama", "vocab_size": 1024, "hidden_size": 128, "num_layers": 4, "num_heads": 4,
            "intermediate_size": 512, "max_positions": 256, "chat_template": "chatml"}


def pretrain_config(**train) -> PretrainConfig:
    return PretrainConfig.model_validate({"data": {"path": "corpus.jsonl", "seq_len": 4, "packing": "stream"},
                                          "init": LAB_INIT, "train": train})


@pytest.fixture(scope="module")
def docs():
    return build_corpus(build_world())


@pytest.fixture(scope="module")
def built(docs):
    return build_from_scratch(pretrain_config(), docs)


def test_chat_template_renders_compact_chatml(built):
    tok, _ = built
    msgs = [{"role": "user", "content": "What is 3 plus 4?"}, {"role": "assistant", "content": "It is 7."}]
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert (
        text == "<|im_start|>user\nWhat is 3 plus 4?<|im_end|>\n<|im_start|>assistant\nIt is 7.<|im_end|>\n"
    )
    prompt = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nWhat is 3 plus 4?<|im_end|>\n<|im_start|>assistant\n"


def test_chat_markers_and_role_headers_are_single_tokens(built):
    # The corpus holds no chat markup; the role headers are taught to BPE so each is one token.
    tok, _ = built
    ids = tok("<|im_start|>assistant\nHi<|im_end|>", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids[:3]) == ["<|im_start|>", "assistant",
                                                  "\u010a"]  # \u010a: byte-level "\n"
    assert tok.convert_ids_to_tokens(ids[-1]) == "<|im_end|>"
    assert len(tok) <= 1024 and tok.pad_token_id != tok.eos_token_id


def test_tokenizer_round_trips_and_is_deterministic(built, docs):
    tok, _ = built
    for d in docs[:20]:
        assert tok.decode(tok(d, add_special_tokens=False)["input_ids"]) == d
    again, _ = build_from_scratch(pretrain_config(), build_corpus(build_world(WorldConfig())))
    assert again.get_vocab() == tok.get_vocab()


def test_lab_model_size_and_generation_stops_at_the_end_of_a_turn(built, docs):
    tok, model = built
    assert model.config.model_type == "llama" and model.config.vocab_size == len(tok)
    assert 1_000_000 <= count_parameters(model)[1] <= 5_000_000
    assert tok.convert_tokens_to_ids("<|im_end|>") in model.generation_config.eos_token_id
    assert model.generation_config.eos_token_id == stop_token_ids(tok)
    _, again = build_from_scratch(pretrain_config(), docs)
    assert all((a == b).all() for a, b in zip(model.parameters(), again.parameters(), strict=True))


def test_stream_rows_cut_the_eos_separated_stream_into_full_rows():
    docs = [[1, 10, 11, 2], [1, 20, 2], [1, 30, 31, 32, 2]]
    rows = stream_rows(docs, seq_len=5, seed=0)
    assert all(len(r.input_ids) == 5 and r.labels == r.input_ids for r in rows)
    assert len(rows) == 12 // 5  # the 2-token tail is dropped
    stream = [t for r in rows for t in r.input_ids]
    orders = [[t for i in perm for t in docs[i]] for perm in itertools.permutations(range(3))]
    assert any(stream == order[:10] for order in orders)  # whole documents, in a shuffled order
    assert stream_rows(docs, 5, seed=0) == rows


def test_every_epoch_cuts_the_stream_anew(built, docs):
    tok, _ = built
    framed = frame_documents(tok, docs[:40])
    assert framed[0][0] == tok.bos_token_id and framed[0][-1] == tok.eos_token_id
    first, second = stream_rows(framed, 16, seed=0), stream_rows(framed, 16, seed=1)
    assert len(first) == len(second) and first != second


def test_the_stream_source_cuts_every_epoch_anew_and_resumes_from_its_state():
    docs = [[1, k, k + 1, 2] for k in range(10, 50, 2)]  # 20 documents, 80 tokens: 20 rows of 4
    config = pretrain_config(epochs=2.5, batch_size=2)
    source = stream_source(docs, config, collate=list)
    assert source.plan(RunInfo(config.train)) == 25  # 10 micro-batches of 2 per epoch, 2.5 epochs
    steps = [source.next_step(None, {}).batches for _ in range(13)]
    assert all(len(s) == 1 and len(s[0]) == 2 for s in steps)
    epoch0 = [r.input_ids for s in steps[:10] for r in s[0]]
    cut0, cut1 = stream_rows(docs, 4, seed=0), stream_rows(docs, 4, seed=1)
    assert sorted(epoch0) == sorted(r.input_ids for r in cut0)  # every row of the first cut, once
    assert epoch0 != [r.input_ids for r in cut0]  # in a shuffled order
    assert {tuple(r.input_ids) for s in steps[10:] for r in s[0]} <= {tuple(r.input_ids) for r in cut1}
    assert cut0 != cut1  # the second epoch reads new cuts
    assert (source.position().epoch, source.position().consumed, source.position().epochs) == (1, 6, 1.3)

    again = stream_source(docs, config, collate=list)
    again.plan(RunInfo(config.train))
    again.load_state_dict(source.state_dict())
    assert [again.next_step(None, {}).batches for _ in range(4)] == [source.next_step(None, {}).batches
                                                                   for _ in range(4)]


def test_a_corpus_shorter_than_one_row_is_a_data_error():
    cfg = PretrainConfig.model_validate({"data": {"path": "c.txt", "seq_len": 64, "packing": "stream"},
                                         "init": LAB_INIT})
    with pytest.raises(DataError, match="c.txt: the corpus is shorter than one row of seq_len=64"):
        stream_source([[1, 5, 2]], cfg, collate=list)


def test_config_hash_is_stable_and_sensitive():
    assert config_hash(WorldConfig()) == config_hash(WorldConfig())
    assert config_hash(WorldConfig(seed=1)) != config_hash(WorldConfig(seed=2))
    assert len(config_hash(WorldConfig())) == 12


def test_continued_pretraining_defaults_to_a_fine_tuning_learning_rate():
    """1e-3 suits a tiny model from scratch; on a trained chat model two steps at 1e-3 wrecked it."""
    from alignlab.config import PretrainConfig, load_config

    data = {"data": {"path": "corpus.txt"}}
    assert load_config(PretrainConfig, base={**data, "init": {}}).optim.lr == 1e-3
    continued = load_config(PretrainConfig, base={**data, "model": {"path": "m"}})
    assert continued.optim.lr == 2e-5
    assert load_config(PretrainConfig, base={**data, "model": {"path": "m"}},
                       overrides=["optim.lr=1e-4"]).optim.lr == 1e-4
    assert load_config(PretrainConfig, base={**data, "model": {"path": "m"}, "optim": {"weight_decay": 0.1}},
                       ).optim.lr == 2e-5
