"""Every error a user can cause exits 2 with one clear line that names the file:line or the key."""

import json
import os

import pytest

from alignlab.cli import main


def fail(capsys, *args) -> str:
    capsys.readouterr()  # drop what building the fixtures printed
    with pytest.raises(SystemExit) as e:
        main(list(args))
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def good_data(tmp_path):
    f = tmp_path / "ok.jsonl"
    f.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant",
                                                                              "content": "yo"}]}) + "\n")
    return f


def sft_args(model, data, tmp_path, *extra):
    return ("sft", "--model", str(model), "--data", str(data), "--output", str(tmp_path / "out"),
            "--max-steps", "1", *extra)


def test_unknown_config_key(capsys, tmp_path, tiny_model_dir, good_data):
    err = fail(capsys, *sft_args(tiny_model_dir("llama"), good_data, tmp_path, "optim.lrr=1e-4"))
    assert "config key 'optim.lrr': unknown key" in err and "lr" in err


def test_wrong_type(capsys, tmp_path, tiny_model_dir, good_data):
    err = fail(capsys, *sft_args(tiny_model_dir("llama"), good_data, tmp_path, "train.batch_size=eight"))
    assert "config key 'train.batch_size'" in err and "'eight'" in err


def test_malformed_jsonl_line_names_file_and_line(capsys, tmp_path, tiny_model_dir, good_data):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good_data.read_text() + '{"messages": [oops\n' + good_data.read_text())
    err = fail(capsys, *sft_args(tiny_model_dir("llama"), bad, tmp_path))
    assert "bad.jsonl:2" in err


def test_missing_model_directory(capsys, tmp_path, good_data):
    err = fail(capsys, *sft_args(tmp_path / "no-such-model", good_data, tmp_path))
    assert "no-such-model" in err and "not found" in err


def test_dataset_with_no_assistant_turn(capsys, tmp_path, tiny_model_dir):
    f = tmp_path / "noasst.jsonl"
    f.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    err = fail(capsys, *sft_args(tiny_model_dir("llama"), f, tmp_path))
    assert "noasst.jsonl:1" in err and "assistant" in err


def test_unknown_format_name_lists_valid_ones(capsys, tmp_path, tiny_model_dir, good_data):
    err = fail(capsys, *sft_args(tiny_model_dir("llama"), good_data, tmp_path, "--format", "nope"))
    assert "nope" in err and "alpaca" in err and "sharegpt" in err


def test_missing_data_file(capsys, tmp_path, tiny_model_dir):
    err = fail(capsys, *sft_args(tiny_model_dir("llama"), tmp_path / "absent.jsonl", tmp_path))
    assert "absent.jsonl" in err and "not found" in err


def test_bad_recipe_key(capsys, tmp_path):
    r = tmp_path / "r.yaml"
    r.write_text(
        "name: r\nstages:\n  s:\n    kind: sft\n    config: {model: {path: m}, data: {path: d}, trian: {}}\n"
    )
    err = fail(capsys, "validate", str(r))
    assert "r.yaml: config key 'stages.s.config.trian': unknown key" in err


STAGE_ARGS = {  # the inputs each stage command needs, so only --output is wrong
    "sft": lambda m, d: ["--model", m, "--data", d],
    "rm": lambda m, d: ["--model", m, "--data", d],
    "dpo": lambda m, d: ["--model", m, "--data", d],
    "score": lambda m, d: ["--reward-model", m, "--data", d],
    "pretrain": lambda m, d: ["--from-scratch", "--data", d],
}


@pytest.fixture
def no_stage_runs(monkeypatch):
    """Fail the test if a stage starts: an output error must come before any model loads."""

    def refuse(*args, **kwargs):
        raise AssertionError("the stage ran")

    monkeypatch.setattr("alignlab.pipeline.run_stage", refuse)


