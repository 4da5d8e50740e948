"""Database tables of the labelling app (SQLAlchemy 2 ORM).

The tables are created and changed only by `migrations.py`; a test checks that the migrated schema
and these models agree. Times are naive UTC.

Guarantees kept by constraints, not only by code:
- a pair is never assigned twice to one labeller: UNIQUE(assignments.pair_id, user_id);
- an assignment is labelled at most once: UNIQUE(labels.assignment_id);
- a pair is never over-assigned: `pairs.assigned` is raised only by a conditional UPDATE
  (`assigned < target`), which is atomic on SQLite and PostgreSQL alike (see `queue.py`);
  it counts the pending and done assignments of the pair (not skipped or expired ones).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ROLES: tuple[str, ...] = ("admin", "labeller")
CHOICES: tuple[str, ...] = ("a", "b", "tie", "both_bad")
REASONS: dict[str, str] = {
    "more_helpful": "More helpful",
    "more_honest": "More honest",
    "more_harmless": "More harmless",
    "other": "Other",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LoginSession(Base):
    """A server-side session: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class Round(Base):
    """A batch of pairs imported together, e.g. samples of one policy checkpoint."""

    __tablename__ = "rounds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Pair(Base):
    __tablename__ = "pairs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ext_id: Mapped[str] = mapped_column(String(200), unique=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    prompt: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    response_a: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    response_b: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    gold: Mapped[str | None] = mapped_column(String(1), nullable=True)
    # Labellers wanted; NULL for gold items, which every labeller sees once.
    target: Mapped[int | None] = mapped_column(Integer, nullable=True)
    assigned: Mapped[int] = mapped_column(Integer, default=0)
    order_key: Mapped[str] = mapped_column(String(16), index=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    round: Mapped[Round] = relationship()


class Guideline(Base):
    __tablename__ = "guidelines"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Assignment(Base):
    """One pair in one labeller's queue; `swapped` records the counterbalanced left/right order."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("pair_id", "user_id", name="uq_assignment_pair_user"),
        Index("ix_assignments_user_status", "user_id", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    swapped: Mapped[bool] = mapped_column(Boolean)  # True: response_b is shown on the left
    # pending | done | skipped | expired (its lease ran out and its slot went back to the pool)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    # When the pair was handed out; the lease runs from here (restarted if its labeller came back late).
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    pair: Mapped[Pair] = relationship()
    user: Mapped[User] = relationship()


class Label(Base):
    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), unique=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    choice: Mapped[str] = mapped_column(String(8))  # a | b | tie | both_bad, in import order
    shown_left: Mapped[str] = mapped_column(String(1))  # which response was on the left: a | b
    confidence: Mapped[int] = mapped_column(Integer)  # 1 (guess) .. 4 (certain)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    rationale: Mapped[str | None] = mapped_column(Text, nullable=True)
    rewrite: Mapped[str | None] = mapped_column(Text, nullable=True)
    guideline_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seconds: Mapped[float] = mapped_column(Float)  # time on task: assignment shown -> label stored
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    pair: Mapped[Pair] = relationship()
    user: Mapped[User] = relationship()
