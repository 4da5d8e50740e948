"""`train.compile`: a compiled run follows the uncompiled one, resumes, and saves the module's own weights.

The tests compile with the `aot_eager` backend (through `train.compile_backend`): it traces forward
and backward as inductor does but skips code generation, which on CPU takes tens of seconds.
"""

from __future__ import annotations

import pytest
import torch
from cli_support import read_metrics, run_cli
from loop_worker import PAD_ID, collate, count_targets, make_examples, sft_step
from safetensors.torch import load_file
from test_sft import write_messages
from transformers import AutoModelForCausalLM

from alignlab.config import OptimConfig, ScheduleConfig, TrainConfig
from alignlab.config.core import load_config
from alignlab.config.lm import SFTConfig
from alignlab.errors import ConfigError
from alignlab.io import read_jsonl
from alignlab.modeling.tiny import tiny_model_config
from alignlab.training.checkpoint import list_checkpoints
from alignlab.training.loop import train

BACKEND = {"compile": True, "compile_backend": "aot_eager"}


def tiny() -> torch.nn.Module:
    cfg = tiny_model_config("llama", 320, hidden_size=32, num_layers=2, num_heads=4, max_positions=64,
                            bos_token_id=0, eos_token_id=1, pad_token_id=PAD_ID)  # fmt: skip
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg)


def run(model, out, examples, step_fn=sft_step, **train_kw):
    cfg = TrainConfig(**{"progress": False, "save_every": None, "max_steps": 6, "batch_size": 4, **train_kw})
    return train(model, step_fn, count_targets, examples, collate, output_dir=out, train=cfg,
                 optim=OptimConfig(lr=1e-2, max_grad_norm=1.0), schedule=ScheduleConfig(kind="constant"))


def compiled_graphs() -> int:
    """Graphs torch.compile has built in this process so far."""
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def losses(out) -> list[float]:
    return [r["loss"] for r in read_jsonl(out / "metrics.jsonl")]


def test_compiled_run_follows_the_uncompiled_one_resumes_and_keeps_parameter_names(tmp_path):
    examples = make_examples(24, 320)
    plain = run(tiny(), tmp_path / "plain", examples)

    # Interrupted in step 4 (after the step-2 checkpoint), then resumed compiled again.
    calls = {"n": 0}

    def crashing(model, batch):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("simulated crash")
        return sft_step(model, batch)

    model, graphs = tiny(), compiled_graphs()
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(model, tmp_path / "compiled", examples, step_fn=crashing, save_every=2, **BACKEND)
    assert compiled_graphs() > graphs  # the blocks did run compiled
    # The compiled forwards are undone however training ends; the checkpoint holds the plain names.
    assert not any("forward" in vars(m) for m in model.modules())
    (checkpoint,) = list_checkpoints(tmp_path / "compiled")
    weights = load_file(next(checkpoint.glob("**/model.safetensors")))
    assert set(weights) <= set(tiny().state_dict()) and not any("_orig_mod" in k for k in weights)

    model = tiny()
    resumed = run(model, tmp_path / "compiled", examples, save_every=2, **BACKEND)
    assert resumed.global_step == 6 and not any("forward" in vars(m) for m in model.modules())
    assert losses(tmp_path / "compiled") == pytest.approx(losses(tmp_path / "plain"), rel=1e-4, abs=1e-5)
    assert set(resumed.state_dict) == set(plain.state_dict)
    for name, tensor in resumed.state_dict.items():
        torch.testing.assert_close(tensor, plain.state_dict[name], atol=1e-4, rtol=1e-3)


def test_sft_stage_compiled_on_laid_out_batches_matches_uncompiled(tmp_path, tiny_model_dir):
    data = write_messages(tmp_path / "train.jsonl")
    common = ["sft", "--model", str(tiny_model_dir("llama")), "--data", str(data), "--max-steps", "4",
              "train.batch_size=2", "train.save_every=null", "train.progress=false", "optim.lr=3e-3"]
    run_cli(*common, "--output", tmp_path / "plain")
    graphs = compiled_graphs()
    run_cli(*common, "--output", tmp_path / "compiled", "train.compile=true",
            "train.compile_backend=aot_eager")
    assert compiled_graphs() > graphs
    want, got = read_metrics(tmp_path / "plain"), read_metrics(tmp_path / "compiled")
    assert [r["loss"] for r in got] == pytest.approx([r["loss"] for r in want], rel=1e-4, abs=1e-5)
    saved = load_file(tmp_path / "compiled" / "model.safetensors")
    assert set(saved) == set(load_file(tmp_path / "plain" / "model.safetensors"))


@pytest.mark.parametrize("value", ["fastest", "2"])
def test_a_bad_compile_value_is_a_config_error(value):
    with pytest.raises(ConfigError, match=r"config key 'train.compile':.*expected true, false or an inductor "
                       r"mode \(default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs\)"):
        load_config(SFTConfig, base={"model": "m", "data": {"path": "d.jsonl"}},
                    overrides=[f"train.compile={value}"])
    assert load_config(SFTConfig, base={"model": "m", "data": {"path": "d.jsonl"}},
                       overrides=["train.compile=max-autotune"]).train.compile == "max-autotune"


def test_a_bad_backend_or_a_mode_without_inductor_is_a_config_error(tmp_path):
    examples = make_examples(4, 320)
    with pytest.raises(ConfigError, match="train.compile_backend: 'nope' is not a torch.compile backend"):
        run(tiny(), tmp_path / "a", examples, compile=True, compile_backend="nope")
    with pytest.raises(ConfigError, match="modes belong to the inductor backend"):
        run(tiny(), tmp_path / "b", examples, compile="max-autotune", compile_backend="aot_eager")
