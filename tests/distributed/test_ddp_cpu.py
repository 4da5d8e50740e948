"""Two CPU processes (DDP over gloo) give the same update as one process with the same global batch."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from loop_worker import make_examples  # noqa: E402

pytestmark = pytest.mark.distributed


def run(args: list[str], env_extra: dict | None = None) -> None:
    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


def settings(tmp_path: Path, batch_size: int) -> Path:
    s = {
        "sleep_s": 0.0,
        "train": {"batch_size": batch_size, "grad_accum": 1, "max_steps": 3, "seed": 3, "progress": False,
                  "save_every": None},
        "optim": {"lr": 1e-2, "max_grad_norm": 1.0},
        "schedule": {"kind": "constant"},
    }
    f = tmp_path / f"settings-{batch_size}.json"
    f.write_text(json.dumps(s))
    return f


@pytest.mark.skipif(
    shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
    reason="torchrun is not installed",
)
def test_two_processes_equal_one_process_with_the_same_global_batch(tmp_path, tiny_model_dir):
    model = str(tiny_model_dir("llama"))
    data = tmp_path / "data.json"
    data.write_text(json.dumps(make_examples(16, 200)))
    worker = str(HERE / "ddp_worker.py")
    single, double = tmp_path / "single", tmp_path / "double"
    run([sys.executable, worker, model, str(data), str(single), str(settings(tmp_path, 4))])
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    run([torchrun, "--nproc-per-node", "2", "--master-port", "29517", worker, model, str(data), str(double),
         str(settings(tmp_path, 2))], {"ACCELERATE_USE_CPU": "1"})  # else each rank runs alone
    a, b = torch.load(single / "final.pt"), torch.load(double / "final.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4, msg=f"{k} differs")
    rows_single = [json.loads(x) for x in (single / "metrics.jsonl").read_text().splitlines()]
    rows_double = [json.loads(x) for x in (double / "metrics.jsonl").read_text().splitlines()]
    assert [r["items"] for r in rows_single] == [r["items"] for r in rows_double]
    assert [round(r["loss"], 4) for r in rows_single] == [round(r["loss"], 4) for r in rows_double]
