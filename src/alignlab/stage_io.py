"""What every stage shares: its context, and saving models + tokenizer + config atomically."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alignlab.io import atomic_write_text

CONFIG_FILE = "config.yaml"
DONE_FILE = "stage.json"


@dataclass
class StageContext:
    """Where a stage writes and how it reports; stages get nothing else from the runner."""

    name: str
    output_dir: Path
    run_dir: Path | None = None
    log: Callable[[str], None] = field(default=print)


def save_model_artefacts(model, tokenizer, out_dir: str | os.PathLike) -> None:
    """Save model (or PEFT adapter) and tokenizer in the Hugging Face format into `out_dir`.

    Files are written into a temporary sibling first and moved in one by one afterwards, so a crash
    never leaves a half-written weights file under its final name.
    """
    out = Path(out_dir)
    tmp = out / ".model.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    for f in tmp.iterdir():
        os.replace(f, out / f.name)
    tmp.rmdir()


def write_config(config: Any, out_dir: str | os.PathLike) -> None:
    """The resolved config (all defaults filled in) as YAML next to the outputs."""
    data = config.model_dump(mode="json")
    atomic_write_text(Path(out_dir) / CONFIG_FILE, yaml.safe_dump(data, sort_keys=False))
