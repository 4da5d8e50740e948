"""Training checkpoints: atomic save, rotation, discovery of the newest complete one, and load.

Layout: `output_dir/checkpoints/step-0000010/` holds what `accelerator.save_state` writes (model,
optimizer, registered scheduler, grad scaler, RNG states of every process), the batch source's
state of every process (`source_state_<i>.pt`, `alignlab.training.sources`) and
`trainer_state.json` (step, data position, last metrics). A checkpoint is written into a hidden
temporary sibling (`.tmp-step-0000010`) and renamed only when complete, so a crash at any point
leaves either no new directory or a complete one; leftover temporaries are ignored and removed.

A model with frozen parameters (LoRA) is checkpointed without them: `model.safetensors` holds
the trainable weights only (the adapter, a few MB, rather than the base model again), since a
resume loads the same base model before restoring the checkpoint. The optimizer only ever held
the trainable parameters. A checkpoint whose weights do not match the model's trainable ones
exactly (other adapters, another rank) is refused rather than half loaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignlab.errors import TrainingError
from alignlab.io import atomic_write_json, atomic_write_jsonl, set_default_mode

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from torch.utils.hooks import RemovableHandle

CHECKPOINTS = "checkpoints"
WEIGHTS_FILE = "model.safetensors"  # accelerate's name for the (first) model's weights
STATE_FILE = "trainer_state.json"
SOURCE_STATE_FILE = "source_state_{}.pt"  # per process: the batch source's state_dict
_STEP_DIR = re.compile(r"^step-(\d+)$")
_TMP_PREFIX = ".tmp-"


@dataclass
class TrainerState:
    """Where a run stands after `global_step` optimizer steps; enough to continue exactly."""

    global_step: int = 0
    # Where the batch source's data stands (`BatchSource.position()`), for people and the log: its
    # epoch and the items of that epoch already consumed (by all processes together). The source's
    # own state, which a resume restores, is in the source state files.
    epoch: int = 0
    epoch_position: int = 0
    elapsed_s: float = 0.0
    total_steps: int = 0
    last_metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, path: Path) -> TrainerState:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def checkpoints_root(output_dir: Path) -> Path:
    return Path(output_dir) / CHECKPOINTS


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return checkpoints_root(output_dir) / f"step-{step:07d}"


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints (a `step-N` directory with its state file), oldest first."""
    root = checkpoints_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir() and (p / STATE_FILE).is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: Path) -> Path | None:
    ckpts = list_checkpoints(output_dir)
    return ckpts[-1] if ckpts else None


def remove_temporaries(output_dir: Path) -> None:
    """Delete half-written checkpoints left by a crash (hidden `.tmp-*` siblings)."""
    root = checkpoints_root(output_dir)
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(_TMP_PREFIX):
                shutil.rmtree(p, ignore_errors=True)


def remove_all(output_dir: Path) -> None:
    """Forget every checkpoint (a fresh run in a used directory must not resume an old one later)."""
    root = checkpoints_root(output_dir)
    if root.is_dir():
        shutil.rmtree(root)


