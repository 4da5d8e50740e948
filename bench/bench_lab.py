"""Wall time of the default pipeline (recipes/lab.yaml) from nothing, and the figures it produced.

    python bench/bench_lab.py [--recipe recipes/lab.yaml]

Runs `alignlab run` into a fresh temporary run directory (so every stage runs, pretraining
included), times each stage from its `stage.json`, and writes JSON (default
bench/results/lab_cpu.json) with the total wall time, each stage's scalar results and the
gold-judge table of every model.
"""

from __future__ import annotations

import argparse
import json
import os
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
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        env = {**os.environ, "ALIGNLAB_REGISTRY": str(Path(tmp) / "registry.sqlite")}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "alignlab.cli", "run", str(a.recipe), "--run-dir", tmp],
                       check=True, env=env)
        wall = time.perf_counter() - start
        summary = json.loads((Path(tmp) / "summary.json").read_text())
    stages = {name: s.get("seconds") for name, s in summary.items()}
    tables = {name: s["table"] for name, s in summary.items() if isinstance(s.get("table"), dict)}
    # The other stages' scalar results: pretraining loss, pairs and labeller agreement, RM accuracy.
    figures = {name: {k: v for k, v in s.items() if isinstance(v, (int, float)) and k != "seconds"}
               for name, s in summary.items() if name not in tables}
    report = {
        "benchmark": "lab_cpu",
        "recipe": str(a.recipe.relative_to(HERE.parent))
        if a.recipe.is_relative_to(HERE.parent)
        else str(a.recipe),
        "setup": {
            "cpu_count": os.cpu_count(),
            "torch_threads": os.environ.get("OMP_NUM_THREADS", "default"),
            **versions(with_trl=False),
        },
        "wall_s": round(wall, 1),
        "stage_s": stages,
        "budget_s": {"floor": 300, "aim": 120},
        "stage_figures": figures,
        "gold_tables": tables,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"wall_s": report["wall_s"], "stage_s": stages}, indent=2))


if __name__ == "__main__":
    main()
