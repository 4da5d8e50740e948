"""Accounts, passwords (Argon2id), server-side sessions, CSRF tokens and login throttling.

The session cookie carries a random token; the database keeps only its SHA-256, so a leaked
database cannot be replayed as logins. Each session has its own CSRF token, which every form
posts back (synchronizer-token pattern). Failed logins are throttled per user name and client
address inside one server process.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from alignlab.labelling.errors import Conflict, Invalid, TooManyAttempts
from alignlab.labelling.models import ROLES, Assignment, LoginSession, Pair, User, utcnow
from alignlab.labelling.settings import LabellingSettings

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8


@dataclass(frozen=True)
class Auth:
    """Who made a request: a plain value, safe to pass outside the database session."""

    user_id: int
    name: str
    role: str
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def make_hasher(settings: LabellingSettings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(db: Session, hasher: PasswordHasher, name: str, role: str, password: str) -> User:
    """Add an account; the name must be new, the role admin or labeller, the password 8+ characters."""
    if not NAME_RE.match(name):
        raise Invalid(f"user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
    if role not in ROLES:
        raise Invalid(f"role {role!r}: use one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"password for {name!r}: use at least {MIN_PASSWORD} characters")
    if db.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists; pick another name")
    user = User(name=name, role=role, password_hash=hasher.hash(password), active=True)
    db.add(user)
    db.flush()
    return user


def set_active(db: Session, user_id: int, active: bool) -> User:
    """Enable or disable an account; disabling ends its sessions and frees its pending pairs."""
    user = db.get(User, user_id)
    if user is None:
        raise Invalid(f"no user with id {user_id}")
    user.active = active
    if not active:
        db.execute(delete(LoginSession).where(LoginSession.user_id == user_id))
        pending = db.scalars(
            select(Assignment).where(Assignment.user_id == user_id, Assignment.status == "pending")
        ).all()
        for a in pending:
            # Conditional: if a lease release expired it meanwhile, its slot is already back.
            moved = db.execute(
                update(Assignment)
                .where(Assignment.id == a.id, Assignment.status == "pending")
                .values(status="skipped")
            )
            if moved.rowcount == 1:  # the slot goes back to the pool for another labeller
                db.execute(update(Pair).where(Pair.id == a.pair_id).values(assigned=Pair.assigned - 1))
    return user


def authenticate(db: Session, hasher: PasswordHasher, name: str, password: str) -> User | None:
    """The active user with this name and password, or None. Unknown names cost a hash too."""
    user = db.scalar(select(User).where(User.name == name, User.active.is_(True)))
    if user is None:
        # Verify against a throwaway hash so response time does not reveal which names exist.
        _verify(hasher, _dummy_hash(hasher), password)
        return None
    if not _verify(hasher, user.password_hash, password):
        return None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return user


_DUMMY: dict[tuple[int, int, int], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if key not in _DUMMY:
        _DUMMY[key] = hasher.hash(secrets.token_hex(16))
    return _DUMMY[key]


def _verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def start_session(db: Session, user: User, hours: float) -> str:
    """Create a session for `user`; return the cookie token (shown once, stored hashed)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(
        LoginSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    return token


def session_auth(db: Session, token: str | None) -> Auth | None:
    """The `Auth` of a live session token, or None (missing, unknown, expired, or user disabled)."""
    if not token:
        return None
    row = db.execute(
        select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    sess, user = row
    if sess.expires_at <= utcnow() or not user.active:
        return None
    return Auth(user_id=user.id, name=user.name, role=user.role, csrf_token=sess.csrf_token)


def end_session(db: Session, token: str | None) -> None:
    if token:
        db.execute(delete(LoginSession).where(LoginSession.token_hash == _token_hash(token)))


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and secrets.compare_digest(expected.encode(), str(given).encode())


class LoginThrottle:
    """At most `max_failures` failed logins per key within `window_s` seconds (thread-safe).

    Keys are `(client address, lower-cased user name)`; a client address also gets four times
    that budget over all names, which slows password spraying across accounts.
    """

    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._fails: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self._fails[key]
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def check(self, client: str, name: str) -> None:
        """Raise `TooManyAttempts` when this client may not try this name now."""
        now = self.clock()
        with self._lock:
            for key, limit in (((client, name.lower()), self.max_failures), ((client, ""),
                                                                             4 * self.max_failures)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    wait = int(q[0] + self.window_s - now) + 1
                    raise TooManyAttempts(f"too many failed logins; try again in {wait} s", wait)

    def failed(self, client: str, name: str) -> None:
        now = self.clock()
        with self._lock:
            self._fails[(client, name.lower())].append(now)
            self._fails[(client, "")].append(now)

    def succeeded(self, client: str, name: str) -> None:
        with self._lock:
            self._fails.pop((client, name.lower()), None)
