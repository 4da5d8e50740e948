"""Admin pages: overview and rounds, import, export, statistics, accounts, guidelines."""

from __future__ import annotations

import io

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.responses import Response

from alignlab.errors import DataError
from alignlab.labelling import export, importer, stats
from alignlab.labelling.auth import Auth, create_user, set_active
from alignlab.labelling.errors import Conflict, Invalid, LabellingError, NotFound
from alignlab.labelling.models import ROLES, Guideline, Round, User
from alignlab.labelling.queue import current_guideline
from alignlab.labelling.web import Posted, admin_auth, admin_posted, app_state, field, get_db, read_db, render

router = APIRouter(prefix="/admin")


def _round_names(db: Session) -> list[str]:
    return list(db.scalars(select(Round.name).order_by(Round.id)).all())


@router.get("")
def overview(request: Request, auth: Auth = Depends(admin_auth), db: Session = Depends(read_db)) -> Response:
    return render(request, "admin_home.html", auth, rounds=stats.overview(db))


@router.post("/rounds/{round_id}/active")
def set_round_active(round_id: int, form: Posted = Depends(admin_posted),
                     db: Session = Depends(get_db)) -> Response:
    rnd = db.get(Round, round_id)
    if rnd is None:
        raise NotFound(f"round {round_id} does not exist")
    rnd.active = field(form.form, "active") == "1"
    db.commit()
    return RedirectResponse("/admin", status_code=303)


@router.get("/import")
def import_form(request: Request, auth: Auth = Depends(admin_auth),
                db: Session = Depends(read_db)) -> Response:
    return render(request, "admin_import.html", auth, rounds=_round_names(db), error="", result=None)


def _number(form: Posted, key: str, kind: type, default: float) -> float:
    raw = field(form.form, key).strip()
    try:
        return kind(raw) if raw else default
    except ValueError:
        raise Invalid(f"{key}: expected a number, got {raw!r}") from None


@router.post("/import")
def import_upload(request: Request, form: Posted = Depends(admin_posted),
                  db: Session = Depends(get_db)) -> Response:
    upload = form.form.get("file")
    round_name = field(form.form, "round").strip() or "default"
    error, result = "", None
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("file: choose a JSONL file of pairs to import")
        name = upload.filename
        try:
            text = upload.file.read().decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{name}: not UTF-8 text ({err.reason})") from None
        parsed = importer.parse_lines(io.StringIO(text), name)
        result = importer.import_pairs(
            db, parsed, name, round_name,
            labels_per_pair=int(_number(form, "labels_per_pair", int, 1)),
            overlap=_number(form, "overlap", float, 0.0),
            overlap_labels=int(_number(form, "overlap_labels", int, 3)),
        )
        db.commit()
    except (DataError, LabellingError) as err:
        db.rollback()
        error = str(err)
    status = 400 if error else 200
    return render(
        request, "admin_import.html", form.auth, status_code=status, rounds=_round_names(db), error=error,
        result=result
    )


@router.get("/export")
def export_page(request: Request, auth: Auth = Depends(admin_auth),
                db: Session = Depends(read_db)) -> Response:
    return render(request, "admin_export.html", auth, rounds=_round_names(db), aggregates=export.AGGREGATES)


@router.get("/export.jsonl")
def export_download(
    aggregate: str = "none", round: str = "", auth: Auth = Depends(admin_auth), db: Session = Depends(read_db)
) -> Response:
    text = export.export_text(db, aggregate, round or None)
    filename = f"labels-{aggregate}{'-' + round if round else ''}.jsonl"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
    return Response(
        text,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )


@router.get("/stats")
def stats_page(
    request: Request, round: str = "", auth: Auth = Depends(admin_auth), db: Session = Depends(read_db)
) -> Response:
    pool = stats.compute_stats(db, round or None)
    return render(request, "admin_stats.html", auth, pool=pool, rounds=_round_names(db), round=round)


def _users_page(request: Request, auth: Auth, db: Session, error: str = "",
                status_code: int = 200) -> Response:
    users = db.scalars(select(User).order_by(User.name)).all()
    return render(request, "admin_users.html", auth, status_code=status_code, users=users, roles=ROLES,
                  error=error)


@router.get("/users")
def users(request: Request, auth: Auth = Depends(admin_auth), db: Session = Depends(read_db)) -> Response:
    return _users_page(request, auth, db)


@router.post("/users")
def add_user(request: Request, form: Posted = Depends(admin_posted),
             db: Session = Depends(get_db)) -> Response:
    f = form.form
    try:
        create_user(db, app_state(request).hasher, field(f, "name").strip(), field(f, "role"),
                    field(f, "password"))
        db.commit()
    except LabellingError as err:
        db.rollback()
        return _users_page(request, form.auth, db, str(err), status_code=err.status_code)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{user_id}/active")
def user_active(user_id: int, form: Posted = Depends(admin_posted),
                db: Session = Depends(get_db)) -> Response:
    if user_id == form.auth.user_id:
        raise Invalid("you cannot disable your own account")
    set_active(db, user_id, field(form.form, "active") == "1")
    db.commit()
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/guidelines")
def guidelines(request: Request, auth: Auth = Depends(admin_auth),
               db: Session = Depends(read_db)) -> Response:
    history = db.scalars(select(Guideline).order_by(Guideline.version.desc())).all()
    return render(request, "admin_guidelines.html", auth, current=current_guideline(db), history=history)


@router.post("/guidelines")
def new_guidelines(form: Posted = Depends(admin_posted), db: Session = Depends(get_db)) -> Response:
    text = field(form.form, "text").strip()
    if not text:
        raise Invalid("text: the guidelines cannot be empty")
    latest = current_guideline(db)
    db.add(Guideline(version=(latest.version + 1) if latest else 1, text=text, author_id=form.auth.user_id))
    try:
        db.commit()
    except IntegrityError:
        # Two admins published at the same instant (possible on PostgreSQL): keep the first.
        db.rollback()
        raise Conflict("someone else published a version just now; reload and publish again") from None
    return RedirectResponse("/admin/guidelines", status_code=303)
