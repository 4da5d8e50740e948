"""Server settings of the labelling app: database, password hashing, sessions, login throttling,
assignment leases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field

from alignlab.config import Section


def db_url(path_or_url: str) -> str:
    """`labels.sqlite` -> `sqlite:////abs/labels.sqlite`; anything with `://` is used as a URL as is."""
    if "://" in path_or_url:
        return path_or_url
    return f"sqlite:///{Path(path_or_url).expanduser().resolve()}"


class LabellingSettings(Section):
    db: str = Field(
        description="SQLAlchemy URL of the label database (sqlite:///labels.sqlite, postgresql://...)."
    )
    argon2_time_cost: int = Field(default=3, ge=1, description="Argon2id passes (RFC 9106 low-memory: 3).")
    argon2_memory_kib: int = Field(default=65536, ge=8, description="Argon2id memory in KiB (64 MiB).")
    argon2_parallelism: int = Field(default=4, ge=1, description="Argon2id lanes.")
    session_hours: float = Field(default=12.0, gt=0, description="A login stays valid this many hours.")
    secure_cookies: bool = Field(
        default=False, description="Mark cookies Secure (only sent over HTTPS); set it behind a TLS proxy."
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins allowed per user name and client address per window."
    )
    login_window_s: float = Field(default=300.0, gt=0, description="Length of the login-throttling window.")
    seed: int | None = Field(
        default=None, description="Seed of the left/right order draw; null draws from the OS (production)."
    )
    assignment_timeout_minutes: float | None = Field(
        default=30.0,
        ge=0,
        description=(
            "A labeller holds an opened pair this many minutes; after that its slot can go to someone "
            "else (their late label is still taken while the pair needs labels). 0 or null: pairs are "
            "held forever."
        ),
    )

    @property
    def assignment_lease(self) -> timedelta | None:
        """How long an unlabelled assignment holds its slot; None when leases are off."""
        if not self.assignment_timeout_minutes:
            return None
        return timedelta(minutes=self.assignment_timeout_minutes)
