"""The eval stage: registered suites on each checkpoint, then one combined `results.json`.

Every suite is built once before any model is loaded, so a missing file, a file without the
expected columns or a bad option stops the stage at once. Then, for each checkpoint in config order,
the model is opened (in process, an endpoint, or a responses file; `evals.sources`), every suite
runs into `<checkpoint>/<suite>/` (`samples.jsonl`, `summary.json`: `evals.runner.run_suite`, which
records a failed generation as an error row and goes on, and resumes an interrupted suite), and the
model is released. The judge, the win-rate baseline and the GCG transfer model are opened once for
all checkpoints. Finally `results.json` gathers every suite's figures per checkpoint, the paired
differences between checkpoints, and the headline figures (`evals.results`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from alignlab.config.evals import MODEL_OPTIONS, WHITE_BOX, EvalConfig, EvalModelConfig
from alignlab.evals.core import Suite
from alignlab.evals.registry import build_suite, get_suite_spec
from alignlab.evals.results import combined, stage_summary, suite_entry
from alignlab.evals.runner import run_suite
from alignlab.evals.sources import Opened, open_source
from alignlab.generation.base import Generator
from alignlab.io import atomic_write_json
from alignlab.stage_io import StageContext

HTTP_CACHE = ".http-cache"  # responses of endpoints, by URL and request (a re-run sends nothing)


class _Pending:
    """Stands in for a model while suites are built only to check their data and options."""

    def __repr__(self) -> str:
        return "<model opened later>"


def run_eval(config: EvalConfig, ctx: StageContext) -> dict[str, Any]:
    for name in config.suites:  # data files and options, before any model is loaded
        _build(config, name, {k: _Pending() for k in (*MODEL_OPTIONS, WHITE_BOX)})
    results: dict[str, dict[str, Any]] = {}
    folders: dict[str, dict[str, Path]] = {}
    with ExitStack() as stack:
        helpers = {key: stack.enter_context(_open(getattr(config, key), ctx, key)).generator
                   for key in MODEL_OPTIONS if getattr(config, key) is not None}  # fmt: skip
        for ckpt, model in config.models.items():
            folders[ckpt] = {}
            results[ckpt] = _run_checkpoint(config, ckpt, model, helpers, ctx, folders[ckpt])
    suites = {name: _suite_info(config, name) for name in config.suites}
    atomic_write_json(ctx.path("results"), combined(list(config.models), suites, results, folders))
    summary = stage_summary(results)
    if summary["errors"]:
        failed = f"{summary['errors']} of {summary['episodes']}"
        ctx.log(f"eval: {failed} generations failed; they are error rows in samples.jsonl, counted in each "
                "summary's errors and left out of every figure")  # fmt: skip
    return summary


@contextmanager
def _open(model: EvalModelConfig, ctx: StageContext, role: str) -> Iterator[Opened]:
    with open_source(model, cache_dir=ctx.output_dir / HTTP_CACHE) as opened:
        ctx.log(f"eval: {role}: {opened.description}")
        yield opened


def _build(config: EvalConfig, name: str, runtime: dict[str, Any]) -> Suite:
    """Suite `name` with its data, limit and options; `runtime` gives the models it takes by option."""
    data, limit, options = config.suite_run(name)
    spec = get_suite_spec(name)
    given = {k: v for k, v in runtime.items() if k in spec.options and v is not None}
    return build_suite(name, data, limit=limit, **options, **given)


def _run_checkpoint(config: EvalConfig, ckpt: str, model: EvalModelConfig, helpers: dict[str, Generator],
                    ctx: StageContext, folders: dict[str, Path]) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    with _open(model, ctx, f"checkpoint {ckpt}") as opened:
        for name in config.suites:
            folder = ctx.output_dir / ckpt / name
            summary = _run_one(config, name, opened, helpers, folder, ctx)
            folders[name] = folder
            out[name] = suite_entry(get_suite_spec(name), summary, f"{ckpt}/{name}")
            if summary["errors"]:
                failed = f"{summary['errors']} of {summary['n_episodes']}"
                ctx.log(f"eval {ckpt}/{name}: {failed} generations failed")
    return out


def _run_one(config: EvalConfig, name: str, opened: Opened, helpers: dict[str, Generator], folder: Path,
             ctx: StageContext) -> dict[str, Any]:  # fmt: skip
    suite = _build(config, name, {**helpers, WHITE_BOX: opened.white_box})
    model = opened.loglikelihood if suite.mode == "loglikelihood" else opened.generator
    params = replace(suite.params, max_new_tokens=config.max_new_tokens) if config.max_new_tokens else None
    summary = run_suite(suite, model, folder, params=params, chunk_size=config.chunk_size,
                        log=ctx.log)  # type: ignore[arg-type]
    return summary.to_json()


def _suite_info(config: EvalConfig, name: str) -> dict[str, Any]:
    data, limit, options = config.suite_run(name)
    spec = get_suite_spec(name)
    return {"data": data, "limit": limit, "options": options,
            "headline": [f"{v}:{m}" for v, m in spec.headline]}  # fmt: skip
