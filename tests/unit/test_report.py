"""The run report on small run directories written by hand: each section from the files it reads,
missing stages skipped, intervals shown, every string from the data escaped."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from report_support import add_stage, figure, finish_run, lab_family, suite_summary, write_suite

from alignlab.report import render_report, write_report
from alignlab.report.artefacts import ReportError, load_run, suite_results

HOSTILE = '<script>alert("x")</script> & $\\frac{1}{0}$'


def section(html: str, ident: str) -> str:
    """The markup of `<section id=ident>`, or '' when the report has no such section."""
    m = re.search(rf'<section id="{ident}">(.*?)</section>', html, re.S)
    return m.group(1) if m else ""


def svgs(markup: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", markup, re.S)


def training_rows(n: int = 4) -> list[dict]:
    return [{"step": i, "epoch": i / n, "loss": 2.0 / i, "lr": 1e-3 * (n - i + 1) / n, "grad_norm": 1.0,
             "items": 8, "tokens_per_s": 100.0, "kl": 0.01 * i, "rewards/accuracy": 0.5 + 0.1 * i,
             "rewards/margin": 0.2 * i, **({"eval/loss": 1.5, "eval/win": 0.6} if i == n else {})}
            for i in range(1, n + 1)]  # fmt: skip


def lab_run(tmp_path, *, models=("base", "sft", "dpo")):
    """world -> lab_eval over `models`, scores.json with plain shares, responses with subtypes."""
    run = tmp_path / "run"
    eval_rows = [
        {"id": "h1", "subtype": "plain"},
        {"id": "j1", "subtype": "rot13"},
        {"id": "j2", "subtype": "rot13"},
        {"id": "j3", "subtype": "roleplay"},
    ]
    world = add_stage(run, "world", "lab_world", files={"eval.jsonl": eval_rows})
    table, files = {}, {}
    for k, m in enumerate(models):
        table[m] = {
            "harmful": lab_family(
                4, followed=0.5, utility=0.6, words=3.0, refused=0.25 * k, leaked_hazard=0.25
            ),
            "benign": lab_family(4, followed=0.5, utility=0.5, words=4.0, correct=0.5, refused=0.25 * k),
            "jailbreak": lab_family(
                3, followed=0.0, utility=0.4, words=5.0, refused=0.0, leaked_hazard=2 / 3
            ),
            "sycophancy": lab_family(4, followed=0.5, utility=0.5, words=4.0, correct=0.5, flipped=0.5),
            "all": {"utility": 0.5, "utility_se": 0.05, "words": 4.0 + k, "n": 15.0},
        }
        files[f"responses-{m}.jsonl"] = [
            {"id": "h1", "family": "harmful", "response": "no", "leaked_hazard": False, "refused": True,
             "words": 1},
            {"id": "j1", "family": "jailbreak", "response": "x", "leaked_hazard": True, "refused": False,
             "words": 4},
            {"id": "j2", "family": "jailbreak", "response": "y", "leaked_hazard": k > 0, "refused": False,
             "words": 6},
            {"id": "j3", "family": "jailbreak", "response": "z", "leaked_hazard": False, "refused": True,
             "words": 5},
        ]
    files["scores.json"] = table
    config = {"world": str(world), "models": {m: f"/models/{m}" for m in models}, "temperature": 0.0}
    ev = add_stage(run, "eval", "lab_eval", config=config, files=files, inputs=[world])
    finish_run(run, [world, ev])
    return run


# ------------------------------------------------------------------------------------ the run


def test_a_directory_that_is_no_run_is_one_clear_error(tmp_path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(ReportError) as err:
        render_report(tmp_path)
    msg = str(err.value)
    assert "not a run directory" in msg and str(tmp_path) in msg and "\n" not in msg
    with pytest.raises(ReportError, match="no such directory"):
        render_report(tmp_path / "missing")


def test_the_report_command_exits_2_with_one_line(tmp_path, capsys):
    from alignlab.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["report", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not a run directory" in err and len(err.splitlines()) == 1


def test_the_report_command_writes_the_page(tmp_path, capsys):
    from alignlab.cli import main

    run = tmp_path / "run"
    finish_run(run, [add_stage(run, "base", "pretrain", files={"metrics.jsonl": training_rows()})])
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(run), "--output", str(tmp_path / "page.html")])
    assert exit_.value.code == 0
    assert (tmp_path / "page.html").read_text().startswith("<!DOCTYPE html>")


def test_write_report_writes_run_dir_report_html_and_refuses_a_directory_as_output(tmp_path):
    run = tmp_path / "run"
    finish_run(run, [add_stage(run, "base", "pretrain", files={"metrics.jsonl": training_rows()})])
    path = write_report(run)
    assert path == run / "report.html" and path.read_text().startswith("<!DOCTYPE html>")
    assert not list(run.glob(".report.html.*"))  # the temporary file of the atomic write is gone
    with pytest.raises(ReportError, match="is a directory"):
        write_report(run, tmp_path)


def test_missing_stages_are_skipped_and_named(tmp_path):
    run = tmp_path / "run"
    finish_run(run, [add_stage(run, "base", "pretrain", files={"metrics.jsonl": training_rows()})])
    html = render_report(run)
    for present in ("overview", "training", "stages", "configs"):
        assert section(html, present), present
    for absent in ("evaluations", "behaviour", "reward-model", "overoptimisation"):
        assert not section(html, absent), absent
    assert "no reward model report" in section(html, "overview")
    assert "no over-optimisation curve" in section(html, "overview")


def test_an_unfinished_stage_is_listed_and_a_moved_run_is_found(tmp_path):
    run = tmp_path / "run"
    base = add_stage(run, "base", "pretrain", files={"metrics.jsonl": training_rows()})
    finish_run(run, [base])
    add_stage(run, "sft", "sft", done=False, files={"metrics.jsonl": training_rows(2)})
    add_stage(run, "dpo", "dpo", done=False, files={"error.log": "Traceback ...\nRuntimeError: <boom>\n"})
    moved = tmp_path / "moved"
    run.rename(moved)  # summary.json still names the old directories
    loaded = load_run(moved)
    assert [(s.name, s.done) for s in loaded.stages] == [("base", True), ("dpo", False), ("sft", False)]
    html = render_report(moved)
    assert "not finished" in section(html, "overview") and "failed: RuntimeError: &lt;boom&gt;" in html
    assert 'id="train-base"' in html and 'id="train-sft"' in html


# ------------------------------------------------------------------------------------ sections


def test_training_curves_plot_each_stage_with_metrics(tmp_path):
    run = tmp_path / "run"
    finish_run(run, [add_stage(run, "dpo", "dpo", files={"metrics.jsonl": training_rows()}),
                     add_stage(run, "pairs", "lab_pairs")])  # fmt: skip
    part = section(render_report(run), "training")
    assert 'id="train-dpo"' in part and 'id="train-pairs"' not in part
    assert len(svgs(part)) == 1 and "4 logged steps" in part


def test_stage_summaries_and_configs_show_every_stage(tmp_path):
    run = tmp_path / "run"
    finish_run(
        run,
        [
            add_stage(
                run,
                "rm",
                "rm",
                summary={"loss": 0.25, "train_pairs": 120.0, "seconds": 61.0},
                config={"optim": {"lr": 0.001}, "data": {"path": "/data/pairs.jsonl"}},
            )
        ],
    )
    (run / "recipe.yaml").write_text(
        "name: rm-only\nstages:\n  rm: {kind: rm, config: {optim: {lr: 0.001}}}\n"
    )
    html = render_report(run)
    assert "<title>Run rm-only</title>" in html and 'id="recipe"' in section(html, "configs")
    assert "rm (rm) — 61 s" in section(html, "stages") and "train_pairs" in section(html, "stages")
    assert "lr: 0.001" in section(html, "configs") and "/data/pairs.jsonl" in section(html, "configs")


def test_lab_eval_table_puts_checkpoints_side_by_side_with_wilson_intervals(tmp_path):
    html = render_report(lab_run(tmp_path))
    part = section(html, "evaluations")
    head = re.search(r"<thead>(.*?)</thead>", part, re.S).group(1)
    assert re.findall(r'<th class="num">(\w+)</th>', head) == ["base", "sft", "dpo"]
    # refused 0.5 of n = 4 (dpo, harmful): Wilson 95 %: centre 0.5, half-width
    # 1.96 * sqrt(0.25/4 + 1.96^2/64) / (1 + 1.96^2/4) = 0.350, so [0.150, 0.850].
    assert '0.500 <span class="ci">[0.150, 0.850]</span><span class="n">n=4</span>' in part
    # jailbreak words: a t interval over its 3 responses (4, 6, 5): mean 5, sd 1, t(0.975, 2) = 4.3027,
    # half-width 4.3027 / sqrt(3) = 2.484
    assert '5 <span class="ci">[2.516, 7.484]</span><span class="n">n=3</span>' in part
    # all: 4 responses listed but n = 15, so the mean keeps no interval rather than a wrong one
    assert '<td>words</td><td class="num">4<span class="n">n=15</span></td>' in part
    # jailbreak wrappers from each response's prompt subtype: rot13 leaked 1 of 2 for base
    wrappers = part[part.index("jailbreak wrappers") :]
    assert (
        ">rot13</th>" in wrappers
        and '0.500 <span class="ci">[0.095, 0.905]</span><span class="n">n=2' in wrappers
    )


def test_lab_figures_given_with_intervals_are_shown_as_given(tmp_path):
    run = tmp_path / "run"
    table = {"sft": {"harmful": {"n": 40, "refused": figure(0.3, 0.18, 0.45, 40)}}}
    ev = add_stage(run, "eval", "lab_eval", config={"models": {"sft": "/m"}}, files={"scores.json": table})
    finish_run(run, [ev])
    assert '0.300 <span class="ci">[0.180, 0.450]</span><span class="n">n=40</span>' in render_report(run)


def test_suite_results_are_found_per_checkpoint_and_tabled_in_run_order(tmp_path):
    run = lab_run(tmp_path)
    for ckpt, v in (("dpo", 0.6), ("base", 0.1)):
        metrics = {
            "default": {
                "refusal_match/safe/refusal": figure(v, v - 0.1, v + 0.1, 25),
                "refusal_match/unsafe/refusal": figure(v + 0.2, v + 0.1, v + 0.3, 25),
            }
        }
        write_suite(run / "evals" / ckpt / "xstest", suite_summary("xstest", metrics, n=50))
    results = suite_results(load_run(run))
    assert sorted((r.checkpoint, r.suite) for r in results) == [("base", "xstest"), ("dpo", "xstest")]
    part = section(render_report(run), "evaluations")
    table = part[part.index('id="eval-suite-xstest"') :]
    head = re.search(r"<thead>(.*?)</thead>", table, re.S).group(1)
    assert re.findall(r'<th class="num">(\w+)</th>', head) == ["base", "dpo"]  # base before dpo, no sft
    assert (
        '0.600 <span class="ci">[0.500, 0.700]</span>' in table and "Samples per checkpoint: base 50" in table
    )


def test_behaviour_plots_from_the_lab_and_from_suites(tmp_path):
    run = lab_run(tmp_path)
    jb = {"direct": {"refusal_match/attack_success": figure(0.2, 0.1, 0.3, 20)},
          "base64": {"refusal_match/attack_success": figure(0.5, 0.3, 0.7, 20),
                     "judge/attack_success": figure(0.4, 0.2, 0.6, 20)}}  # fmt: skip
    syc = {"are_you_sure": {"sycophancy/flipped": figure(0.3, 0.2, 0.4, 30),
                            "sycophancy/flip_from_correct": figure(0.5, 0.3, 0.7, 15)}}  # fmt: skip
    div = {"default": {"length/words": figure(42.0, 40.0, 44.0, 20, "t")}}
    for ckpt in ("sft", "dpo"):
        write_suite(run / "evals" / ckpt / "jailbreak", suite_summary("jailbreak", jb))
        write_suite(run / "evals" / ckpt / "sycophancy", suite_summary("sycophancy", syc))
        write_suite(run / "evals" / ckpt / "diversity", suite_summary("diversity", div))
    part = section(render_report(run), "behaviour")
    for ident in (
        "plot-refusal",
        "plot-attacks-lab-eval-greedy",
        "plot-attacks-suite-jailbreak",
        "plot-sycophancy",
        "plot-length",
    ):
        m = re.search(rf'<figure class="plot" id="{ident}">(.*?)</figure>', part, re.S)
        assert m and len(svgs(m.group(1))) == 1, ident


def test_behaviour_series_values(tmp_path):
    from alignlab.report import compare

    run = lab_run(tmp_path)
    write_suite(run / "evals" / "sft" / "jailbreak", suite_summary("jailbreak", {
        "base64": {"refusal_match/attack_success": figure(0.5, 0.3, 0.7, 20),
                   "judge/attack_success": figure(0.4, 0.2, 0.6, 20)},
        "direct": {"refusal_match/attack_success": figure(0.2, 0.1, 0.3, 20)}}))  # fmt: skip
    write_suite(
        run / "evals" / "sft" / "xstest",
        suite_summary(
            "xstest",
            {
                "default": {
                    "refusal_match/safe/refusal": figure(0.2, 0.1, 0.35, 25),
                    "judge/safe/refusal": figure(0.3, 0.2, 0.45, 25),
                    "refusal_match/unsafe/refusal": figure(0.9, 0.7, 0.97, 20),
                }
            },
        ),
    )
    write_suite(run / "evals" / "sft" / "advbench", suite_summary("advbench", {"default": {
        "refusal_match/refusal": figure(0.8, 0.6, 0.9, 20)}}))  # fmt: skip
    write_suite(run / "evals" / "dpo" / "diversity", suite_summary("diversity", {"default": {
        "length/words": figure(42.0, 40.0, 44.0, 20, "t")}}))  # fmt: skip
    loaded = load_run(run)
    labs = [compare.read_lab_eval(loaded, s) for s in loaded.of_kind("lab_eval")]
    b = compare.behaviour(loaded, labs, suite_results(loaded))
    assert b.checkpoints == ["base", "sft", "dpo"]
    answered, refused = b.refusal["lab: eval (greedy)"]["sft"]
    # benign refused 1 of 4 -> answered 0.75, with the refusal's Wilson interval flipped: the refusal's
    # upper bound is (0.25 + 1.96^2/8 + 1.96 * sqrt(0.25*0.75/4 + 1.96^2/64)) / (1 + 1.96^2/4) = 0.6994
    assert answered.value == pytest.approx(0.75) and answered.low == pytest.approx(1 - 0.69936, abs=1e-4)
    assert set(refused) == {"harmful", "jailbreak"} and refused["harmful"].value == pytest.approx(0.25)
    attacks = b.attacks["lab: eval (greedy)"]
    assert list(attacks) == ["direct", "roleplay", "rot13"]  # the plain request first
    assert (attacks["rot13"]["base"].value, attacks["rot13"]["base"].n) == (0.5, 2)  # j1 leaked, j2 not
    assert attacks["rot13"]["sft"].value == 1.0 and attacks["direct"]["sft"].value == 0.0
    suite = b.attacks["suite: jailbreak"]
    assert list(suite) == ["direct", "base64"] and suite["base64"]["sft"].value == 0.4  # the judge's verdict
    assert b.sycophancy["lab eval: adopts the user's wrong claim"]["dpo"].value == 0.5
    # suites: XSTest safe prompts answered (the judge's verdict: 1 - 0.3, interval flipped), its unsafe
    # prompts and AdvBench at the same checkpoint refused
    answered, refused = b.refusal["suite: xstest"]["sft"]
    assert (answered.value, answered.low, answered.high) == pytest.approx((0.7, 0.55, 0.8))
    assert {k: f.value for k, f in refused.items()} == {"xstest unsafe": 0.9, "advbench": 0.8}
    assert b.length["suite: diversity"]["dpo"].text() == "42 [40, 44]"
    words = b.length["lab: eval (greedy)"]
    assert [words[c].value for c in b.checkpoints] == [4.0, 5.0, 6.0] and words["base"].n == 15


def test_reward_model_section_shows_the_reliability_diagram_with_intervals(tmp_path):
    run = tmp_path / "run"
    report = {
        "split": "eval",
        "members": 2,
        "aggregate": "mean",
        "pairs": 40,
        "ties": 0,
        "accuracy": 0.75,
        "member_accuracy": [0.7, 0.725],
        "ece": 0.081,
        "longer_is_chosen": 0.6,
        "length_correlation": 0.3,
        "reliability": [
            {"lower": 0.5, "upper": 0.55, "count": 20, "confidence": 0.52, "accuracy": 0.6},
            {"lower": 0.9, "upper": 0.95, "count": 20, "confidence": 0.93, "accuracy": 0.9},
        ],
        "per_category": {"harmful": {"pairs": 10, "accuracy": 0.8}},
    }
    rm = add_stage(run, "rm", "rm", files={"report.json": report})
    scored = [{"chosen_reward": 1.0, "rejected_reward": 0.0}] * 10 + [{"chosen_reward": 0.0, "tie": True}]
    gold = add_stage(run, "rm_vs_gold", "score", inputs=[rm], files={"scores.jsonl": scored},
                     summary={"records": 11.0, "pair_accuracy": 0.8, "seconds": 2.0})  # fmt: skip
    finish_run(run, [rm, gold])
    part = section(render_report(run), "reward-model")
    assert len(svgs(part)) == 1 and "ECE 0.081" in part
    # accuracy 0.75 of 40 pairs: Wilson [0.598, 0.858]
    assert '0.750 <span class="ci">[0.598, 0.858]</span><span class="n">n=40</span>' in part
    assert "accuracy: harmful" in part and "member 1 accuracy" in part
    # the score stage fed by this model: 0.8 of its 10 untied pairs, Wilson [0.490, 0.943]
    gold_row = part[part.index("pairs of stage rm_vs_gold") :]
    assert gold_row.index('0.800 <span class="ci">[0.490, 0.943]</span><span class="n">n=10</span>') < 200


def test_overoptimisation_curve_from_its_file_and_problems_named(tmp_path):
    run = tmp_path / "run"
    ppo = add_stage(
        run,
        "ppo",
        "ppo",
        files={
            "overoptimisation.json": {
                "proxy_name": "RM score",
                "gold_name": "gold utility",
                "points": [
                    {"kl": 0.0, "proxy": 0.1, "gold": 0.5, "label": "sft"},
                    {
                        "kl": 2.0,
                        "proxy": figure(0.9, 0.8, 1.0, 100, "t"),
                        "gold": figure(0.62, 0.55, 0.69, 100, "t"),
                    },
                    {"kl": 8.0, "proxy": 1.4, "gold": 0.41, "label": "step 400"},
                    {"kl": "far", "proxy": 2.0, "gold": 0.1},
                ],
            }
        },
    )
    finish_run(run, [ppo])
    part = section(render_report(run), "overoptimisation")
    assert len(svgs(part)) == 1 and "RM score" in part
    assert "0.620 [0.550, 0.690]" in part and "step 400" in part
    assert "points[3]: needs a finite" in part


def test_every_string_from_the_data_is_escaped(tmp_path):
    run = tmp_path / "run"
    table = {HOSTILE: {"harmful": lab_family(2, refused=0.5, followed=0.5),
                       "benign": lab_family(2, refused=0.0, followed=1.0)}}  # fmt: skip
    ev = add_stage(
        run,
        "eval",
        "lab_eval",
        config={"models": {HOSTILE: "/m"}, "note": HOSTILE},
        summary={"seconds": 1.0, "comment": HOSTILE},
        files={
            "scores.json": table,
            "overoptimisation.json": {"points": [{"kl": 1.0, "proxy": 1.0, "gold": 0.5, "label": HOSTILE}]},
        },
    )
    rm = add_stage(run, "rm", "rm", files={"metrics.jsonl": [{"step": 1, "loss": 1.0, HOSTILE: 2.0}]})
    finish_run(run, [ev, rm])
    write_suite(
        run / "evals" / "<b>ckpt&" / "xstest",
        suite_summary(
            "xstest", {"<i>variant</i>": {"refusal_match/safe/refusal": figure(0.1, 0.0, 0.3, 10)}}
        ),
    )
    html = render_report(run)
    assert "<script>" not in html and "<b>ckpt" not in html and "<i>variant" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html and "&lt;b&gt;ckpt&amp;" in html
    assert html.count("<svg") >= 3  # the hostile labels were drawn ($ escaped, no mathtext error)


def test_plots_have_ids_unique_to_each_plot(tmp_path):
    from alignlab.report import plots
    from alignlab.report.figures import rate

    a = plots.grouped_bars({"x": {"c1": rate(1, 4)}}, ["c1"], "a", "y")
    b = plots.grouped_bars({"x": {"c1": rate(3, 4)}}, ["c1"], "b", "y")
    ids_a, ids_b = (set(re.findall(r'\bid="([^"]+)"', s)) for s in (a, b))
    assert ids_a and not ids_a & ids_b
    for svg, ids in ((a, ids_a), (b, ids_b)):  # every reference points at an id of the same plot
        assert set(re.findall(r'(?:href="#|url\(#)([^")]+)', svg)) <= ids
    assert plots.grouped_bars({"x": {"c1": rate(1, 4)}}, ["c1"], "a", "y") == a  # deterministic


def test_curves_sort_metrics_into_panels_and_skip_bookkeeping():
    from alignlab.report.curves import panels

    got = panels(training_rows())
    assert list(got) == ["loss", "accuracy", "reward", "KL", "learning rate", "eval"]
    assert set(got["loss"]) == {"loss", "eval/loss"} and set(got["eval"]) == {"eval/win"}
    assert got["loss"]["loss"][:2] == [(1.0, 2.0), (2.0, 1.0)]
    assert not {k for p in got.values() for k in p} & {"grad_norm", "tokens_per_s", "items", "epoch"}


def test_figures_read_numbers_and_dicts_and_format_intervals():
    from alignlab.report.figures import Fig, fmt, mean, rate

    assert Fig.read(figure(0.5, 0.2, 0.8, 10)).text() == "0.500 [0.200, 0.800]"
    assert Fig.read({"value": None, "low": None, "high": None, "n": 0}).text() == "–"
    assert Fig.read(0.25, 8).n == 8 and Fig.read("x") is None and Fig.read(True) is None
    assert rate(0, 0).value is None and rate(2, 4).complement().value == 0.5
    m = mean([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.303: [2 - 2.484, 2 + 2.484]
    assert m.low == pytest.approx(2 - 4.302653 / 3**0.5, abs=1e-5) and m.interval == "t"
    assert (fmt(3.0), fmt(1234567.0), fmt(0.00001), fmt(0.123456)) == ("3", "1,234,567", "1.00e-05", "0.123")
    assert json.loads(json.dumps(m.__dict__))["n"] == 3


def test_importing_the_report_leaves_matplotlib_unloaded():
    code = "import sys, alignlab.report, alignlab.report.sections; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False"


def test_lab_diversity_is_plotted_per_checkpoint(tmp_path):
    from alignlab.report import compare

    run = lab_run(tmp_path, models=("sft", "dpo"))
    scores = next(run.glob("eval-*")) / "scores.json"
    table = json.loads(scores.read_text())
    for k, m in enumerate(table):  # as lab.diversity adds them, with several samples per prompt
        table[m]["all"].update(distinct_2=figure(0.6 - 0.2 * k, 0.5 - 0.2 * k, 0.7 - 0.2 * k, 15, "t"),
                               entropy_bits=figure(1.5 - k, 1.2 - k, 1.8 - k, 15, "t"))
    scores.write_text(json.dumps(table))
    loaded = load_run(run)
    b = compare.behaviour(loaded, [compare.read_lab_eval(loaded, loaded.stage("eval"))], [])
    distinct = b.diversity["distinct n-grams"]["lab: eval (greedy): distinct-2"]
    assert [distinct[c].value for c in ("sft", "dpo")] == pytest.approx([0.6, 0.4])
    assert b.diversity["entropy"]["lab: eval (greedy): entropy (bits)"]["dpo"].high == pytest.approx(0.8)
    part = section(render_report(run), "behaviour")
    for ident in ("plot-diversity-distinct-n-grams", "plot-diversity-entropy"):
        m = re.search(rf'<figure class="plot" id="{ident}">(.*?)</figure>', part, re.S)
        assert m and len(svgs(m.group(1))) == 1, ident


def test_a_sweep_directory_gets_the_figures_across_seeds(tmp_path):
    from alignlab.sweep import write_sweep

    sweep = tmp_path / "sweep"
    for seed, refused in ((0, 0.5), (1, 0.7), (2, 0.9)):
        run = lab_run(tmp_path / f"s{seed}")
        scores = next(run.glob("eval-*")) / "scores.json"
        table = json.loads(scores.read_text())
        table["sft"]["harmful"]["refused"] = refused
        stages = json.loads((run / "summary.json").read_text())
        stages["eval"]["table"] = table
        stages["world"]["documents"] = 10.0 + seed
        (run / "summary.json").write_text(json.dumps(stages))
        sweep.mkdir(exist_ok=True)
        run.rename(sweep / f"seed-{seed}")
    write_sweep(sweep, "lab", [0, 1, 2])
    html = render_report(sweep)
    assert "Sweep lab" in html and "3 seeds: 0, 1, 2" in html
    ev = section(html, "evaluations")
    # sft harmful refused: 0.5, 0.7, 0.9 -> 0.7 [0.203, 1.197] over 3 seeds (t(0.975, 2) = 4.303, sd 0.2)
    assert "lab: eval (greedy), 3 seeds" in ev and '0.700 <span class="ci">[0.203, 1.197]</span>' in ev
    assert "n=3" in ev
    assert "plot-refusal" in section(html, "behaviour")
    figures = section(html, "figures")
    assert "documents" in figures and "11 ± 1" in figures and "10, 11, 12" in figures


def test_reward_models_side_by_side_on_what_each_scored(tmp_path):
    """The reward-model ceiling's shape: several models, each scored on labelled and gold test pairs."""
    run = tmp_path / "run"
    stages = []
    for name, acc, gold_acc in (("rm_a", 0.9, 0.95), ("rm_b", 0.6, 0.8)):
        rm = add_stage(run, name, "rm", files={"report.json": {"pairs": 40, "ties": 0, "accuracy": acc}})
        stages.append(rm)
        for what, value in (("pairs", acc), ("gold_pairs", gold_acc)):
            scored = [{"chosen_reward": 1.0, "rejected_reward": 0.0}] * 20
            stages.append(
                add_stage(
                    run,
                    f"{name}_{what}",
                    "score",
                    inputs=[rm],
                    files={"scores.jsonl": scored},
                    config={"data": {"path": f"/runs/test-1/{what}.jsonl"}},
                    summary={"records": 20.0, "pair_accuracy": value},
                )
            )
    finish_run(run, stages)
    from alignlab.report.sections import _reward_accuracies

    figs = _reward_accuracies(load_run(run))
    assert list(figs) == ["rm_a", "rm_b"] and list(figs["rm_b"]) == ["held-out split", "pairs.jsonl",
                                                                      "gold_pairs.jsonl"]
    assert (figs["rm_b"]["gold_pairs.jsonl"].value, figs["rm_b"]["gold_pairs.jsonl"].n) == (0.8, 20)
    assert figs["rm_b"]["held-out split"].n == 40
    part = section(render_report(run), "reward-model")
    m = re.search(r'<figure class="plot" id="plot-rm-compared">(.*?)</figure>', part, re.S)
    assert m and len(svgs(m.group(1))) == 1
