"""`alignlab report RUN_DIR`: one self-contained HTML page of what a run did (docs/report.md).

The page holds the recipe and resolved configs, every stage's summary and timing, training curves,
eval tables per checkpoint side by side, and plots of refusal against over-refusal, attack success
per jailbreak transform, sycophancy, length drift, the reward model's calibration and the
over-optimisation curve, each as inline SVG. Nothing is fetched when it is opened. Stages a run
does not have are left out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

REPORT_FILE = "report.html"


def render_report(run_dir: str | os.PathLike, *, exclude: Iterable[str | os.PathLike] = ()) -> str:
    """The report of `run_dir` as an HTML string (raises ReportError when it is no run directory);
    the directory of a seed sweep (`sweep.json`, no `summary.json`) gets the sweep's page.

    exclude: stage directories to leave out (a report stage leaves itself out while it runs)."""
    import alignlab
    from alignlab.report import artefacts as art
    from alignlab.report import compare, sections
    from alignlab.report.html import page
    from alignlab.report.sweep import is_sweep, render_sweep

    if is_sweep(Path(run_dir)):  # a seed sweep's directory: its figures across seeds
        title, meta, body = render_sweep(Path(run_dir))
        return page(title, [*meta, f"alignlab {alignlab.__version__}"], body)
    run = art.load_run(run_dir, [Path(p) for p in exclude])
    labs = [lab for s in run.of_kind("lab_eval") if (lab := compare.read_lab_eval(run, s)) is not None]
    results = art.suite_results(run)
    lab_grids = [
        g for lab in labs for g in (compare.lab_grid(lab), compare.lab_subtype_grid(lab)) if g is not None
    ]
    grids = lab_grids + compare.suite_grids(run, results) + compare.difference_grids(run)
    absent = _absent(run, labs, results)
    parts = [
        sections.evaluations(grids),
        sections.behaviour(compare.behaviour(run, labs, results)),
        sections.reward_models(run),
        sections.overoptimisation(run),
        sections.training(run),
        sections.stage_summaries(run),
        sections.configs(run),
    ]
    body = [sections.overview(run, labs, results, absent), *(p for p in parts if p is not None)]
    meta = [f"run directory: {Path(run_dir).resolve()}", f"{len(run.stages)} stages",
            f"alignlab {alignlab.__version__}", f"generated {time.strftime('%Y-%m-%d %H:%M')}"]  # fmt: skip
    return page(f"Run {run.name}", meta, body)


def _absent(run, labs, results) -> list[str]:
    from alignlab.report import artefacts as art

    missing = []
    if not labs and not results:
        missing.append("no evaluations (lab_eval stages or eval-suite results)")
    if not any(art.reward_report(s) for s in run.of_kind("rm")):
        missing.append("no reward model report")
    if not art.overoptimisation(run):
        missing.append(f"no over-optimisation curve ({art.OVEROPT_FILE})")
    return missing


def write_report(run_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Write the report of `run_dir` to `output` (default RUN_DIR/report.html) atomically; return its path."""
    from alignlab.io import atomic_write_text
    from alignlab.report.artefacts import ReportError

    out = Path(output) if output is not None else Path(run_dir) / REPORT_FILE
    if out.is_dir():
        raise ReportError(f"--output {out}: is a directory; give the path of the HTML file to write")
    text = render_report(run_dir)
    try:
        atomic_write_text(out, text)
    except OSError as err:
        raise ReportError(f"--output {out}: cannot write the report ({err.strerror or err})") from None
    return out


__all__ = ["REPORT_FILE", "render_report", "write_report"]
