"""The lab's tiny Llama base model: its size, its random init, and packed pretraining rows.

Default size: hidden 128, 4 layers, vocabulary 1k, about 1.2 M parameters; small enough that
pretraining from scratch takes a minute or two on two CPU cores. (Measured: 2 layers of width 256
stored the facts less reliably in the same number of steps, 3 layers of width 192 much worse.)
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from alignlab.lab.tokenizer import IM_END


@dataclass(frozen=True)
class LabModelConfig:
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    max_positions: int = 256
    seed: int = 0


def build_lab_model(tokenizer, config: LabModelConfig | None = None):
    """A randomly initialised Llama sized for `tokenizer`; generation stops at `<|im_end|>` or eos."""
    from alignlab.modeling.tiny import build_tiny_model

    cfg = config or LabModelConfig()
    model = build_tiny_model(
        "llama",
        tokenizer,
        seed=cfg.seed,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_positions=cfg.max_positions,
    )
    gen = model.generation_config
    gen.eos_token_id = [tokenizer.convert_tokens_to_ids(IM_END), tokenizer.eos_token_id]
    gen.pad_token_id = tokenizer.pad_token_id
    gen.bos_token_id = tokenizer.bos_token_id
    return model


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def pack_documents(tokenizer, docs: Sequence[str], seq_len: int, seed: int | None = None) -> list[list[int]]:
    """Concatenate documents, each followed by eos, and cut into rows of exactly `seq_len` tokens.

    The short tail is dropped. Rows start mid-document, as in GPT-style pretraining; eos marks where
    one document ends so the model learns not to run one into the next. With `seed`, documents are
    shuffled first: repack with a new seed every epoch, or the model memorises each fixed row
    (its whole context) instead of the facts inside it, and cannot recall them elsewhere.
    """
    if seq_len < 1:
        raise ValueError("seq_len must be at least 1")
    docs = list(docs)
    if seed is not None:
        random.Random(seed).shuffle(docs)
    stream: list[int] = []
    for ids in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(tokenizer.eos_token_id)
    return [stream[i: i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)]


def config_hash(*configs: Any, length: int = 12) -> str:
    """A short stable hash of dataclass / pydantic / plain configs, for cache directory names."""
    def plain(c: Any) -> Any:
        if is_dataclass(c) and not isinstance(c, type):
            return {"__type__": type(c).__name__, **asdict(c)}
        if hasattr(c, "model_dump"):
            return {"__type__": type(c).__name__, **c.model_dump(mode="json")}
        return c

    text = json.dumps([plain(c) for c in configs], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
