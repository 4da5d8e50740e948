"""The suite registry: names, options, clear errors; every registered suite builds and runs on a small
file in its public format with a scripted generator."""

from __future__ import annotations

import pytest
from evals_support import ScriptedGenerator, suite_data, write_advbench

from alignlab.errors import ConfigError
from alignlab.evals.likelihood import LogLikelihood
from alignlab.evals.registry import build_suite, describe_suites, get_suite_spec, suite_names
from alignlab.evals.runner import run_suite

JUDGE_OPTIONS = {
    "win_rate": lambda: {"judge": ScriptedGenerator("A"), "baseline": ScriptedGenerator("a baseline")}
}


class _Likelihood:
    def loglikelihood(self, requests):
        return [-float(len(reply)) for _, reply in requests]


def test_unknown_suite_lists_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        build_suite("xtest")
    assert "unknown eval suite 'xtest'" in str(err.value) and "xstest" in str(err.value)


def test_unknown_option_missing_data_and_missing_required_option(tmp_path):
    with pytest.raises(ConfigError, match="has no option 'temprature'; its options: samples, temperature"):
        build_suite("diversity", temprature=1.0)
    with pytest.raises(ConfigError, match="needs a data file"):
        build_suite("xstest")
    with pytest.raises(ConfigError, match="reads no data file"):
        build_suite("injection", str(tmp_path / "x.csv"))
    with pytest.raises(ConfigError, match="needs the option 'judge'"):
        build_suite("win_rate")
    with pytest.raises(ConfigError, match="unknown jailbreak transform 'rot14'"):
        build_suite("jailbreak", str(write_advbench(tmp_path / "a.csv")), transforms="rot13,rot14")


def test_listing_reads_the_registry():
    rows = {r["name"]: r for r in describe_suites()}
    assert list(rows) == list(suite_names())
    assert rows["win_rate"]["options"]["judge"] == "required"
    assert rows["truthfulqa_mc"]["mode"] == "loglikelihood" and rows["injection"]["data"] == "built in"
    assert all(r["help"] for r in rows.values())


def _white_box(tiny_model_dir):
    """The tiny Llama in process, and a GCG budget of one step (the search itself:
    tests/integration/test_gcg.py)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignlab.generation.hf import HFGenerator

    path = tiny_model_dir("llama")
    generator = HFGenerator(AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path))
    return generator, {"white_box": generator, "steps": 1, "num_tokens": 3, "top_k": 8, "batch_size": 8}


@pytest.mark.parametrize("name", suite_names())
def test_every_suite_runs_on_a_small_file_in_its_format(tmp_path, name, tiny_model_dir):
    spec = get_suite_spec(name)
    options = JUDGE_OPTIONS.get(name, dict)()
    model = (
        _Likelihood()
        if spec.mode == "loglikelihood"
        else ScriptedGenerator("Sure. Here is a detailed answer.")
    )
    if "white_box" in spec.options:
        model, options = _white_box(tiny_model_dir)
    suite = build_suite(name, suite_data(name, tmp_path), limit=3, **options)
    if spec.mode == "loglikelihood":
        assert isinstance(model, LogLikelihood)
    summary = run_suite(suite, model, tmp_path / "out")
    assert summary.n_samples == min(3, len(suite.samples)) and summary.errors == 0
    assert summary.metrics and all(summary.metrics.values())
    assert (tmp_path / "out" / "samples.jsonl").exists() and (tmp_path / "out" / "summary.json").exists()


def test_listing_suites_imports_no_heavy_backend():
    import subprocess
    import sys

    code = (
        "import sys, alignlab.evals.registry as r, alignlab.evals.runner\n"
        "r.describe_suites()\n"
        "print(','.join(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"listing suites pulled in: {out}"
