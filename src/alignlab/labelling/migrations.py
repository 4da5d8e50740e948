"""Schema migrations: an ordered list of steps, each run once, recorded in `schema_version`.

Each step is a function of a SQLAlchemy connection and runs in its own transaction, so a crash
leaves the database at the previous version. Steps describe their tables themselves (a frozen
snapshot), never through `models.py`: a later change to a model must come with a new step that
alters the table, and an old database upgrades through the same steps as a new one.

To change the schema: append a step `_v2(conn)` to `MIGRATIONS` that alters the tables (for
example `conn.execute(text("ALTER TABLE labels ADD COLUMN ..."))`, written so that SQLite and
PostgreSQL both run it) and update `models.py`; the test that compares the migrated schema with
the models keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
)

from alignlab.errors import ConfigError


def _v1_accounts(md: MetaData) -> None:
    Table(
        "users", md,
        Column("id", Integer, primary_key=True),
        Column("name", String(64), nullable=False, unique=True),
        Column("role", String(16), nullable=False),
        Column("password_hash", String(255), nullable=False),
        Column("active", Boolean, nullable=False),
        Column("created_at", DateTime, nullable=False),
    )
    Table(
        "sessions", md,
        Column("id", Integer, primary_key=True),
        Column("token_hash", String(64), nullable=False, unique=True),
        Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
        Column("csrf_token", String(64), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("expires_at", DateTime, nullable=False),
    )
    Table(
        "guidelines", md,
        Column("version", Integer, primary_key=True),
        Column("text", Text, nullable=False),
        Column("author_id", Integer, ForeignKey("users.id"), nullable=True),
        Column("created_at", DateTime, nullable=False),
    )


def _v1_work(md: MetaData) -> None:
    Table(
        "rounds", md,
        Column("id", Integer, primary_key=True),
        Column("name", String(128), nullable=False, unique=True),
        Column("active", Boolean, nullable=False),
        Column("created_at", DateTime, nullable=False),
    )
    Table(
        "pairs", md,
        Column("id", Integer, primary_key=True),
        Column("ext_id", String(200), nullable=False, unique=True),
        Column("round_id", Integer, ForeignKey("rounds.id"), nullable=False, index=True),
        Column("prompt", JSON, nullable=False),
        Column("response_a", JSON, nullable=False),
        Column("response_b", JSON, nullable=False),
        Column("gold", String(1), nullable=True),
        Column("target", Integer, nullable=True),
        Column("assigned", Integer, nullable=False),
        Column("order_key", String(16), nullable=False, index=True),
        Column("meta", JSON, nullable=False),
        Column("created_at", DateTime, nullable=False),
    )
    Table(
        "assignments", md,
        Column("id", Integer, primary_key=True),
        Column("pair_id", Integer, ForeignKey("pairs.id"), nullable=False, index=True),
        Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
        Column("swapped", Boolean, nullable=False),
        Column("status", String(8), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("completed_at", DateTime, nullable=True),
        UniqueConstraint("pair_id", "user_id", name="uq_assignment_pair_user"),
        Index("ix_assignments_user_status", "user_id", "status"),
    )
    Table(
        "labels", md,
        Column("id", Integer, primary_key=True),
        Column("assignment_id", Integer, ForeignKey("assignments.id"), nullable=False, unique=True),
        Column("pair_id", Integer, ForeignKey("pairs.id"), nullable=False, index=True),
        Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
        Column("choice", String(8), nullable=False),
        Column("shown_left", String(1), nullable=False),
        Column("confidence", Integer, nullable=False),
        Column("reasons", JSON, nullable=False),
        Column("rationale", Text, nullable=True),
        Column("rewrite", Text, nullable=True),
        Column("guideline_version", Integer, nullable=True),
        Column("seconds", Float, nullable=False),
        Column("created_at", DateTime, nullable=False),
    )


def _v1(conn: Connection) -> None:
    """Users, sessions, guidelines; rounds, pairs, assignments, labels."""
    md = MetaData()
    _v1_accounts(md)
    _v1_work(md)
    md.create_all(conn)


MIGRATIONS: list[Callable[[Connection], None]] = [_v1]
LATEST: int = len(MIGRATIONS)

_VERSION_TABLE = Table("schema_version", MetaData(), Column("version", Integer, nullable=False))


def current_version(conn: Connection) -> int:
    """The schema version of the database behind `conn` (0 when empty)."""
    if not inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(select(_VERSION_TABLE.c.version)).scalar_one_or_none() or 0)


def upgrade(engine: Engine) -> int:
    """Apply every step newer than the database's version; return the version reached.

    A database written by a newer alignlab (version above `LATEST`) is refused rather than guessed at.
    """
    with engine.begin() as conn:
        _VERSION_TABLE.create(conn, checkfirst=True)
        version = current_version(conn)
        if conn.execute(select(_VERSION_TABLE.c.version)).first() is None:
            conn.execute(_VERSION_TABLE.insert().values(version=0))
    if version > LATEST:
        raise ConfigError(
            f"{engine.url.render_as_string(hide_password=True)}: label database schema version {version} "
            f"is newer than this alignlab supports ({LATEST}); upgrade alignlab"
        )
    for number in range(version + 1, LATEST + 1):
        with engine.begin() as conn:
            # Re-read inside the transaction: another process may have just applied this step.
            if current_version(conn) >= number:
                continue
            MIGRATIONS[number - 1](conn)
            conn.execute(text("UPDATE schema_version SET version = :v"), {"v": number})
    return max(version, LATEST)
