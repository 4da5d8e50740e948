"""Running stages: a recipe's graph in dependency order, or one stage into a directory. One path.

The recipe file (its stages, references, `extends:`, the seed) is `alignlab.recipe`. Each stage
directory is keyed by a hash of its kind, its validated config, the hashes of its inputs and the
fingerprints of the files it reads from outside the recipe, so a re-run skips finished stages
(their directory holds `stage.json`) and resumes an interrupted one (same directory, same
checkpoints).

`run_recipe` and `run_in_dir` (every standalone stage command) run each stage through
`_execute`: `config.yaml`, the stage, `stage.json`, and the run index rows with the artefacts.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

import alignlab
from alignlab.config import validate_config
from alignlab.distributed import init_processes, is_main_process, wait_for_everyone
from alignlab.errors import AlignlabError, ConfigError, PipelineError
from alignlab.io import atomic_write_json, atomic_write_text, ensure_writable_dir
from alignlab.recipe import (
    RECIPE_FILE,
    VARIABLES,
    Recipe,
    StageSpec,
    references,
    substitute,
    topological_order,
)
from alignlab.run_index import NullRunIndex, RunIndex, open_run_index
from alignlab.stage_inputs import CACHE_FILE as FINGERPRINTS
from alignlab.stage_inputs import FingerprintCache, changed_inputs_note, external_inputs, input_problems
from alignlab.stage_io import DONE_FILE, write_config
from alignlab.stages import StageKind, get_stage_kind, run_stage, stage_context

HASH_LEN = 10
Log = Callable[[str], None]


@dataclass(frozen=True)
class PlannedStage:
    name: str
    kind: StageKind
    config: BaseModel  # validated, references resolved to directories
    deps: tuple[str, ...]
    hash: str  # the directory's key: kind, config, upstream hashes, input fingerprints, release
    dir: Path
    # config key -> {path, fingerprint} of each input from outside the recipe (`stage_inputs`)
    inputs: dict[str, dict] = field(default_factory=dict)
    config_hash: str = ""  # the key without the input fingerprints: same config, other data?

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


def stage_hash(kind: StageKind, config: BaseModel, inputs: dict[str, dict] | None = None) -> str:
    """Key of a stage directory: kind, validated config, the fingerprints of the input files it reads
    from outside the recipe (`stage_inputs.external_inputs`) and the alignlab release (which may
    compute a stage differently)."""
    key: dict[str, Any] = {"kind": kind.name, "config": config.model_dump(mode="json"),
                           "alignlab": alignlab.__version__}
    if inputs:  # absent when there are none, so such stages keep the keys they always had
        key["inputs"] = {k: v["fingerprint"] for k, v in inputs.items()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:HASH_LEN]


def plan(recipe: Recipe, run_dir: Path, recipe_dir: Path, *, source: str = "recipe",
         cache: FingerprintCache | None = None) -> list[PlannedStage]:
    """Validate every stage, resolve references, order by dependencies, compute stage directories.

    Every stage is validated: one ConfigError names the problems of all of them. Input files are
    fingerprinted with `cache` (default: the one kept in `run_dir`, read only)."""
    cache = cache if cache is not None else FingerprintCache(run_dir / FINGERPRINTS)
    planned, problems = _plan_all(recipe, run_dir, recipe_dir, source, cache)
    _raise_all(problems, source)
    return planned


def validate_recipe(recipe: Recipe, run_dir: Path, recipe_dir: Path, *, source: str = "recipe",
                    cache: FingerprintCache | None = None) -> list[PlannedStage]:
    """`plan`, then `check_inputs`: every problem of every stage in one ConfigError."""
    cache = cache if cache is not None else FingerprintCache(run_dir / FINGERPRINTS)
    planned, problems = _plan_all(recipe, run_dir, recipe_dir, source, cache)
    problems += _input_problems(planned, in_recipe=True)
    _raise_all(problems, source)
    return planned


Problem = tuple[type[AlignlabError], str]  # the error class one problem alone would raise, its message


def _raise_all(problems: list[Problem], source: str) -> None:
    """One error for all problems: the problem's own class when there is one, else a ConfigError."""
    if problems:
        cls = problems[0][0] if len(problems) == 1 else ConfigError
        raise cls(f"{source}: " + "; ".join(msg for _, msg in problems))


