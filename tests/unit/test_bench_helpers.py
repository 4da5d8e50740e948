"""The figures the benchmarks report: model FLOPs per token (for MFU), steady step time, medians and
ratios."""

import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "gpu"))
import bench_gpu  # noqa: E402
from common import Measured, alignlab_layout, padded, runs_from_log, summarise  # noqa: E402


def tiny_qwen2():
    from alignlab.modeling.tiny import tiny_model_config

    return tiny_model_config("qwen2", 10, hidden_size=4, num_layers=1, num_heads=2, num_kv_heads=1,
                             intermediate_size=8, tie_word_embeddings=True)  # fmt: skip


def test_matmul_parameters_count_the_tied_head_once():
    # embedding = head 10x4 = 40; q 4x4+4 = 20; k, v 4x2+2 = 10 each; o 4x4 = 16; MLP 3 x 32 = 96;
    # three norms of 4 = 12.  Total 204.
    assert bench_gpu.matmul_params(tiny_qwen2()) == 204


def test_model_flops_per_token_are_6n_plus_attention_and_2n_for_the_reference():
    config = tiny_qwen2()  # N = 204, L = 1, d = 2 heads x 2 = 4
    # One sequence of 3 tokens: training 6*204*3 + 12*1*4*3^2 = 3672 + 432 = 4104 -> 1368 per token.
    assert bench_gpu.flops_per_token(config, [3], with_reference=False) == pytest.approx(1368)
    # Reference forward: 2*204*3 + 4*1*4*3^2 = 1224 + 144 = 1368 more -> 5472 / 3 = 1824 per token.
    assert bench_gpu.flops_per_token(config, [3], with_reference=True) == pytest.approx(1824)
    # Lengths 1 and 3: 6*204*4 + 12*4*(1 + 9) = 4896 + 480 = 5376 over 4 tokens.
    assert bench_gpu.flops_per_token(config, [1, 3], with_reference=False) == pytest.approx(1344)


def test_peak_flops_come_from_the_device_name_or_the_override():
    assert bench_gpu.peak_flops("NVIDIA H200", None) == 989e12
    assert bench_gpu.peak_flops("NVIDIA H100 80GB HBM3", None) == 989e12
    assert bench_gpu.peak_flops("NVIDIA A10G", None) is None
    assert bench_gpu.peak_flops("NVIDIA A10G", 125.0) == 125e12


def test_measured_times_each_optimizer_step_and_leaves_out_the_first():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=0.1)
    with Measured() as m, m.timed("train"):
        for _ in range(3):
            p.grad = torch.ones(2)
            opt.step()
    assert len(m.step_ends) == 3
    out = m.result(tokens=30, pairs=3, steps=3)
    step_s = (m.step_ends[2][0] - m.step_ends[0][0]) / 2
    assert out["step_s"] == pytest.approx(step_s, abs=1e-4)
    assert out["steady_tokens_per_s"] == pytest.approx(10 / step_s, rel=1e-2)
    assert out["step_cpu_s"] == pytest.approx((m.step_ends[2][1] - m.step_ends[0][1]) / 2, abs=1e-4)
    cpu_s = sum(m.cpu_seconds.values())
    assert cpu_s > 0 and out["cpu_tokens_per_s"] == pytest.approx(30 / cpu_s, rel=1e-3)
    with pytest.raises(RuntimeError, match="3 optimizer steps were seen, 4 expected"):
        m.result(tokens=30, pairs=3, steps=4)
    opt.step()  # the hook is gone once the section ends
    assert len(m.step_ends) == 3


def test_summarise_gives_medians_and_per_repeat_ratios_to_the_baseline():
    runs = {
        "ours": [
            {"tokens_per_s": 30.0, "peak_rss_mib": 100.0},
            {"tokens_per_s": 20.0, "peak_rss_mib": 90.0},
            {"tokens_per_s": 45.0, "peak_rss_mib": 80.0},
        ],
        "theirs": [
            {"tokens_per_s": 10.0, "peak_rss_mib": 200.0},
            {"tokens_per_s": 20.0, "peak_rss_mib": 100.0},
            {"tokens_per_s": 15.0, "peak_rss_mib": 100.0},
        ],
    }
    out = summarise(runs, baseline="theirs")
    assert out["median"]["ours"] == {"tokens_per_s": 30.0, "peak_rss_mib": 90.0}
    # Ratios per repeat: tokens/s 3, 1, 3 -> median 3; memory 0.5, 0.9, 0.8 -> median 0.8.
    ratio = out["ratios"]["ours_vs_theirs"]
    assert ratio["tokens_per_s"] == {"median": 3.0, "min": 1.0, "max": 3.0}
    assert ratio["peak_rss_mib"] == {"median": 0.8, "min": 0.5, "max": 0.9}


def test_workers_lay_batches_out_as_the_stages_do_unless_asked_for_padded_batches(tiny_model_dir):
    from alignlab.modeling.loading import load_causal_lm

    model = load_causal_lm(str(tiny_model_dir("llama")), dtype="float32", device="cpu")
    layout, why = alignlab_layout(model, {}, pairs=True)
    assert (layout.attention, layout.rows, layout.share_prompt) == ("segments", "one", True), why
    seen = []
    padded(lambda assets, args: seen.append(args))({}, {"steps": 2})
    assert seen == [{"steps": 2, "layout": False}]
    assert alignlab_layout(model, seen[0], pairs=True)[0] is None


def test_an_interrupted_bench_reports_the_repeats_every_variant_finished(tmp_path):
    import json

    log = tmp_path / "runs.jsonl"
    rows = [{"command": "python bench/x.py"}] + [{"variant": v, "run": {"tokens_per_s": float(i)}}
                                                 for i, v in enumerate(["a", "b", "a", "b", "a"])]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert runs_from_log(log, ["a", "b"]) == {"a": [{"tokens_per_s": 0.0}, {"tokens_per_s": 2.0}],
                                              "b": [{"tokens_per_s": 1.0}, {"tokens_per_s": 3.0}]}
    with pytest.raises(SystemExit, match="not every variant"):
        runs_from_log(log, ["a", "b", "c"])
