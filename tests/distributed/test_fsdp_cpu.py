"""FSDP2 (torch's `fully_shard` through accelerate) on 2 CPU processes (gloo), launched with the
shipped `recipes/accelerate/fsdp2.yaml`, gives the one-process run with the same global batch:
the same losses step by step, the same saved weights (gathered from the shards, tied embedding
written once), and a run stopped after a checkpoint resumes from the sharded state exactly.

accelerate does not take FSDP on CPU processes by itself; `fsdp_cpu_cli.py` says why and what it
changes. The checks below would fail if the launch silently fell back to DDP (the checkpoint
would then hold `model.safetensors`, not accelerate's FSDP model file)."""

import sys
from pathlib import Path

import pytest
from cli_runs import (
    COMMON,
    TORCHRUN,
    alignlab,
    assert_one_complete_model_dir,
    assert_recorded_once,
    assert_same_losses,
    assert_same_weights,
    conversations,
    pairs,
    run,
)

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parents[1] / "recipes" / "accelerate" / "fsdp2.yaml"
FSDP_MODEL_FILE = "pytorch_model_fsdp.bin"  # accelerate's FSDP checkpoint of the model

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed"),
]


def alignlab_fsdp(args: list[str], tmp_path: Path, port: int) -> None:
    """`accelerate launch --config_file recipes/accelerate/fsdp2.yaml` with 2 CPU processes."""
    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIG),
        "--num_processes", "2", "--main_process_port", str(port), str(HERE / "fsdp_cpu_cli.py"),
    ]
    run([*launch, *args], tmp_path, "registry-fsdp.sqlite")


def test_sft_under_fsdp2_matches_one_process_and_resumes_from_its_sharded_checkpoint(
    tmp_path, tiny_model_dir
):
    args = [
        "sft", "--model", str(tiny_model_dir("llama")),
        "--data", str(conversations(tmp_path / "train.jsonl")),
        "optim.lr=1e-2", "train.keep_final_checkpoint=true", *COMMON,
    ]
    single, fsdp = tmp_path / "single", tmp_path / "fsdp"
    alignlab(
        [*args, "--max-steps", "3", "--output", str(single), "train.batch_size=4"],
        tmp_path,
        processes=1,
        port=0,
    )
    # Two steps, then the run is taken as stopped (no stage.json): three steps resume from step 2.
    alignlab_fsdp(
        [*args, "--max-steps", "2", "--output", str(fsdp), "train.batch_size=2"], tmp_path, port=29541
    )
    assert (fsdp / "checkpoints" / "step-0000002" / FSDP_MODEL_FILE).is_file()  # FSDP ran, not DDP
    (fsdp / "stage.json").unlink()
    alignlab_fsdp(
        [*args, "--max-steps", "3", "--output", str(fsdp), "train.batch_size=2"], tmp_path, port=29542
    )
    assert_one_complete_model_dir(fsdp, steps=3)
    assert_same_losses(single, fsdp)
    assert_same_weights(single, fsdp)


def test_dpo_under_fsdp2_matches_one_process(tmp_path, tiny_model_dir):
    args = [
        "dpo", "--model", str(tiny_model_dir("llama")),
        "--data", str(pairs(tmp_path / "pairs.jsonl", copies=2)),
        "--max-steps", "2", "data.eval_fraction=0.2", "reference.batch_size=3", "optim.lr=1e-3",
        "train.keep_final_checkpoint=true", *COMMON,
    ]
    single, fsdp = tmp_path / "single", tmp_path / "fsdp"
    alignlab([*args, "--output", str(single), "train.batch_size=4"], tmp_path, processes=1, port=0)
    alignlab_fsdp([*args, "--output", str(fsdp), "train.batch_size=2"], tmp_path, port=29543)
    assert (fsdp / "checkpoints" / "step-0000002" / FSDP_MODEL_FILE).is_file()
    assert_one_complete_model_dir(fsdp, steps=2)
    assert_recorded_once(tmp_path / "registry-fsdp.sqlite")
    assert_same_losses(single, fsdp)
    assert_same_weights(single, fsdp)
