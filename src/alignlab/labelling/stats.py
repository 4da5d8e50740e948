"""Statistics of the label pool: throughput, gold accuracy, agreement, position bias, ties.

The agreement figures treat each pair as a unit and the four choices (a, b, tie, both bad, in
import order, so independent of the left/right order shown) as nominal categories; see
`alignlab.feedback.agreement` for the formulas and their conventions.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alignlab.feedback.agreement import (
    cohen_kappa_pairs,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_agreement,
    position_bias_rate,
    ratings_by_unit,
    tie_rate,
)
from alignlab.labelling.models import Label, Pair, Round, User


@dataclass(frozen=True)
class LabellerStats:
    name: str
    role: str
    labels: int
    labels_per_hour: float  # labels per hour on task (assignment shown -> label stored)
    gold_labels: int
    gold_accuracy: float  # share of gold items answered with the gold response (nan if none)
    tie_rate: float
    left_rate: float  # share of decisive labels that picked the left response


@dataclass(frozen=True)
class PoolStats:
    labels: int
    pairs_labelled: int
    pairs_multi: int  # pairs with two or more labels: the agreement sample
    pairwise_agreement: float
    fleiss_kappa: float
    krippendorff_alpha: float
    position_bias_rate: float
    tie_rate: float
    both_bad_rate: float
    labellers: list[LabellerStats] = field(default_factory=list)
    cohen: list[tuple[str, str, float, int]] = field(default_factory=list)  # (a, b, kappa, n common)
    per_hour: list[tuple[str, int]] = field(default_factory=list)  # ("2026-01-31 14:00", n) UTC


def _picked_left(lab: Label) -> bool | None:
    return lab.choice == lab.shown_left if lab.choice in ("a", "b") else None


def _labeller(user: User, labs: list[Label], gold: dict[int, str]) -> LabellerStats:
    on_task = sum(lab.seconds for lab in labs)
    gold_labs = [lab for lab in labs if lab.pair_id in gold]
    return LabellerStats(
        name=user.name,
        role=user.role,
        labels=len(labs),
        labels_per_hour=3600.0 * len(labs) / on_task if on_task > 0 else math.nan,
        gold_labels=len(gold_labs),
        gold_accuracy=(
            sum(lab.choice == gold[lab.pair_id] for lab in gold_labs) / len(gold_labs)
            if gold_labs
            else math.nan
        ),
        tie_rate=tie_rate([lab.choice for lab in labs]),
        left_rate=position_bias_rate(_picked_left(lab) for lab in labs),
    )


def compute_stats(db: Session, round_name: str | None = None) -> PoolStats:
    """Statistics over all labels, or over one round's."""
    query = select(Label, Pair.gold).join(Pair, Pair.id == Label.pair_id).order_by(Label.id)
    if round_name is not None:
        query = query.join(Round, Round.id == Pair.round_id).where(Round.name == round_name)
    rows = db.execute(query).all()
    labels = [lab for lab, _ in rows]
    gold = {lab.pair_id: g for lab, g in rows if g is not None}
    users = {u.id: u for u in db.scalars(select(User)).all()}
    by_user: dict[int, list[Label]] = defaultdict(list)
    for lab in labels:
        by_user[lab.user_id].append(lab)
    by_unit = ratings_by_unit((lab.pair_id, users[lab.user_id].name, lab.choice) for lab in labels)
    units = [list(r.values()) for r in by_unit.values()]
    hours = Counter(lab.created_at.strftime("%Y-%m-%d %H:00") for lab in labels)
    return PoolStats(
        labels=len(labels),
        pairs_labelled=len(by_unit),
        pairs_multi=sum(len(u) >= 2 for u in units),
        pairwise_agreement=pairwise_agreement(units),
        fleiss_kappa=fleiss_kappa(units),
        krippendorff_alpha=krippendorff_alpha(units, level="nominal"),
        position_bias_rate=position_bias_rate(_picked_left(lab) for lab in labels),
        tie_rate=tie_rate([lab.choice for lab in labels]),
        both_bad_rate=tie_rate([lab.choice for lab in labels], tie_values=("both_bad",)),
        labellers=sorted(
            (_labeller(users[uid], labs, gold) for uid, labs in by_user.items()), key=lambda s: s.name
        ),
        cohen=sorted((str(a), str(b), k, n) for (a, b), (k, n) in cohen_kappa_pairs(by_unit).items()),
        per_hour=sorted(hours.items())[-24:],
    )


def overview(db: Session) -> list[dict]:
    """Per round: pairs, gold items, slots wanted (excluding gold), labels stored, active flag."""
    out = []
    for rnd in db.scalars(select(Round).order_by(Round.id)).all():
        pairs = db.execute(
            select(func.count(Pair.id), func.count(Pair.gold), func.coalesce(func.sum(Pair.target), 0)).where(
                Pair.round_id == rnd.id
            )
        ).one()
        n_labels = db.scalar(
            select(func.count(Label.id)).join(Pair, Pair.id == Label.pair_id).where(Pair.round_id == rnd.id)
        )
        out.append(
            {"id": rnd.id, "name": rnd.name, "active": rnd.active, "pairs": pairs[0], "gold": pairs[1],
             "wanted": int(pairs[2]), "labels": n_labels}
        )
    return out
