"""Import response pairs to label: JSONL in, all or nothing.

Import format: one JSON object per line (blank lines are ignored).

- `prompt` (required): the conversation before the responses: a string (one user turn) or a list
  of messages `{"role": "system"|"user"|"assistant"|"tool", "content": ...}` (system prompt and
  earlier turns), as in `alignlab.data.schema.Message`.
- the two responses, either `response_a` and `response_b`, or `chosen` and `rejected` (so a
  `PreferencePair` file can be relabelled); each a string (one assistant turn), one message
  object, or a list of messages starting with an assistant turn. The pairs are unlabelled: the
  order carries no meaning. `chosen` is stored as response a and `rejected` as response b, and
  labellers see the two in a random left/right order either way.
- `id` (optional): a stable id, unique over the file and the database. Without one the id is
  `sha256:` + the first 16 hex digits of the hash of prompt and responses, so the same pair
  imported twice is caught as a duplicate.
- `gold` (optional): "a" or "b", the known better response of a hidden gold item ("a" is
  `response_a` or `chosen`). Gold items look like any other pair; every labeller gets each one
  once, and the statistics page reports each labeller's accuracy on them.
- `metadata` (optional): an object passed through to the export under `metadata.source`.
- `tie`, `confidence`, `margin`, `annotator` and `reason` (the label fields of a `PreferencePair`)
  are accepted and ignored, so an exported file can be imported again for a new round.

Any other key, a missing or malformed field, or a duplicate id rejects the whole file with a
`DataError` naming `file:line`; nothing is imported.

Assignment targets per pair, chosen at import: `labels_per_pair` labellers (k), except an exact
`overlap` share of the non-gold pairs (picked by a hash of their id, so deterministic) that goes to
`overlap_labels` labellers to measure agreement.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from alignlab.data.schema import PreferencePair
from alignlab.errors import DataError
from alignlab.labelling.models import Pair, Round

KNOWN_KEYS = frozenset(
    {"prompt", "response_a", "response_b", "chosen", "rejected", "id", "gold", "metadata"}
    | {"tie", "confidence", "margin", "annotator", "reason"}
)


@dataclass(frozen=True)
class ParsedPair:
    line: int
    ext_id: str
    prompt: list[dict[str, Any]]
    response_a: list[dict[str, Any]]
    response_b: list[dict[str, Any]]
    gold: str | None
    meta: dict[str, Any]


@dataclass(frozen=True)
class ImportResult:
    round_name: str
    imported: int
    gold: int
    overlap: int


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


def parse_record(obj: Any, where: str, line: int) -> ParsedPair:
    """Validate one decoded line; `where` is `file:line` for error messages."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object with prompt and two responses")
    unknown = sorted(set(obj) - KNOWN_KEYS)
    if unknown:
        raise DataError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(KNOWN_KEYS))}")
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
        blob = json.dumps([prompt, resp_a, resp_b], sort_keys=True, ensure_ascii=False)
        ext_id = "sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:16]
    elif not isinstance(ext_id, (str, int)) or isinstance(ext_id, bool) or not str(ext_id).strip():
        raise DataError(f"{where}: id must be a non-empty string or an integer")
    if len(str(ext_id)) > 200:
        raise DataError(f"{where}: id is longer than 200 characters")
    return ParsedPair(line, str(ext_id), prompt, resp_a, resp_b, gold, meta)


def parse_lines(lines: Iterable[str], source: str) -> list[ParsedPair]:
    """Parse import lines; the first problem raises `DataError("source:line: ...")`."""
    out: list[ParsedPair] = []
    first_line: dict[str, int] = {}
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{source}:{n}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
        parsed = parse_record(obj, where, n)
        if parsed.ext_id in first_line:
            raise DataError(f"{where}: duplicate id {parsed.ext_id!r} (first on line {first_line[parsed.ext_id]})")
        first_line[parsed.ext_id] = n
        out.append(parsed)
    if not out:
        raise DataError(f"{source}: no pairs found; expected one JSON object per line")
    return out


def parse_file(path: str) -> list[ParsedPair]:
    try:
        with open(path, encoding="utf-8") as f:
            return parse_lines(f, str(path))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the path") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason})") from None


def _unit_hash(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:16]


def import_pairs(
    db: Session,
    pairs: list[ParsedPair],
    source: str,
    round_name: str,
    labels_per_pair: int = 1,
    overlap: float = 0.0,
    overlap_labels: int = 3,
) -> ImportResult:
    """Add parsed pairs to round `round_name` (created if new) in the caller's transaction.

    The caller commits; on `DataError` it must roll back, so nothing of the file is kept.
    """
    if labels_per_pair < 1:
        raise DataError(f"labels_per_pair must be at least 1, got {labels_per_pair}")
    if not 0.0 <= overlap <= 1.0:
        raise DataError(f"overlap must be a share between 0 and 1, got {overlap}")
    if overlap > 0 and overlap_labels < 2:
        raise DataError(f"overlap_labels must be at least 2 to measure agreement, got {overlap_labels}")
    if not round_name.strip() or len(round_name) > 128:
        raise DataError(f"round name {round_name!r}: use 1-128 characters")
    ids = [p.ext_id for p in pairs]
    for start in range(0, len(ids), 500):
        taken = db.scalars(select(Pair.ext_id).where(Pair.ext_id.in_(ids[start : start + 500]))).first()
        if taken is not None:
            line = next(p.line for p in pairs if p.ext_id == taken)
            raise DataError(f"{source}:{line}: pair id {taken!r} is already in the database; give it a new id")
    rnd = db.scalar(select(Round).where(Round.name == round_name))
    if rnd is None:
        rnd = Round(name=round_name, active=True)
        db.add(rnd)
        db.flush()
    plain = sorted((p for p in pairs if p.gold is None), key=lambda p: _unit_hash("overlap", p.ext_id))
    overlapped = {p.ext_id for p in plain[: round(overlap * len(plain))]}
    for p in pairs:
        target = None if p.gold else (max(overlap_labels, labels_per_pair) if p.ext_id in overlapped else labels_per_pair)
        db.add(
            Pair(
                ext_id=p.ext_id,
                round_id=rnd.id,
                prompt=p.prompt,
                response_a=p.response_a,
                response_b=p.response_b,
                gold=p.gold,
                target=target,
                assigned=0,
                order_key=_unit_hash("order", round_name, p.ext_id),
                meta=p.meta,
            )
        )
    db.flush()
    n_gold = sum(p.gold is not None for p in pairs)
    return ImportResult(round_name, len(pairs), n_gold, len(overlapped))
