"""Recipe runner: references, ordering, content-hashed stage dirs, skip finished, resume, run index."""

import json
from pathlib import Path

import pytest
import yaml
from pydantic import Field

from alignlab import stages as stage_registry
from alignlab.config import Section
from alignlab.errors import AlignlabError, ConfigError, PipelineError
from alignlab.pipeline import check_inputs, plan, run_in_dir, run_recipe, validate_recipe
from alignlab.recipe import RECIPE_FILE, Recipe, load_recipe
from alignlab.run_index import RunIndex
from alignlab.stage_io import Artefact
from alignlab.stages import StageKind

CALLS: list[str] = []


class EchoConfig(Section):
    text: str = Field(description="Text to write.")
    source: str | None = Field(default=None, description="Input file.", json_schema_extra={"input": "file"})
    fail: bool = Field(default=False, description="Raise instead of finishing.")


def run_echo(config: EchoConfig, ctx) -> dict:
    CALLS.append(ctx.name)
    prior = (ctx.output_dir / "partial.txt").exists()
    (ctx.output_dir / "partial.txt").write_text("started")
    if config.fail:
        raise RuntimeError("boom")
    text = config.text
    if config.source:
        text += "|" + Path(config.source).read_text()
    ctx.path("out").write_text(text)
    return {"chars": len(text), "resumed": float(prior)}


@pytest.fixture(autouse=True)
def echo_kind(monkeypatch, tmp_path):
    outputs = {"out": Artefact("out.txt", "text"), "never": Artefact("never.txt", "text")}
    monkeypatch.setitem(
        stage_registry.STAGE_KINDS, "echo", StageKind("echo", EchoConfig, f"{__name__}:run_echo",
                                                      "test stage", outputs)
    )
    monkeypatch.setenv("ALIGNLAB_RUN_INDEX", str(tmp_path / "runs.sqlite"))
    CALLS.clear()


def recipe(**stages) -> Recipe:
    return Recipe.model_validate({"name": "t", "stages": stages})


def test_references_order_stages_and_resolve_to_dirs(tmp_path):
    r = recipe(
        b={"kind": "echo", "config": {"text": "B", "source": "${a}/out.txt"}},
        a={"kind": "echo", "config": {"text": "A"}},
    )
    planned = plan(r, tmp_path, tmp_path)
    assert [s.name for s in planned] == ["a", "b"]
    assert planned[1].deps == ("a",)
    assert planned[1].config.source == str(planned[0].dir / "out.txt")
    result = run_recipe(r, run_dir=tmp_path, log=lambda m: None)
    assert (planned[1].dir / "out.txt").read_text() == "B|A"
    assert result.summaries["b"]["chars"] == 3


def test_hash_depends_on_config_and_inputs_not_on_run_dir(tmp_path):
    r1 = recipe(a={"kind": "echo", "config": {"text": "A"}}, b={"kind": "echo", "config": {"text": "${a}"}})
    r2 = recipe(a={"kind": "echo", "config": {"text": "A2"}}, b={"kind": "echo", "config": {"text": "${a}"}})
    p1, p1_moved, p2 = plan(r1, tmp_path, tmp_path), plan(r1, tmp_path / "x",
                                                          tmp_path), plan(r2, tmp_path, tmp_path)
    assert [s.hash for s in p1] == [s.hash for s in p1_moved]
    assert p1[0].hash != p2[0].hash and p1[1].hash != p2[1].hash  # b changes because its input changed
    # Defaults written out explicitly do not change the hash.
    r3 = recipe(a={"kind": "echo", "config": {"text": "A", "fail": False}}, b={"kind": "echo",
                                                                               "config": {"text": "${a}"}})
    assert plan(r3, tmp_path, tmp_path)[0].hash == p1[0].hash


def test_rerun_skips_finished_stages_and_the_run_index_lists_them(tmp_path):
    r = recipe(a={"kind": "echo", "config": {"text": "A"}})
    logs: list[str] = []
    run_recipe(r, run_dir=tmp_path, log=logs.append)
    run_recipe(r, run_dir=tmp_path, log=logs.append)
    assert CALLS == ["a"]
    assert any(line.startswith("skip stage a: already done") for line in logs)
    runs = RunIndex().runs()
    assert [run.status for run in runs] == ["done", "done"]
    assert [s.status for s in runs[0].stages] == ["skipped"] and [s.status for s in runs[1].stages] == [
        "done"
    ]


