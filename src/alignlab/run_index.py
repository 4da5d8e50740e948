"""The run index: a SQLite file of runs, stages, their artefacts, metrics and lineage.

One file for the user (default `~/.alignlab/runs.sqlite`, or `$ALIGNLAB_RUN_INDEX`), written by
`alignlab run` and by each standalone stage command, read by `alignlab runs`. It is an index: the
stage directories stay the source of truth, so losing it loses no results. Each finished stage
records its directory and the artefacts its kind declares (`StageKind.outputs`), by name.

Each run records its project (`project_dir()`: the git work tree it was started in, else the
working directory), so `alignlab runs` lists the current project's runs and `--all` every run: one
file per user keeps every run findable wherever it was started, and the filter keeps unrelated
projects apart. A run also records the process (pid, host) that runs it and a heartbeat: a
process killed without a chance to finish its row (`kill -9`, a lost machine) leaves a run
"running", which `runs()` reports as "dead" (and its running stage as "interrupted") once the
process is gone (same host) or the heartbeat is stale (another host).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    recipe TEXT,
    run_dir TEXT,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS stages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    hash TEXT,
    dir TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    stage_id INTEGER NOT NULL REFERENCES stages(id),
    key TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (stage_id, key)
);
CREATE TABLE IF NOT EXISTS artefacts (
    stage_id INTEGER NOT NULL REFERENCES stages(id),
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lineage (
    stage_id INTEGER NOT NULL REFERENCES stages(id),
    input_dir TEXT NOT NULL
);
"""


# Columns added after the first release; an older file gets them on open (NULL in old rows).
RUN_COLUMNS = {"pid": "INTEGER", "host": "TEXT", "heartbeat_at": "REAL", "project": "TEXT"}
HEARTBEAT_S = 60.0  # how often a running run says it is alive
STALE_S = 10 * HEARTBEAT_S  # a run on another host with no heartbeat for this long is dead

ENV_VAR = "ALIGNLAB_RUN_INDEX"
# (name, path, kind) of one artefact of a finished stage
ArtefactRow = tuple[str, str, str]


def default_index_path() -> Path:
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path.home() / ".alignlab" / "runs.sqlite"


def project_dir(start: str | os.PathLike | None = None) -> Path:
    """The project a run belongs to: the git work tree holding `start` (default: the working
    directory), else `start` itself."""
    here = Path(start or Path.cwd()).resolve()
    return next((p for p in (here, *here.parents) if (p / ".git").exists()), here)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _liveness(status: str, pid: int | None, host: str | None, heartbeat: float | None) -> str:
    """`status`, or "dead" for a run still marked running whose process is gone."""
    if status != "running" or pid is None:
        return status  # finished, or recorded before pids were
    if host == socket.gethostname():
        return status if _process_alive(pid) else "dead"
    return status if heartbeat is not None and time.time() - heartbeat < STALE_S else "dead"


@dataclass(frozen=True)
class StageRow:
    name: str
    kind: str
    status: str
    dir: str
    seconds: float | None
    hash: str | None = None  # the stage directory's key: a short digest of config and inputs


@dataclass(frozen=True)
class RunRow:
    id: int
    name: str
    status: str  # running, done, failed, interrupted, or dead (its process is gone)
    run_dir: str | None
    started_at: float
    stages: list[StageRow]
    recipe: str | None = None
    project: str | None = None