def rotate(output_dir: Path, keep_last: int) -> None:
    """Keep the newest `keep_last` checkpoints. Each old one is first renamed to a temporary, so a
    crash mid-delete never leaves a `step-N` directory that looks complete but is not."""
    for old in list_checkpoints(output_dir)[:-keep_last]:
        doomed = old.with_name(_TMP_PREFIX + "del-" + old.name)
        os.replace(old, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def _frozen_names(model: torch.nn.Module) -> set[str]:
    """State-dict names of frozen parameters, tied aliases included."""
    return {n for n, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}


def _drop_frozen(models: list, weights: list, output_dir: str) -> None:
    """accelerate save hook: leave frozen parameters out of each model's state dict."""
    for model, state in zip(models, weights, strict=False):
        for name in _frozen_names(model):
            state.pop(name, None)


def _load_trainable(models: list, input_dir: str) -> None:
    """accelerate load hook: restore checkpoints saved without frozen parameters, checking that the
    file holds exactly the model's other weights; full checkpoints are left to accelerate."""
    import torch
    from safetensors.torch import load_file

    if not any(_frozen_names(m) for m in models):
        return
    for i, model in enumerate(models):
        name = WEIGHTS_FILE if i == 0 else WEIGHTS_FILE.replace(".", f"_{i}.")
        path = Path(input_dir) / name
        state = load_file(str(path))
        frozen = _frozen_names(model)
        expected = set(model.state_dict()) - frozen
        with torch.no_grad():
            # Either the trainable weights only, or a full state dict (strict load of everything).
            if set(state) != expected and set(state) != expected | frozen:
                lacking = sorted(expected - set(state)) or sorted(set(state) - expected - frozen)
                shown = ", ".join(lacking[:3]) + (", ..." if len(lacking) > 3 else "")
                raise RuntimeError(
                    "its weights do not match the model's trainable parameters "
                    f"({len(lacking)} differ: {shown})"
                )
            model.load_state_dict(state, strict=set(state) != expected)
    models.clear()  # all loaded here; accelerate must not load them again


def register_trainable_only(accelerator: Accelerator) -> list[RemovableHandle]:
    """Checkpoint frozen models without their frozen parameters (see the module docstring).

    Returns the hook handles; remove them when training ends. FSDP and DeepSpeed save and load
    their own shards and are not affected.
    """
    return [
        accelerator.register_save_state_pre_hook(_drop_frozen),
        accelerator.register_load_state_pre_hook(_load_trainable),
    ]


def save_checkpoint(accelerator: Accelerator, output_dir: Path, state: TrainerState, keep_last: int,
                    source_state: dict[str, Any] | None = None) -> Path:
    """Write model, optimizer, scheduler, RNG, the source's state and `state` as `step-N`,
    atomically; then rotate.

    Every process calls this: FSDP / DeepSpeed gather shards collectively and each process writes
    its own RNG and source-state files. Only the main process writes the state file, renames and
    rotates.
    """
    import torch

    final = checkpoint_dir(output_dir, state.global_step)
    tmp = final.with_name(_TMP_PREFIX + final.name)
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if source_state is not None:
        torch.save(source_state, tmp / SOURCE_STATE_FILE.format(accelerator.process_index))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_json(tmp / STATE_FILE, asdict(state))
        for f in tmp.iterdir():
            set_default_mode(f)  # safetensors writes 0600
        if final.exists():  # the same step saved twice (e.g. save_every divides the last step)
            shutil.rmtree(final)
        os.replace(tmp, final)
        rotate(output_dir, keep_last)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Accelerator, path: Path) -> TrainerState:
    """Restore model, optimizer, scheduler, scaler and RNG from `path`; return its trainer state."""
    try:
        accelerator.load_state(str(path))
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrainingError(
            f"{path}: cannot resume from this checkpoint ({first}); delete it to resume from an older "
            "one, or set train.resume=false to start over"
        ) from None
    return TrainerState.from_json(path / STATE_FILE)


def load_source_state(path: Path, process_index: int) -> dict[str, Any]:
    """This process's batch-source state in the checkpoint at `path` (tensors, numbers, lists)."""
    import torch

    file = path / SOURCE_STATE_FILE.format(process_index)
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrainingError(
            f"{path}: cannot resume from this checkpoint: its data-source state {file.name} is unreadable "
            f"({first}); delete the checkpoint to resume from an older one, or set train.resume=false"
        ) from None


def truncate_metrics(metrics_path: Path, last_step: int) -> None:
    """Drop metric lines logged after `last_step`: those steps are re-run, and would be duplicated."""
    if not metrics_path.is_file():
        return
    kept, changed = [], False
    for line in metrics_path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the crash
            changed = True
            continue
        if int(row.get("step", 0)) <= last_step:
            kept.append(row)
        else:
            changed = True
    if changed:
        atomic_write_jsonl(metrics_path, kept)


def restore_or_start(
    accelerator: Accelerator, output_dir: Path, resume: bool, metrics_path: Path
) -> tuple[TrainerState, Path | None]:
    """Restore the newest complete checkpoint (if resuming) and drop metric lines logged after it."""
    if accelerator.is_main_process:
        remove_temporaries(output_dir)
        if not resume:
            # Starting over: an old run's checkpoints would otherwise be resumed later by mistake.
            remove_all(output_dir)
            metrics_path.unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    last = latest_checkpoint(output_dir) if resume else None
    state = load_checkpoint(accelerator, last) if last is not None else TrainerState()
    if accelerator.is_main_process:
        truncate_metrics(metrics_path, state.global_step)
    accelerator.wait_for_everyone()
    return state, last
