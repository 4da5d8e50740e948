"""Files of response pairs to compare: the labelling format, or any preference file.

The labelling format (JSONL: `prompt`, `response_a`, `response_b`, optional `id`, `gold`,
`metadata`) and the preference formats read through `alignlab.data.readers` are specified in
docs/labelling-formats.md. The labelling app imports these files for people to label
(`alignlab.labelling.importer`) and the AI labeller reads them for a judge (`alignlab rlaif`);
both parse them here, so a file means the same to either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from alignlab.data.fields import json_problem
from alignlab.data.formats import detect_format, format_names
from alignlab.data.schema import PreferencePair
from alignlab.errors import DataError

NATIVE = "pairs"  # the labelling format's name for --format
FORMAT_DOC = "docs/labelling-formats.md"

KNOWN_KEYS = frozenset(
    {"prompt", "response_a", "response_b", "chosen", "rejected", "id", "gold", "metadata"}
    | {"tie", "confidence", "margin", "annotator", "reason"}
)


@dataclass(frozen=True)
class ParsedPair:
    where: str  # file:line (or file: record N), for messages
    ext_id: str
    prompt: list[dict[str, Any]]
    response_a: list[dict[str, Any]]
    response_b: list[dict[str, Any]]
    gold: str | None
    meta: dict[str, Any]


@dataclass(frozen=True)
class ParsedFile:
    pairs: list[ParsedPair]
    format: str  # NATIVE or the preference format read
    skipped: int  # pairs of a preference file left out: identical responses, or the same pair again


def _messages(value: Any, default_role: str) -> Any:
    """A string becomes one turn of `default_role`; one message object becomes a list of one."""
    if isinstance(value, str):
        return [{"role": default_role, "content": value}]
    if isinstance(value, dict):
        return [value]
    return value


def _short(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"])
    return f"{loc}: {e['msg']}" if loc else e["msg"]


def _content_id(prompt: list, resp_a: list, resp_b: list) -> str:
    """`sha256:` + 16 hex digits of prompt and responses, so the same pair imported twice is caught."""
    blob = json.dumps([prompt, resp_a, resp_b], sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def parse_record(obj: Any, where: str) -> ParsedPair:
    """Validate one decoded line; `where` is `file:line` for error messages."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object with prompt and two responses")
    unknown = sorted(set(obj) - KNOWN_KEYS)
    if unknown:
        allowed = ", ".join(sorted(KNOWN_KEYS))
        raise DataError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {allowed}")
    has_ab, has_cr = "response_a" in obj or "response_b" in obj, "chosen" in obj or "rejected" in obj
    if has_ab == has_cr:
        raise DataError(f"{where}: give either response_a and response_b, or chosen and rejected (not both)")
    a_key, b_key = ("response_a", "response_b") if has_ab else ("chosen", "rejected")
    for key in ("prompt", a_key, b_key):
        if key not in obj:
            raise DataError(f"{where}: missing required key '{key}'")
    gold = obj.get("gold")
    if gold not in (None, "a", "b"):
        raise DataError(f"{where}: gold must be \"a\" or \"b\", got {gold!r}")
    meta = obj.get("metadata", {})
    if not isinstance(meta, dict):
        raise DataError(f"{where}: metadata must be a JSON object")
    try:
        pair = PreferencePair(
            prompt=_messages(obj["prompt"], "user"),
            chosen=_messages(obj[a_key], "assistant"),
            rejected=_messages(obj[b_key], "assistant"),
        )
    except ValidationError as err:
        text = _short(err).replace("chosen", a_key, 1).replace("rejected", b_key, 1)
        raise DataError(f"{where}: {text}") from None
    prompt = [m.to_json() for m in pair.prompt]
    resp_a, resp_b = [m.to_json() for m in pair.chosen], [m.to_json() for m in pair.rejected]
    if resp_a == resp_b:
        raise DataError(f"{where}: the two responses are identical; there is nothing to compare")
    ext_id = obj.get("id")
    if ext_id is None:
        ext_id = _content_id(prompt, resp_a, resp_b)
    elif not isinstance(ext_id, (str, int)) or isinstance(ext_id, bool) or not str(ext_id).strip():
        raise DataError(f"{where}: id must be a non-empty string or an integer")
    if len(str(ext_id)) > 200:
        raise DataError(f"{where}: id is longer than 200 characters")
    return ParsedPair(where, str(ext_id), prompt, resp_a, resp_b, gold, meta)


