"""Helpers shared by the integration tests that drive the `alignlab` command in-process."""

import json

from alignlab.cli import main


def run_cli(*args) -> None:
    """Run `alignlab ARGS...`; a non-zero exit fails the test."""
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        assert e.code in (0, None), f"exit {e.code}"


def read_metrics(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
