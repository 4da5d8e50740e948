"""Small run directories written by hand, in the layout `alignlab run` writes (for the report's tests)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml


def add_stage(run: Path, name: str, kind: str, *, summary: dict | None = None, config: dict | None = None,
              files: dict[str, Any] | None = None, inputs: list[Path] = (),
              done: bool = True) -> Path:  # fmt: skip
    """A stage directory `<name>-<hash>` with config.yaml, stage.json (when done) and `files`
    (a dict or list is written as JSON, a list of dicts under a .jsonl name as JSON lines)."""
    d = run / f"{name}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump(config or {"seed": 0}, sort_keys=False))
    if done:
        info = {"hash": d.name.split("-")[-1], "kind": kind, "inputs": [str(p) for p in inputs],
                "summary": summary or {"seconds": 1.5}}  # fmt: skip
        (d / "stage.json").write_text(json.dumps(info))
    for rel, content in (files or {}).items():
        path = d / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".jsonl"):
            path.write_text("".join(json.dumps(r) + "\n" for r in content))
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content))
    return d


def finish_run(run: Path, stages: list[Path]) -> None:
    """summary.json: stage name -> {dir, ...summary}, in the order given."""
    out = {}
    for d in stages:
        info = json.loads((d / "stage.json").read_text()) if (d / "stage.json").exists() else {"summary": {}}
        out[d.name.rsplit("-", 1)[0]] = {"dir": str(d), **info["summary"]}
    (run / "summary.json").write_text(json.dumps(out))


def figure(value: float, low: float, high: float, n: int, interval: str = "wilson") -> dict[str, Any]:
    return {"value": value, "low": low, "high": high, "n": n, "interval": interval}


def suite_summary(suite: str, metrics: dict[str, dict[str, Any]], *, aggregates: dict | None = None,
                  n: int = 10) -> dict[str, Any]:  # fmt: skip
    """A summary.json as `alignlab.evals.runner` writes it (the fields the report reads)."""
    return {"suite": suite, "mode": "generate", "fingerprint": "f", "n_samples": n, "n_episodes": n,
            "errors": 0, "error_rate": figure(0.0, 0.0, 0.28, n), "params": {}, "notes": {},
            "metrics": metrics, "labels": {}, "aggregates": aggregates or {}}  # fmt: skip


def write_suite(out: Path, summary: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary))
    return out


def lab_family(n: int, **metrics: float) -> dict[str, float]:
    """One family's row of the lab's scores.json: plain shares of n, as `lab.judges.summarise` writes."""
    return {"n": float(n), **metrics}
