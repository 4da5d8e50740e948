"""Progress: plain lines in log files (first update, every N seconds, each tenth, the end), the bar
on a terminal, and the DPO reference pre-pass reporting through it."""

from __future__ import annotations

import io
import re

import pytest

from alignlab.errors import ConfigError
from alignlab.progress import Progress, format_duration, line_interval


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def run_steps(total: int, upto: int, seconds_per_step: float = 1.0, **kw) -> list[str]:
    clock, out = Clock(), io.StringIO()
    with Progress("train", total, stream=out, clock=clock, **kw) as bar:
        for step in range(kw.get("completed", 0) + 1, upto + 1):
            clock.t += seconds_per_step
            bar.update(step, info=f"loss {1 / step:.4f}")
    return out.getvalue().splitlines()


def steps_of(lines: list[str]) -> list[int]:
    return [int(re.match(r"train: step (\d+)/", line).group(1)) for line in lines]


def test_a_line_at_the_first_update_each_tenth_and_the_end():
    lines = run_steps(100, 100, every_s=30)
    assert steps_of(lines) == [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    # One step a second: 10 done in 10 s, 90 left.
    assert lines[1] == "train: step 10/100 (10%) | loss 0.1000 | 1.00 step/s | elapsed 10s | eta 1m30s"
    assert lines[-1] == "train: step 100/100 (100%) | loss 0.0100 | 1.00 step/s | elapsed 1m40s"


def test_a_line_every_interval_on_a_long_run_and_one_for_where_it_stopped():
    lines = run_steps(1000, 95, every_s=30)  # stopped early (an error, Ctrl-C): close() writes the last state
    assert steps_of(lines) == [1, 31, 61, 91, 95]
    assert lines[2].endswith("| 1.00 step/s | elapsed 1m01s | eta 15m39s")


def test_rate_counts_only_the_work_of_this_run_and_slow_rates_read_per_unit():
    lines = run_steps(10, 4, seconds_per_step=2.0, completed=2, every_s=0)
    assert lines == [
        "train: step 3/10 (30%) | loss 0.3333 | 2.00 s/step | elapsed 2s | eta 14s",
        "train: step 4/10 (40%) | loss 0.2500 | 2.00 s/step | elapsed 4s | eta 12s",
    ]


def test_disabled_writes_nothing_and_durations_read_naturally():
    assert run_steps(10, 10, enabled=False, every_s=0) == []
    assert [format_duration(s) for s in (0, 42.4, 578, 11100)] == ["0s", "42s", "9m38s", "3h05m"]


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.delenv("ALIGNLAB_PROGRESS_SECONDS", raising=False)
    assert line_interval() == 30.0
    monkeypatch.setenv("ALIGNLAB_PROGRESS_SECONDS", "0")
    assert line_interval() == 0.0 and len(run_steps(50, 50)) == 50
    monkeypatch.setenv("ALIGNLAB_PROGRESS_SECONDS", "soon")
    with pytest.raises(ConfigError, match=r"ALIGNLAB_PROGRESS_SECONDS='soon': give the seconds"):
        line_interval()


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_bar_not_lines():
    out = FakeTerminal()
    with Progress("train", 5, stream=out, every_s=0) as bar:
        for step in range(1, 6):
            bar.update(step, info="loss 1.0000")
    shown = out.getvalue()
    assert "5/5" in shown and "loss 1.0000" in shown and "| elapsed" not in shown


def test_reference_pre_pass_reports_progress_in_a_log(tiny_tokenizer, capsys, monkeypatch):
    from transformers import AutoModelForCausalLM

    from alignlab.data.collators import pad_batch
    from alignlab.data.schema import assistant, user
    from alignlab.data.templating import encode_prompt_response, ensure_chat_template
    from alignlab.modeling.logprobs import TokenBatch, model_sequence_logps
    from alignlab.modeling.tiny import tiny_model_config
    from alignlab.training.refcache import compute_item_logps

    monkeypatch.setenv("ALIGNLAB_PROGRESS_SECONDS", "0")
    ensure_chat_template(tiny_tokenizer)
    model = AutoModelForCausalLM.from_config(tiny_model_config(
        "llama", len(tiny_tokenizer), hidden_size=16, num_layers=1, num_heads=2, max_positions=128,
        bos_token_id=0, eos_token_id=1, pad_token_id=2,
    ))
    seqs = [
        encode_prompt_response(tiny_tokenizer, [user(f"Say {i}.")], [assistant(str(i) * i)])
        for i in range(1, 6)
    ]
    def logps(m, batch):
        return {"chosen": model_sequence_logps(m, TokenBatch.of(batch))}

    out = compute_item_logps(model, {"train": seqs, "eval": seqs[:3]}, ("chosen",),
                             lambda b: pad_batch(b, 2), logps, batch_size=2, length=len)
    assert out["train/chosen"].shape == (5,) and out["eval/chosen_tokens"].shape == (3,)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("reference log-probs")]
    # Batches of 2 over 5 + 3 items.
    assert [re.search(r"item (\d+/\d+)", line).group(1) for line in lines] == [
        "2/8",
        "4/8",
        "5/8",
        "7/8",
        "8/8",
    ]
