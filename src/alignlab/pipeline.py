"""Running stages: a recipe's graph in dependency order, or one stage into a directory. One path.

A recipe YAML names stages; a stage's config refers to another stage's output directory as
`${name}` (e.g. `model: {path: "${sft}"}`), to one of its declared artefacts as `${name.artefact}`
(e.g. `data: {path: "${world.sft}"}`, see `StageKind.outputs`), and to the recipe's own folder as
`${recipe_dir}`. Each stage directory is keyed by a hash of its kind, its validated config and the
hashes of its inputs, so a re-run skips finished stages (their directory holds `stage.json`) and
resumes an interrupted one (same directory, same checkpoints).

`run_recipe` and `run_in_dir` (every standalone stage command) run each stage through
`_execute`: `config.yaml`, the stage, `stage.json`, and the run index rows with the artefacts.
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
from alignlab.run_index import NullRunIndex, RunIndex, open_run_index
from alignlab.stage_io import DONE_FILE, write_config
from alignlab.stages import STAGE_KINDS, StageKind, get_stage_kind, run_stage, stage_context

# ${stage} or ${stage.artefact}
REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}")
HASH_LEN = 10
Log = Callable[[str], None]
RECIPE_FILE = "recipe.yaml"  # the recipe as run (overrides applied), kept in the run directory


class StageSpec(Section):
    kind: str = Field(description=f"Stage kind (`alignlab stages` lists them): {', '.join(STAGE_KINDS)}.")
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

    def artefacts(self) -> list[tuple[str, str, str]]:
        """(name, path, kind) of each declared output the stage wrote."""
        paths = ((name, self.dir / a.path, a.kind) for name, a in self.kind.outputs.items())
        return [(name, str(p), kind) for name, p, kind in paths if p.exists()]


# ------------------------------------------------------------------------------------ planning


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


def stage_hash(kind: StageKind, config: BaseModel) -> str:
    """Key of a stage directory: kind, validated config and the alignlab release (which may compute
    a stage differently)."""
    key = {"kind": kind.name, "config": config.model_dump(mode="json"), "alignlab": alignlab.__version__}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:HASH_LEN]


def plan(recipe: Recipe, run_dir: Path, recipe_dir: Path, *, source: str = "recipe") -> list[PlannedStage]:
    """Validate every stage, resolve references, order by dependencies, compute stage directories."""
    refs = {name: _refs(spec.config) for name, spec in recipe.stages.items()}
    deps = {name: {stage for stage, _ in r} - {"recipe_dir"} for name, r in refs.items()}
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
        _check_artefacts(name, refs[name], planned, source)
        prefix = f"stages.{name}.config"
        # Hash over inputs' hashes, not their paths, so moving a run directory keeps its cache.
        by_hash = {d: (f"@{planned[d].hash}", planned[d].kind) for d in deps[name]}
        by_hash = _substitute(spec.config, by_hash, recipe_dir)
        digest = stage_hash(kind, validate_config(kind.config, by_hash, prefix=prefix, source=source))
        stage_dir = (run_dir / f"{name}-{digest}").resolve()
        by_dir = {d: (str(planned[d].dir), planned[d].kind) for d in deps[name]}
        resolved = _substitute(spec.config, by_dir, recipe_dir)
        config = validate_config(kind.config, resolved, prefix=prefix, source=source)
        planned[name] = PlannedStage(name, kind, config, tuple(sorted(deps[name])), digest, stage_dir)
    return list(planned.values())


def check_inputs(stages: Sequence[PlannedStage], source: str = "recipe") -> None:
    """Every input file or model directory that no stage produces must exist now."""
    produced = [str(s.dir) for s in stages]
    for s in stages:
        for key, extra, value, parent in _input_fields(s.config, f"stages.{s.name}.config"):
            if value is None or any(value.startswith(p) for p in produced) or _not_a_path(extra, value):
                continue
            kind = extra["input"]
            p = Path(value).expanduser()
            if kind == "model" and not p.is_dir() and not getattr(parent, "allow_hub", False):
                raise ConfigError(f"{source}: config key '{key}': model directory '{value}' not found")
            if kind == "file" and not p.exists():
                raise ConfigError(f"{source}: config key '{key}': file '{value}' not found")


# ------------------------------------------------------------------------------------ running


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
    index: RunIndex | None = None,
    log: Log = print,
) -> RunResult:
    """Run every stage not yet done, in dependency order; record everything in the run index.

    Under a multi-process launch every process runs this: training stages run on all of them, the
    others on the main process (see `StageKind.all_processes`); only the main process logs and
    writes the run index, `stage.json` and `summary.json`.
    """
    init_processes()
    main = is_main_process()
    log = log if main else _silent
    recipe_dir = Path(recipe_path).resolve().parent if recipe_path else Path.cwd()
    stages = plan(recipe, run_dir, recipe_dir, source=recipe_path or "recipe")
    check_inputs(stages, recipe_path or "recipe")
    index = (index or RunIndex()) if main else NullRunIndex()
    run_dir.mkdir(parents=True, exist_ok=True)
    if main:
        atomic_write_text(run_dir / RECIPE_FILE, yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    # Decided before anything runs, so every process skips the same stages.
    done = {s.name: s.done for s in stages}
    wait_for_everyone()
    run_id = index.start_run(recipe.name, recipe_path, str(run_dir.resolve()))
    summaries: dict[str, dict[str, Any]] = {}
    by_name = {s.name: s for s in stages}
    try:
        for s in stages:
            inputs = [str(by_name[d].dir) for d in s.deps]
            if done[s.name]:
                log(f"skip stage {s.name}: already done ({s.dir})")
                summaries[s.name] = json.loads((s.dir / DONE_FILE).read_text()).get("summary", {})
                sid = index.start_stage(run_id, s.name, s.kind.name, s.hash, str(s.dir), inputs)
                index.finish_stage(sid, "skipped", summaries[s.name])
                continue
            summaries[s.name] = _execute(s, inputs, run_id, run_dir, index, log)
    except BaseException as err:
        index.finish_run(run_id, "failed", _one_line(err))
        raise
    index.finish_run(run_id, "done")
    if main:
        summary = {s.name: {"dir": str(s.dir), **summaries[s.name]} for s in stages}
        atomic_write_json(run_dir / "summary.json", summary)
    wait_for_everyone()
    return RunResult(run_id, run_dir, stages, summaries)


def run_in_dir(kind_name: str, config: BaseModel, output: Path, *, source: str = "command line",
               log: Log = print) -> dict[str, Any]:
    """Run one stage into `output` and record it as a run of its own: what every stage command does.

    The directory gets what a recipe's stage directory gets (config.yaml, stage.json, the declared
    artefacts, a run-index row); it must not hold a finished stage already.
    """
    kind = get_stage_kind(kind_name)
    stage = PlannedStage(kind.name, kind, config, (), stage_hash(kind, config), output.resolve())
    check_inputs([stage], source)
    if stage.dir.is_file():
        raise ConfigError(f"--output {output}: is a file; give the directory to write the stage into")
    init_processes()
    if (stage.dir / DONE_FILE).exists():
        raise AlignlabError(
            f"{output}: already holds a finished {kind.name} run; choose another --output or delete it"
        )
    log = log if is_main_process() else _silent
    index = open_run_index()
    run_id = index.start_run(kind.name, None, str(stage.dir))
    try:
        summary = _execute(stage, [], run_id, None, index, log, announce=False)
    except BaseException as err:
        index.finish_run(run_id, "failed", _one_line(err))
        raise
    index.finish_run(run_id, "done")
    return summary


def _silent(msg: str) -> None:
    """The log of the processes other than the main one: one copy of each line is enough."""


def _execute(s: PlannedStage, inputs: list[str], run_id: int, run_dir: Path | None, index: RunIndex, log: Log,
             *, announce: bool = True) -> dict:
    """Run one planned stage in its directory: config.yaml, the stage, stage.json, run-index rows.

    `announce` logs the stage's start and end (a recipe's progress; a stage command says it itself)."""
    main = is_main_process()
    resumed = s.dir.exists()
    wait_for_everyone()  # every process has looked before the main one creates the directory
    s.dir.mkdir(parents=True, exist_ok=True)
    if main:
        write_config(s.config, s.dir)
    if announce:
        log(f"{'resume' if resumed else 'run'} stage {s.name} ({s.kind.name}) in {s.dir}")
    sid = index.start_stage(run_id, s.name, s.kind.name, s.hash, str(s.dir), inputs)
    start = time.time()
    try:
        ctx = stage_context(s.kind.name, s.dir, name=s.name, run_dir=run_dir, log=log)
        summary = run_stage(s.kind, s.config, ctx)
    except BaseException as err:
        index.finish_stage(sid, "failed", error=_one_line(err))
        if main and not isinstance(err, AlignlabError | KeyboardInterrupt):
            (s.dir / "error.log").write_text(traceback.format_exc())
        raise
    summary = {**summary, "seconds": round(time.time() - start, 2)}
    if main:
        done = {"hash": s.hash, "kind": s.kind.name, "inputs": inputs, "summary": summary}
        atomic_write_json(s.dir / DONE_FILE, done)
    index.finish_stage(sid, "done", summary, artefacts=s.artefacts())
    wait_for_everyone()  # the next stage may read this one's files
    if announce:
        log(f"stage {s.name} done in {summary['seconds']:.1f}s")
    return summary


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"


# ------------------------------------------------------------------------------------ references


def _refs(obj: Any) -> set[tuple[str, str | None]]:
    """(stage, artefact or None) of every reference in a stage's raw config."""
    if isinstance(obj, str):
        return {(m.group(1), m.group(2)) for m in REF.finditer(obj)}
    if isinstance(obj, dict):
        return set().union(*(_refs(v) for v in obj.values())) if obj else set()
    if isinstance(obj, list):
        return set().union(*(_refs(v) for v in obj)) if obj else set()
    return set()


