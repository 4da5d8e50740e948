"""The runner: batched rounds, error rows that do not stop the run, JSONL + summary with intervals,
resume after an interruption."""

from __future__ import annotations

import json

import pytest
from evals_support import ScriptedGenerator, last_user

from alignlab.data.schema import system, user
from alignlab.errors import ConfigError
from alignlab.evals.core import Episode, Sample, Score, Suite, rule_scorer
from alignlab.evals.likelihood import HFLogLikelihood
from alignlab.evals.runner import SAMPLES_FILE, SUMMARY_FILE, run_suite
from alignlab.evals.solvers import plain, with_followups, with_system
from alignlab.generation.base import SamplingParams


def _says_yes(e: Episode) -> Score:
    yes = "yes" in e.response.lower()
    return Score(
        "yes" if yes else "no",
        float(yes),
        "looked for yes",
        {"yes": yes, "words": float(len(e.response.split()))},
    )


def _suite(n: int = 5, **kw) -> Suite:
    samples = tuple(Sample(id=f"s{i}", input=(user(f"question {i}"),)) for i in range(n))
    return Suite(
        "toy", samples, kw.pop("solvers", {"default": plain()}), (rule_scorer("check", _says_yes),), **kw
    )


def test_rows_and_summary_with_wilson_and_t_intervals(tmp_path):
    gen = ScriptedGenerator(lambda c: "yes indeed" if last_user(c) in ("question 0", "question 1") else "no")
    summary = run_suite(_suite(5), gen, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / SAMPLES_FILE).read_text().splitlines()]
    assert [r["id"] for r in rows] == ["s0", "s1", "s2", "s3", "s4"]
    assert rows[0]["response"] == "yes indeed" and rows[0]["label"] == "yes" and rows[0]["score"] == 1.0
    assert rows[0]["input"] == [{"role": "user", "content": "question 0"}] and rows[0]["error"] is None
    written = json.loads((tmp_path / SUMMARY_FILE).read_text())
    rate = written["metrics"]["default"]["check/yes"]
    # 2 of 5 with the Wilson interval: (0.1176, 0.7693).
    assert rate["value"] == 0.4 and rate["n"] == 5 and rate["interval"] == "wilson"
    assert rate["low"] == pytest.approx(0.1176, abs=1e-4) and rate["high"] == pytest.approx(0.7693, abs=1e-4)
    words = written["metrics"]["default"]["check/words"]
    assert words["interval"] == "t" and words["value"] == pytest.approx(7 / 5)
    assert written["errors"] == 0 and summary.labels["default"]["check"] == {"no": 3, "yes": 2}
    assert len(gen.calls) == 1 and gen.prompts_seen == 5  # one batched call


def test_failed_generation_is_an_error_row_counted_and_the_run_goes_on(tmp_path):
    gen = ScriptedGenerator(lambda c: None if last_user(c) == "question 2" else "yes")
    summary = run_suite(_suite(4), gen, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / SAMPLES_FILE).read_text().splitlines()]
    assert rows[2]["error"] == "scripted failure" and rows[2]["label"] is None and rows[2]["scores"] == {}
    assert summary.errors == 1 and summary.n_episodes == 4
    assert summary.figure("default", "check/yes").estimate.n == 3  # errors are not in any metric's n


def test_multi_turn_feeds_each_reply_back_before_the_next_turn(tmp_path):
    gen = ScriptedGenerator(lambda c: f"reply to {last_user(c)}")
    suite = _suite(2, solvers={"default": with_followups(("Are you sure?",), with_system("Be brief."))})
    run_suite(suite, gen, tmp_path)
    first, second = gen.calls
    assert [m.role for m in first[0][0]] == ["system", "user"]
    assert [(m.role, m.content) for m in second[0][0]][1:] == [
        ("user", "question 0"), ("assistant", "reply to question 0"), ("user", "Are you sure?")]  # fmt: skip
    row = json.loads((tmp_path / SAMPLES_FILE).read_text().splitlines()[0])
    assert row["replies"] == ["reply to question 0", "reply to Are you sure?"]
    assert row["response"] == "reply to Are you sure?" and row["followups"] == ["Are you sure?"]


