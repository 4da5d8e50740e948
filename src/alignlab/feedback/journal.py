"""An append-only JSONL audit that also lets an interrupted run resume.

Critique-and-revise and the AI labeller write one line per finished step or judgement, chunk by
chunk, each stamped with `run`: a hash of everything that decides the result (constitution hash,
seed, rounds, sampling settings, ...). Re-running with the same settings and the same audit path
reads the lines back and does only the items not finished; a file written with other settings is
an error rather than a silent mix of two runs. A crash can leave at most a half-written last line,
which is dropped on reading.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from alignlab.errors import ConfigError, DataError
from alignlab.io import append_jsonl, atomic_write_jsonl


def run_hash(settings: Mapping[str, Any]) -> str:
    """First 16 hex digits of the sha256 of the settings' canonical JSON."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Journal:
    """Rows already written for this run (`rows`) and `append` for new ones; `path=None` keeps them in
    memory."""

    def __init__(self, path: str | os.PathLike | None, settings: Mapping[str, Any]):
        self.path = Path(path) if path is not None else None
        self.run = run_hash(settings)
        self.rows: list[dict[str, Any]] = self._read() if self.path is not None and self.path.exists() else []

    def _read(self) -> list[dict[str, Any]]:
        assert self.path is not None
        raw = self.path.read_text(encoding="utf-8").splitlines()
        rows: list[dict[str, Any]] = []
        for n, line in enumerate(raw, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                if n == len(raw):  # the line being written when the run stopped
                    atomic_write_jsonl(self.path, rows)
                    break
                raise DataError(
                    f"{self.path}:{n}: not valid JSON; this audit file is damaged, delete it to start over"
                ) from None
            if row.get("run") != self.run:
                raise ConfigError(
                    f"{self.path}:{n}: this audit was written by a run with other settings (constitution, "
                    "seed, rounds or sampling); delete it to start over, or give another audit path"
                )
            rows.append(row)
        return rows

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            row = {**row, "run": self.run}
            self.rows.append(row)
            if self.path is not None:
                append_jsonl(self.path, row)
