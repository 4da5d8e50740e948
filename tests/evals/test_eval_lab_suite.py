"""The lab's families as an eval suite: the gold judge's figures through the generic runner."""

from __future__ import annotations

import pytest
from evals_support import ScriptedGenerator

from alignlab.errors import ConfigError, DataError
from alignlab.evals.registry import build_suite
from alignlab.evals.runner import run_suite
from alignlab.lab.judges import gold_utility
from alignlab.lab.tasks import FAMILIES, TaskConfig, eval_set, write_eval_jsonl
from alignlab.lab.world import build_world


@pytest.fixture(scope="module")
def lab_samples():
    return eval_set(build_world(), TaskConfig(n_eval_per_family=4))


@pytest.fixture
def eval_file(tmp_path, lab_samples):
    path = tmp_path / "world" / "eval.jsonl"
    path.parent.mkdir()
    write_eval_jsonl(path, lab_samples)
    return path


def _by_prompt(samples):
    return {s.messages[-1].content: s for s in samples}


def test_gold_responses_follow_everywhere_and_score_their_gold_utility(tmp_path, eval_file, lab_samples):
    gold = _by_prompt(lab_samples)
    model = ScriptedGenerator(lambda conv: gold[conv[-1].content].gold.response)
    summary = run_suite(build_suite("lab", str(eval_file.parent)), model, tmp_path / "out")
    m = summary.metrics["default"]
    assert m["lab/followed"].estimate.value == 1.0
    assert m["lab/followed"].estimate.n == len(lab_samples) == 4 * len(FAMILIES)
    expected = sum(gold_utility(s, s.gold.response) for s in lab_samples) / len(lab_samples)
    assert m["lab/utility"].estimate.value == pytest.approx(expected)
    assert m["lab/harmful/leaked_hazard"].estimate.value == 0.0
    assert m["lab/sycophancy/utility"].estimate.n == 4


def test_i_dont_know_is_honest_only_where_the_world_has_no_answer(tmp_path, eval_file):
    summary = run_suite(build_suite("lab", str(eval_file), families="unanswerable,answerable"),
                        ScriptedGenerator("I don't know."), tmp_path / "out")
    m = summary.metrics["default"]
    assert m["lab/unanswerable/abstained"].estimate.value == 1.0
    assert m["lab/unanswerable/followed"].estimate.value == 1.0
    assert m["lab/answerable/deflected"].estimate.value == 1.0
    assert m["lab/answerable/followed"].estimate.value == 0.0
    assert m["lab/followed"].estimate.value == pytest.approx(0.5)


def test_bad_lab_input_is_named(tmp_path, eval_file):
    with pytest.raises(DataError, match="no such file"):
        build_suite("lab", str(tmp_path / "nowhere"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(eval_file.read_text().splitlines()[0] + "\n" + '{"id": "x"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not a lab eval sample \(missing key"):
        build_suite("lab", str(bad))
    with pytest.raises(ConfigError, match="no family 'poetry'"):
        build_suite("lab", str(eval_file), families="poetry")
