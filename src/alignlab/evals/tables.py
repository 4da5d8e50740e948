"""Tabular files the suites read: CSV as published by the benchmarks, or JSONL / JSON / parquet
rows with the same columns (through `alignlab.data.readers.iter_raw_records`).

A file without the columns a suite needs is one `DataError` naming the file and the missing
columns, with the columns it has.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignlab.data.readers import iter_raw_records
from alignlab.errors import DataError

SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json", ".parquet", ".jsonl.gz", ".json.gz")


@dataclass(frozen=True)
class Table:
    path: str
    columns: tuple[str, ...]
    rows: list[tuple[str, dict[str, Any]]]  # (where, row): "file:line" for messages

    def require(self, columns: Sequence[str], what: str) -> None:
        """DataError naming the file and every missing column unless all of `columns` are present."""
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise DataError(
                f"{self.path}: missing column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(c) for c in missing)} "
                f"for {what}; the file has: {', '.join(self.columns) or 'no columns'}"
            )

    def pick(self, candidates: Sequence[str], what: str) -> str:
        """The first of `candidates` the file has; else DataError naming them."""
        found = next((c for c in candidates if c in self.columns), None)
        if found is None:
            raise DataError(
                f"{self.path}: no {what} column (one of {', '.join(repr(c) for c in candidates)}); "
                f"the file has: {', '.join(self.columns) or 'no columns'}"
            )
        return found


def _read_csv(path: Path, shown: str) -> Table:
    # HarmBench's ContextString cells hold whole documents; the csv module's default cap is 128 KiB.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            columns = tuple(reader.fieldnames or ())
            rows = [(f"{shown}:{reader.line_num}", dict(r)) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{shown}: cannot be read as a UTF-8 CSV file ({e})") from None
    return Table(shown, columns, rows)


def read_table(path: str | os.PathLike) -> Table:
    """Rows of a CSV (with a header row), JSONL, JSON or parquet file; columns are the first row's keys."""
    shown, p = os.fspath(path), Path(path)
    if not p.is_file():
        raise DataError(f"{shown}: no such file; give the path of the benchmark's data file")
    if not p.name.lower().endswith(SUFFIXES):
        raise DataError(f"{shown}: unsupported file type; give one of {', '.join(SUFFIXES)}")
    if p.suffix.lower() == ".csv":
        table = _read_csv(p, shown)
    else:
        rows = list(iter_raw_records(p))
        bad = next(((w, r) for w, r in rows if not isinstance(r, dict)), None)
        if bad is not None:
            raise DataError(f"{bad[0]}: expected an object with named fields, got {type(bad[1]).__name__}")
        columns = tuple(dict.fromkeys(k for _, r in rows[:1] for k in r))
        table = Table(shown, columns, rows)
    if not table.rows:
        raise DataError(f"{shown}: holds no rows")
    return table


def cell(row: dict[str, Any], column: str) -> str:
    """A cell as stripped text ("" for a missing or null cell)."""
    value = row.get(column)
    return "" if value is None else str(value).strip()
