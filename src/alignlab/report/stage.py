"""The report stage: the run's HTML page as a declared artefact of its own stage directory.

It reads the run directory it belongs to (or `run_dir`), leaving its own stage directory out (the
report is not finished while it is written), and writes `report.html` atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alignlab.config.report import ReportConfig
from alignlab.errors import ConfigError
from alignlab.io import atomic_write_text
from alignlab.stage_io import StageContext


def run_report(config: ReportConfig, ctx: StageContext) -> dict[str, Any]:
    from alignlab.report import render_report

    if config.run_dir is None and ctx.run_dir is None:
        raise ConfigError("config key 'run_dir': a report stage outside a recipe needs the run directory")
    run_dir = Path(config.run_dir) if config.run_dir is not None else ctx.run_dir
    html = render_report(run_dir, exclude=(ctx.output_dir,))  # type: ignore[arg-type]
    out = ctx.path("report")
    atomic_write_text(out, html)
    ctx.log(f"report: {out}")
    return {"bytes": float(len(html.encode()))}