def test_n_draws_per_prompt_become_episodes(tmp_path):
    gen = ScriptedGenerator("yes")
    summary = run_suite(_suite(2), gen, tmp_path, params=SamplingParams(n=3, temperature=1.0))
    rows = [json.loads(line) for line in (tmp_path / SAMPLES_FILE).read_text().splitlines()]
    assert [(r["id"], r["draw"]) for r in rows] == [
        ("s0", 0),
        ("s0", 1),
        ("s0", 2),
        ("s1", 0),
        ("s1", 1),
        ("s1", 2),
    ]
    assert summary.n_episodes == 6 and summary.n_samples == 2 and rows[0]["reply_logps"] == [-0.5]


def test_variants_are_summarised_separately(tmp_path):
    gen = ScriptedGenerator(lambda c: "yes" if c[0].role == "system" else "no")
    summary = run_suite(_suite(3, solvers={"plain": plain(), "sys": with_system("x")}), gen, tmp_path)
    assert summary.figure("plain", "check/yes").estimate.value == 0.0
    assert summary.figure("sys", "check/yes").estimate.value == 1.0


class _Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_without_asking_again(tmp_path):
    asked: list[str] = []

    def flaky(c):
        asked.append(last_user(c))
        if len(asked) == 3:
            raise _Interrupted
        return "yes"

    with pytest.raises(_Interrupted):
        run_suite(_suite(6), ScriptedGenerator(flaky), tmp_path, chunk_size=2)
    assert not (tmp_path / SUMMARY_FILE).exists()
    again = ScriptedGenerator("yes")
    summary = run_suite(_suite(6), again, tmp_path, chunk_size=2)
    assert again.prompts_seen == 4 and summary.n_episodes == 6  # the first chunk was kept
    assert not list(tmp_path.glob(".*partial"))
    third = ScriptedGenerator("no")
    # finished: not asked
    assert run_suite(_suite(6), third, tmp_path).n_episodes == 6 and third.prompts_seen == 0
    changed = ScriptedGenerator("no")
    run_suite(_suite(6), changed, tmp_path, params=SamplingParams(max_new_tokens=7))
    assert changed.prompts_seen == 6  # other sampling: another run


def test_loglikelihood_suite_refuses_a_generator(tmp_path):
    suite = Suite("mc", (Sample("q", (user("?"),), correct=("a",), incorrect=("b",)),), {"default": plain()},
                  (rule_scorer("x", lambda e: Score("x")),), mode="loglikelihood")  # fmt: skip
    with pytest.raises(ConfigError, match="in-process model"):
        run_suite(suite, ScriptedGenerator("a"), tmp_path)
    with pytest.raises(ConfigError, match="generates"):
        run_suite(_suite(1), HFLogLikelihood(None, None), tmp_path)


def test_suite_rejects_duplicate_ids_and_system_prompts_merge():
    with pytest.raises(ValueError, match="two samples with id"):
        Suite("d", (Sample("a", (user("x"),)), Sample("a", (user("y"),))), {"default": plain()},
              (rule_scorer("x", lambda e: Score("x")),))  # fmt: skip
    merged = with_system("Outer.")(Sample("a", (system("Inner."), user("x"))))
    assert merged.messages[0].content == "Outer.\n\nInner." and len(merged.messages) == 2


def test_variant_difference_pairs_by_sample_and_draw():
    from alignlab.evals.core import Result
    from alignlab.evals.summary import variant_difference

    def row(i, variant, yes):
        return Result(i, variant, 0, [], [], "", [], [], [], [], None, None, "",
                      {"check": {"label": "", "metrics": {"yes": yes}}}, None, {})  # fmt: skip

    rows = [
        row("a", "x", True),
        row("a", "y", False),
        row("b", "x", True),
        row("b", "y", True),
        row("c", "x", False),
    ]
    diff = variant_difference(rows, "check/yes", "x", "y")
    # c has no pair
    assert diff.estimate.value == 0.5 and diff.estimate.n == 2 and diff.interval == "paired-t"
    assert variant_difference(rows, "check/other", "x", "y") is None