class RunIndex:
    """Thin wrapper over one SQLite file; every write is its own short transaction."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_index_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(SCHEMA)
            have = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            for column, kind in RUN_COLUMNS.items():
                if column not in have:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def _write(self, sql: str, args: tuple = ()) -> int:
        with closing(self._connect()) as db, db:
            return db.execute(sql, args).lastrowid

    def start_run(self, name: str, recipe: str | None, run_dir: str | None) -> int:
        """A new run of this process in the current project, marked running."""
        now = time.time()
        return self._write(
            "INSERT INTO runs (name, recipe, run_dir, status, started_at, pid, host, heartbeat_at, project) "
            "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
            (name, recipe, run_dir, now, os.getpid(), socket.gethostname(), now, str(project_dir())),
        )

    def heartbeat(self, run_id: int) -> None:
        self._write("UPDATE runs SET heartbeat_at=? WHERE id=?", (time.time(), run_id))

    @contextmanager
    def alive(self, run_id: int, every_s: float = HEARTBEAT_S) -> Iterator[None]:
        """Keep the run's heartbeat fresh from a background thread while the block runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(every_s):
                with suppress(sqlite3.Error):  # a busy index must not stop the run; the next beat retries
                    self.heartbeat(run_id)

        thread = threading.Thread(target=beat, name="alignlab-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        self._write("UPDATE runs SET status=?, finished_at=?, error=? WHERE id=?", (status, time.time(),
                                                                                    error, run_id))

    def start_stage(self, run_id: int, name: str, kind: str, hash_: str | None, dir_: str,
                    inputs: list[str]) -> int:
        sid = self._write(
            "INSERT INTO stages (run_id, name, kind, hash, dir, status, started_at) "
            "VALUES (?, ?, ?, ?, ?, 'running', ?)",
            (run_id, name, kind, hash_, dir_, time.time()),
        )
        for d in inputs:
            self._write("INSERT INTO lineage (stage_id, input_dir) VALUES (?, ?)", (sid, d))
        return sid

    def finish_stage(
        self,
        stage_id: int,
        status: str,
        metrics: dict | None = None,
        error: str | None = None,
        artefacts: Sequence[ArtefactRow] = (),
    ) -> None:
        """Close a stage; a finished one records its directory (`dir`) and its `artefacts`."""
        with closing(self._connect()) as db, db:
            db.execute(
                "UPDATE stages SET status=?, finished_at=?, error=? WHERE id=?", (status, time.time(), error,
                                                                                  stage_id)
            )
            for k, v in (metrics or {}).items():
                if isinstance(v, (int, float)):
                    db.execute("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?)", (stage_id, k, float(v)))
            if status == "done":
                dir_ = db.execute("SELECT dir FROM stages WHERE id=?", (stage_id,)).fetchone()[0]
                rows = [("dir", dir_, "stage_dir"), *artefacts]
                db.executemany("INSERT INTO artefacts VALUES (?, ?, ?, ?)", [(stage_id, *r) for r in rows])

    def artefacts(self, run_id: int) -> dict[str, dict[str, str]]:
        """Stage name -> artefact name -> path, for the finished stages of a run."""
        return self._by_stage(
            "SELECT s.name, a.name, a.path FROM artefacts a JOIN stages s ON s.id = a.stage_id "
            "WHERE s.run_id=? ORDER BY a.rowid",
            run_id,
        )

    def _by_stage(self, sql: str, run_id: int) -> dict[str, dict]:
        """Rows (stage, key, value) of `sql` as stage -> key -> value."""
        with closing(self._connect()) as db:
            rows = db.execute(sql, (run_id,)).fetchall()
        out: dict[str, dict] = {}
        for stage, key, value in rows:
            out.setdefault(stage, {})[key] = value
        return out

    def runs(self, limit: int = 20, project: str | os.PathLike | None = None) -> list[RunRow]:
        """The newest `limit` runs (of `project` only, when given), with their stages."""
        where, args = ("WHERE project=?", (str(project),)) if project is not None else ("", ())
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT id, name, status, run_dir, started_at, recipe, project, pid, host, heartbeat_at "
                f"FROM runs {where} ORDER BY id DESC LIMIT ?", (*args, limit)
            ).fetchall()
            out = []
            for rid, name, status, run_dir, started, recipe, proj, pid, host, beat in rows:
                status = _liveness(status, pid, host, beat)
                stages = [
                    StageRow(n, k, "interrupted" if status == "dead" and s == "running" else s, d,
                             (f - st) if f else None, h)
                    for n, k, s, d, st, f, h in db.execute(
                        "SELECT name, kind, status, dir, started_at, finished_at, hash FROM stages "
                        "WHERE run_id=? ORDER BY id",
                        (rid,),
                    )
                ]
                out.append(RunRow(rid, name, status, run_dir, started, stages, recipe, proj))
            return out

    def count_runs(self) -> int:
        with closing(self._connect()) as db:
            return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def stage_metrics(self, run_id: int) -> dict[str, dict[str, float]]:
        """Stage name -> metric -> value (the stage's summary), for the stages of a run."""
        return self._by_stage(
            "SELECT s.name, m.key, m.value FROM metrics m JOIN stages s ON s.id = m.stage_id "
            "WHERE s.run_id=?",
            run_id,
        )

    def lineage(self, stage_dir: str) -> list[str]:
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT l.input_dir FROM lineage l JOIN stages s ON s.id = l.stage_id WHERE s.dir=?",
                (stage_dir,)
            ).fetchall()
        return sorted({r[0] for r in rows})


class NullRunIndex(RunIndex):
    """Records nothing: what the processes other than the main one of a multi-process launch use,
    so a run is recorded once. Reading it is not supported."""

    def __init__(self) -> None:
        self.path = None

    def start_run(self, *args, **kwargs) -> int:
        return 0

    def finish_run(self, *args, **kwargs) -> None:
        return None

    def start_stage(self, *args, **kwargs) -> int:
        return 0

    def finish_stage(self, *args, **kwargs) -> None:
        return None

    @contextmanager
    def alive(self, *args, **kwargs) -> Iterator[None]:
        yield


def open_run_index(path: str | os.PathLike | None = None) -> RunIndex:
    """The run index on the main process; a `NullRunIndex` on the others of a multi-process launch."""
    from alignlab.distributed import is_main_process

    return RunIndex(path) if is_main_process() else NullRunIndex()
