"""Recipes: a graph of stages with named inputs and outputs, run in dependency order.

A recipe YAML names stages; a stage's config refers to another stage's output directory as
`${name}` (e.g. `model: {path: "${sft}"}`, `data: {path: "${world}/sft.jsonl"}`), and to the
recipe's own folder as `${recipe_dir}`. Each stage directory is keyed by a hash of its kind, its
validated config and the hashes of its inputs, so a re-run skips finished stages (their directory
holds `stage.json`) and resumes an interrupted one (same directory, same checkpoints).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

import alignlab
from alignlab.config import Section, apply_overrides, load_yaml, validate_config
from alignlab.distributed import init_processes, is_main_process, wait_for_everyone
from alignlab.errors import AlignlabError, ConfigError, PipelineError
from alignlab.io import atomic_write_json, atomic_write_text
from alignlab.registry import NullRegistry, Registry
from alignlab.stage_io import DONE_FILE, StageContext, write_config
from alignlab.stages import StageKind, get_stage_kind, run_stage

REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)\}")
HASH_LEN = 10
RECIPE_FILE = "recipe.yaml"  # the recipe as run (overrides applied), kept in the run directory


class StageSpec(Section):
    kind: str = Field(description="Stage kind (see `alignlab validate --help`): sft, ...")
    config: dict[str, Any] = Field(default_factory=dict, description="The stage kind's config.")


class Recipe(Section):
    name: str = Field(description="Recipe name; the default run directory is runs/<name>.")
    description: str = Field(default="", description="What the recipe does.")
    run_dir: str | None = Field(default=None, description="Where stage directories go.")
    stages: dict[str, StageSpec] = Field(min_length=1, description="Stages by name, in any order.")


@dataclass(frozen=True)
class PlannedStage:
    name: str
    kind: StageKind
    config: BaseModel  # validated, references resolved to directories
    deps: tuple[str, ...]
    hash: str
    dir: Path

    @property
    def done(self) -> bool:
        marker = self.dir / DONE_FILE
        if not marker.is_file():
            return False
        try:
            return json.loads(marker.read_text()).get("hash") == self.hash
        except (OSError, ValueError):
            return False


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Load a recipe; `stage.key.sub=value` overrides a stage's config, `run_dir=...` the recipe."""
    data = load_yaml(path)
    stage_names = set((data.get("stages") or {}).keys())
    mapped = []
    for text in overrides:
        head = text.split("=", 1)[0].split(".", 1)[0]
        if head in stage_names and "." in text.split("=", 1)[0]:
            _, rest = text.split(".", 1)
            mapped.append(f"stages.{head}.config.{rest}")
        else:
            mapped.append(text)
    return validate_config(Recipe, apply_overrides(data, mapped), source=str(path))


def plan(recipe: Recipe, run_dir: Path, recipe_dir: Path, *, source: str = "recipe") -> list[PlannedStage]:
    """Validate every stage, resolve references, order by dependencies, compute stage directories."""
    deps = {name: _refs(spec.config) - {"recipe_dir"} for name, spec in recipe.stages.items()}
    for name, ds in deps.items():
        unknown = ds - set(recipe.stages)
        if unknown:
            raise PipelineError(
                f"{source}: stage '{name}' refers to unknown stage(s) {', '.join(sorted(unknown))}; "
                f"stages are {', '.join(recipe.stages)}"
            )
    planned: dict[str, PlannedStage] = {}
    for name in _topological_order(deps, source):
        spec = recipe.stages[name]
        kind = get_stage_kind(spec.kind)
        prefix = f"stages.{name}.config"
        # Hash over inputs' hashes, not their paths, so moving a run directory keeps its cache.
        by_hash = _substitute(spec.config, {d: f"@{planned[d].hash}" for d in deps[name]}, recipe_dir)
        canonical = validate_config(kind.config, by_hash, prefix=prefix, source=source)
        # The release is part of the key: a new alignlab may compute a stage differently.
        key = {"kind": kind.name, "config": canonical.model_dump(mode="json"), "alignlab": alignlab.__version__}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:HASH_LEN]
        stage_dir = (run_dir / f"{name}-{digest}").resolve()
        resolved = _substitute(spec.config, {d: str(planned[d].dir) for d in deps[name]}, recipe_dir)
        config = validate_config(kind.config, resolved, prefix=prefix, source=source)
        planned[name] = PlannedStage(name, kind, config, tuple(sorted(deps[name])), digest, stage_dir)
    return list(planned.values())


def check_inputs(stages: Sequence[PlannedStage], source: str = "recipe") -> None:
    """Every input file or model directory that no stage produces must exist now."""
    produced = [str(s.dir) for s in stages]
    for s in stages:
        for key, kind, value in _input_fields(s.config, f"stages.{s.name}.config"):
            if value is None or any(value.startswith(p) for p in produced):
                continue
            p = Path(value).expanduser()
            if kind == "model" and not p.is_dir() and not getattr(_parent_of(s.config, key), "allow_hub", False):
                raise ConfigError(f"{source}: config key '{key}': model directory '{value}' not found")
            if kind == "file" and not p.exists():
                raise ConfigError(f"{source}: config key '{key}': file '{value}' not found")


@dataclass
class RunResult:
    run_id: int
    run_dir: Path
    stages: list[PlannedStage]
    summaries: dict[str, dict[str, Any]]


