"""Engine and sessions: SQLite in WAL mode by default, any SQLAlchemy URL (PostgreSQL) for larger teams."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from alignlab.errors import ConfigError
from alignlab.labelling import migrations

READ_ONLY = "alignlab_read_only"


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys, a busy timeout and serialised writes."""
    try:
        if not url.startswith("sqlite"):
            return create_engine(url, pool_pre_ping=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    except (ArgumentError, ImportError) as err:
        raise ConfigError(f"--db {url!r}: cannot open this database URL ({err})") from None
    in_memory = url in ("sqlite://", "sqlite:///:memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that "begin" below decides.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not in_memory:
            # WAL: readers never block the writer; FULL: a committed label survives power loss.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a read-then-write transaction (assign the
        # next pair) can neither interleave with another writer nor fail later on a stale snapshot.
        # Read-only sessions (see `read_only`) take a plain snapshot: in WAL mode it never waits.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def open_database(url: str) -> sessionmaker[Session]:
    """Open (and create or migrate) the label database at `url`; return a session factory."""
    engine = make_engine(url)
    try:
        migrations.upgrade(engine)
    except OperationalError as err:
        raise ConfigError(f"--db {url!r}: cannot open the label database ({err.orig})") from None
    return sessionmaker(engine, expire_on_commit=False)


def read_only(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions on the same engine for reading only (auth lookups, statistics, export)."""
    return sessionmaker(sessions.kw["bind"].execution_options(**{READ_ONLY: True}), expire_on_commit=False)
