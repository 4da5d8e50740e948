"""`alignlab label ...`: serve the labelling app, add users, import pairs, export labels.

Only typer is imported here; the web stack (FastAPI, SQLAlchemy, argon2) loads when a command runs.
Every command takes `--db` (a SQLite file path or a SQLAlchemy URL), or the ALIGNLAB_LABEL_DB
environment variable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from alignlab.cli_help import PLAIN_HELP
from alignlab.data.formats import format_names
from alignlab.errors import AlignlabError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")

label_app = typer.Typer(
    help="Preference-labelling web app: serve it, add users, import pairs, export labels.",
    no_args_is_help=True,
    **PLAIN_HELP,
)
user_app = typer.Typer(help="Manage labelling accounts.", no_args_is_help=True, **PLAIN_HELP)
label_app.add_typer(user_app, name="user")

DB_OPTION = typer.Option(
    ..., "--db", envvar="ALIGNLAB_LABEL_DB", help="Label database: a SQLite file path or a SQLAlchemy URL."
)


class Role(str, Enum):
    admin = "admin"
    labeller = "labeller"


class AggregateChoice(str, Enum):
    none = "none"
    majority = "majority"
    weighted = "weighted"


def _fail(err: AlignlabError) -> typer.Exit:
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(code=err.exit_code)


@contextmanager
def _session(db: str) -> Iterator[Session]:
    """A database session on `db`, rolled back on error; user errors exit 2 with one line."""
    from alignlab.labelling.db import open_database
    from alignlab.labelling.settings import db_url

    try:
        with open_database(db_url(db))() as session:
            yield session
    except AlignlabError as err:
        raise _fail(err) from None


def _run(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except AlignlabError as err:
        raise _fail(err) from None


@label_app.command()
def serve(
    db: str = DB_OPTION,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    secure_cookies: bool = typer.Option(
        False, "--secure-cookies/--no-secure-cookies",
        help="Send cookies over HTTPS only (behind a TLS proxy)."
    ),
    assignment_timeout_minutes: float = typer.Option(
        30.0,
        min=0,
        help="Minutes a labeller holds an opened pair before it can go to someone else "
        "(their late label still counts while the pair needs labels); 0 holds pairs forever.",
    ),
) -> None:
    """Run the labelling web app."""
    import uvicorn

    from alignlab.labelling.app import create_app
    from alignlab.labelling.settings import LabellingSettings, db_url

    settings = LabellingSettings(
        db=db_url(db), secure_cookies=secure_cookies, assignment_timeout_minutes=assignment_timeout_minutes
    )
    app = _run(lambda: create_app(settings))
    typer.echo(f"labelling app on http://{host}:{port}  (database: {db})")
    uvicorn.run(app, host=host, port=port, log_level="info")


def _read_password(name: str) -> str:
    if sys.stdin.isatty():
        return typer.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    # Piped: the first line of stdin, so scripts can run `echo "$PW" | alignlab label user add ...`.
    return sys.stdin.readline().rstrip("\r\n")


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="Login name."),
    role: Role = typer.Option(..., "--role", help="admin (import, export, users, statistics) or labeller."),
    db: str = DB_OPTION,
) -> None:
    """Add an account; the password is read from a prompt, or from the first line of stdin."""
    from alignlab.labelling.auth import create_user, make_hasher
    from alignlab.labelling.settings import LabellingSettings, db_url

    password = _read_password(name)
    hasher = make_hasher(LabellingSettings(db=db_url(db)))
    with _session(db) as session:
        _run(lambda: create_user(session, hasher, name, role.value, password))
        session.commit()
    typer.echo(f"added {role.value} {name}")


@user_app.command("list")
def user_list(db: str = DB_OPTION) -> None:
    """List accounts: name, role, active."""
    from sqlalchemy import select

    from alignlab.labelling.models import User

    with _session(db) as session:
        for user in session.scalars(select(User).order_by(User.name)).all():
            typer.echo(f"{user.name}\t{user.role}\t{'active' if user.active else 'disabled'}")


@label_app.command("import")
def import_cmd(
    pairs: Path = typer.Argument(
        ...,
        help="Pairs to label: the labelling format (JSONL: prompt, response_a, response_b; see "
        "docs/labelling-formats.md) or any preference file `alignlab rm` and `alignlab dpo` read.",
    ),
    db: str = DB_OPTION,
    format: str = typer.Option(
        "auto",
        help="File format: auto (detect), pairs (the labelling format), "
        f"{', '.join(format_names('preference'))}.",
    ),
    round_name: str = typer.Option("default", "--round", help="Round to add the pairs to (created if new)."),
    labels_per_pair: int = typer.Option(1, help="Labellers per pair (k)."),
    overlap: float = typer.Option(0.0, help="Share of pairs given to --overlap-labels labellers instead."),
    overlap_labels: int = typer.Option(3, help="Labellers per overlap pair, to measure agreement."),
) -> None:
    """Import response pairs to label; a malformed record rejects the whole file."""
    from alignlab.labelling import importer

    parsed = _run(lambda: importer.parse_file(str(pairs), format))
    with _session(db) as session:
        result = _run(
            lambda: importer.import_pairs(
                session, parsed.pairs, str(pairs), round_name, labels_per_pair, overlap, overlap_labels
            )
        )
        session.commit()
    left_out = (
        f"; left out {parsed.skipped} pairs with identical responses or seen before" if parsed.skipped else ""
    )
    typer.echo(f"read {pairs} as format {parsed.format}{left_out}")
    typer.echo(
        f"imported {result.imported} pairs into round {result.round_name} "
        f"({result.gold} gold, {result.overlap} overlap)"
    )


@label_app.command("export")
def export_cmd(
    out: Path = typer.Argument(..., help="Output JSONL file of PreferencePair records."),
    db: str = DB_OPTION,
    aggregate: AggregateChoice = typer.Option(
        AggregateChoice.none, help="none: one line per label; majority / weighted: one line per pair."
    ),
    round_name: str | None = typer.Option(None, "--round", help="Only this round (default: all)."),
) -> None:
    """Export labels as PreferencePair JSONL, read unchanged by `alignlab rm` and `alignlab dpo`."""
    from alignlab.labelling import export

    with _session(db) as session:
        n = _run(lambda: export.export_file(session, str(out), aggregate.value, round_name))
    typer.echo(f"wrote {n} records to {out}")