def run_recipe(
    recipe: Recipe,
    *,
    run_dir: Path,
    recipe_path: str | None = None,
    registry: Registry | None = None,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Run every stage not yet done, in dependency order; record everything in the registry.

    Under a multi-process launch every process runs this: training stages run on all of them, the
    others on the main process (see `StageKind.all_processes`); only the main process logs and
    writes the registry, `stage.json` and `summary.json`.
    """
    init_processes()
    main = is_main_process()
    log = log if main else _silent
    recipe_dir = Path(recipe_path).resolve().parent if recipe_path else Path.cwd()
    stages = plan(recipe, run_dir, recipe_dir, source=recipe_path or "recipe")
    check_inputs(stages, recipe_path or "recipe")
    registry = (registry or Registry()) if main else NullRegistry()
    run_dir.mkdir(parents=True, exist_ok=True)
    if main:
        atomic_write_text(run_dir / RECIPE_FILE, yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    # Decided before anything runs, so every process skips the same stages.
    done = {s.name: s.done for s in stages}
    wait_for_everyone()
    run_id = registry.start_run(recipe.name, recipe_path, str(run_dir.resolve()))
    summaries: dict[str, dict[str, Any]] = {}
    by_name = {s.name: s for s in stages}
    try:
        for s in stages:
            inputs = [str(by_name[d].dir) for d in s.deps]
            if done[s.name]:
                log(f"skip stage {s.name}: already done ({s.dir})")
                summaries[s.name] = json.loads((s.dir / DONE_FILE).read_text()).get("summary", {})
                sid = registry.start_stage(run_id, s.name, s.kind.name, s.hash, str(s.dir), inputs)
                registry.finish_stage(sid, "skipped", summaries[s.name])
                continue
            summaries[s.name] = _run_one(s, inputs, run_id, run_dir, registry, log)
    except BaseException as err:
        registry.finish_run(run_id, "failed", _one_line(err))
        raise
    registry.finish_run(run_id, "done")
    if main:
        atomic_write_json(run_dir / "summary.json", {s.name: {"dir": str(s.dir), **summaries[s.name]} for s in stages})
    wait_for_everyone()
    return RunResult(run_id, run_dir, stages, summaries)


def _silent(msg: str) -> None:
    """The log of the processes other than the main one: one copy of each line is enough."""


def _run_one(s: PlannedStage, inputs: list[str], run_id: int, run_dir: Path, registry: Registry, log) -> dict:
    main = is_main_process()
    resumed = s.dir.exists()
    wait_for_everyone()  # every process has looked before the main one creates the directory
    s.dir.mkdir(parents=True, exist_ok=True)
    if main:
        write_config(s.config, s.dir)
    log(f"{'resume' if resumed else 'run'} stage {s.name} ({s.kind.name}) in {s.dir}")
    sid = registry.start_stage(run_id, s.name, s.kind.name, s.hash, str(s.dir), inputs)
    start = time.time()
    try:
        summary = run_stage(s.kind, s.config, StageContext(s.name, s.dir, run_dir, log))
    except BaseException as err:
        registry.finish_stage(sid, "failed", error=_one_line(err))
        if main and not isinstance(err, AlignlabError | KeyboardInterrupt):
            (s.dir / "error.log").write_text(traceback.format_exc())
        raise
    summary = {**summary, "seconds": round(time.time() - start, 2)}
    if main:
        atomic_write_json(s.dir / DONE_FILE, {"hash": s.hash, "kind": s.kind.name, "inputs": inputs, "summary": summary})
    registry.finish_stage(sid, "done", summary)
    wait_for_everyone()  # the next stage may read this one's files
    log(f"stage {s.name} done in {summary['seconds']:.1f}s")
    return summary


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"


def _refs(obj: Any) -> set[str]:
    if isinstance(obj, str):
        return set(REF.findall(obj))
    if isinstance(obj, dict):
        return set().union(*(_refs(v) for v in obj.values())) if obj else set()
    if isinstance(obj, list):
        return set().union(*(_refs(v) for v in obj)) if obj else set()
    return set()


def _substitute(obj: Any, values: dict[str, str], recipe_dir: Path) -> Any:
    if isinstance(obj, str):
        return REF.sub(lambda m: str(recipe_dir) if m.group(1) == "recipe_dir" else values[m.group(1)], obj)
    if isinstance(obj, dict):
        return {k: _substitute(v, values, recipe_dir) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, values, recipe_dir) for v in obj]
    return obj


def _topological_order(deps: dict[str, set[str]], source: str) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycle = " -> ".join([*path[path.index(n):], n])
            raise PipelineError(f"{source}: stages depend on each other in a cycle: {cycle}")
        state[n] = 1
        for d in sorted(deps[n]):
            visit(d, [*path, n])
        state[n] = 2
        order.append(n)

    for n in deps:  # recipe order breaks ties, so independent stages run in the order written
        visit(n, [])
    return order


def _input_fields(model: BaseModel, prefix: str):
    """(dotted key, 'file' | 'model', value) of every field marked as an input path."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}.{name}"
        if isinstance(value, BaseModel):
            yield from _input_fields(value, key)
        elif isinstance(field.json_schema_extra, dict) and "input" in field.json_schema_extra:
            yield key, field.json_schema_extra["input"], value


def _parent_of(model: BaseModel, dotted: str) -> BaseModel:
    node = model
    for part in dotted.split(".")[3:-1]:  # skip "stages.<name>.config"
        node = getattr(node, part)
    return node
