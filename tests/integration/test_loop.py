"""The one training loop on tiny models: accumulation invariance, data order (shuffled or grouped
by length), precision, LoRA, checkpoints, exact resume after SIGKILL, NaN guard, metrics, trackers
and the progress bar."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from loop_worker import PAD_ID, collate, count_targets, make_examples, sft_step
from transformers import AutoModelForCausalLM

from alignlab.config import OptimConfig, ScheduleConfig, TrainConfig
from alignlab.errors import ConfigError, TrainingError
from alignlab.io import read_jsonl
from alignlab.losses.sft import token_nll
from alignlab.modeling.tiny import tiny_model_config
from alignlab.training import loop
from alignlab.training.checkpoint import STATE_FILE, TrainerState, list_checkpoints
from alignlab.training.loop import StepOutput, build_optimizer, train
from alignlab.training.schedule import EpochSampler, LengthGroupedSampler, count_total_steps, lr_multiplier

VOCAB = 320


def tiny(arch: str = "llama", seed: int = 0) -> torch.nn.Module:
    cfg = tiny_model_config(
        arch, VOCAB, hidden_size=32, num_layers=2, num_heads=4, max_positions=64,
        bos_token_id=0, eos_token_id=1, pad_token_id=PAD_ID,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(cfg)


def run(model, out: Path, examples, *, step_fn=sft_step, eval_fn=None, optim=None, schedule=None,
        example_length=None, **train_kw):
    cfg = TrainConfig(**{"progress": False, "save_every": None, **train_kw})
    return train(
        model, step_fn, count_targets, examples, collate, output_dir=out, train=cfg,
        optim=optim or OptimConfig(lr=1e-2, weight_decay=0.1, max_grad_norm=1.0),
        schedule=schedule or ScheduleConfig(kind="cosine", warmup_steps=1, min_lr_ratio=0.1),
        eval_fn=eval_fn, example_length=example_length,
    )


def token_count(example: dict) -> int:
    return len(example["input_ids"])


def padding(batches: list[list[int]], lengths: list[int]) -> int:
    """Pad tokens the collator adds to these micro-batches of example indices."""
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


def targets(ex: dict) -> int:
    return len(ex["input_ids"]) - max(ex["prompt_len"], 1)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module, atol: float = 2e-5) -> None:
    sb = b.state_dict()
    for name, t in a.state_dict().items():
        torch.testing.assert_close(t, sb[name], atol=atol, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


def logged(out: Path) -> list[dict]:
    return read_jsonl(out / "metrics.jsonl")


# ------------------------------------------------------------------------------- optimizer, steps


def test_adamw_groups_skip_decay_on_biases_norms_and_frozen_parameters():
    model = tiny("gpt2")
    model.transformer.wpe.weight.requires_grad_(False)
    opt = build_optimizer(model, OptimConfig(lr=3e-4, weight_decay=0.1, betas=(0.8, 0.95), eps=1e-6))
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {names[id(p)] for p in opt.param_groups[0]["params"]}
    no_decay = {names[id(p)] for p in opt.param_groups[1]["params"]}
    assert opt.param_groups[0]["weight_decay"] == 0.1 and opt.param_groups[1]["weight_decay"] == 0.0
    assert "transformer.h.0.attn.c_attn.weight" in decay and "transformer.wte.weight" in decay
    assert {"transformer.h.0.ln_1.weight", "transformer.h.0.ln_1.bias", "transformer.h.1.mlp.c_fc.bias",
            "transformer.ln_f.weight"} <= no_decay
    assert not any(n.endswith("bias") or ".ln_" in n for n in decay)
    assert "transformer.wpe.weight" not in decay | no_decay  # frozen: not optimised at all
    assert opt.defaults["betas"] == (0.8, 0.95) and opt.defaults["eps"] == 1e-6


def test_total_steps_and_sampler_order():
    # 10 examples, 5 micro-batches of 2 per epoch, accumulation 2 -> groups 2, 2, 1 -> 3 steps/epoch.
    kw = dict(batch_size=2, grad_accum=2, max_steps=None)
    assert count_total_steps(10, epochs=2, **kw) == 6
    assert count_total_steps(10, epochs=0.5, **kw) == 2
    assert count_total_steps(10, epochs=2, **{**kw, "max_steps": 7}) == 7
    assert count_total_steps(10, epochs=1, num_processes=2, **kw) == 2  # 5 per process -> 3 mb -> 2

    s = EpochSampler(10, seed=5)
    assert sorted(s.order(0)) == list(range(10)) and s.order(0) != s.order(1)
    assert EpochSampler(10, seed=5).order(1) == s.order(1) != EpochSampler(10, seed=6).order(1)
    s.set_position(1, 4)
    assert list(s) == s.order(1)[4:]
    shards = [EpochSampler(10, seed=5, num_processes=4, process_index=r) for r in range(4)]
    for sh in shards:
        sh.set_position(0, 3)
    dealt = [list(sh) for sh in shards]
    rest = s.order(0)[3:]  # 7 left, padded to 8 by wrapping
    assert dealt == [rest[0::4], rest[1::4], rest[2::4], rest[3::4] + [rest[0]]]


def test_epochs_visit_every_example_once_in_the_seeded_order(tmp_path):
    examples = make_examples(10, VOCAB)
    seen: list[int] = []

    def recording_step(model, batch):
        seen.extend(batch["idx"].tolist())
        return sft_step(model, batch)

    result = run(
        tiny(), tmp_path, examples, step_fn=recording_step, batch_size=2, grad_accum=2, epochs=2, seed=5
    )
    assert result.global_step == 6
    order = EpochSampler(10, seed=5)
    assert seen == order.order(0) + order.order(1)
    assert [r["epoch"] for r in logged(tmp_path)] == [0.4, 0.8, 1.0, 1.4, 1.8, 2.0]


def test_group_by_length_feeds_the_grouped_order_and_resumes_exactly(tmp_path):
    examples = make_examples(24, VOCAB, seed=9)
    lengths = [token_count(e) for e in examples]
    kw = dict(batch_size=2, grad_accum=2, max_steps=6, seed=4, group_by_length=True, save_every=3,
              example_length=token_count)
    seen: list[list[int]] = []

    def recording_step(model, batch):
        seen.append(batch["idx"].tolist())
        return sft_step(model, batch)

    straight = run(tiny(), tmp_path / "straight", examples, step_fn=recording_step, **kw)
    order = LengthGroupedSampler(lengths, batch_size=2, seed=4).order(0)
    assert [i for b in seen for i in b] == order
    assert lengths[seen[0][0]] == max(lengths)  # the widest micro-batch runs first
    shuffled = EpochSampler(24, seed=4).order(0)
    random_batches = [shuffled[k : k + 2] for k in range(0, 24, 2)]
    assert padding(seen, lengths) < 0.25 * padding(random_batches, lengths)

    # Interrupted in step 5 (after the step-3 checkpoint), then resumed: the same course as straight.
    calls = {"n": 0}

    def crashing(model, batch):
        calls["n"] += 1
        if calls["n"] == 9:
            raise RuntimeError("simulated crash")
        return sft_step(model, batch)

    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tiny(), tmp_path / "resumed", examples, step_fn=crashing, **kw)
    assert [r["step"] for r in logged(tmp_path / "resumed")] == [1, 2, 3, 4]
    resumed = run(tiny(), tmp_path / "resumed", examples, **kw)
    assert resumed.global_step == straight.global_step == 6
    rows_r, rows_s = logged(tmp_path / "resumed"), logged(tmp_path / "straight")
    assert [r["step"] for r in rows_r] == list(range(1, 7))
    assert [r["items"] for r in rows_r] == [r["items"] for r in rows_s]
    assert [r["loss"] for r in rows_r] == pytest.approx([r["loss"] for r in rows_s], rel=1e-5, abs=1e-6)
    assert_same_weights(resumed.model, straight.model)


def test_group_by_length_without_a_length_function_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"train.group_by_length.*set it to false"):
        run(tiny(), tmp_path, make_examples(4, VOCAB), batch_size=2, max_steps=1, group_by_length=True)


# ------------------------------------------------------------------------------- accumulation


def test_batch8_accum1_equals_batch1_accum8(tmp_path):
    examples = make_examples(16, VOCAB, seed=1)
    lengths = {len(e["input_ids"]) for e in examples}
    assert len(lengths) > 8  # different lengths, so padding and per-example token counts differ

    init = tiny()
    first = [examples[i] for i in EpochSampler(16, seed=0).order(0)[:8]]
    batch = collate(first)
    with torch.no_grad():
        nll = token_nll(
            init(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, batch["labels"]
        )
    expected_loss = float(nll.total) / int(nll.num_tokens)

    optim = OptimConfig(lr=1e-2, weight_decay=0.1, max_grad_norm=0.5)
    a = run(tiny(), tmp_path / "a", examples, batch_size=8, grad_accum=1, epochs=2, optim=optim)
    b = run(tiny(), tmp_path / "b", examples, batch_size=1, grad_accum=8, epochs=2, optim=optim)
    assert a.global_step == b.global_step == 4
    assert_same_weights(a.model, b.model)
    with torch.no_grad():
        moved = max(
            float((p - q).abs().max()) for p, q in zip(a.model.parameters(), init.parameters(), strict=True)
        )
    assert moved > 1e-2  # the comparison is not between two untrained models

    la, lb = logged(tmp_path / "a"), logged(tmp_path / "b")
    assert la[0]["items"] == lb[0]["items"] == sum(targets(e) for e in first) == int(nll.num_tokens)
    assert la[0]["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert [r["loss"] for r in la] == pytest.approx([r["loss"] for r in lb], rel=1e-5)
    assert [r["grad_norm"] for r in la] == pytest.approx([r["grad_norm"] for r in lb], rel=1e-4)
    assert all(r["grad_norm"] > 0.5 for r in la)  # so clipping was active and had to agree too


def test_incomplete_last_group_is_normalised_over_the_items_present(tmp_path):
    examples = make_examples(10, VOCAB, seed=2)
    # 10 examples: batch 1 x accumulation 4 runs groups of 4, 4, 2; batch 4 x 1 runs 4, 4, 2 rows.
    a = run(tiny(), tmp_path / "a", examples, batch_size=1, grad_accum=4, epochs=1)
    b = run(tiny(), tmp_path / "b", examples, batch_size=4, grad_accum=1, epochs=1)
    assert a.global_step == b.global_step == 3
    assert_same_weights(a.model, b.model)
    last_two = [examples[i] for i in EpochSampler(10, seed=0).order(0)[8:]]
    assert logged(tmp_path / "a")[-1]["items"] == sum(targets(e) for e in last_two)
    assert sum(r["items"] for r in logged(tmp_path / "a")) == sum(targets(e) for e in examples)


# ------------------------------------------------------------------------------- precision, LoRA


def test_bf16_autocasts_on_cpu_and_fp16_on_cpu_is_a_config_error(tmp_path):
    examples = make_examples(8, VOCAB, seed=3)
    seen = []

    def probe(model, batch):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return sft_step(model, batch)

    fp32 = run(tiny(), tmp_path / "fp32", examples, batch_size=4, max_steps=2)
    bf16 = run(
        tiny(), tmp_path / "bf16", examples, step_fn=probe, batch_size=4, max_steps=2, precision="bf16"
    )
    assert seen == [(True, torch.bfloat16)] * 2
    assert next(bf16.model.parameters()).dtype == torch.float32  # fp32 master weights
    assert logged(tmp_path / "bf16")[0]["loss"] == pytest.approx(
        logged(tmp_path / "fp32")[0]["loss"], rel=2e-2
    )
    assert fp32.global_step == bf16.global_step == 2
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"train.precision=fp16.*GPU"):
            run(tiny(), tmp_path / "fp16", examples, batch_size=4, max_steps=1, precision="fp16")


def _lora(model):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    )


def test_lora_trains_with_gradient_checkpointing_and_resumes(tmp_path):
    examples = make_examples(8, VOCAB, seed=4)
    base = {k: v.clone() for k, v in tiny().state_dict().items()}
    plain = run(_lora(tiny()), tmp_path / "plain", examples, batch_size=4, max_steps=3)
    gc_model = _lora(tiny())
    gc = run(gc_model, tmp_path / "gc", examples, batch_size=4, max_steps=3, gradient_checkpointing=True,
             keep_final_checkpoint=True)
    assert any(getattr(m, "gradient_checkpointing", False) is True for m in gc_model.modules())
    # Recomputing activations changes memory, not maths.
    assert [r["loss"] for r in logged(tmp_path / "gc")] == pytest.approx(
        [r["loss"] for r in logged(tmp_path / "plain")], rel=1e-6
    )
    assert_same_weights(gc.model, plain.model, atol=1e-6)
    trained = {k: v.clone() for k, v in gc.model.state_dict().items()}
    lora_b = [v for k, v in trained.items() if "lora_B" in k]
    assert lora_b and all(float(v.abs().max()) > 0 for v in lora_b)  # B starts at zero
    for k, v in trained.items():
        if "lora_" not in k:
            torch.testing.assert_close(v, base[k.replace("base_model.model.", "").replace(".base_layer", "")])

    # A fresh adapter resumed from the finished run's checkpoint holds the trained weights.
    again = run(
        _lora(tiny()),
        tmp_path / "gc",
        examples,
        batch_size=4,
        max_steps=3,
        gradient_checkpointing=True,
        keep_final_checkpoint=True,
    )
    assert again.global_step == 3
    for k, v in again.model.state_dict().items():
        torch.testing.assert_close(v, trained[k])


# ------------------------------------------------------------------------------- checkpoints


class _Interrupted(Exception):
    pass


def _gpt2_lora(target_modules=("c_attn",)):
    from peft import LoraConfig, get_peft_model

    # GPT-2 and LoRA both keep dropout on, so the restored RNG state matters.
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=list(target_modules))
    return get_peft_model(tiny("gpt2"), cfg)


def test_lora_checkpoints_hold_only_the_adapter_and_resume_exactly(tmp_path):
    from safetensors import safe_open

    examples = make_examples(16, VOCAB, seed=9)
    settings = {"batch_size": 2, "max_steps": 6, "save_every": 2, "keep_last": 1}
    calls = {"n": 0}

    def stops_at_step_5(model, batch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise _Interrupted
        return sft_step(model, batch)

    model = _gpt2_lora()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    with pytest.raises(_Interrupted):
        run(model, tmp_path / "resumed", examples, step_fn=stops_at_step_5, **settings)
    ckpt = tmp_path / "resumed" / "checkpoints" / "step-0000004"
    with safe_open(str(ckpt / "model.safetensors"), framework="pt") as f:
        saved = set(f.keys())  # noqa: SIM118
    assert saved == set(trainable)  # the adapter only, not the frozen base model
    adapter_bytes = sum(p.numel() * p.element_size() for p in trainable.values())
    full_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert (ckpt / "model.safetensors").stat().st_size < adapter_bytes + 8192 < full_bytes / 5

    resumed = run(_gpt2_lora(), tmp_path / "resumed", examples, **settings)
    straight = run(_gpt2_lora(), tmp_path / "straight", examples, **settings)
    assert resumed.global_step == straight.global_step == 6
    assert [r["step"] for r in logged(tmp_path / "resumed")] == list(range(1, 7))
    assert [r["loss"] for r in logged(tmp_path / "resumed")] == [
        r["loss"] for r in logged(tmp_path / "straight")
    ]
    assert_same_weights(resumed.model, straight.model, atol=0)

    # A checkpoint of other adapters cannot be resumed into this model: a clear error, not a half load.
    calls["n"] = 0
    with pytest.raises(_Interrupted):
        run(_gpt2_lora(), tmp_path / "other", examples, step_fn=stops_at_step_5, **settings)
    with pytest.raises(TrainingError, match=r"step-0000004: cannot resume from this checkpoint.*c_proj"):
        run(_gpt2_lora(("c_attn", "c_proj")), tmp_path / "other", examples, **settings)



def test_checkpoints_are_rotated_and_stale_temporaries_removed(tmp_path):
    examples = make_examples(16, VOCAB, seed=5)
    stale = tmp_path / "checkpoints" / ".tmp-step-0000003"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_text("half written")
    run(
        tiny(),
        tmp_path,
        examples,
        batch_size=4,
        max_steps=5,
        save_every=2,
        keep_last=2,
        keep_final_checkpoint=True,
    )

    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-0000004", "step-0000005"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-0000004", "step-0000005"]
    last = tmp_path / "checkpoints" / "step-0000005"
    assert {
        "model.safetensors",
        "optimizer.bin",
        "random_states_0.pkl",
        "custom_checkpoint_0.pkl",
        STATE_FILE,
    } <= {p.name for p in last.iterdir()}
    state = TrainerState.from_json(last / STATE_FILE)
    # 16 examples in batches of 4: 4 steps per epoch, so step 5 ends 4 examples into epoch 1.
    assert (state.global_step, state.epoch, state.epoch_position, state.total_steps) == (5, 1, 4, 5)
    assert state.last_metrics["step"] == 5 and state.last_metrics["loss"] == logged(tmp_path)[-1]["loss"]
    sched = torch.load(last / "custom_checkpoint_0.pkl", weights_only=False)
    assert sched["last_epoch"] == 5

    calls = []
    done = run(tiny(), tmp_path, examples, step_fn=lambda m, b: calls.append(1) or sft_step(m, b),
               batch_size=4, max_steps=5, save_every=2, keep_last=2, keep_final_checkpoint=True)
    assert calls == [] and done.global_step == 5 and len(logged(tmp_path)) == 5  # finished: nothing re-run

    # start over
    run(tiny(), tmp_path, examples, batch_size=4, max_steps=1, resume=False, keep_final_checkpoint=True)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-0000001"]
    assert [r["step"] for r in logged(tmp_path)] == [1]


def test_a_finished_run_removes_its_checkpoints_unless_asked_to_keep_the_final_one(tmp_path):
    examples = make_examples(16, VOCAB, seed=10)
    seen = []

    def watching(model, batch):
        seen.append([p.name for p in list_checkpoints(tmp_path / "default")])
        return sft_step(model, batch)

    done = run(
        tiny(), tmp_path / "default", examples, step_fn=watching, batch_size=4, max_steps=5, save_every=2
    )
    assert seen[-1] == ["step-0000002", "step-0000004"]  # written while the run could still be interrupted
    assert not (tmp_path / "default" / "checkpoints").exists()  # and gone once it finished
    assert done.global_step == 5 and [r["step"] for r in logged(tmp_path / "default")] == [1, 2, 3, 4, 5]
    kept = run(
        tiny(),
        tmp_path / "kept",
        examples,
        batch_size=4,
        max_steps=5,
        save_every=2,
        keep_final_checkpoint=True,
    )
    assert [p.name for p in list_checkpoints(tmp_path / "kept")] == ["step-0000004", "step-0000005"]
    assert_same_weights(done.model, kept.model, atol=0)
    assert TrainConfig().keep_final_checkpoint is False


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    model_dir = tmp_path / "model"
    tiny("gpt2").save_pretrained(model_dir)  # GPT-2 keeps dropout on: the RNG state must be restored
    examples = make_examples(24, VOCAB, seed=6)
    (tmp_path / "data.json").write_text(json.dumps(examples))
    settings = {
        "train": {"batch_size": 2, "grad_accum": 2, "max_steps": 10, "save_every": 2, "keep_last": 2,
                  "progress": False, "seed": 3},
        "optim": {"lr": 5e-3, "weight_decay": 0.1},
        "schedule": {"kind": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1},
        "sleep_s": 0.15,
    }
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    killed = tmp_path / "killed"
    log = (tmp_path / "worker.log").open("w")
    worker = Path(__file__).with_name("loop_worker.py")
    proc = subprocess.Popen(
        [sys.executable, str(worker), str(model_dir), str(tmp_path / "data.json"), str(killed),
         str(tmp_path / "settings.json")],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while not any(int(p.name[5:]) >= 4 for p in list_checkpoints(killed)):
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker made no checkpoint in time"
            time.sleep(0.05)
        # Prefer a kill just after a step was logged but before it was checkpointed.
        while (proc.poll() is None and time.monotonic() < deadline
               and (killed / "metrics.jsonl").read_text().count("\n") % 2 == 0):
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "checkpoints" / "step-0000010").exists()

    def resume_or_start(out: Path):
        return train(
            AutoModelForCausalLM.from_pretrained(model_dir), sft_step, count_targets, examples, collate,
            output_dir=out, train=TrainConfig(**settings["train"]), optim=OptimConfig(**settings["optim"]),
            schedule=ScheduleConfig(**settings["schedule"]),
        )

    resumed = resume_or_start(killed)
    straight = resume_or_start(tmp_path / "straight")
    assert resumed.global_step == straight.global_step == 10
    rows_r, rows_s = logged(killed), logged(tmp_path / "straight")
    assert [r["step"] for r in rows_r] == list(range(1, 11))  # no duplicates, no gaps
    assert [r["loss"] for r in rows_r] == pytest.approx([r["loss"] for r in rows_s], rel=1e-5, abs=1e-6)
    assert [r["lr"] for r in rows_r] == pytest.approx([r["lr"] for r in rows_s], rel=1e-9)
    assert [r["epoch"] for r in rows_r] == [r["epoch"] for r in rows_s]
    assert_same_weights(resumed.model, straight.model)


# ------------------------------------------------------------------------------- NaN guard


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    examples = make_examples(16, VOCAB, seed=7)
    calls = {"n": 0}

    def poisoned(model, batch):
        calls["n"] += 1
        out = sft_step(model, batch)
        # Step 3 (micro-batches 5 and 6 with accumulation 2) returns NaN on its first micro-batch.
        return StepOutput(out.loss * float("nan"), out.metrics) if calls["n"] == 5 else out

    with pytest.raises(TrainingError) as err:
        run(
            tiny(),
            tmp_path,
            examples,
            step_fn=poisoned,
            batch_size=2,
            grad_accum=2,
            max_steps=6,
            save_every=2,
        )
    msg = str(err.value)
    good = tmp_path / "checkpoints" / "step-0000002"
    assert "\n" not in msg
    assert msg.startswith("step 3: the training loss became nan")
    assert str(good) in msg and "optim.lr" in msg and "precision" in msg
    assert [r["step"] for r in logged(tmp_path)] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-0000002"]
    assert TrainerState.from_json(good / STATE_FILE).global_step == 2


# ------------------------------------------------------------------------------- metrics, eval, trackers


def test_metrics_lines_eval_prefix_and_item_weighted_method_metrics(tmp_path):
    examples = make_examples(24, VOCAB, seed=8)
    evals = []

    def eval_fn(model):
        evals.append(model.training)
        return {"score": float(len(evals))}

    run(tiny(), tmp_path, examples, eval_fn=eval_fn, batch_size=2, grad_accum=2, max_steps=6,
        log_every=2, eval_every=3, schedule=ScheduleConfig(kind="cosine", warmup_steps=2, min_lr_ratio=0.1),
        optim=OptimConfig(lr=1e-3, max_grad_norm=None))
    rows = logged(tmp_path)
    assert [r["step"] for r in rows] == [2, 3, 4, 6]
    assert [r.get("eval/score") for r in rows] == [None, 1.0, None, 2.0]
    assert len(evals) == 2
    for r in rows:
        assert {
            "epoch",
            "loss",
            "lr",
            "grad_norm",
            "items",
            "items_per_s",
            "tokens_per_s",
            "elapsed_s",
            "nll",
        } <= set(r)
        assert r["lr"] == pytest.approx(
            1e-3 * lr_multiplier(r["step"] - 1, total_steps=6, warmup_steps=2, min_lr_ratio=0.1)
        )
        # Per-micro-batch means weighted by their items average back to the step's token mean.
        assert r["nll"] == pytest.approx(r["loss"], rel=1e-6)
        assert math.isfinite(r["grad_norm"]) and r["grad_norm"] > 0
    assert rows[0]["elapsed_s"] < rows[-1]["elapsed_s"]


def test_tensorboard_tracker_writes_the_logged_scalars(tmp_path):
    if importlib.util.find_spec("tensorboard") is None:
        pytest.skip("tensorboard is not installed (pip install 'alignlab[tracking]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(tiny(), tmp_path, make_examples(8, VOCAB), batch_size=4, max_steps=2, trackers=["tensorboard"])
    runs = {p.parent for p in (tmp_path / "trackers").rglob("events.out.tfevents*")}
    losses = []
    for d in runs:  # the hparams summary may sit in a run directory of its own
        acc = EventAccumulator(str(d))
        acc.Reload()
        if "loss" in acc.Tags()["scalars"]:
            losses = [e.value for e in acc.Scalars("loss")]
    assert losses == pytest.approx([r["loss"] for r in logged(tmp_path)], rel=1e-6)


def test_missing_tracker_package_is_a_config_error(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        loop.importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"train.trackers: 'wandb' is not installed"):
        run(tiny(), tmp_path, make_examples(4, VOCAB), batch_size=4, max_steps=1, trackers=["wandb"])


def test_progress_bar_shows_steps_loss_and_lr(tmp_path, capsys):
    run(tiny(), tmp_path, make_examples(8, VOCAB), batch_size=4, max_steps=2, progress=True)
    shown = capsys.readouterr().out
    last = logged(tmp_path)[-1]
    assert "2/2" in shown and f"loss {last['loss']:.4f}" in shown and f"lr {last['lr']:.2e}" in shown
    run(tiny(), tmp_path / "quiet", make_examples(8, VOCAB), batch_size=4, max_steps=2, progress=False)
    assert "loss" not in capsys.readouterr().out


def test_progress_in_a_log_file_is_plain_lines_written_as_the_run_goes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ALIGNLAB_PROGRESS_SECONDS", "0")  # a line every step instead of every 30 s
    run(tiny(), tmp_path, make_examples(12, VOCAB), batch_size=4, max_steps=3, progress=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("train: step")]
    rows = logged(tmp_path)
    assert len(lines) == 3
    for k, (line, row) in enumerate(zip(lines, rows, strict=True), 1):
        assert line.startswith(
            f"train: step {k}/3 ({100 * k // 3}%) | loss {row['loss']:.4f}  lr {row['lr']:.2e} | "
        )
        assert ("| eta " in line) == (k < 3)