def _check_artefacts(name: str, refs: set[tuple[str, str | None]], planned: dict[str, PlannedStage],
                     source: str) -> None:
    for stage, artefact in sorted(refs, key=str):
        if artefact is None or stage == "recipe_dir":
            continue
        outputs = planned[stage].kind.outputs
        if artefact not in outputs:
            raise PipelineError(
                f"{source}: stage '{name}' refers to ${{{stage}.{artefact}}}, but a "
                f"{planned[stage].kind.name} stage has no output '{artefact}'; "
                f"its outputs are {', '.join(outputs) or 'none'}"
            )


def _substitute(obj: Any, values: dict[str, tuple[str, StageKind]], recipe_dir: Path) -> Any:
    """Replace references: `${stage}` by the directory in `values`, `${stage.x}` by x's path in it."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1) == "recipe_dir":
            return str(recipe_dir)
        where, kind = values[m.group(1)]
        if m.group(2) is None:
            return where
        rel = kind.outputs[m.group(2)].path
        return where if rel == "." else f"{where}/{rel}"

    if isinstance(obj, str):
        return REF.sub(repl, obj)
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


def _not_a_path(extra: dict[str, Any], value: str) -> bool:
    """An input field's value that names no local path: a URL where the field takes one
    (`"url": True`), or one of its built-in names (`"names"`)."""
    return (bool(extra.get("url")) and value.startswith(("http://", "https://"))) or value in extra.get("names", ())


def _input_fields(model: Any, prefix: str):
    """(dotted key, the field's input marks, value, section) of every field marked as an input path
    (`json_schema_extra={"input": "file" | "model", ...}`), in nested sections and in lists or
    mappings of sections."""
    if isinstance(model, dict):
        for k, v in model.items():
            yield from _input_fields(v, f"{prefix}.{k}")
        return
    if isinstance(model, list | tuple):
        for i, v in enumerate(model):
            yield from _input_fields(v, f"{prefix}.{i}")
        return
    if not isinstance(model, BaseModel):
        return
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}.{name}"
        extra = field.json_schema_extra
        if isinstance(extra, dict) and "input" in extra:
            many = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else None
            if many is None:
                yield key, extra, value, model
            else:  # a list or mapping of paths
                yield from ((f"{key}.{k}", extra, v, model) for k, v in many)
        else:
            yield from _input_fields(value, key)
