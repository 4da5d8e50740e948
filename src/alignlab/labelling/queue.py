"""Each labeller's queue: hand out the next pair, store a label exactly once, skip.

Assignment rules:
- a labeller works on one pending pair at a time; reloading the page shows the same one;
- pairs come from active rounds, oldest round first, in a fixed pseudo-random order inside a
  round (so gold items are interleaved with the rest);
- a pair goes to at most `target` labellers (gold items: every labeller), never twice to one;
- the left/right order is drawn at random per assignment and stored (counterbalancing);
- a skip gives the slot back to the pool; the same labeller never gets that pair again;
- with a lease (`LabellingSettings.assignment_timeout_minutes`), a pending assignment older than
  the lease is released when someone next asks for a pair: its status becomes `expired` and its
  slot goes back to the pool. Its labeller may still submit: the label is stored if the pair still
  has a free slot (it takes that slot again), else 409 and nothing changes. A labeller who reloads
  their own lapsed assignment before anyone released it keeps it, and its lease restarts.

Every status change is a conditional UPDATE on the status that was read, so a slot is given back
or taken again exactly once even when two requests race on PostgreSQL.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists, func, select, update
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


def _change_status(
    db: Session, assignment: Assignment, status: str, *also: ColumnElement[bool], **values: object
) -> bool:
    """Move `assignment` to `status` unless another request changed it since it was read
    (or a condition in `also` no longer holds)."""
    moved = db.execute(
        update(Assignment)
        .where(Assignment.id == assignment.id, Assignment.status == assignment.status, *also)
        .values(status=status, **values)
    )
    return moved.rowcount == 1


def _take_slot(db: Session, pair_id: int) -> bool:
    """Count one more labeller on the pair if it has a free slot (atomic: `assigned < target`)."""
    taken = db.execute(
        update(Pair)
        .where(Pair.id == pair_id, Pair.target.is_(None) | (Pair.assigned < Pair.target))
        .values(assigned=Pair.assigned + 1)
    )
    return taken.rowcount == 1


def _give_slot_back(db: Session, pair_id: int) -> None:
    db.execute(update(Pair).where(Pair.id == pair_id).values(assigned=Pair.assigned - 1))


def release_lapsed(db: Session, cutoff: datetime) -> int:
    """Expire every pending assignment handed out before `cutoff`, freeing its slot; return how many.

    Gold items are left alone: every labeller gets them anyway, so expiring one would free nothing.
    """
    lapsed = db.scalars(
        select(Assignment)
        .join(Pair, Pair.id == Assignment.pair_id)
        .where(Assignment.status == "pending", Assignment.created_at < cutoff, Pair.target.is_not(None))
    ).all()
    released = 0
    for assignment in lapsed:
        # Re-check the age: the labeller may have reloaded the page and restarted the lease meanwhile.
        if _change_status(db, assignment, "expired", Assignment.created_at < cutoff):
            _give_slot_back(db, assignment.pair_id)
            released += 1
    return released


def _kept_assignment(db: Session, user_id: int, now: datetime, cutoff: datetime | None) -> Assignment | None:
    """The labeller's pending assignment; a lapsed one nobody released yet restarts its lease (they
    are back)."""
    current = pending_assignment(db, user_id)
    if current is None or cutoff is None or current.created_at >= cutoff:
        return current
    renewed = db.execute(
        update(Assignment)
        .where(Assignment.id == current.id, Assignment.status == "pending")
        .values(created_at=now)
    )
    return current if renewed.rowcount == 1 else None


def next_assignment(
    db: Session,
    user_id: int,
    rng: random.Random,
    now: datetime | None = None,
    lease: timedelta | None = None,
) -> Assignment | None:
    """The labeller's pending assignment, or a new one; None when nothing is left for them.

    `now` defaults to the wall clock (UTC); `lease` None holds assignments forever. Other
    labellers' assignments older than the lease are released first, so their pairs can be offered.
    The slot is taken with a conditional UPDATE (`assigned < target`): of two concurrent requests
    for the last slot only one changes a row, on SQLite and PostgreSQL alike.
    """
    now = now or utcnow()
    cutoff = now - lease if lease else None
    current = _kept_assignment(db, user_id, now, cutoff)
    if current is not None:
        return current
    if cutoff is not None:
        release_lapsed(db, cutoff)
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
        if not _take_slot(db, pair_id):
            continue  # someone else took the last slot between the SELECT and the UPDATE
        assignment = Assignment(
            pair_id=pair_id, user_id=user_id, swapped=bool(rng.getrandbits(1)), status="pending",
            created_at=now
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


def _complete(db: Session, assignment: Assignment, now: datetime) -> None:
    """Mark the assignment done; an expired one first takes a free slot of its pair again (409 if none)."""
    if assignment.status == "expired" and not _take_slot(db, assignment.pair_id):
        raise Conflict(
            f"assignment {assignment.id} expired and its pair has since gone to other labellers; "
            "your label was not stored. Reload the page for the next pair"
        )
    if not _change_status(db, assignment, "done", completed_at=now):
        raise Conflict(f"assignment {assignment.id} changed while you were labelling it; reload the page")


def submit_label(
    db: Session, auth: Auth, assignment_id: int, inp: LabelInput, now: datetime | None = None
) -> Label:
    """Store the label of one of the labeller's own assignments (once: 409 the second time).

    A pending assignment is always accepted; an expired one (its lease ran out) only while its
    pair still has a free slot, else 409 with nothing stored.
    """
    assignment = owned_assignment(db, auth, assignment_id)
    if assignment.status not in ("pending", "expired"):
        raise Conflict(
            f"assignment {assignment_id} is already {assignment.status}; it cannot be labelled again"
        )
    _validate(inp, db)
    now = now or utcnow()
    _complete(db, assignment, now)
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
    db.add(label)
    db.flush()
    return label


def skip(db: Session, auth: Auth, assignment_id: int, now: datetime | None = None) -> None:
    """Give a pending pair back to the pool; this labeller will not be offered it again.

    Skipping an expired assignment only records the skip: its slot was already given back.
    """
    assignment = owned_assignment(db, auth, assignment_id)
    if assignment.status not in ("pending", "expired"):
        raise Conflict(f"assignment {assignment_id} is already {assignment.status}; it cannot be skipped")
    holds_slot = assignment.status == "pending"
    if not _change_status(db, assignment, "skipped", completed_at=now or utcnow()):
        raise Conflict(f"assignment {assignment_id} changed meanwhile; reload the page")
    if holds_slot:
        _give_slot_back(db, assignment.pair_id)


def current_guideline(db: Session) -> Guideline | None:
    return db.scalar(select(Guideline).order_by(Guideline.version.desc()).limit(1))


def labelled_count(db: Session, user_id: int) -> int:
    return db.scalar(select(func.count()).select_from(Label).where(Label.user_id == user_id)) or 0