def test_failed_stage_is_rerun_in_same_dir(tmp_path):
    bad = recipe(a={"kind": "echo", "config": {"text": "A", "fail": True}})
    with pytest.raises(RuntimeError):
        run_recipe(bad, run_dir=tmp_path, log=lambda m: None)
    assert RunIndex().runs()[0].status == "failed"
    assert RunIndex().runs()[0].stages[0].status == "failed"


def test_interrupted_stage_resumes_in_its_directory(tmp_path):
    r = recipe(a={"kind": "echo", "config": {"text": "A"}})
    stage_dir = plan(r, tmp_path, tmp_path)[0].dir
    stage_dir.mkdir(parents=True)
    (stage_dir / "partial.txt").write_text("from a crash")
    logs: list[str] = []
    result = run_recipe(r, run_dir=tmp_path, log=logs.append)
    assert result.summaries["a"]["resumed"] == 1.0
    assert any(line.startswith("resume stage a") for line in logs)
    assert json.loads((stage_dir / "stage.json").read_text())["kind"] == "echo"


def test_unknown_reference_cycle_and_kind_are_errors(tmp_path):
    with pytest.raises(PipelineError, match="unknown stage"):
        plan(recipe(a={"kind": "echo", "config": {"text": "${zzz}"}}), tmp_path, tmp_path)
    with pytest.raises(PipelineError, match="cycle: "):
        plan(
            recipe(a={"kind": "echo", "config": {"text": "${b}"}}, b={"kind": "echo",
                                                                      "config": {"text": "${a}"}}),
            tmp_path,
            tmp_path,
        )
    with pytest.raises(ConfigError, match="unknown stage kind 'nope'; valid kinds: .*echo"):
        plan(recipe(a={"kind": "nope"}), tmp_path, tmp_path)


def test_stage_config_errors_name_the_recipe_key(tmp_path):
    with pytest.raises(ConfigError,
                       match=r"config key 'stages.a.config.txt': unknown key; valid keys here: text"):
        plan(recipe(a={"kind": "echo", "config": {"txt": "A"}}), tmp_path, tmp_path)


def test_missing_input_file_is_named(tmp_path):
    r = recipe(a={"kind": "echo", "config": {"text": "A", "source": str(tmp_path / "missing.txt")}})
    with pytest.raises(ConfigError,
                       match=r"config key 'stages.a.config.source': file '.*missing.txt' not found"):
        check_inputs(plan(r, tmp_path, tmp_path))


