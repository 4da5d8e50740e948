"""Each labeller's queue: hand out the next pair, store a label exactly once, skip.

Assignment rules:
- a labeller works on one pending pair at a time; reloading the page shows the same one;
- pairs come from active rounds, oldest round first, in a fixed pseudo-random order inside a
  round (so gold items are interleaved with the rest);
- a pair goes to at most `target` labellers (gold items: every labeller), never twice to one;
- the left/right order is drawn at random per assignment and stored (counterbalancing);
- a skip gives the slot back to the pool; the same labeller never gets that pair again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from alignlab.labelling.auth import Auth
from alignlab.labelling.errors import Conflict, Forbidden, Invalid, NotFound
from alignlab.labelling.models import REASONS, Assignment, Guideline, Label, Pair, Round, utcnow

SIDES = ("left", "right")
MAX_RATIONALE, MAX_REWRITE = 5_000, 20_000
# Longest time on task counted for one label; a labeller who leaves the page open does not
# drag their labels-per-hour down.
MAX_SECONDS_PER_LABEL = 600.0


@dataclass(frozen=True)
class LabelInput:
    """A submitted labelling form, in the labeller's terms (left / right as shown)."""

    choice: str  # left | right | tie | both_bad
    confidence: int | None
    reasons: tuple[str, ...] = ()
    rationale: str = ""
    rewrite: str = ""
    guideline_version: int | None = None


def pending_assignment(db: Session, user_id: int) -> Assignment | None:
    return db.scalar(
        select(Assignment)
        .where(Assignment.user_id == user_id, Assignment.status == "pending")
        .order_by(Assignment.id)
        .limit(1)
    )


def next_assignment(db: Session, user_id: int, rng: random.Random) -> Assignment | None:
    """The labeller's pending assignment, or a new one; None when nothing is left for them.

    The slot is taken with a conditional UPDATE (`assigned < target`): of two concurrent requests
    for the last slot only one changes a row, on SQLite and PostgreSQL alike.
    """
    current = pending_assignment(db, user_id)
    if current is not None:
        return current
    already = exists().where(Assignment.pair_id == Pair.id, Assignment.user_id == user_id)
    open_slot = Pair.target.is_(None) | (Pair.assigned < Pair.target)
    candidates = db.scalars(
        select(Pair.id)
        .join(Round, Round.id == Pair.round_id)
        .where(Round.active.is_(True), open_slot, ~already)
        .order_by(Round.id, Pair.order_key)
        .limit(20)
    ).all()
    for pair_id in candidates:
        taken = db.execute(
            update(Pair)
            .where(Pair.id == pair_id, Pair.target.is_(None) | (Pair.assigned < Pair.target))
            .values(assigned=Pair.assigned + 1)
        )
        if taken.rowcount != 1:
            continue  # someone else took the last slot between the SELECT and the UPDATE
        assignment = Assignment(
            pair_id=pair_id, user_id=user_id, swapped=bool(rng.getrandbits(1)), status="pending"
        )
        db.add(assignment)
        db.flush()
        return assignment
    return None


def owned_assignment(db: Session, auth: Auth, assignment_id: int) -> Assignment:
    """The assignment if it is in this labeller's queue; 404 if it does not exist, 403 if not theirs."""
    assignment = db.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound(f"assignment {assignment_id} does not exist")
    if assignment.user_id != auth.user_id:
        raise Forbidden(f"assignment {assignment_id} is not in your queue")
    return assignment


def _validate(inp: LabelInput, db: Session) -> None:
    if inp.choice not in (*SIDES, "tie", "both_bad"):
        raise Invalid("choice: pick left (A), right (B), tie or both bad")
    if inp.confidence not in (1, 2, 3, 4):
        raise Invalid("confidence: pick 1 (guess) to 4 (certain)")
    bad = [r for r in inp.reasons if r not in REASONS]
    if bad:
        raise Invalid(f"reasons: unknown {', '.join(bad)}; use {', '.join(REASONS)}")
    if len(inp.rationale) > MAX_RATIONALE or len(inp.rewrite) > MAX_REWRITE:
        raise Invalid(f"rationale or rewrite too long (limits {MAX_RATIONALE} and {MAX_REWRITE} characters)")
    if inp.guideline_version is not None and db.get(Guideline, inp.guideline_version) is None:
        raise Invalid(f"guideline_version: version {inp.guideline_version} does not exist")


def canonical_choice(choice: str, swapped: bool) -> str:
    """Map a shown side to the import order: left is response b when the pair was swapped."""
    if choice == "left":
        return "b" if swapped else "a"
    if choice == "right":
        return "a" if swapped else "b"
    return choice


def submit_label(db: Session, auth: Auth, assignment_id: int, inp: LabelInput) -> Label:
    """Store the label of one of the labeller's own pending assignments (once: 409 the second time)."""
    assignment = owned_assignment(db, auth, assignment_id)
    if assignment.status != "pending":
        raise Conflict(f"assignment {assignment_id} is already {assignment.status}; it cannot be labelled again")
    _validate(inp, db)
    now = utcnow()
    seconds = min((now - assignment.created_at).total_seconds(), MAX_SECONDS_PER_LABEL)
    label = Label(
        assignment_id=assignment.id,
        pair_id=assignment.pair_id,
        user_id=auth.user_id,
        choice=canonical_choice(inp.choice, assignment.swapped),
        shown_left="b" if assignment.swapped else "a",
        confidence=inp.confidence,
        reasons=list(dict.fromkeys(inp.reasons)),
        rationale=inp.rationale.strip() or None,
        rewrite=inp.rewrite.strip() or None,
        guideline_version=inp.guideline_version,
        seconds=max(seconds, 0.0),
        created_at=now,
    )
    assignment.status, assignment.completed_at = "done", now
    db.add(label)
    db.flush()
    return label


def skip(db: Session, auth: Auth, assignment_id: int) -> None:
    """Give a pending pair back to the pool; this labeller will not be offered it again."""
    assignment = owned_assignment(db, auth, assignment_id)
    if assignment.status != "pending":
        raise Conflict(f"assignment {assignment_id} is already {assignment.status}; it cannot be skipped")
    assignment.status, assignment.completed_at = "skipped", utcnow()
    db.execute(update(Pair).where(Pair.id == assignment.pair_id).values(assigned=Pair.assigned - 1))


def current_guideline(db: Session) -> Guideline | None:
    return db.scalar(select(Guideline).order_by(Guideline.version.desc()).limit(1))


def labelled_count(db: Session, user_id: int) -> int:
    return db.scalar(select(func.count()).select_from(Label).where(Label.user_id == user_id)) or 0
