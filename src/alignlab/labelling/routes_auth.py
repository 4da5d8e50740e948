"""Log in, log out, and the front door that sends each role to its page."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from alignlab.labelling.auth import Auth, authenticate, csrf_matches, end_session, start_session
from alignlab.labelling.errors import Forbidden, TooManyAttempts
from alignlab.labelling.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    AppState,
    Posted,
    app_state,
    field,
    optional_auth,
    posted,
    render,
)

router = APIRouter()


def _home_for(auth: Auth) -> str:
    return "/admin" if auth.is_admin else "/label"


def _safe_next(target: str) -> str | None:
    """Only same-site paths: an open redirect would let a phishing link bounce through the app."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@router.get("/")
def home(auth: Auth | None = Depends(optional_auth)) -> Response:
    return RedirectResponse(_home_for(auth) if auth else "/login", status_code=303)


def _login_page(request: Request, token: str, next_url: str, error: str = "",
                status_code: int = 200) -> Response:
    resp = render(
        request, "login.html", None, status_code=status_code, login_csrf=token, next_url=next_url, error=error
    )
    # Login CSRF: the form must echo this cookie (double submit), so another site cannot log a
    # victim into an account of the attacker's choosing.
    resp.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
        secure=app_state(request).settings.secure_cookies
    )
    return resp


@router.get("/login")
def login_form(request: Request, next: str = "", auth: Auth | None = Depends(optional_auth)) -> Response:
    if auth is not None:
        return RedirectResponse(_home_for(auth), status_code=303)
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    return _login_page(request, token, next)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    name, password, next_url = field(form, "name").strip(), field(form, "password"), field(form, "next")
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not cookie_token or not csrf_matches(cookie_token, field(form, "csrf_token")):
        raise Forbidden("missing or wrong CSRF token on the login form; reload the page and try again")
    state = app_state(request)
    client = request.client.host if request.client else "unknown"
    try:
        state.throttle.check(client, name)
    except TooManyAttempts as err:
        resp = _login_page(request, cookie_token, next_url, str(err), status_code=429)
        resp.headers["Retry-After"] = str(err.retry_after_s)
        return resp
    # Hashing is deliberately slow: keep it off the event loop.
    token = await run_in_threadpool(_try_login, state, name, password)
    if token is None:
        state.throttle.failed(client, name)
        return _login_page(request, cookie_token, next_url, "Wrong user name or password.", status_code=401)
    state.throttle.succeeded(client, name)
    target = _safe_next(next_url) or "/"
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(state.settings.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=state.settings.secure_cookies,
    )
    resp.delete_cookie(LOGIN_CSRF_COOKIE)
    return resp


def _try_login(state: AppState, name: str, password: str) -> str | None:
    with state.sessions() as db:
        user = authenticate(db, state.hasher, name, password)
        if user is None:
            db.rollback()
            return None
        token = start_session(db, user, state.settings.session_hours)
        db.commit()
        return token


@router.post("/logout")
def logout(request: Request, form: Posted = Depends(posted)) -> Response:
    with app_state(request).sessions() as db:
        end_session(db, request.cookies.get(SESSION_COOKIE))
        db.commit()
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp
