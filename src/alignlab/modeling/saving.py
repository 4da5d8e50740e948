"""Saving a model and its tokenizer as a Hugging Face directory, so that nothing half-written survives."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

from alignlab.io import set_default_mode


def save_model_artefacts(model, tokenizer, out_dir: str | os.PathLike, *,
                         state_dict: dict | None = None) -> None:
    """Save model (or PEFT adapter) and tokenizer in the Hugging Face format into `out_dir`.

    `state_dict` gives the weights to write when the model's own are sharded (FSDP, ZeRO-3); by
    default the model's. Files are written into a fresh temporary folder inside `out_dir` first and
    moved in one by one afterwards, so a crash never leaves a half-written weights file under its
    final name. Call it from one process only (see `save_trained_model`).
    """
    out = Path(out_dir)
    for stale in out.glob(".model*.tmp"):  # left by a crash
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".model.", suffix=".tmp", dir=out))
    try:
        extra = {} if state_dict is None else {"state_dict": without_tied_copies(model, state_dict)}
        with warnings.catch_warnings():
            # peft looks for config.json in the adapter's base to see whether the vocabulary grew; an
            # adapter trained on an adapter has one there only in the base's base. We never resize.
            warnings.filterwarnings("ignore", message="Could not find a config file in", category=UserWarning)
            model.save_pretrained(tmp, safe_serialization=True, **extra)
        tokenizer.save_pretrained(tmp)
        for f in tmp.iterdir():
            set_default_mode(f)  # transformers writes its weights 0600; the folder around them is 0700
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def without_tied_copies(model, state_dict: dict) -> dict:
    """`state_dict` without the keys of parameters `model` ties to an earlier one (an LM head tied
    to the input embedding), as `save_pretrained` writes a tied model.

    A gathered state dict (FSDP2's full state dict, ZeRO-3's) holds each tied parameter as a tensor
    of its own, and `save_pretrained` finds ties only by shared storage: it would otherwise write
    the embedding twice (a 136 M-parameter copy for Qwen2-0.5B).
    """
    seen: set[int] = set()
    aliases = set()
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            aliases.add(name)
        seen.add(id(param))
    return {k: v for k, v in state_dict.items() if k not in aliases}
