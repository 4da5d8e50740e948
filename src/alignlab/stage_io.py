"""What every stage shares: its context, and saving models + tokenizer + config atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from alignlab.distributed import wait_for_everyone
from alignlab.io import atomic_write_text

if TYPE_CHECKING:
    from alignlab.training.loop import TrainResult

CONFIG_FILE = "config.yaml"
DONE_FILE = "stage.json"


@dataclass
class StageContext:
    """Where a stage writes and how it reports; stages get nothing else from the runner."""

    name: str
    output_dir: Path
    run_dir: Path | None = None
    log: Callable[[str], None] = field(default=print)


def save_model_artefacts(model, tokenizer, out_dir: str | os.PathLike, *, state_dict: dict | None = None) -> None:
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
        model.save_pretrained(tmp, safe_serialization=True, **extra)
        tokenizer.save_pretrained(tmp)
        for f in tmp.iterdir():
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


def save_trained_model(result: TrainResult, tokenizer, out_dir: str | os.PathLike) -> None:
    """Save what `train()` returned: the main process writes the gathered weights, every process
    then waits, so none reads the directory half-written. Call it on every process."""
    if result.is_main_process:
        save_model_artefacts(result.model, tokenizer, out_dir, state_dict=result.state_dict)
    wait_for_everyone()


def write_config(config: Any, out_dir: str | os.PathLike) -> None:
    """The resolved config (all defaults filled in) as YAML next to the outputs."""
    data = config.model_dump(mode="json")
    atomic_write_text(Path(out_dir) / CONFIG_FILE, yaml.safe_dump(data, sort_keys=False))
