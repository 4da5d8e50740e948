"""Accounts and request security: sessions, CSRF, roles, login throttling, unauthenticated requests."""

from __future__ import annotations

from labelling_support import PASSWORD, Lab, Page, make_pairs
from sqlalchemy import func, select

from alignlab.labelling.auth import make_hasher
from alignlab.labelling.models import Guideline, LoginSession, Pair, User
from alignlab.labelling.settings import LabellingSettings


def _count(lab, model) -> int:
    with lab.db() as db:
        return db.scalar(select(func.count()).select_from(model))


def test_login_sets_httponly_samesite_cookie_and_routes_by_role(lab):
    lab.add_user("ann")
    lab.add_user("root", "admin")
    ann = lab.client()
    resp = lab.login(ann, "ann")
    assert resp.status_code == 303 and resp.headers["location"] == "/"
    cookie = next(c for c in resp.headers.get_list("set-cookie") if c.startswith("alignlab_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # only with secure_cookies (behind HTTPS)
    assert ann.get("/").headers["location"] == "/label"
    assert lab.client("root").get("/").headers["location"] == "/admin"
    page = ann.get("/label")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    with lab.db() as db:
        stored = db.scalar(select(User.password_hash).where(User.name == "ann"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_production_hashing_defaults_are_not_the_cheap_test_ones():
    hasher = make_hasher(LabellingSettings(db="sqlite://"))
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (3, 65536, 4)


def test_wrong_password_is_401_and_repeated_failures_are_throttled(tmp_path):
    lab = Lab(tmp_path, login_max_failures=3, login_window_s=60)
    now = [1000.0]
    lab.state.throttle.clock = lambda: now[0]
    lab.add_user("ann")
    client = lab.client()
    for _ in range(3):
        resp = lab.login(client, "ann", "wrong password")
        assert resp.status_code == 401 and "Wrong user name or password" in resp.text
    # Throttled now, even with the right password; nothing is checked, no session is made.
    resp = lab.login(client, "ann")
    assert resp.status_code == 429 and resp.headers["retry-after"] == "61"
    assert _count(lab, LoginSession) == 0
    now[0] += 61
    assert lab.login(client, "ann").status_code == 303
    assert _count(lab, LoginSession) == 1


def test_login_form_without_its_csrf_token_is_403(lab):
    lab.add_user("ann")
    client = lab.client()
    client.get("/login")  # sets the login CSRF cookie
    resp = client.post("/login", data={"name": "ann", "password": PASSWORD})
    assert resp.status_code == 403
    resp = client.post("/login", data={"name": "ann", "password": PASSWORD, "csrf_token": "forged"})
    assert resp.status_code == 403
    assert _count(lab, LoginSession) == 0


def test_unauthenticated_requests_get_401_or_the_login_page_and_change_nothing(lab):
    lab.import_pairs(make_pairs(2))
    client = lab.client()
    browser = client.get("/label", headers={"accept": "text/html"})
    assert browser.status_code == 303 and browser.headers["location"] == "/login?next=/label"
    for url in ("/label", "/admin", "/admin/stats", "/admin/export.jsonl"):
        assert client.get(url).status_code == 401, url
    assert client.post("/label/1", data={"choice": "left", "confidence": "3"}).status_code == 401
    assert client.post("/admin/guidelines", data={"text": "x"}).status_code == 401
    assert lab.assignments() == [] and _count(lab, Guideline) == 0
    # A forged or stale cookie is no better than none.
    client.cookies.set("alignlab_session", "not-a-session")
    assert client.get("/label").status_code == 401


def test_labeller_calling_admin_routes_gets_403_and_changes_nothing(lab):
    lab.add_user("ann")
    ann = lab.client("ann")
    csrf = Page(ann.get("/label").text).csrf
    for url in ("/admin", "/admin/stats", "/admin/users", "/admin/import", "/admin/export.jsonl",
                "/admin/guidelines"):
        assert ann.get(url).status_code == 403, url
    posts = {
        "/admin/users": {"name": "mallory", "role": "admin", "password": "12345678"},
        "/admin/guidelines": {"text": "anything goes"},
        "/admin/rounds/1/active": {"active": "0"},
    }
    for url, data in posts.items():
        assert ann.post(url, data={**data, "csrf_token": csrf}).status_code == 403, url
    upload = ann.post(
        "/admin/import",
        data={"csrf_token": csrf},
        files={"file": ("p.jsonl", b'{"prompt": "q", "chosen": "a", "rejected": "b"}')},
    )
    assert upload.status_code == 403
    assert _count(lab, User) == 1 and _count(lab, Guideline) == 0 and _count(lab, Pair) == 0


def test_forms_without_the_session_csrf_token_are_403(lab):
    lab.import_pairs(make_pairs(2))
    lab.add_user("ann")
    lab.add_user("bob")
    lab.add_user("root", "admin")
    ann, bob = lab.client("ann"), lab.client("bob")
    page = Page(ann.get("/label").text)
    bob_csrf = Page(bob.get("/label").text).csrf
    form = {"choice": "left", "confidence": "4"}
    for token in (None, "", "forged", bob_csrf):  # bob's token is valid, but for bob's session
        data = form if token is None else {**form, "csrf_token": token}
        assert ann.post(f"/label/{page.assignment_id}", data=data).status_code == 403
        assert ann.post(f"/label/{page.assignment_id}/skip", data=data).status_code == 403
    assert lab.labels() == []
    assert [a.status for a in lab.assignments()] == ["pending", "pending"]
    # The CSRF header works as well as the form field (for scripts), and only with the right value.
    ok = ann.post(f"/label/{page.assignment_id}", data=form, headers={"x-csrf-token": page.csrf})
    assert ok.status_code == 303 and len(lab.labels()) == 1
    root = lab.client("root")
    assert root.post("/admin/users", data={"name": "eve", "role": "labeller",
                                           "password": "12345678"}).status_code == 403
    assert _count(lab, User) == 3


def test_logout_and_disabling_end_sessions(lab):
    lab.add_user("ann")
    lab.add_user("bob")
    lab.add_user("root", "admin")
    ann = lab.client("ann")
    csrf = Page(ann.get("/label").text).csrf
    assert ann.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert ann.get("/label").status_code == 401
    bob, root = lab.client("bob"), lab.client("root")
    assert bob.get("/label").status_code == 200
    with lab.db() as db:
        bob_id = db.scalar(select(User.id).where(User.name == "bob"))
    root_csrf = Page(root.get("/admin/users").text).csrf
    assert root.post(f"/admin/users/{bob_id}/active", data={"active": "0",
                                                            "csrf_token": root_csrf}).status_code == 303
    assert bob.get("/label").status_code == 401
    assert lab.login(lab.client(), "bob").status_code == 401


def test_login_redirect_stays_on_site(lab):
    lab.add_user("ann")
    client = lab.client()
    token = Page(client.get("/login").text).csrf
    resp = client.post("/login", data={"name": "ann", "password": PASSWORD, "csrf_token": token,
                                       "next": "//evil.example/x"})
    assert resp.headers["location"] == "/"
    client = lab.client()
    token = Page(client.get("/login?next=/label").text).csrf
    resp = client.post("/login", data={"name": "ann", "password": PASSWORD, "csrf_token": token,
                                       "next": "/label"})
    assert resp.headers["location"] == "/label"


def test_admin_adds_users_with_validation(lab):
    lab.add_user("root", "admin")
    root = lab.client("root")
    csrf = Page(root.get("/admin/users").text).csrf
    ok = root.post("/admin/users", data={"name": "cy", "role": "labeller", "password": "longenough",
                                         "csrf_token": csrf})
    assert ok.status_code == 303
    dup = root.post("/admin/users", data={"name": "cy", "role": "labeller", "password": "longenough",
                                          "csrf_token": csrf})
    assert dup.status_code == 409 and "already exists" in dup.text
    short = root.post("/admin/users", data={"name": "dee", "role": "labeller", "password": "short",
                                            "csrf_token": csrf})
    assert short.status_code == 422 and "at least 8 characters" in short.text
    role = root.post("/admin/users", data={"name": "dee", "role": "owner", "password": "longenough",
                                           "csrf_token": csrf})
    assert role.status_code == 422
    assert lab.login(lab.client(), "cy", "longenough").status_code == 303
    assert _count(lab, User) == 2
