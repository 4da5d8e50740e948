"""Read dataset files in the formats users really have into `alignlab.data.schema` records.

File types: `.jsonl` (also `.ndjson`), `.json` (an array, or an object with a `data` / `rows` list),
either of them gzipped, `.parquet`, a Hugging Face `datasets` directory written by `save_to_disk`
(a `Dataset` or a `DatasetDict`), and a directory of data files such as a hub dataset snapshot.
Record formats are in `formats.py`; the format is detected from the first record whose keys match
one, or named. A malformed record is an error naming `file:line` (JSONL) or `file: record N`, unless
`skip_invalid` is set, in which case it is skipped and counted.

Stages want one kind of record and the `read_*` functions convert between kinds where that is
lossless: a preference pair is an SFT conversation (prompt + chosen) and two KTO records (chosen
desirable, rejected undesirable; ties give none); a KTO record is an SFT conversation only when its
label is desirable. Records a conversion leaves out are counted in `ReadResult.excluded`.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignlab.data.fields import json_problem
from alignlab.data.formats import (
    FORMATS,
    FormatSpec,
    Record,
    RecordError,
    RecordKind,
    detect_format,
    format_names,
)
from alignlab.data.schema import BinaryFeedback, Conversation, PreferencePair
from alignlab.errors import DataError
from alignlab.io import atomic_write_jsonl

__all__ = [
    "FORMATS",
    "FormatSpec",
    "ReadResult",
    "RecordKind",
    "format_names",
    "read_conversations",
    "read_feedback",
    "read_preferences",
    "read_records",
    "write_records",
]

_JSONL = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
_JSON = (".json", ".json.gz")
_PARQUET = (".parquet",)
_DATA_SUFFIXES = _JSONL + _JSON + _PARQUET
# Files a datasets directory or hub snapshot holds that describe the data rather than hold it.
_NOT_DATA = {"dataset_info.json", "dataset_infos.json", "dataset_dict.json", "state.json"}
_DETECT_WINDOW = 50  # records looked at to find one whose keys name its format
_SKIP_HINT = "(fix it, or use --skip-invalid to skip such records)"
_PURPOSE = {"conversation": "SFT", "preference": "preference training", "feedback": "KTO"}

# A raw row: where it is (for messages), the decoded object, or why it could not be decoded.
Row = tuple[str, Any, str | None]


@dataclass(frozen=True)
class ReadResult:
    records: list[Record]  # Conversation | PreferencePair | BinaryFeedback, all of `kind`
    kind: RecordKind
    format: str  # the format name used (detected or given)
    path: str
    skipped: int  # malformed records skipped (only with skip_invalid=True)
    # Well-formed records that give none of the wanted kind: undesirable KTO records read for SFT,
    # ties read for KTO.
    excluded: int = 0


# ------------------------------------------------------------------------------------ raw rows


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in sorted(_DATA_SUFFIXES, key=len, reverse=True) if name.endswith(s)), "")


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _iter_jsonl(path: Path, shown: str) -> Iterator[Row]:
    # Bytes, decoded per line: a bad byte or bad JSON is one bad record with an exact line number.
    try:
        with _open_bytes(path) as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                where = f"{shown}:{lineno}"
                try:
                    text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    yield where, None, f"not UTF-8 text ({e.reason} at byte {e.start})"
                    continue
                try:
                    yield where, json.loads(text), None
                except json.JSONDecodeError as e:
                    yield where, None, json_problem(e)
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(
            f"{shown}: cannot be read ({e}); check the file is not truncated or mislabelled"
        ) from None


def _iter_json(path: Path, shown: str) -> Iterator[Row]:
    try:
        with _open_bytes(path) as f:
            text = f.read().decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DataError(f"{shown}: cannot be read as UTF-8 JSON ({e})") from None
    if not text.strip():  # as an empty .jsonl says it, not as a JSON syntax error at column 1
        raise DataError(f"{shown}: is empty; it holds no records")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data" and text.lstrip().startswith("{"):  # JSON Lines saved as .json
            yield from _iter_jsonl(path, shown)
            return
        raise DataError(
            f"{shown}:{e.lineno}: {json_problem(e)}; fix the file"
        ) from None
    if isinstance(data, dict):
        rows = next((data[k] for k in ("data", "rows") if isinstance(data.get(k), list)), None)
        if rows is None:
            raise DataError(
                f"{shown}: is a JSON object without a 'data' or 'rows' list; "
                "give a JSON array of records, or JSON Lines (.jsonl)"
            )
        data = rows
    if not isinstance(data, list):
        raise DataError(f"{shown}: holds a JSON {type(data).__name__}; give a JSON array of records")
    for i, row in enumerate(data, 1):
        yield f"{shown}: record {i}", row, None


def _iter_parquet(path: Path, shown: str) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=1024)
        n = 0
        for batch in batches:
            for row in batch.to_pylist():
                n += 1
                yield f"{shown}: record {n}", row, None
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{shown}: cannot be read as parquet ({e})") from None


def _iter_file(path: Path, shown: str) -> Iterator[Row]:
    suffix = _suffix(path)
    if suffix in _JSONL:
        return _iter_jsonl(path, shown)
    if suffix in _JSON:
        return _iter_json(path, shown)
    if suffix in _PARQUET:
        return _iter_parquet(path, shown)
    raise DataError(
        f"{shown}: unsupported file type; give one of {', '.join(_DATA_SUFFIXES)} or a dataset directory"
    )


def _iter_saved_dataset(path: Path, shown: str, split: str | None) -> Iterator[Row]:
    """A directory written by `datasets.Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{shown}: is a Hugging Face datasets directory; reading it needs the datasets package: "
            "pip install 'alignlab[datasets]'"
        ) from None
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises many types for a damaged directory
        raise DataError(f"{shown}: cannot be loaded with datasets.load_from_disk ({e})") from None
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds)
        name = split or ("train" if "train" in ds or len(names) != 1 else names[0])
        if name not in ds:
            raise DataError(f"{shown}: has no split '{name}'; splits: {', '.join(names)} "
                            "(choose one with data.split=NAME)")
        ds, shown = ds[name], f"{shown} [{name}]"
    for i, row in enumerate(ds, 1):
        yield f"{shown}: record {i}", row, None


_SHARD = re.compile(r"-\d{5}-of-\d{5}(-[0-9a-f]+)?$")


def _split_tokens(rel: Path) -> set[str]:
    """Names a file could carry its split in: its folders and its stem without a shard suffix."""
    stem = _SHARD.sub("", rel.name[: len(rel.name) - len(_suffix(rel))])
    return {*rel.parent.parts, stem}


def _pick_split_files(root: Path, shown: str, split: str | None) -> list[Path]:
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and _suffix(p) and p.name not in _NOT_DATA
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )  # fmt: skip
    if not files:
        raise DataError(
            f"{shown}: directory holds no data files ({', '.join(_DATA_SUFFIXES)}) and is not a "
            "datasets save_to_disk directory"
        )
    tokens = {f: _split_tokens(f.relative_to(root)) for f in files}
    wanted = split or "train"
    picked = [f for f in files if wanted in tokens[f]]
    split_like = ("train", "test", "valid", "dev", "eval")
    if (
        not picked
        and split is None
        and not any(s in t.lower() for ts in tokens.values() for t in ts for s in split_like)
    ):
        return files  # no file names a split: they are all one split
    if not picked:
        found = sorted({t for ts in tokens.values() for t in ts})
        raise DataError(f"{shown}: no data file for split '{wanted}'; names found: {', '.join(found)} "
                        "(choose one with data.split=NAME)")
    return picked


def _iter_rows(path: Path, shown: str, split: str | None) -> Iterator[Row]:
    if path.is_file():
        return _iter_file(path, shown)
    saved = (path / "dataset_info.json").exists() and any(path.glob("*.arrow"))
    if saved or (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        return _iter_saved_dataset(path, shown, split)
    files = _pick_split_files(path, shown, split)
    return itertools.chain.from_iterable(
        _iter_file(f, os.path.join(shown, f.relative_to(path))) for f in files
    )


# ------------------------------------------------------------------------------------ formats


def _known_formats() -> str:
    return "; ".join(f"{s.name} ({s.keys})" for s in FORMATS.values())


def _resolve_format(fmt: str, rows: Iterator[Row], shown: str) -> tuple[FormatSpec, Iterator[Row]]:
    """The named format, or the one detected from the first records; rows are given back unconsumed."""
    if fmt != "auto":
        return FORMATS[fmt], rows
    seen: list[Row] = []
    first_keys: list[str] | None = None
    for row in rows:
        seen.append(row)
        if isinstance(row[1], dict):
            spec = detect_format(row[1])
            if spec is not None:
                return spec, itertools.chain(seen, rows)
            first_keys = first_keys if first_keys is not None else sorted(row[1])
        if len(seen) >= _DETECT_WINDOW:
            break
    if not seen:
        raise DataError(f"{shown}: is empty; it holds no records")
    if first_keys is None:
        where, _, err = seen[0]
        raise DataError(f"{where}: {err or 'not a JSON object'}; cannot detect the format (fix the file)")
    raise DataError(
        f"{shown}: cannot detect the format from the keys {first_keys}; known formats: "
        f"{_known_formats()}; name one with --format"
    )


def _as_conversations(spec: FormatSpec) -> Callable[[Any], list[Record]]:
    def convert(rec: Any) -> list[Record]:
        if spec.kind == "preference":
            rec = Conversation(messages=[*rec.prompt, *rec.chosen], id=rec.id, metadata=rec.metadata)
        elif spec.kind == "feedback":  # only a desirable completion is a demonstration
            if not rec.label:
                return []
            rec = Conversation(messages=[*rec.prompt, *rec.completion], id=rec.id, metadata=rec.metadata)
        if not rec.has_assistant_turn:
            raise RecordError("conversation has no assistant turn; SFT needs one")
        return [rec]

    return convert


def _pair_to_feedback(pair: PreferencePair) -> list[Record]:
    if pair.tie:  # equal responses say nothing about which is desirable
        return []
    return [
        BinaryFeedback(
            prompt=pair.prompt, completion=response, label=label, metadata=pair.metadata,
            id=None if pair.id is None else f"{pair.id}:{side}",
        )
        for response, label, side in ((pair.chosen, True, "chosen"), (pair.rejected, False, "rejected"))
    ]  # fmt: skip


def _converter(spec: FormatSpec, want: RecordKind | None, shown: str) -> Callable[[Any], list[Record]]:
    if want == "conversation":
        return _as_conversations(spec)
    if want is None or want == spec.kind:
        return lambda rec: [rec]
    if want == "feedback" and spec.kind == "preference":
        return _pair_to_feedback
    fitting = [
        s.name for s in FORMATS.values() if s.kind == want or (want == "feedback" and s.kind == "preference")
    ]
    raise DataError(
        f"{shown}: has format '{spec.name}' ({spec.kind} records) but {_PURPOSE[want]} needs {want} records; "
        f"give a file in one of: {', '.join(fitting)}"
    )


# ------------------------------------------------------------------------------------ public API


def _read(
    path: str | os.PathLike,
    fmt: str,
    want: RecordKind | None,
    split: str | None,
    skip_invalid: bool,
    limit: int | None,
) -> ReadResult:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    shown, p = os.fspath(path), Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{shown}: no such file or directory; give a dataset file "
                        f"({', '.join(_DATA_SUFFIXES)}) or directory")
    if fmt != "auto" and fmt not in FORMATS:  # before reading anything
        raise DataError(f"unknown format '{fmt}'; valid formats: auto, {', '.join(format_names())}")
    spec, rows = _resolve_format(fmt, _iter_rows(p, shown, split), shown)
    convert = _converter(spec, want, shown)
    records: list[Record] = []
    skipped, excluded, seen, first_error = 0, 0, 0, ""
    for where, raw, err in rows:
        seen += 1
        try:
            if err is not None:
                raise RecordError(err)
            if not isinstance(raw, dict):
                raise RecordError(f"expected a JSON object, got {type(raw).__name__}")
            out = convert(spec.parse(raw))
        except RecordError as e:
            if not skip_invalid:
                raise DataError(f"{where}: {e} {_SKIP_HINT}") from None
            skipped += 1
            first_error = first_error or f"{where}: {e}"
            continue
        records.extend(out)
        excluded += not out
        if limit is not None and len(records) >= limit:
            del records[limit:]
            break
    if not seen:
        raise DataError(f"{shown}: is empty; it holds no records")
    if not records:
        why = f"all {skipped} records are malformed (first: {first_error})" if skipped else "no record fits"
        if excluded and want == "conversation":
            why = f"all {excluded} records are labelled undesirable, and SFT learns only desirable ones"
        raise DataError(f"{shown}: no usable {want or spec.kind} records: {why}")
    return ReadResult(records, want or spec.kind, spec.name, shown, skipped, excluded)


_Path = str | os.PathLike


def read_records(
    path: _Path,
    format: str = "auto",
    *,
    split: str | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
) -> ReadResult:
    """Records of `path` in the kind its format gives (conversation, preference or feedback).

    `format` is a name from `FORMATS` or "auto"; `split` picks a split of a datasets directory or
    of a directory of data files (default train); `limit` keeps at most that many records;
    `skip_invalid` skips malformed records and counts them in `ReadResult.skipped`.
    """
    return _read(path, format, None, split, skip_invalid, limit)


def read_conversations(
    path: _Path,
    format: str = "auto",
    *,
    split: str | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
) -> ReadResult:
    """Conversations for SFT, each with an assistant turn; a pair gives prompt + chosen."""
    return _read(path, format, "conversation", split, skip_invalid, limit)


def read_preferences(
    path: _Path,
    format: str = "auto",
    *,
    split: str | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
) -> ReadResult:
    """Preference pairs for reward models and the DPO family."""
    return _read(path, format, "preference", split, skip_invalid, limit)


def read_feedback(
    path: _Path,
    format: str = "auto",
    *,
    split: str | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
) -> ReadResult:
    """KTO records; a pair gives two (chosen desirable, rejected undesirable), a tie none."""
    return _read(path, format, "feedback", split, skip_invalid, limit)


def write_records(path: _Path, records: Sequence[Record]) -> None:
    """Write records as alignlab's own JSONL (`record.to_json()` per line), atomically."""
    atomic_write_jsonl(path, (r.to_json() for r in records))


def iter_raw_records(path: _Path, split: str | None = None) -> Iterator[tuple[str, Any]]:
    """(where, decoded object) of every record of any supported file type, for non-chat data
    such as pretraining corpora; an undecodable record raises DataError naming file:line."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found; check the path")
    for where, obj, problem in _iter_rows(p, str(p), split):
        if problem is not None:
            raise DataError(f"{where}: {problem}")
        yield where, obj
