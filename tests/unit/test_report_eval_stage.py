"""The report reads stage outputs by the names their kinds declare: eval stages through their
`results.json` (a recipe's, and `alignlab eval --output RUN/evals/NAME`), in the order their config
names the checkpoints; and a report stage leaves its own directory out."""

from __future__ import annotations

import json
import re

from report_support import add_stage, figure, finish_run, suite_summary, write_suite

from alignlab.report import render_report
from alignlab.report.artefacts import load_run, suite_results


def eval_stage(run, name: str, checkpoints: list[str], *, root=None, values=(0.1, 0.6, 0.3)):
    """An eval stage directory as `alignlab.evals.stage` writes it: results.json listing each
    checkpoint's suite folder, and the suite summaries there."""
    config = {"models": {c: f"/m/{c}" for c in checkpoints}}
    results, d = {}, add_stage(root or run, name, "eval", config=config)
    for ckpt, v in zip(checkpoints, values, strict=False):
        metrics = {"default": {"refusal_match/safe/refusal": figure(v, v - 0.1, v + 0.1, 25)}}
        write_suite(d / ckpt / "xstest", suite_summary("xstest", metrics, n=25))
        results[ckpt] = {"xstest": {"path": f"{ckpt}/xstest"}}
    (d / "results.json").write_text(json.dumps({"checkpoints": checkpoints, "results": results}))
    return d


def columns(html: str, suite: str) -> list[str]:
    table = html[html.index(f'id="eval-suite-{suite}"') :]
    head = re.search(r"<thead>(.*?)</thead>", table, re.S).group(1)
    return re.findall(r'<th class="num">(\w+)</th>', head)


def test_eval_stage_results_are_read_from_its_declared_file_in_config_order(tmp_path):
    run = tmp_path / "run"
    d = eval_stage(run, "suites", ["base", "sft", "dpo"])
    write_suite(d / "old" / "xstest", suite_summary("xstest", {}, n=3))  # left over, not in results.json
    finish_run(run, [d])
    found = suite_results(load_run(run))
    assert [(r.checkpoint, r.source) for r in found] == [(c, "suites") for c in ("base", "sft", "dpo")]
    assert columns(render_report(run), "xstest") == ["base", "sft", "dpo"]  # not alphabetical


def test_an_eval_command_run_under_run_dir_evals_is_found(tmp_path):
    run = tmp_path / "run"
    base = add_stage(run, "base", "pretrain")
    finish_run(run, [base])
    cli = eval_stage(run, "cli", ["sft"], root=run / "evals")  # alignlab eval ... --output RUN/evals/<dir>
    write_suite(run / "evals" / "dpo" / "xstest", suite_summary("xstest", {}, n=3))  # by convention
    found = {(r.checkpoint, r.source) for r in suite_results(load_run(run))}
    assert found == {("sft", f"evals/{cli.name}"), ("dpo", "evals")}


def test_declared_outputs_name_each_stage_file(tmp_path):
    run = tmp_path / "run"
    rm = add_stage(run, "rm", "rm")
    odd = add_stage(run, "odd", "a_kind_from_elsewhere")
    finish_run(run, [rm, odd])
    stages = {s.name: s for s in load_run(run).stages}
    assert stages["rm"].path("report") == rm / "report.json" and stages["rm"].path("scores") is None
    assert stages["odd"].path("report") is None and stages["odd"].path("metrics") == odd / "metrics.jsonl"


def test_a_running_report_stage_leaves_itself_out_and_unlisted_stages_keep_the_recipe_order(tmp_path):
    run = tmp_path / "run"
    (run / "recipe.yaml").parent.mkdir(parents=True)
    (run / "recipe.yaml").write_text(
        "name: r\nstages:\n  world: {kind: lab_world}\n  base: {kind: pretrain}\n  report: {kind: report}\n"
    )
    stages = [add_stage(run, n, k) for n, k in (("world", "lab_world"), ("base", "pretrain"))]
    report = add_stage(run, "report", "report", done=False)
    assert [s.name for s in load_run(run).stages] == ["world", "base", "report"]  # no summary.json yet
    assert [s.name for s in load_run(run, [report]).stages] == ["world", "base"]
    assert all(s.exists() for s in stages)


def test_paired_differences_between_checkpoints_are_tabled(tmp_path):
    run = tmp_path / "run"
    d = eval_stage(run, "suites", ["base", "sft"])
    results = json.loads((d / "results.json").read_text())
    results["suites"] = {"xstest": {"headline": ["default:refusal_match/safe/refusal", "aggregate:x"]}}
    diff = figure(0.5, 0.2, 0.8, 25, "paired-t")
    results["differences"] = {"sft": {"base": {"xstest": {"default": {"refusal_match/safe/refusal": diff}}}}}
    (d / "results.json").write_text(json.dumps(results))
    finish_run(run, [d])
    html = render_report(run)
    table = html[html.index('id="eval-differences-between-checkpoints-suites"') :].split("</table>")[0]
    assert re.findall(r'<th class="num">([^<]+)</th>', table) == ["sft − base"]
    assert "default:refusal_match/safe/refusal" in table
    assert '0.500 <span class="ci">[0.200, 0.800]</span>' in table
    assert "aggregate:x" not in table  # a suite-level figure has no pairs
