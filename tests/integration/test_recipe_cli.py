"""`alignlab run / validate / runs` on a one-stage SFT recipe with a tiny local model."""

import json
import re
from pathlib import Path

from alignlab.cli import main


def cli(capsys, *args) -> tuple[str, str]:
    try:
        main(list(args))
    except SystemExit as e:
        assert e.code in (0, None)
    out = capsys.readouterr()
    return out.out, out.err


def micro_recipe(tmp_path, model) -> Path:
    """A one-stage SFT recipe on one conversation, in tmp_path/r.yaml."""
    data = tmp_path / "d.jsonl"
    data.write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant",
                                                                     "content": "hello"}]}) + "\n"
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: micro\nstages:\n  sft:\n    kind: sft\n    config:\n"
        f"      model: {{path: {model}}}\n      data: {{path: '${{recipe_dir}}/d.jsonl'}}\n"
        f"      train: {{max_steps: 2, batch_size: 1, progress: false}}\n"
    )
    return recipe


def test_rerun_skips_finished_stage_and_runs_lists_it(tmp_path, capsys, tiny_model_dir):
    recipe = micro_recipe(tmp_path, tiny_model_dir("llama"))
    run_dir = tmp_path / "run"
    out, _ = cli(capsys, "validate", str(recipe), "--run-dir", str(run_dir))
    assert "to run" in out and "sft" in out
    _, err1 = cli(capsys, "run", str(recipe), "--run-dir", str(run_dir))
    assert "run stage sft (sft)" in err1
    _, err2 = cli(capsys, "run", str(recipe), "--run-dir", str(run_dir))
    assert "skip stage sft: already done" in err2
    (stage_dir,) = [p for p in run_dir.iterdir() if p.name.startswith("sft-")]
    assert (stage_dir / "model.safetensors").exists() and (stage_dir / "metrics.jsonl").exists()
    out, _ = cli(capsys, "runs")
    assert out.count("micro") == 2 and "sft:skipped" in out and "sft:done" in out
    # An override changes the config hash, so the stage runs again in a new directory.
    _, err3 = cli(capsys, "run", str(recipe), "--run-dir", str(run_dir), "sft.train.max_steps=3")
    assert "run stage sft" in err3
    assert len([p for p in run_dir.iterdir() if p.name.startswith("sft-")]) == 2


def test_validate_piped_to_a_file_shows_each_stage_directory_whole(tmp_path, capsys, monkeypatch,
                                                                  tiny_model_dir):
    """Off a terminal rich assumed 80 columns and cut the directory to '.../run/sft-4…'."""
    monkeypatch.setenv("COLUMNS", "80")
    recipe = micro_recipe(tmp_path, tiny_model_dir("llama"))
    run_dir = tmp_path / "runs-of-a-project-with-a-long-name" / "micro"
    out, _ = cli(capsys, "validate", str(recipe), "--run-dir", str(run_dir))
    assert re.search(re.escape(str(run_dir)) + r"/sft-[0-9a-f]{10} ", out), out


def test_pretraining_from_scratch_learns_with_either_packing(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n\n".join(f"The town of Osk{i % 5} lies on the river Tell{i % 5}." for i in range(60))
    )
    for packing in ("documents", "stream"):
        recipe = tmp_path / f"{packing}.yaml"
        recipe.write_text(
            "name: pre\nstages:\n  base:\n    kind: pretrain\n    config:\n"
            f"      data: {{path: '${{recipe_dir}}/corpus.txt', seq_len: 32, packing: {packing}}}\n"
            "      init: {vocab_size: 300, hidden_size: 32, num_layers: 1, num_heads: 2, max_positions: 64}\n"
            "      optim: {lr: 1.0e-2}\n"
            "      train: {batch_size: 4, max_steps: 30, log_every: 1, progress: false}\n"
        )
        cli(capsys, "run", str(recipe), "--run-dir", str(tmp_path / packing))
        (stage_dir,) = (tmp_path / packing).glob("base-*")
        losses = [json.loads(line)["loss"] for line in (stage_dir / "metrics.jsonl").read_text().splitlines()
                  if "loss" in json.loads(line)]
        assert len(losses) == 30 and losses[-1] < 0.5 * losses[0], (packing, losses[0], losses[-1])
        assert (stage_dir / "tokenizer.json").exists() and (stage_dir / "model.safetensors").exists()


def test_pretrain_command_from_scratch_or_continued(tmp_path, capsys, tiny_model_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n\n".join(f"The town of Osk{i % 5} lies on the river Tell{i % 5}." for i in range(40))
    )
    small = ["train.batch_size=4", "train.progress=false"]
    cli(capsys, "pretrain", "--data", str(corpus), "--output", str(tmp_path / "new"), "--from-scratch",
        "--seq-len", "32", "--packing", "stream", "--max-steps", "3", "init.vocab_size=300",
        "init.hidden_size=32",
        "init.num_layers=1", "init.num_heads=2", *small)
    cli(capsys, "pretrain", "--data", str(corpus), "--output", str(tmp_path / "more"), "--model",
        str(tiny_model_dir("llama")), "--seq-len", "32", "--max-steps", "3", *small)
    for out in ("new", "more"):
        assert (tmp_path / out / "model.safetensors").exists() and (
            tmp_path / out / "tokenizer.json"
        ).exists()
        assert json.loads((tmp_path / out / "stage.json").read_text())["summary"]["steps"] == 3
    try:
        main(["pretrain", "--data", str(corpus), "--output", str(tmp_path / "none")])
    except SystemExit as e:
        assert e.code == 2
    assert (
        "give exactly one of `init` (from scratch) or `model` (continued pretraining)"
        in capsys.readouterr().err
    )
