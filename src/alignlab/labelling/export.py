"""Export labels as `PreferencePair` JSONL, per label or aggregated per pair (majority, weighted).

The fields of each line, the confidence mapping and the aggregation rules are specified in
docs/labelling-formats.md; `alignlab rm` and `alignlab dpo` read the file unchanged.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from fractions import Fraction
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from alignlab.data.schema import PreferencePair
from alignlab.io import atomic_write_text
from alignlab.labelling.errors import Invalid
from alignlab.labelling.models import Label, Pair, Round

Aggregate = Literal["none", "majority", "weighted"]
AGGREGATES: tuple[str, ...] = ("none", "majority", "weighted")


def confidence_to_prob(level: int) -> Fraction:
    """1..4 -> 1/2, 2/3, 5/6, 1: linear from a guess to certainty."""
    return Fraction(level + 2, 6)


def _labels(db: Session, round_name: str | None) -> list[Label]:
    query = (
        select(Label)
        .join(Pair, Pair.id == Label.pair_id)
        .join(Round, Round.id == Pair.round_id)
        .options(joinedload(Label.pair).joinedload(Pair.round), joinedload(Label.user))
        .order_by(Label.id)
    )
    if round_name is not None:
        query = query.where(Round.name == round_name)
    return list(db.scalars(query).unique().all())


def _pair_record(pair: Pair, winner: str, **fields: Any) -> dict[str, Any]:
    """A `PreferencePair` dict with `winner` ("a" or "b"; anything else keeps import order) chosen."""
    chosen, rejected = (
        (pair.response_b, pair.response_a) if winner == "b" else (pair.response_a, pair.response_b)
    )
    return PreferencePair(prompt=pair.prompt, chosen=chosen, rejected=rejected, **fields).to_json()


def label_record(label: Label) -> dict[str, Any]:
    """One stored label as a `PreferencePair` JSON object (fields: docs/labelling-formats.md)."""
    pair = label.pair
    decisive = label.choice in ("a", "b")
    chosen_side = label.choice if decisive else "a"
    meta: dict[str, Any] = {
        "pair_id": pair.ext_id,
        "round": pair.round.name,
        "choice": label.choice,
        "confidence_level": label.confidence,
        "guideline_version": label.guideline_version,
        "shown_left": label.shown_left,
        "chosen_position": "left" if chosen_side == label.shown_left else "right",
        "rationale": label.rationale,
        "rewrite": label.rewrite,
        "gold": pair.gold,
        "labelled_at": label.created_at.isoformat(timespec="seconds") + "Z",
        "seconds": round(label.seconds, 3),
        "source": pair.meta or None,
    }
    return _pair_record(
        pair,
        chosen_side,
        tie=not decisive,
        confidence=round(float(confidence_to_prob(label.confidence)), 4),
        annotator=label.user.name,
        reason=",".join(label.reasons) or None,
        id=f"{pair.ext_id}:{label.user.name}",
        metadata={k: v for k, v in meta.items() if v is not None},
    )


def _majority(labels: list[Label]) -> tuple[str, float | None]:
    votes = Counter(lab.choice for lab in labels)
    top = max(votes.values())
    leaders = [c for c, n in votes.items() if n == top]
    if len(leaders) > 1 or leaders[0] == "tie":
        return "tie", None
    return leaders[0], top / sum(votes.values())


def _weighted(labels: list[Label]) -> tuple[str, float | None]:
    probs = []
    for lab in labels:
        p = confidence_to_prob(lab.confidence)
        probs.append(p if lab.choice == "a" else 1 - p if lab.choice == "b" else Fraction(1, 2))
    q = sum(probs) / len(probs)  # exact, so that q == 1/2 really is a tie
    if q == Fraction(1, 2):
        return "tie", None
    return ("a", float(q)) if q > Fraction(1, 2) else ("b", float(1 - q))


def aggregate_record(pair: Pair, labels: list[Label], method: str) -> dict[str, Any] | None:
    """One pair's labels combined by `majority` or `weighted`; None when only "both bad" remain."""
    votes = Counter(lab.choice for lab in labels)
    counted = [lab for lab in labels if lab.choice != "both_bad"]
    if not counted:
        return None
    winner, confidence = _majority(counted) if method == "majority" else _weighted(counted)
    meta = {
        "pair_id": pair.ext_id,
        "round": pair.round.name,
        "aggregate": method,
        "n_labels": len(labels),
        "votes": {c: votes.get(c, 0) for c in ("a", "b", "tie", "both_bad")},
        "annotators": sorted(lab.user.name for lab in labels),
        "gold": pair.gold,
        "source": pair.meta or None,
    }
    return _pair_record(
        pair,
        winner,
        tie=winner == "tie",
        confidence=None if confidence is None else round(confidence, 4),
        annotator=f"aggregate:{method}",
        id=pair.ext_id,
        metadata={k: v for k, v in meta.items() if v is not None},
    )


def export_records(db: Session, aggregate: str = "none", round_name: str | None = None) -> Iterator[dict]:
    """The export lines as dicts, in label order (per label) or first-label order (aggregated)."""
    if aggregate not in AGGREGATES:
        raise Invalid(f"aggregate {aggregate!r}: use one of {', '.join(AGGREGATES)}")
    labels = _labels(db, round_name)
    if aggregate == "none":
        yield from (label_record(lab) for lab in labels)
        return
    by_pair: dict[int, list[Label]] = defaultdict(list)
    for lab in labels:
        by_pair[lab.pair_id].append(lab)
    for group in by_pair.values():
        rec = aggregate_record(group[0].pair, group, aggregate)
        if rec is not None:
            yield rec


def export_text(db: Session, aggregate: str = "none", round_name: str | None = None) -> str:
    return "".join(
        json.dumps(r, ensure_ascii=False) + "\n" for r in export_records(db, aggregate, round_name)
    )


def export_file(db: Session, path: str, aggregate: str = "none", round_name: str | None = None) -> int:
    """Write the export atomically to `path`; return the number of lines."""
    text = export_text(db, aggregate, round_name)
    atomic_write_text(path, text)
    return text.count("\n")
