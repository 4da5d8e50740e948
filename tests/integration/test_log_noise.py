"""What a run prints is ours: log lines unwrapped in a log file, no library deprecation warnings on
LoRA runs, no weight-loading bars, and a line when a run resumes."""

from __future__ import annotations

import json
import warnings

from alignlab.cli import main
from alignlab.cli.app import log
from alignlab.config import LoRAConfig, ModelConfig
from alignlab.modeling.loading import load_model
from alignlab.modeling.reward_model import apply_reward_lora, build_reward_model, save_reward_model


def test_log_lines_are_not_wrapped_off_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    line = "rm: 200 training pairs, 0 held-out; 1 member(s) (heads); 251,264 of 251,264 parameters trainable"
    log(line + " and then some more words to go well past eighty columns")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and line in err


def _no_peft_deprecation(record: list[warnings.WarningMessage]) -> None:
    ours = [w for w in record if "is_gradient_checkpointing" in str(w.message)]
    assert not ours, [str(w.message) for w in ours]


def test_lora_policy_and_reward_model_load_without_the_deprecation_warning(tiny_model_dir, tmp_path):
    path = str(tiny_model_dir("llama"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        policy = load_model(ModelConfig(path=path), LoRAConfig(enabled=True, r=2))
        apply_reward_lora(build_reward_model(path), r=2, alpha=4, dropout=0.0, target_modules="all-linear")
        policy.save_pretrained(tmp_path / "adapter")  # an adapter directory, loaded back through peft
        load_model(ModelConfig(path=str(tmp_path / "adapter")))
    _no_peft_deprecation(record)


def test_warnings_of_others_are_left_alone(tiny_model_dir):
    from alignlab.modeling.loading import quiet_peft_deprecations

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with quiet_peft_deprecations():
            warnings.warn("`is_gradient_checkpointing` is deprecated", FutureWarning, stacklevel=1)
            warnings.warn("something else is deprecated", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in record] == ["something else is deprecated"]


def test_score_prints_no_weight_loading_bar(tiny_model_dir, tmp_path, capsys):
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = str(tiny_model_dir("llama"))
    rm = tmp_path / "rm"
    save_reward_model(build_reward_model(path), AutoTokenizer.from_pretrained(path), rm)
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "hi", "chosen": "hello", "rejected": "go away"}) + "\n")
    hf_logging.enable_progress_bar()  # as in a fresh process
    capsys.readouterr()
    main_ok(["score", "--reward-model", str(rm), "--data", str(data), "--output", str(tmp_path / "s")])
    out = capsys.readouterr()
    assert "Loading weights" not in out.err + out.out and "scored 2 responses" in out.err


def main_ok(args: list[str]) -> None:
    try:
        main(args)
    except SystemExit as e:
        assert e.code in (0, None)


def test_a_resumed_run_says_from_which_step(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]}
    data.write_text((json.dumps(row) + "\n") * 8)
    out = tmp_path / "out"
    common = ["sft", "--model", str(tiny_model_dir("llama")), "--data", str(data), "--output", str(out),
              "train.batch_size=2", "train.save_every=2", "train.keep_final_checkpoint=true",
              "train.progress=false"]
    main_ok([*common, "--max-steps", "2"])
    (out / "stage.json").unlink()  # as if it had stopped after its step-2 checkpoint
    capsys.readouterr()
    main_ok([*common, "--max-steps", "4"])
    assert "resuming from step 2 of 4" in capsys.readouterr().err


def test_alignlabs_own_warnings_print_as_one_line_and_others_as_python_shows_them():
    import alignlab.data.templating as ours
    from alignlab.cli.app import format_warning

    text = "the chat template does not render tool calls"
    shown = format_warning(UserWarning(text), UserWarning, ours.__file__, 208, "warnings.warn(")
    assert shown == f"warning: {text}\n"
    other = format_warning(FutureWarning("old"), FutureWarning, warnings.__file__, 1, "x = 1")
    assert "FutureWarning: old" in other
