"""An eval stage's combined results: paired differences between checkpoints (hand-worked values),
headline figures read from a summary, and the eval config's names, defaults and clear errors."""

from __future__ import annotations

import math

import pytest

from alignlab.config import validate_config
from alignlab.config.evals import EvalConfig, checkpoint_name
from alignlab.errors import ConfigError
from alignlab.evals.core import Result
from alignlab.evals.registry import get_suite_spec
from alignlab.evals.results import headline, stage_summary
from alignlab.evals.summary import checkpoint_difference


def result(sample: str, refused: bool | None, *, variant: str = "default", error: str | None = None,
           words: float = 10.0) -> Result:  # fmt: skip
    metrics = {} if refused is None else {"refusal": refused}
    scores = {} if error else {"refusal_match": {"label": "x", "value": None, "explanation": "",
                                                 "metrics": {**metrics, "words": words}}}  # fmt: skip
    response = None if error else "reply"
    return Result(sample, variant, 0, [], [], response, [], [], [], [], None, None, "", scores, error, {})


def test_checkpoint_difference_pairs_the_same_samples():
    """later - earlier per sample: s1 1-0 = 1, s2 1-1 = 0, s3 0-1 = -1, s4 1-0 = 1; s5 failed on the later
    checkpoint and s6 exists only there, so neither is paired. Mean 1/4; sd of (1, 0, -1, 1) is
    sqrt(((3/4)^2 * 2 + (1/4)^2 + (5/4)^2) / 3) = sqrt(11/12); half-width t(0.975, 3) * sd / 2."""
    earlier = [result("s1", False), result("s2", True), result("s3", True), result("s4", False),
               result("s5", True)]  # fmt: skip
    later = [result("s1", True), result("s2", True), result("s3", False), result("s4", True),
             result("s5", None, error="timeout"), result("s6", True)]  # fmt: skip
    diff = checkpoint_difference(later, earlier)["default"]["refusal_match/refusal"].to_json()
    half = 3.182446305284263 * math.sqrt(11 / 12) / 2
    assert diff["value"] == pytest.approx(0.25) and diff["n"] == 4 and diff["interval"] == "paired-t"
    assert (diff["low"], diff["high"]) == (pytest.approx(0.25 - half), pytest.approx(0.25 + half))
    words = checkpoint_difference(later, earlier)["default"]["refusal_match/words"].to_json()
    assert words["value"] == 0.0 and words["n"] == 4


def test_checkpoint_difference_keeps_variants_apart():
    earlier = [result("s1", False, variant="direct"), result("s1", False, variant="rot13")]
    later = [result("s1", True, variant="direct"), result("s1", False, variant="rot13")]
    diff = checkpoint_difference(later, earlier)
    assert diff["direct"]["refusal_match/refusal"].estimate.value == 1.0
    assert diff["rot13"]["refusal_match/refusal"].estimate.value == 0.0


def fig(value: float, n: int = 10) -> dict:
    return {"value": value, "low": value - 0.1, "high": value + 0.1, "n": n, "interval": "wilson"}


def test_headline_reads_named_variants_every_variant_and_aggregates():
    direct = {"refusal_match/attack_success": fig(0.1), "prefix_match/attack_success": fig(0.2)}
    jailbreak = {"metrics": {"direct": direct, "rot13": {"refusal_match/attack_success": fig(0.3)}},
                 "aggregates": {"rot13/attack_success_lift": fig(0.2)}}  # fmt: skip
    assert headline(get_suite_spec("jailbreak"), jailbreak) == {
        "direct:refusal_match/attack_success": fig(0.1), "rot13:refusal_match/attack_success": fig(0.3)}
    diversity = {"metrics": {"default": {"length/words": fig(12.0)}}, "aggregates": {"self_bleu": fig(0.4)}}
    assert headline(get_suite_spec("diversity"), diversity) == {
        "default:length/words": fig(12.0), "aggregate:self_bleu": fig(0.4)}  # absent ones are left out


def test_stage_summary_flattens_headlines_and_counts_errors():
    entry = {"errors": 2, "n_episodes": 10, "headline": {"default:mc/mc1": fig(0.5)}}
    summary = stage_summary({"base": {"truthfulqa_mc": entry},
                             "sft": {"truthfulqa_mc": {**entry, "errors": 0}}})  # fmt: skip
    assert summary["errors"] == 2 and summary["episodes"] == 20
    assert summary["base/truthfulqa_mc/default:mc/mc1"] == 0.5 and summary["sft/truthfulqa_mc/errors"] == 0
    assert summary["headline"] == {"truthfulqa_mc": {"default:mc/mc1": {"base": fig(0.5), "sft": fig(0.5)}}}


def test_checkpoints_are_named_after_their_directory_or_file(tmp_path):
    stage = tmp_path / "sft-1a2b3c4d5e"
    stage.mkdir()
    assert checkpoint_name(str(stage)) == "sft"  # a recipe's stage directory, without its hash
    assert checkpoint_name(str(tmp_path / "gpt4_completions.csv")) == "gpt4_completions"
    assert checkpoint_name("http://127.0.0.1:8000/v1") == "endpoint"
    assert checkpoint_name("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen2.5-0.5B-Instruct"  # a hub id
    config = validate_config(EvalConfig, {"models": [str(stage), "http://h/v1"],
                                          "suites": "injection, hierarchy"})  # fmt: skip
    assert list(config.models) == ["sft", "endpoint"] and list(config.suites) == ["injection", "hierarchy"]
    assert config.models["endpoint"].source == "endpoint" and config.models["sft"].source == "model"


def test_stage_wide_data_limit_and_options_reach_the_suites_that_take_them():
    config = validate_config(EvalConfig, {
        "models": {"m": "model-dir"}, "data": "adv.csv", "limit": 5, "options": {"transforms": "rot13"},
        "suites": {"advbench": {}, "jailbreak": {"limit": 2, "options": {"transforms": "base64"}},
                   "injection": {}}})  # fmt: skip
    assert config.suite_run("advbench") == ("adv.csv", 5, {})
    assert config.suite_run("jailbreak") == ("adv.csv", 2, {"transforms": "base64"})  # its own win
    assert config.suite_run("injection") == (None, 5, {})  # a built-in set reads no data file


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"suites": {"xstest": {"options": {"transformz": 1}}}, "data": "x.csv"},
         "suite 'xstest' has no option 'transformz'; its options: system_prompt"),
        ({"suites": "injection", "options": {"judge": "x"}}, "set the judge with the config key 'judge'"),
        ({"suites": "gcg", "data": "a.csv", "options": {"white_box": 1}},
         "white_box is the model under evaluation"),
        ({"suites": "win_rate", "judge": "j"}, "suite 'win_rate' needs a baseline"),
        ({"suites": "injection", "judge": "j"}, "judge is set but none of the suites injection uses one"),
        ({"suites": {"injection": {"data": "x.csv"}}}, "suite 'injection' uses its built-in set"),
        ({"suites": "gcg", "data": "a.csv", "models": {"m": "http://h/v1"}}, "suite 'gcg' needs gradients"),
        ({"suites": "injection", "models": {"a/b": "m"}}, "checkpoint name 'a/b' is not a plain file name"),
    ],
)  # fmt: skip
def test_config_errors_name_what_to_change(config, expected):
    with pytest.raises(ConfigError) as err:
        validate_config(EvalConfig, {"models": {"m": "model-dir"}, **config})
    assert expected in str(err.value)