@pytest.mark.parametrize("command", sorted(STAGE_ARGS))
@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_output_that_cannot_be_a_directory_is_one_line_before_the_model_loads(
        capsys, tmp_path, tiny_model_dir, good_data, no_stage_runs, command, where):
    taken = tmp_path / "taken.txt"
    taken.write_text("not a directory")
    output = taken if where == "a file" else taken / "out"
    args = STAGE_ARGS[command](str(tiny_model_dir("llama")), str(good_data))
    err = fail(capsys, command, *args, "--output", str(output))
    assert str(output) in err and "--output" in err and "directory" in err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only directories")
def test_output_in_a_read_only_directory_is_one_line(capsys, tmp_path, tiny_model_dir, good_data,
                                                      no_stage_runs):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        err = fail(capsys, *sft_args(tiny_model_dir("llama"), good_data, tmp_path)[:-4], "--output",
                   str(locked / "out"))
    finally:
        locked.chmod(0o755)
    assert "cannot be written" in err and str(locked / "out") in err


def test_recipe_run_dir_that_is_a_file_is_one_line(capsys, tmp_path, good_data, no_stage_runs):
    taken = tmp_path / "taken.txt"
    taken.write_text("not a directory")
    r = tmp_path / "r.yaml"
    r.write_text(f"name: r\nstages:\n  s:\n    kind: pretrain\n"
                 f"    config: {{data: {{path: {good_data}}}, init: {{}}}}\n")
    for run_dir in (taken, taken / "run"):
        err = fail(capsys, "run", str(r), "--run-dir", str(run_dir))
        assert str(run_dir) in err and "directory" in err


def test_output_where_writing_is_refused_is_one_line(capsys, monkeypatch, tmp_path, tiny_model_dir, good_data,
                                                     no_stage_runs):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("alignlab.io.tempfile.mkstemp", refuse)  # what a read-only directory does
    err = fail(capsys, "sft", "--model", str(tiny_model_dir("llama")), "--data", str(good_data),
               "--output", str(tmp_path / "out"))
    assert f"--output {tmp_path / 'out'}: cannot be written (Permission denied)" in err


def test_json_errors_read_as_sentences(capsys, tmp_path, tiny_model_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": "abc\n')  # an unterminated string: json says "starting at"
    err = fail(capsys, *sft_args(tiny_model_dir("llama"), bad, tmp_path))
    assert "bad.jsonl:1" in err and "at at" not in err and "column" in err


def test_empty_json_and_jsonl_files_give_the_same_message(capsys, tmp_path, tiny_model_dir):
    messages = []
    for name in ("empty.json", "empty.jsonl"):
        f = tmp_path / name
        f.write_text("")
        messages.append(fail(capsys, *sft_args(tiny_model_dir("llama"), f, tmp_path)).replace(name, "FILE"))
    assert messages[0] == messages[1] and "is empty" in messages[0]


def test_a_hub_like_model_id_names_the_flag_key_and_the_allow_hub_setting(capsys, tmp_path, good_data):
    err = fail(capsys, *sft_args("SomeOrg/some-model-135M", good_data, tmp_path))
    assert "config key 'model.path'" in err and "stages." not in err
    assert "model.allow_hub=true" in err and "SomeOrg/some-model-135M" in err


def test_a_model_directory_without_tokenizer_files_says_so(capsys, tmp_path, tiny_model_dir, good_data):
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    for f in tiny_model_dir("llama").iterdir():
        if not f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy(f, bare / f.name)
    err = fail(capsys, *sft_args(bare, good_data, tmp_path))
    assert "bare" in err and "tokenizer" in err and not err.rstrip(")").rstrip().endswith(":")
    assert "tokenizer.json" in err


def test_validate_reports_the_errors_of_every_stage_in_one_line(capsys, tmp_path):
    r = tmp_path / "r.yaml"
    r.write_text("name: r\nstages:\n"
                 "  s:\n    kind: sft\n    config: {model: {path: m}, data: {path: d}, trian: {}}\n"
                 "  t:\n    kind: dpo\n    config: {model: {path: '${s}'}, data: {path: d}, loss: dpoo}\n")
    err = fail(capsys, "validate", str(r))
    assert "'stages.s.config.trian': unknown key" in err and "'stages.t.config.loss'" in err
