"""Ctrl-C during a stage: exit 130 with a line saying how to resume, and the run index says so."""

import pytest

from alignlab.cli import main
from alignlab.run_index import RunIndex


@pytest.fixture
def interrupted_stage(monkeypatch):
    """The stage is interrupted as Ctrl-C interrupts it: KeyboardInterrupt inside the command."""

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("alignlab.pipeline.run_stage", ctrl_c)


def interrupt(capsys, *args) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    assert e.value.code == 130
    return capsys.readouterr().err


def test_ctrl_c_in_a_stage_command_prints_how_to_resume(capsys, tmp_path, interrupted_stage):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one document\n\nanother one\n")
    out = tmp_path / "out"
    err = interrupt(capsys, "pretrain", "--from-scratch", "--data", corpus, "--output", out)
    assert "interrupted" in err and "run the same command again to resume" in err and str(out) in err
    (run,) = RunIndex().runs()
    assert run.status == "interrupted" and run.stages[0].status == "interrupted"


def test_ctrl_c_in_a_recipe_prints_how_to_resume(capsys, tmp_path, interrupted_stage):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one document\n\nanother one\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\nstages:\n  base: {{kind: pretrain, config: {{data: {{path: {corpus}}}, "
                      f"init: {{}}}}}}\n")
    err = interrupt(capsys, "run", recipe, "--run-dir", tmp_path / "run")
    assert "interrupted" in err and "run the same command again" in err
    assert "finished stages are skipped" in err


@pytest.mark.slow
def test_sigint_during_training_exits_130_with_the_hint(tmp_path):
    """The real thing: SIGINT to an `alignlab pretrain` process once it has logged a step."""
    import os
    import signal
    import subprocess
    import sys
    import time

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"document {i} about the river Tell{i % 7}" for i in range(200)))
    out = tmp_path / "out"
    args = [sys.executable, "-m", "alignlab.cli", "pretrain", "--from-scratch", "--data", str(corpus),
            "--output", str(out), "--max-steps", "100000", "init.vocab_size=300", "init.hidden_size=16",
            "init.num_layers=1", "init.num_heads=2", "data.seq_len=16", "train.batch_size=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.jsonl").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "run the same command again to resume" in err
