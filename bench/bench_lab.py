"""Wall and CPU time of the default pipeline (recipes/lab.yaml) from nothing, and the figures it produced.

    python bench/bench_lab.py [--recipe recipes/lab.yaml] [--run-dir runs/lab/seed-0]

Runs `alignlab run` into a fresh run directory (so every stage runs, pretraining included): a
temporary one, or `--run-dir`, which must not exist yet and is kept (`runs/lab/seed-0` makes the
timed run seed 0 of `alignlab run recipes/lab.yaml --seeds 0,1,2 --run-dir runs/lab`). It times
each stage from its `stage.json` (wall `seconds` and the process's `cpu_seconds`) and writes JSON
(default bench/results/lab_cpu.json) with the total wall and CPU time, the load average of the
machine before and after (a shared machine slows the wall time, far less the CPU time), the OpenMP
settings, each stage's scalar results and the gold-judge table of every model.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import versions  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", type=Path, default=HERE.parent / "recipes" / "lab.yaml")
    p.add_argument("--out", type=Path, default=HERE / "results" / "lab_cpu.json")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="run into this new directory and keep it (default: a temporary one)")
    a = p.parse_args()
    if a.run_dir is not None and a.run_dir.exists():
        p.error(f"--run-dir {a.run_dir} exists: the bench times a run from nothing; give a new directory")
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        run_dir = a.run_dir or Path(tmp)
        env = {**os.environ, "ALIGNLAB_RUN_INDEX": str(Path(tmp) / "runs.sqlite")}
        load_before, cpu_before = os.getloadavg(), _children_cpu()
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "alignlab.cli", "run", str(a.recipe), "--run-dir", str(run_dir)]
        subprocess.run(cmd, check=True, env=env)
        wall = time.perf_counter() - start
        cpu, load_after = _children_cpu() - cpu_before, os.getloadavg()
        summary = json.loads((run_dir / "summary.json").read_text())
    stages = {name: s.get("seconds") for name, s in summary.items()}
    stage_cpu = {name: s.get("cpu_seconds") for name, s in summary.items()}
    tables = {name: s["table"] for name, s in summary.items() if isinstance(s.get("table"), dict)}
    # The other stages' scalar results: pretraining loss, pairs and labeller agreement, RM accuracy.
    figures = {name: {k: v for k, v in s.items()
                      if isinstance(v, (int, float)) and k not in ("seconds", "cpu_seconds")}
               for name, s in summary.items() if name not in tables}
    report = {
        "benchmark": "lab_cpu",
        "recipe": str(a.recipe.relative_to(HERE.parent))
        if a.recipe.is_relative_to(HERE.parent)
        else str(a.recipe),
        "setup": {
            "cpu_count": os.cpu_count(),
            "torch_threads": os.environ.get("OMP_NUM_THREADS", "default"),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "PASSIVE (alignlab's default)"),
            **versions(with_trl=False),
        },
        # 1-minute load averages before and after: above the core count, other jobs shared the cores.
        "load_average": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),  # user + system time of the run's process, all its threads
        "stage_s": stages,
        "stage_cpu_s": stage_cpu,
        "budget_s": {"floor": 300, "aim": 120},
        "stage_figures": figures,
        "gold_tables": tables,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("wall_s", "cpu_s", "load_average", "stage_s", "stage_cpu_s")},
                     indent=2))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
