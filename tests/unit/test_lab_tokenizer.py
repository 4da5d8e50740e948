"""The lab tokenizer (BPE on the corpus, ChatML template) and the tiny Llama base model."""

from __future__ import annotations

import pytest

from alignlab.lab.corpus import build_corpus
from alignlab.lab.model import LabModelConfig, build_lab_model, config_hash, count_parameters, pack_documents
from alignlab.lab.tokenizer import IM_END, IM_START, TokenizerConfig, train_lab_tokenizer
from alignlab.lab.world import WorldConfig, build_world


@pytest.fixture(scope="module")
def docs():
    return build_corpus(build_world())


@pytest.fixture(scope="module")
def tok(docs):
    return train_lab_tokenizer(docs, TokenizerConfig(vocab_size=1024))


def test_chat_template_renders_compact_chatml(tok):
    msgs = [{"role": "user", "content": "What is 3 plus 4?"}, {"role": "assistant", "content": "3 plus 4 is 7."}]
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text == "<|im_start|>user\nWhat is 3 plus 4?<|im_end|>\n<|im_start|>assistant\n3 plus 4 is 7.<|im_end|>\n"
    prompt = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nWhat is 3 plus 4?<|im_end|>\n<|im_start|>assistant\n"
    assert text.startswith(prompt[: -len("<|im_start|>assistant\n")])


def test_special_tokens_and_role_headers_are_single_tokens(tok):
    ids = tok("<|im_start|>assistant\nHi<|im_end|>", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids[:3]) == [IM_START, "assistant", "\u010a"]  # \u010a is byte-level "\n"
    assert tok.convert_ids_to_tokens(ids[-1]) == IM_END
    assert len(tok) <= 1024 and tok.eos_token == "<|endoftext|>" and tok.pad_token_id != tok.eos_token_id


def test_roundtrip_and_determinism(tok, docs):
    for d in docs[:20]:
        assert tok.decode(tok(d, add_special_tokens=False)["input_ids"]) == d
    again = train_lab_tokenizer(build_corpus(build_world(WorldConfig())), TokenizerConfig(vocab_size=1024))
    assert again.get_vocab() == tok.get_vocab()
    # Town names are frequent in the corpus, so BPE learns each as one token.
    town = build_world().towns[0].name
    assert len(tok(" " + town, add_special_tokens=False)["input_ids"]) == 1


def test_model_size_and_generation_stops_at_end_of_turn(tok):
    model = build_lab_model(tok, LabModelConfig())
    assert model.config.model_type == "llama" and model.config.vocab_size == len(tok)
    assert 1_000_000 <= count_parameters(model) <= 5_000_000
    assert model.generation_config.eos_token_id == [tok.convert_tokens_to_ids(IM_END), tok.eos_token_id]
    again = build_lab_model(tok, LabModelConfig())
    assert all((a == b).all() for a, b in zip(model.parameters(), again.parameters(), strict=False))


def test_pack_documents_cuts_an_eos_separated_stream(tok):
    docs = ["Welcome to Kouford.", "3 plus 4 is 7.", "Bump."]
    stream = []
    for d in docs:
        stream += tok(d, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    rows = pack_documents(tok, docs, seq_len=4)
    assert rows == [stream[i: i + 4] for i in range(0, len(stream) - 3, 4)]
    assert all(len(r) == 4 for r in rows) and tok.eos_token_id in sum(rows, [])
    # A seed shuffles the documents: same tokens (seq_len 1 drops no tail), another order.
    many = [f"{a} plus {b} is {a + b}." for a in range(1, 6) for b in range(1, 6)]
    plain, shuffled = pack_documents(tok, many, seq_len=1), pack_documents(tok, many, seq_len=1, seed=1)
    assert shuffled != plain and sorted(shuffled) == sorted(plain)
    assert pack_documents(tok, many, seq_len=1, seed=1) == shuffled


def test_config_hash_is_stable_and_sensitive():
    assert config_hash(WorldConfig(), LabModelConfig()) == config_hash(WorldConfig(), LabModelConfig())
    assert config_hash(WorldConfig(seed=1)) != config_hash(WorldConfig(seed=2))
    assert len(config_hash(WorldConfig())) == 12
