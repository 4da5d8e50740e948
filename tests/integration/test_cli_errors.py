"""Every error a user can cause exits 2 with one clear line that names the file:line or the key."""

import json

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