def _plan_all(recipe: Recipe, run_dir: Path, recipe_dir: Path, source: str,
              cache: FingerprintCache) -> tuple[list[PlannedStage], list[Problem]]:
    """The stages that validate, in run order, and the problems of those that do not."""
    reserved = set(VARIABLES) & set(recipe.stages)
    if reserved:
        raise PipelineError(f"{source}: a stage may not be named {', '.join(sorted(reserved))} "
                            f"(${{{min(reserved)}}} is the recipe's); rename it")
    refs = {name: references(spec.config) for name, spec in recipe.stages.items()}
    deps = {name: {stage for stage, _ in r} - set(VARIABLES) for name, r in refs.items()}
    variables = {"recipe_dir": str(recipe_dir), "seed": recipe.seed}
    for name, ds in deps.items():
        unknown = ds - set(recipe.stages)
        if unknown:
            raise PipelineError(
                f"{source}: stage '{name}' refers to unknown stage(s) {', '.join(sorted(unknown))}; "
                f"stages are {', '.join(recipe.stages)}"
            )
    planned: dict[str, PlannedStage] = {}
    problems: list[Problem] = []
    for name in topological_order(deps, source):
        try:
            stage = _plan_stage(
                name, recipe.stages[name], refs[name], deps[name], planned, run_dir, variables, cache
            )
        except AlignlabError as err:
            problems.append((type(err), str(err)))
            continue
        if stage is not None:
            planned[name] = stage
    return list(planned.values()), problems


def _plan_stage(name: str, spec: StageSpec, refs: set, deps: set[str], planned: dict[str, PlannedStage],
                run_dir: Path, variables: dict[str, Any], cache: FingerprintCache) -> PlannedStage | None:
    """One stage validated and keyed; None when a stage it needs did not validate (its own config is
    still checked, with placeholders for those stages)."""
    kind = get_stage_kind(spec.kind)
    prefix = f"stages.{name}.config"
    missing = deps - set(planned)
    if missing:
        values: dict[str, tuple[str, StageKind | None]] = {d: ("@invalid", None) for d in missing}
        values.update({d: (str(planned[d].dir), planned[d].kind) for d in deps - missing})
        validate_config(kind.config, substitute(spec.config, values, variables), prefix=prefix)
        return None
    _check_artefacts(name, refs, planned)
    # Hash over inputs' hashes, not their paths, so moving a run directory keeps its cache.
    by_hash = {d: (f"@{planned[d].hash}", planned[d].kind) for d in deps}
    keyed = validate_config(kind.config, substitute(spec.config, by_hash, variables), prefix=prefix)
    inputs = external_inputs(keyed, cache)  # what the recipe does not produce: data files, base models
    digest = stage_hash(kind, keyed, inputs)
    stage_dir = (run_dir / f"{name}-{digest}").resolve()
    by_dir = {d: (str(planned[d].dir), planned[d].kind) for d in deps}
    config = validate_config(kind.config, substitute(spec.config, by_dir, variables), prefix=prefix)
    return PlannedStage(name, kind, config, tuple(sorted(deps)), digest, stage_dir, inputs,
                        stage_hash(kind, keyed))


def check_inputs(stages: Sequence[PlannedStage], source: str = "recipe", *, in_recipe: bool = True) -> None:
    """Every input file or model directory that no stage produces must exist now. Keys are named
    as in a recipe (`stages.sft.config.model.path`), or as in the stage's own config."""
    _raise_all(_input_problems(stages, in_recipe=in_recipe), source)


def _input_problems(stages: Sequence[PlannedStage], *, in_recipe: bool) -> list[Problem]:
    produced = [str(s.dir) for s in stages]
    return [problem for s in stages
            for problem in input_problems(s.config, f"stages.{s.name}.config" if in_recipe else "", produced)]


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
    cache = FingerprintCache(run_dir / FINGERPRINTS)
    stages = validate_recipe(recipe, run_dir, recipe_dir, source=recipe_path or "recipe", cache=cache)
    ensure_writable_dir(run_dir, "run directory")
    index = (index or RunIndex()) if main else NullRunIndex()
    if main:
        atomic_write_text(
            run_dir / RECIPE_FILE, yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
        )
        cache.save()
    # Decided before anything runs, so every process skips the same stages.
    done = {s.name: s.done for s in stages}
    wait_for_everyone()
    run_id = index.start_run(recipe.name, recipe_path, str(run_dir.resolve()))
    summaries: dict[str, dict[str, Any]] = {}
    by_name = {s.name: s for s in stages}
    try:
        with index.alive(run_id):
            for s in stages:
                summaries[s.name] = _run_or_skip(s, done[s.name], by_name, run_id, run_dir, index, log)
    except BaseException as err:
        index.finish_run(run_id, _failure(err), _one_line(err))
        raise
    index.finish_run(run_id, "done")
    if main:
        summary = {s.name: {"dir": str(s.dir), **summaries[s.name]} for s in stages}
        atomic_write_json(run_dir / "summary.json", summary)
    wait_for_everyone()
    return RunResult(run_id, run_dir, stages, summaries)


