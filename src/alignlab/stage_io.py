"""What every stage shares: its context and declared outputs, and saving models + config atomically."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from alignlab.distributed import wait_for_everyone
from alignlab.io import atomic_write_text
from alignlab.modeling.saving import save_model_artefacts

if TYPE_CHECKING:
    from alignlab.training.loop import TrainResult

CONFIG_FILE = "config.yaml"
DONE_FILE = "stage.json"


@dataclass(frozen=True)
class Artefact:
    """One output a stage kind declares: where it lies in the stage directory, and what it is."""

    path: str  # relative to the stage directory; "." is the directory itself (a model directory)
    kind: str  # model, reward_model, jsonl, json, metrics, safetensors
    help: str = ""


@dataclass
class StageContext:
    """Where a stage writes and how it reports; stages get nothing else from the runner."""

    name: str
    output_dir: Path
    run_dir: Path | None = None
    log: Callable[[str], None] = field(default=print)
    outputs: Mapping[str, Artefact] = field(default_factory=dict)  # its kind's declared outputs

    def path(self, output: str) -> Path:
        """Where the declared output `output` goes; file names live only in the stage-kind table."""
        return self.output_dir / self.outputs[output].path

    def config_key(self, key: str) -> str:
        """How an error names the config key `key` of this stage: `stages.<name>.config.<key>` in a
        recipe (a run directory), the bare key for a stage command."""
        return f"stages.{self.name}.config.{key}" if self.run_dir is not None else key


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
