"""What every route shares: app state, database sessions, who is asking, CSRF checks, rendering."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData
from starlette.responses import Response

from alignlab.labelling.auth import Auth, LoginThrottle, csrf_matches, session_auth
from alignlab.labelling.errors import Forbidden, NotAuthenticated
from alignlab.labelling.models import utcnow
from alignlab.labelling.settings import LabellingSettings

SESSION_COOKIE = "alignlab_session"
LOGIN_CSRF_COOKIE = "alignlab_login_csrf"
HERE = Path(__file__).resolve().parent


def _fmt(value: Any, digits: int = 3) -> str:
    """Numbers for tables: fixed digits, an en dash for missing (nan / None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.0f}%"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["fmt"] = _fmt
    templates.env.filters["pct"] = _pct
    return templates


@dataclass
class AppState:
    """Long-lived objects of one server process, kept on `app.state.labelling`."""

    settings: LabellingSettings
    sessions: sessionmaker[Session]
    readers: sessionmaker[Session]  # read-only: a snapshot that never waits for the write lock
    hasher: PasswordHasher
    throttle: LoginThrottle
    rng: random.Random
    templates: Jinja2Templates
    clock: Callable[[], datetime] = utcnow  # naive UTC "now" of the queue: leases, label times


@dataclass(frozen=True)
class Posted:
    """An authenticated, CSRF-checked form submission."""

    auth: Auth
    form: FormData


def app_state(request: Request) -> AppState:
    return request.app.state.labelling


def get_db(request: Request) -> Iterator[Session]:
    with app_state(request).sessions() as db:
        yield db


def read_db(request: Request) -> Iterator[Session]:
    with app_state(request).readers() as db:
        yield db


def optional_auth(request: Request) -> Auth | None:
    with app_state(request).readers() as db:
        return session_auth(db, request.cookies.get(SESSION_COOKIE))


def current_auth(request: Request) -> Auth:
    auth = optional_auth(request)
    if auth is None:
        raise NotAuthenticated("log in first")
    return auth


def admin_auth(auth: Auth = Depends(current_auth)) -> Auth:
    if not auth.is_admin:
        raise Forbidden("this page is for admins only")
    return auth


async def _checked(request: Request, auth: Auth) -> Posted:
    form = await request.form()
    token = form.get("csrf_token") or request.headers.get("x-csrf-token")
    if not csrf_matches(auth.csrf_token, token if isinstance(token, str) else None):
        raise Forbidden("missing or wrong CSRF token; reload the page and submit again")
    return Posted(auth, form)


async def posted(request: Request, auth: Auth = Depends(current_auth)) -> Posted:
    """A form from a logged-in user, with the session's CSRF token."""
    return await _checked(request, auth)


async def admin_posted(request: Request, auth: Auth = Depends(admin_auth)) -> Posted:
    """A form from an admin, with the session's CSRF token."""
    return await _checked(request, auth)


def render(request: Request, name: str, auth: Auth | None, status_code: int = 200,
           **context: Any) -> Response:
    context.update(auth=auth, csrf=auth.csrf_token if auth else "")
    return app_state(request).templates.TemplateResponse(request, name, context, status_code=status_code)


def field(form: FormData, key: str) -> str:
    """A text field of a form ('' when missing; uploads are not text)."""
    value = form.get(key)
    return value if isinstance(value, str) else ""