def _parse_objects(rows: Iterable[tuple[str, Any]], source: str) -> list[ParsedPair]:
    """Parse decoded records of the labelling format; ids must be unique."""
    out: list[ParsedPair] = []
    first: dict[str, str] = {}
    for where, obj in rows:
        parsed = parse_record(obj, where)
        if parsed.ext_id in first:
            raise DataError(f"{where}: duplicate id {parsed.ext_id!r} (first at {first[parsed.ext_id]})")
        first[parsed.ext_id] = where
        out.append(parsed)
    if not out:
        raise DataError(f"{source}: no pairs found; expected one JSON object per line")
    return out


def parse_lines(lines: Iterable[str], source: str) -> list[ParsedPair]:
    """Parse lines of the labelling format; the first problem raises `DataError("source:line: ...")`."""

    def rows() -> Iterable[tuple[str, Any]]:
        for n, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                yield f"{source}:{n}", json.loads(raw)
            except json.JSONDecodeError as err:
                raise DataError(f"{source}:{n}: {json_problem(err)}") from None

    return _parse_objects(rows(), source)


def import_formats() -> list[str]:
    """What `parse_file` reads: auto, the labelling format, every preference format of the readers."""
    return ["auto", NATIVE, *format_names("preference")]


def parse_file(path: str, format: str = "auto") -> ParsedFile:
    """Pairs of a file in the labelling format or any preference format (`format`, or detected).

    A malformed record rejects the file. From a preference file, pairs whose two responses are
    identical, and repeats of a pair, are left out and counted: they give a labeller nothing to do.
    """
    from alignlab.data.readers import iter_raw_records

    if format not in import_formats():
        raise DataError(f"unknown format '{format}'; valid formats: {', '.join(import_formats())}")
    if format == "auto":
        first = next(iter_raw_records(path), None)
        if first is None:
            raise DataError(f"{path}: no pairs found; the file holds no records")
        format = _detect(first[1], path)
    if format == NATIVE:
        return ParsedFile(_parse_objects(iter_raw_records(path), path), NATIVE, 0)
    return _from_preferences(path, format)


def _detect(rec: Any, path: str) -> str:
    if not isinstance(rec, dict) or {"response_a", "response_b", "gold"} & set(rec):
        return NATIVE  # its own errors say what is wrong with a record
    spec = detect_format(rec)
    if spec is not None:
        return spec.name  # a format other than a preference one is refused by the reader, with its name
    if set(rec) <= KNOWN_KEYS:
        return NATIVE
    raise DataError(
        f"{path}: cannot detect the format from the keys {sorted(rec)}; give the labelling format (prompt, "
        f"response_a, response_b; see {FORMAT_DOC}) or a preference file "
        f"({', '.join(format_names('preference'))}), or name the format with --format"
    )


def _from_preferences(path: str, format: str) -> ParsedFile:
    from alignlab.data.readers import read_preferences

    out: list[ParsedPair] = []
    first: dict[str, str] = {}
    skipped = 0
    for k, pair in enumerate(read_preferences(path, format).records, 1):
        where = f"{path}: record {k}"
        prompt = [m.to_json() for m in pair.prompt]
        resp_a, resp_b = [m.to_json() for m in pair.chosen], [m.to_json() for m in pair.rejected]
        ext_id = pair.id if pair.id is not None else _content_id(prompt, resp_a, resp_b)
        if resp_a == resp_b or (pair.id is None and ext_id in first):
            skipped += 1
            continue
        if ext_id in first:
            raise DataError(f"{where}: duplicate id {ext_id!r} (first at {first[ext_id]})")
        first[ext_id] = where
        out.append(ParsedPair(where, ext_id, prompt, resp_a, resp_b, None, dict(pair.metadata)))
    if not out:
        raise DataError(f"{path}: no pair to label: every pair has two identical responses")
    return ParsedFile(out, format, skipped)
