"""The run index: dead runs are told apart from running ones, rows can be told apart, projects kept apart."""

import subprocess
import sys
import textwrap

from alignlab.cli import main
from alignlab.run_index import RunIndex, project_dir


def runs_output(capsys, *args) -> str:
    capsys.readouterr()
    try:
        main(["runs", *args])
    except SystemExit as e:
        assert e.code in (0, None)
    return capsys.readouterr().out


def test_a_run_killed_with_sigkill_shows_as_dead(tmp_path, capsys, monkeypatch):
    # A process that starts a run and stage, then dies as `kill -9` kills it: nothing finishes them.
    script = textwrap.dedent(f"""
        import os, signal
        from alignlab.run_index import RunIndex
        index = RunIndex()
        run = index.start_run("dpo", None, {str(tmp_path / 'out')!r})
        index.start_stage(run, "dpo", "dpo", "abc", {str(tmp_path / 'out')!r}, [])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    subprocess.run([sys.executable, "-c", script], check=False, cwd=tmp_path)
    live = RunIndex().start_run("sft", None, str(tmp_path / "live"))  # this process: alive
    rows = {r.name: r for r in RunIndex().runs()}
    assert rows["dpo"].status == "dead" and rows["dpo"].stages[0].status == "interrupted"
    assert rows["sft"].status == "running" and rows["sft"].id == live
    monkeypatch.chdir(tmp_path)
    out = runs_output(capsys)
    assert "dead" in out and "dpo:interrupted" in out


def test_runs_of_one_name_are_told_apart_by_directory_and_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    index = RunIndex()
    for i in range(3):
        out = tmp_path / f"dpo-beta-{i}"
        run = index.start_run("dpo", None, str(out))
        stage = index.start_stage(run, "dpo", "dpo", f"hash{i}abcdef", str(out), [])
        index.finish_stage(stage, "done")
        index.finish_run(run, "done")
    out = runs_output(capsys)
    for i in range(3):
        assert f"dpo-beta-{i}" in out and f"hash{i}abcdef" in out


def test_runs_lists_the_current_project_unless_all(tmp_path, capsys, monkeypatch):
    one, two = tmp_path / "one", tmp_path / "two"
    for project in (one, two):
        (project / ".git").mkdir(parents=True)
        (project / "sub").mkdir()
    monkeypatch.chdir(one / "sub")  # a run started anywhere inside a project belongs to it
    assert project_dir() == one
    RunIndex().start_run("from-one", None, str(one / "runs"))
    monkeypatch.chdir(two)
    RunIndex().start_run("from-two", None, str(two / "runs"))
    out = runs_output(capsys)
    assert "from-two" in out and "from-one" not in out
    out = runs_output(capsys, "--all")
    assert "from-two" in out and "from-one" in out


def test_an_index_written_before_the_liveness_columns_still_opens(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, recipe TEXT, "
        "run_dir TEXT, status TEXT NOT NULL, started_at REAL NOT NULL, finished_at REAL, error TEXT);"
        "INSERT INTO runs (name, status, started_at) VALUES ('old', 'running', 0);"
    )
    db.commit()
    db.close()
    index = RunIndex(path)
    index.start_run("new", None, None)
    rows = {r.name: r for r in index.runs()}
    assert rows["old"].status == "running"  # nothing recorded to judge it by
    assert rows["new"].status == "running"
