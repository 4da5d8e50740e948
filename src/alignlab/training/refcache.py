"""Reference log-probs, computed once in a pre-pass and cached on disk next to the run.

DPO-family losses compare the policy with a frozen reference model. Its log-probs of the training
sequences never change, so they are computed once before training, saved in the stage directory
(`reference_logps.safetensors`) and read back on every later run or resume; the reference model is
freed before training starts. The cache key is a hash of

- the reference weights' identity: name, size and modification time of each weights file and the
  content of `config.json`, recursively for an adapter's base model (a hub id: id + revision),
  plus how the reference is formed (e.g. the LoRA policy with its adapters disabled);
- the token ids and labels of every cached sequence, which covers the data, the tokenizer, the
  chat template, the system prompt and the truncation length at once;
- the compute settings (weights dtype, training precision, batch layout);

so changing any of them invalidates the cache and it is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from array import array
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from alignlab.data.templating import EncodedExample
from alignlab.distributed import (
    distributed_rank,
    gather_objects,
    is_main_process,
    launched_processes,
    wait_for_everyone,
)
from alignlab.io import set_default_mode
from alignlab.modeling.inference import run_batches
from alignlab.modeling.logprobs import SequenceLogps
from alignlab.progress import Progress

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def weights_identity(path: str, revision: str | None = None) -> dict[str, Any]:
    """What identifies the weights at `path` without reading them: file names, sizes, mtimes."""
    p = Path(path).expanduser()
    if not p.is_dir():
        return {"hub": path, "revision": revision}
    files = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(_WEIGHT_SUFFIXES))
    ident: dict[str, Any] = {
        "files": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files],
        "config": _file_digest(p / "config.json"),
    }
    adapter = p / "adapter_config.json"
    if adapter.is_file():
        ident["adapter_config"] = _file_digest(adapter)
        base = json.loads(adapter.read_text()).get("base_model_name_or_path")
        if base:
            ident["base"] = weights_identity(base)
    return ident


def _file_digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def cache_key(
    reference: Mapping[str, Any], sequences: Mapping[str, Sequence[EncodedExample]],
    settings: Mapping[str, Any]
) -> str:
    """sha256 over the reference identity, the settings and every sequence's ids and labels."""
    h = hashlib.sha256(json.dumps({"reference": reference, "settings": settings}, sort_keys=True).encode())
    for name in sorted(sequences):
        h.update(f"\x00{name}:{len(sequences[name])}".encode())
        for ex in sequences[name]:
            # Length-prefixed, so no two different sequence lists can hash the same bytes.
            h.update(array("q", [len(ex.input_ids)]).tobytes())
            h.update(array("q", ex.input_ids).tobytes())
            h.update(array("q", ex.labels).tobytes())
    return h.hexdigest()


def compute_item_logps(
    model: torch.nn.Module,
    parts: Mapping[str, Sequence[Any]],
    sides: Sequence[str],
    collate: Callable[[list], dict[str, torch.Tensor]],
    sides_logps: Callable[[torch.nn.Module, dict[str, torch.Tensor]], Mapping[str, SequenceLogps]],
    *,
    batch_size: int,
    length: Callable[[Any], int],
) -> dict[str, torch.Tensor]:
    """For each part (train, eval) and side: `<part>/<side>` (N,) summed float32 label log-probs
    and `<part>/<side>_tokens` (N,) counts of its items (pairs or feedback records).

    Items go through the method's own collator and log-prob function (so a pre-pass shares a
    pair's prompt and drops padding exactly as the training steps do), batched in order of
    `length` and put back in the original order. The model runs in eval mode (a reference has no
    dropout); the main process shows progress (a bar, or plain lines in a log file).
    """
    out: dict[str, torch.Tensor] = {}
    total = sum(len(items) for items in parts.values())
    with Progress("reference log-probs", total, unit="item", enabled=is_main_process()) as progress:
        for part, items in parts.items():
            for side in sides:
                out[f"{part}/{side}"] = torch.zeros(len(items), dtype=torch.float32)
                out[f"{part}/{side}_tokens"] = torch.zeros(len(items), dtype=torch.long)
            batches = run_batches(model, list(items), collate, sides_logps, batch_size=batch_size,
                                  length=length, on_batch=lambda idx: progress.advance(len(idx)))
            for idx, res in batches:
                for side in sides:
                    out[f"{part}/{side}"][idx] = res[side].logps.float().cpu()
                    out[f"{part}/{side}_tokens"][idx] = res[side].num_tokens.cpu()
    return out


def read_cache(path: str | os.PathLike) -> tuple[str | None, dict[str, torch.Tensor]]:
    """(key, tensors) of a cache file; (None, {}) when there is none or it cannot be read."""
    from safetensors import SafetensorError, safe_open

    if not Path(path).is_file():
        return None, {}
    try:
        with safe_open(str(path), framework="pt") as f:
            key = (f.metadata() or {}).get("key")
            return key, {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, ValueError):
        return None, {}


def write_cache(path: str | os.PathLike, key: str, tensors: Mapping[str, torch.Tensor]) -> None:
    """Write atomically: a crash leaves the old cache or the new one, never half of one."""
    from safetensors.torch import save_file

    path = Path(path)
    # Only the main process writes (see load_or_compute); the pid keeps a stray writer harmless.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={"key": key})
    set_default_mode(tmp)  # safetensors creates its files 0600
    os.replace(tmp, path)


def compute_in_shares(
    groups: Mapping[str, Sequence[Any]],
    compute: Callable[[Mapping[str, Sequence[Any]]], dict[str, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """`compute(groups)`, split over the launch's processes: process r takes every world-th item of
    each group from r on, and the shares are gathered back into the original order on every
    process. Each output is named after its group (the longest group name it starts with)."""
    world = launched_processes()
    if world <= 1:
        return compute(groups)
    rank = distributed_rank()
    parts = gather_objects(compute({name: list(items)[rank::world] for name, items in groups.items()}))
    out: dict[str, torch.Tensor] = {}
    for name in parts[0]:
        group = max((g for g in groups if name.startswith(g)), key=len)
        full = torch.empty(len(groups[group]), dtype=parts[0][name].dtype)
        for r, part in enumerate(parts):
            full[r::world] = part[name]
        out[name] = full
    return out


def load_or_compute(
    path: str | os.PathLike,
    key: str,
    compute: Callable[[], dict[str, torch.Tensor]],
    log: Callable[[str], None] = print,
) -> dict[str, torch.Tensor]:
    """The cached tensors when the file's key is `key`; else `compute()`, written to `path`.

    Under a multi-process launch every process calls this (and `compute`, which may share the work
    with `compute_in_shares`); they agree on whether the cache is valid, the main process alone
    writes the file, and the others wait until it is complete.
    """
    found, tensors = read_cache(path)
    if all(gather_objects(found == key)):
        log(f"reference log-probs: using the cache {path}")
        return tensors
    log("reference log-probs: " + ("cache is stale, recomputing" if found else "computing (pre-pass)"))
    tensors = compute()
    if is_main_process():
        write_cache(path, key, tensors)
    wait_for_everyone()
    return tensors
