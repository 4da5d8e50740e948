"""Helpers shared by the integration tests that drive the `alignlab` command in-process."""

import json

import pytest

from alignlab.cli import main


def run_cli(*args) -> None:
    """Run `alignlab ARGS...`; a non-zero exit fails the test."""
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        assert e.code in (0, None), f"exit {e.code}"


def fail(capsys, *args) -> str:
    """Run a command that must fail: exit 2 and one `error:` line (after any progress lines), no
    traceback; returns that line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(errors) == 1 and err.endswith(errors[0]), err
    return errors[0]


def read_metrics(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
