"""Atomic writes: content, no temporaries left, and the permissions any other new file would get."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from alignlab.io import atomic_write_json, atomic_write_jsonl, atomic_write_text, read_jsonl


@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_get_the_umask_mode_of_a_plain_new_file(tmp_path, umask):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives: 0666 & ~umask
    atomic_write_text(tmp_path / "a.txt", "hello")
    atomic_write_json(tmp_path / "sub" / "b.json", {"k": 1})
    atomic_write_jsonl(tmp_path / "c.jsonl", [{"k": 1}, {"k": 2}])
    for name in ("a.txt", "sub/b.json", "c.jsonl"):
        assert mode(tmp_path / name) == mode(plain) == 0o666 & ~umask, name
    assert mode(tmp_path / "sub") == 0o777 & ~umask
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert read_jsonl(tmp_path / "c.jsonl") == [{"k": 1}, {"k": 2}]
    # Replacing a file keeps the rule, and no temporary is left behind.
    atomic_write_text(tmp_path / "a.txt", "again")
    assert mode(tmp_path / "a.txt") == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "c.jsonl", "plain.txt", "sub"]


def test_saved_model_adapter_and_tokenizer_files_get_the_umask_mode(tmp_path, umask, tiny_tokenizer):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from alignlab.modeling.saving import save_model_artefacts
    from alignlab.modeling.tiny import tiny_model_config

    cfg = tiny_model_config("llama", len(tiny_tokenizer), hidden_size=16, num_layers=1, num_heads=2,
                            max_positions=32, bos_token_id=0, eos_token_id=1, pad_token_id=2)
    model = AutoModelForCausalLM.from_config(cfg)
    for out, m in (
        ("full", model),
        ("lora", get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))),
    ):
        (tmp_path / out).mkdir()
        save_model_artefacts(m, tiny_tokenizer, tmp_path / out)
        files = list((tmp_path / out).iterdir())
        assert {"model.safetensors", "adapter_model.safetensors"} & {f.name for f in files}
        assert {f.name: oct(mode(f)) for f in files} == {f.name: oct(0o666 & ~umask) for f in files}


def test_reference_cache_file_gets_the_umask_mode(tmp_path, umask):
    import torch

    from alignlab.training.refcache import read_cache, write_cache

    write_cache(tmp_path / "ref.safetensors", "k", {"chosen": torch.zeros(3)})  # safetensors writes 0600
    assert mode(tmp_path / "ref.safetensors") == 0o666 & ~umask
    assert read_cache(tmp_path / "ref.safetensors")[0] == "k"
