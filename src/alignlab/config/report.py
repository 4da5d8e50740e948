"""The report stage: the run's HTML page, written once the stages it waits for are done."""

from __future__ import annotations

from pydantic import Field

from alignlab.config.core import Section


class ReportConfig(Section):
    """Write the HTML report of a run (docs/report.md) into the stage directory."""

    after: list[str] = Field(
        default_factory=list,
        description="The stages the report waits for, as references (e.g. ['${eval}', '${dpo}']): name every "
        "stage whose results it should show, since a stage runs only after those it refers to.",
    )
    run_dir: str | None = Field(
        default=None, description="Run directory to report on; null = the run the stage belongs to."
    )
