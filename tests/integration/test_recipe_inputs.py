"""A recipe re-run notices input files that changed: the stages reading them run again."""

from cli_support import run_cli

from records import pair, write_jsonl

GOOD = ["The capital of France is Paris.", "Paris is the capital.", "I am a helpful assistant."]
BAD = ["The quick brown fox.", "The lazy dog jumps.", "brown fox, lazy dog"]
PROMPTS = ["What is the capital of France?", "Say hello.", "Write a poem.", "Answer the question."]
TRAIN = "{max_steps: 1, batch_size: 4, progress: false, save_every: null}"


def test_replacing_the_data_with_half_its_rows_reruns_rm_and_dpo(tmp_path, tiny_model_dir, capsys):
    rows = [pair(p, g, b) for p in PROMPTS for g, b in zip(GOOD, BAD, strict=True)]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    model = tiny_model_dir("llama")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: prefs\nstages:\n"
        f"  rm:\n    kind: rm\n    config:\n      model: {{path: {model}}}\n"
        f"      data: {{path: '${{recipe_dir}}/pairs.jsonl'}}\n      train: {TRAIN}\n"
        f"  dpo:\n    kind: dpo\n    config:\n      model: {{path: {model}}}\n"
        f"      data: {{path: '${{recipe_dir}}/pairs.jsonl'}}\n      train: {TRAIN}\n"
    )
    run_dir = tmp_path / "run"

    def run() -> str:
        capsys.readouterr()
        run_cli("run", recipe, "--run-dir", run_dir)
        return capsys.readouterr().err

    first = run()
    assert "run stage rm" in first and "run stage dpo" in first
    again = run()
    assert "skip stage rm: already done" in again and "skip stage dpo: already done" in again
    write_jsonl(tmp_path / "pairs.jsonl", rows[: len(rows) // 2])
    changed = run()
    assert "run stage rm" in changed and "run stage dpo" in changed
    assert "skip stage" not in changed
    assert "stage rm: input data.path" in changed and "changed since" in changed
    for stage in ("rm", "dpo"):
        assert len([p for p in run_dir.iterdir() if p.name.startswith(f"{stage}-")]) == 2