def test_recipe_file_overrides_address_stages(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("name: r\nstages:\n  a:\n    kind: echo\n    config: {text: A}\n")
    r = load_recipe(f, ["a.text=B", "run_dir=elsewhere"])
    assert r.stages["a"].config["text"] == "B" and r.run_dir == "elsewhere"
    f.write_text("name: r\nstages:\n  a:\n    kind: echo\n    config: {text: '${recipe_dir}/x'}\n")
    assert plan(load_recipe(f), tmp_path, tmp_path)[0].config.text == f"{tmp_path}/x"


def test_artefact_references_resolve_to_declared_outputs_and_are_recorded(tmp_path):
    r = recipe(
        a={"kind": "echo", "config": {"text": "A"}},
        b={"kind": "echo", "config": {"text": "B", "source": "${a.out}"}},
    )
    planned = plan(r, tmp_path, tmp_path)
    assert planned[1].deps == ("a",) and planned[1].config.source == str(planned[0].dir / "out.txt")
    # The hash follows the input's hash, as for a plain ${a}: moving the run keeps the cache.
    assert planned[1].hash == plan(r, tmp_path / "moved", tmp_path)[1].hash
    result = run_recipe(r, run_dir=tmp_path, log=lambda m: None)
    assert (planned[1].dir / "out.txt").read_text() == "B|A"
    recorded = RunIndex().artefacts(result.run_id)
    # Each finished stage records its directory and the declared outputs it wrote (not "never").
    assert recorded["a"] == {"dir": str(planned[0].dir), "out": str(planned[0].dir / "out.txt")}


def test_unknown_artefact_names_the_outputs_of_the_stage(tmp_path):
    r = recipe(a={"kind": "echo", "config": {"text": "A"}}, b={"kind": "echo",
                                                               "config": {"text": "${a.outt}"}})
    with pytest.raises(PipelineError,
                       match=r"refers to \$\{a.outt\}.*no output 'outt'; its outputs are out, never"):
        plan(r, tmp_path, tmp_path)


def test_a_single_stage_runs_into_a_directory_and_is_recorded_like_a_recipe_stage(tmp_path):
    out = tmp_path / "one"
    summary = run_in_dir("echo", EchoConfig(text="hi"), out, log=lambda m: None)
    assert summary["chars"] == 2 and (out / "out.txt").read_text() == "hi"
    assert (out / "config.yaml").is_file() and json.loads((out / "stage.json").read_text())["kind"] == "echo"
    (run,) = RunIndex().runs()
    assert run.status == "done" and [(s.name, s.status) for s in run.stages] == [("echo", "done")]
    assert RunIndex().artefacts(run.id)["echo"]["out"] == str(out.resolve() / "out.txt")
    with pytest.raises(AlignlabError, match="already holds a finished echo run"):
        run_in_dir("echo", EchoConfig(text="again"), out, log=lambda m: None)
    with pytest.raises(RuntimeError, match="boom"):
        run_in_dir("echo", EchoConfig(text="x", fail=True), tmp_path / "bad", log=lambda m: None)
    assert RunIndex().runs()[0].status == "failed" and RunIndex().runs()[0].stages[0].status == "failed"


def test_the_run_directory_keeps_the_recipe_as_run(tmp_path):
    (tmp_path / "recipe.yaml").write_text("name: kept\nstages:\n  a: {kind: echo, config: {text: A}}\n")
    r = load_recipe(tmp_path / "recipe.yaml", ["a.text=B"])
    run_recipe(r, run_dir=tmp_path / "run", log=lambda m: None)
    kept = Recipe.model_validate(yaml.safe_load((tmp_path / "run" / RECIPE_FILE).read_text()))
    assert kept == r and kept.stages["a"].config == {"text": "B"}  # with the override applied


def test_validation_reports_every_stage_s_errors_at_once(tmp_path):
    r = recipe(
        a={"kind": "echo", "config": {"txt": "A"}},
        b={"kind": "echo", "config": {"text": "${a}", "fail": "sometimes"}},
        c={"kind": "echo", "config": {"text": "C", "source": str(tmp_path / "missing.txt")}},
        d={"kind": "nope"},
    )
    with pytest.raises(ConfigError) as err:
        validate_recipe(r, tmp_path, tmp_path, source="r.yaml")
    message = str(err.value)
    assert message.startswith("r.yaml: ") and message.count("r.yaml") == 1
    for part in ("'stages.a.config.txt': unknown key", "'stages.b.config.fail'", "unknown stage kind 'nope'",
                 "'stages.c.config.source': file '"):
        assert part in message, part
    assert "\n" not in message


def test_a_changed_input_file_changes_the_stage_key_and_is_reported(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("one")
    r = recipe(a={"kind": "echo", "config": {"text": "A", "source": str(src)}},
               b={"kind": "echo", "config": {"text": "B", "source": "${a}/out.txt"}})
    logs: list[str] = []
    first = run_recipe(r, run_dir=tmp_path / "run", log=logs.append)
    assert run_recipe(r, run_dir=tmp_path / "run", log=logs.append).stages[0].hash == first.stages[0].hash
    src.write_text("two")
    logs.clear()
    second = run_recipe(r, run_dir=tmp_path / "run", log=logs.append)
    assert [s.hash != f.hash for s, f in zip(second.stages, first.stages, strict=True)] == [True, True]
    assert (second.stages[1].dir / "out.txt").read_text() == "B|A|two"
    assert any("stage a: input source" in line and "changed since" in line for line in logs)
    assert CALLS == ["a", "b", "a", "b"]
