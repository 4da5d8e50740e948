"""The FastAPI application: routes, static files, error pages and security headers."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from alignlab.labelling import routes_admin, routes_auth, routes_label
from alignlab.labelling.auth import LoginThrottle, make_hasher
from alignlab.labelling.db import open_database, read_only
from alignlab.labelling.errors import LabellingError, NotAuthenticated
from alignlab.labelling.models import utcnow
from alignlab.labelling.settings import LabellingSettings
from alignlab.labelling.web import HERE, AppState, make_templates, optional_auth, render

SECURITY_HEADERS = {
    # Scripts and styles only from our own /static: injected markup cannot run code.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def _error_page(request: Request, status_code: int, message: str) -> Response:
    try:
        # Never query the database on the event loop: a wait there would stall every request.
        auth = await run_in_threadpool(optional_auth, request)
    except Exception:  # the error page must render even when the database is the problem
        auth = None
    return render(request, "error.html", auth, status_code=status_code, status=status_code, message=message)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(LabellingError)
    async def _labelling_error(request: Request, err: LabellingError) -> Response:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if isinstance(err, NotAuthenticated) and wants_page:
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return await _error_page(request, err.status_code, str(err))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> Response:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"][1:]) or "request"
        return await _error_page(request, 422, f"{where}: {first['msg']}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> Response:
        return await _error_page(request, err.status_code, str(err.detail))

    @app.middleware("http")
    async def _headers(request: Request, call_next):  # noqa: ANN202
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if request.url.path != "/login" and not request.url.path.startswith("/static"):
            response.headers.setdefault("Cache-Control", "no-store")  # pages hold private data
        return response


def create_app(settings: LabellingSettings, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """Build the labelling app on the database named by `settings.db` (created and migrated).

    `clock` gives the naive-UTC time the labelling queue uses (assignment leases, label times);
    tests pass a fake one to move time on without waiting.
    """
    app = FastAPI(title="alignlab labelling", docs_url=None, redoc_url=None, openapi_url=None)
    sessions = open_database(settings.db)
    app.state.labelling = AppState(
        settings=settings,
        sessions=sessions,
        readers=read_only(sessions),
        hasher=make_hasher(settings),
        throttle=LoginThrottle(settings.login_max_failures, settings.login_window_s),
        rng=random.Random(settings.seed) if settings.seed is not None else random.SystemRandom(),
        templates=make_templates(),
        clock=clock,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (routes_auth, routes_label, routes_admin):
        app.include_router(module.router)
    _install_handlers(app)
    return app