def _run_or_skip(s: PlannedStage, done: bool, by_name: dict[str, PlannedStage], run_id: int, run_dir: Path,
                 index: RunIndex, log: Log) -> dict[str, Any]:
    """One stage of a recipe: skipped (its summary read back) when done, else executed."""
    inputs = [str(by_name[d].dir) for d in s.deps]
    if not done:
        note = changed_inputs_note(s.name, s.dir, s.inputs, s.config_hash)
        if note:
            log(note)
        return _execute(s, inputs, run_id, run_dir, index, log)
    log(f"skip stage {s.name}: already done ({s.dir})")
    summary = json.loads((s.dir / DONE_FILE).read_text()).get("summary", {})
    sid = index.start_stage(run_id, s.name, s.kind.name, s.hash, str(s.dir), inputs)
    index.finish_stage(sid, "skipped", summary)
    return summary


def run_in_dir(kind_name: str, config: BaseModel, output: Path, *, source: str = "command line",
               log: Log = print) -> dict[str, Any]:
    """Run one stage into `output` and record it as a run of its own: what every stage command does.

    The directory gets what a recipe's stage directory gets (config.yaml, stage.json, the declared
    artefacts, a run-index row); it must not hold a finished stage already.
    """
    kind = get_stage_kind(kind_name)
    inputs = external_inputs(config)
    stage = PlannedStage(
        kind.name,
        kind,
        config,
        (),
        stage_hash(kind, config, inputs),
        output.resolve(),
        inputs,
        stage_hash(kind, config),
    )
    check_inputs([stage], source, in_recipe=False)
    ensure_writable_dir(output, "--output")
    init_processes()
    if (stage.dir / DONE_FILE).exists():
        raise AlignlabError(
            f"{output}: already holds a finished {kind.name} run; choose another --output or delete it"
        )
    log = log if is_main_process() else _silent
    index = open_run_index()
    run_id = index.start_run(kind.name, None, str(stage.dir))
    try:
        with index.alive(run_id):
            summary = _execute(stage, [], run_id, None, index, log, announce=False)
    except BaseException as err:
        index.finish_run(run_id, _failure(err), _one_line(err))
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
    start, cpu_start = time.time(), time.process_time()
    try:
        ctx = stage_context(s.kind.name, s.dir, name=s.name, run_dir=run_dir, log=log)
        summary = run_stage(s.kind, s.config, ctx)
    except BaseException as err:
        index.finish_stage(sid, _failure(err), error=_one_line(err))
        if main and not isinstance(err, AlignlabError | KeyboardInterrupt):
            (s.dir / "error.log").write_text(traceback.format_exc())
        raise
    # Wall time, and this process's CPU time (all its threads), which a busy machine inflates less.
    summary = {**summary, "seconds": round(time.time() - start, 2),
               "cpu_seconds": round(time.process_time() - cpu_start, 2)}
    if main:
        done = {"hash": s.hash, "kind": s.kind.name, "inputs": inputs, "summary": summary,
                "config_hash": s.config_hash, "input_files": s.inputs}
        atomic_write_json(s.dir / DONE_FILE, done)
    index.finish_stage(sid, "done", summary, artefacts=s.artefacts())
    wait_for_everyone()  # the next stage may read this one's files
    if announce:
        log(f"stage {s.name} done in {summary['seconds']:.1f}s")
    return summary


def _failure(err: BaseException) -> str:
    """The status a run or stage ends with when `err` stops it: Ctrl-C interrupts, the rest fails."""
    return "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"




def _check_artefacts(name: str, refs: set[tuple[str, str | None]], planned: dict[str, PlannedStage]) -> None:
    for stage, artefact in sorted(refs, key=str):
        if stage in VARIABLES and artefact is not None:
            raise PipelineError(f"stage '{name}' refers to ${{{stage}.{artefact}}}; "
                                f"${{{stage}}} is the recipe's and has no artefacts")
        if artefact is None or stage in VARIABLES:
            continue
        outputs = planned[stage].kind.outputs
        if artefact not in outputs:
            raise PipelineError(
                f"stage '{name}' refers to ${{{stage}.{artefact}}}, but a "
                f"{planned[stage].kind.name} stage has no output '{artefact}'; "
                f"its outputs are {', '.join(outputs) or 'none'}"
            )
