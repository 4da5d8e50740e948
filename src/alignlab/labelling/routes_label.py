"""The labeller's pages: the next pair side by side, submit a label, skip."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response

from alignlab.labelling import queue
from alignlab.labelling.auth import Auth
from alignlab.labelling.errors import Conflict, Invalid
from alignlab.labelling.models import REASONS
from alignlab.labelling.web import Posted, app_state, current_auth, field, get_db, posted, render

router = APIRouter()

CONFIDENCE_LEVELS = {1: "guess", 2: "unsure", 3: "fairly sure", 4: "certain"}


@router.get("/label")
def label_page(request: Request, auth: Auth = Depends(current_auth),
               db: Session = Depends(get_db)) -> Response:
    state = app_state(request)
    try:
        assignment = queue.next_assignment(
            db, auth.user_id, state.rng, now=state.clock(), lease=state.settings.assignment_lease
        )
        db.commit()
    except IntegrityError:
        # A second tab of the same labeller took a pair at the same instant (PostgreSQL): use theirs.
        db.rollback()
        assignment = queue.pending_assignment(db, auth.user_id)
    done = queue.labelled_count(db, auth.user_id)
    if assignment is None:
        return render(request, "done.html", auth, done=done)
    pair = assignment.pair
    left, right = (pair.response_b, pair.response_a) if assignment.swapped else (pair.response_a,
                                                                                 pair.response_b)
    guideline = queue.current_guideline(db)
    return render(
        request,
        "label.html",
        auth,
        assignment=assignment,
        round_name=pair.round.name,
        prompt=pair.prompt,
        left=left,
        right=right,
        guideline=guideline,
        done=done,
        reasons=REASONS,
        levels=CONFIDENCE_LEVELS,
    )


def _label_input(form: Posted) -> queue.LabelInput:
    raw_conf, raw_version = field(form.form, "confidence"), field(form.form, "guideline_version")
    try:
        confidence = int(raw_conf) if raw_conf else None
        version = int(raw_version) if raw_version else None
    except ValueError:
        raise Invalid("confidence and guideline_version must be whole numbers") from None
    return queue.LabelInput(
        choice=field(form.form, "choice"),
        confidence=confidence,
        reasons=tuple(r for r in form.form.getlist("reasons") if isinstance(r, str)),
        rationale=field(form.form, "rationale"),
        rewrite=field(form.form, "rewrite"),
        guideline_version=version,
    )


@router.post("/label/{assignment_id}")
def submit(
    request: Request, assignment_id: int, form: Posted = Depends(posted), db: Session = Depends(get_db)
) -> Response:
    inp = _label_input(form)
    try:
        queue.submit_label(db, form.auth, assignment_id, inp, now=app_state(request).clock())
        db.commit()
    except IntegrityError:
        # Two submissions of one assignment raced past the status check (possible on PostgreSQL):
        # the unique constraint kept the first; this one is a double submission.
        db.rollback()
        raise Conflict(f"assignment {assignment_id} is already labelled") from None
    return RedirectResponse("/label", status_code=303)


@router.post("/label/{assignment_id}/skip")
def skip(
    request: Request, assignment_id: int, form: Posted = Depends(posted), db: Session = Depends(get_db)
) -> Response:
    queue.skip(db, form.auth, assignment_id, now=app_state(request).clock())
    db.commit()
    return RedirectResponse("/label", status_code=303)
