"""Where the report finds things in a run directory: the one module that knows where files lie.

A run directory (`alignlab run --run-dir DIR`) holds `summary.json` (stage name -> {dir, ...})
and one directory per stage, `<name>-<hash>/`, with `stage.json` ({hash, kind, inputs, summary})
once the stage finished, its resolved `config.yaml`, and the outputs its stage kind declares
(`alignlab.stages.STAGE_KINDS`: artefact name -> path), read by name with `Stage.path`.
Eval-suite results: an `eval` stage lists every (checkpoint, suite) it ran in its declared
`results` file; elsewhere (hand-made runs, `DIR/evals/`, older runs) a `summary.json` with a
`suite` below a stage directory or `DIR/evals/` is one, and the folder above the suite's names the
checkpoint. Everything here is read-only and tolerant: a missing or unreadable file is `None`,
never an error, so a partial run still gets a report. Only a directory that is no run at all is an
error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alignlab.errors import AlignlabError
from alignlab.recipe import RECIPE_FILE  # the recipe as run (older runs have none)
from alignlab.stage_io import CONFIG_FILE
from alignlab.stage_io import DONE_FILE as STAGE_FILE
from alignlab.stages import STAGE_KINDS

RUN_SUMMARY = "summary.json"  # written by `pipeline.run_recipe` at the end of a run
EVALS_DIR = "evals"  # `alignlab eval ... --output DIR/evals/<checkpoint>` results
SUITE_SUMMARY = "summary.json"
OVEROPT_FILE = "overoptimisation.json"
ERROR_LOG = "error.log"  # the traceback of a stage that failed with an unexpected error
METRICS = "metrics.jsonl"  # any stage kind that trains writes it (the loop's file)
EVAL_KIND = "eval"
LAB_RESPONSES = re.compile(r"^responses-(.+)\.jsonl$")
STAGE_DIR = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_-]*)-(?P<hash>[0-9a-f]{6,64})$")
SUITE_DEPTH = 3  # how deep below a stage directory suite results are looked for


class ReportError(AlignlabError):
    """The report cannot be made: the directory is not a run directory, or the output is not writable."""


@dataclass(frozen=True)
class Stage:
    """One stage directory of the run, finished or not."""

    name: str
    dir: Path
    kind: str | None  # from stage.json (None when the stage did not finish)
    done: bool
    summary: dict[str, Any]
    inputs: tuple[str, ...]  # names of the stages whose directories it read (or the paths)
    config_text: str | None  # the resolved config.yaml as written
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the last line of error.log, when the stage failed

    def path(self, artefact: str) -> Path | None:
        """The stage's artefact by the name its kind declares, or None when its kind has no such output
        (metrics: the training loop's file, whatever the kind)."""
        if artefact == "metrics":
            return self.dir / METRICS
        return declared(self.dir, self.kind, artefact)


@dataclass(frozen=True)
class Run:
    dir: Path
    name: str
    stages: tuple[Stage, ...]
    recipe_text: str | None

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    def of_kind(self, kind: str) -> list[Stage]:
        return [s for s in self.stages if s.kind == kind]


@dataclass(frozen=True)
class SuiteResult:
    """One `summary.json` of an eval-suite run, with the checkpoint it measured."""

    checkpoint: str
    suite: str
    summary: dict[str, Any]
    source: str  # where it was found (a stage name, or "evals")
    path: Path


def declared(stage_dir: Path, kind: str | None, artefact: str) -> Path | None:
    """Where a stage of `kind` writes its declared output `artefact` (None: no such kind or output)."""
    spec = STAGE_KINDS.get(kind or "")
    out = spec.outputs.get(artefact) if spec is not None else None
    return None if out is None else stage_dir if out.path == "." else stage_dir / out.path


# ------------------------------------------------------------------------------------ readers


def read_json(path: Path | None) -> Any | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path | None) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a line cut short by a crash (the last one) is left out."""
    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


# ------------------------------------------------------------------------------------ the run


def load_run(run_dir: str | Path, exclude: Iterable[Path] = ()) -> Run:
    """The run's stages in the order they ran (summary.json's order; stages not in it yet in the
    recipe's order, else by name), leaving out the stage directories in `exclude`."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ReportError(
            f"{root}: no such directory; give the run directory of `alignlab run` (its --run-dir)"
        )
    listed = read_json(root / RUN_SUMMARY)
    recipe = _read_text(root / RECIPE_FILE)
    dirs = _stage_dirs(root, listed if isinstance(listed, dict) else {}, _recipe_stages(recipe))
    skip = {_resolved(str(p)) for p in exclude}
    dirs = [(name, d) for name, d in dirs if d.resolve() not in skip]
    if not dirs:
        raise ReportError(
            f"{root}: not a run directory (no {RUN_SUMMARY} and no stage directories <name>-<hash>/ with "
            f"{STAGE_FILE} or {CONFIG_FILE}); give the --run-dir of `alignlab run`"
        )
    by_dir = {d.resolve(): name for name, d in dirs}
    stages = tuple(_stage(name, d, by_dir) for name, d in dirs)
    name = _recipe_name(recipe) or root.resolve().name
    return Run(root, name, stages, recipe)


def _stage_dirs(root: Path, listed: dict[str, Any], order: list[str]) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for name, entry in listed.items():
        d = _locate(root, entry.get("dir") if isinstance(entry, dict) else None, name)
        if d is not None:
            out.append((name, d))
    seen = {d.resolve() for _, d in out}
    # Stages not (yet) in summary.json: an interrupted run, or one still running (a report stage).
    rank = {name: i for i, name in enumerate(order)}
    extra = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        m = STAGE_DIR.match(d.name)
        if m and d.resolve() not in seen and ((d / STAGE_FILE).is_file() or (d / CONFIG_FILE).is_file()):
            extra.append((m["name"], d))
    return out + sorted(extra, key=lambda e: rank.get(e[0], len(rank)))


def _locate(root: Path, recorded: str | None, name: str) -> Path | None:
    """The stage directory, also when the run directory was moved (same folder name under root)."""
    if recorded:
        moved = root / Path(recorded).name
        if moved.is_dir():
            return moved
        if Path(recorded).is_dir():
            return Path(recorded)
    candidates = sorted(p for p in root.glob(f"{name}-*") if STAGE_DIR.match(p.name))
    return candidates[0] if candidates else None


def _stage(name: str, d: Path, by_dir: dict[Path, str]) -> Stage:
    info = read_json(d / STAGE_FILE)
    info = info if isinstance(info, dict) else {}
    text = _read_text(d / CONFIG_FILE)
    try:
        config = yaml.safe_load(text) if text else {}
    except yaml.YAMLError:
        config = {}
    inputs = tuple(by_dir.get(_resolved(p), str(p)) for p in info.get("inputs", []) if isinstance(p, str))
    summary = info.get("summary")
    log = _read_text(d / ERROR_LOG) if not info else None
    error = log.strip().splitlines()[-1] if log and log.strip() else None
    return Stage(name, d, info.get("kind"), bool(info), summary if isinstance(summary, dict) else {},
                 inputs, text, config if isinstance(config, dict) else {}, error)  # fmt: skip


def _resolved(p: str) -> Path:
    try:
        return Path(p).resolve()
    except OSError:
        return Path(p)


def _recipe_stages(text: str | None) -> list[str]:
    """The stage names of the recipe as run, in the order it lists them."""
    try:
        data = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return []
    stages = data.get("stages") if isinstance(data, dict) else None
    return [str(k) for k in stages] if isinstance(stages, dict) else []


def _recipe_name(text: str | None) -> str | None:
    try:
        data = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return str(name) if name else None


def input_path(run: Run, value: Any) -> Path | None:
    """A path from a stage's config (it names another stage's directory), found again if moved."""
    if not isinstance(value, str) or not value:
        return None
    p = Path(value)
    if p.exists():
        return p
    moved = run.dir / p.name
    return moved if moved.exists() else None


# ------------------------------------------------------------------------------------ artefacts


def metrics(stage: Stage) -> list[dict[str, Any]]:
    """`metrics.jsonl` rows (one per logged step), or [] when the stage trains nothing."""
    return read_jsonl(stage.path("metrics"))


def reward_report(stage: Stage) -> dict[str, Any] | None:
    rep = read_json(stage.path("report"))
    return rep if isinstance(rep, dict) else None


def scored_pairs(stage: Stage) -> int:
    """How many non-tied pairs a score stage scored (the n of its `pair_accuracy`)."""
    return sum(1 for r in read_jsonl(stage.path("scores")) if "chosen_reward" in r and not r.get("tie"))


def lab_scores(stage: Stage) -> dict[str, Any] | None:
    """A lab_eval stage's table: model -> family -> metric -> number or {value, low, high, n}."""
    table = read_json(stage.path("scores"))
    if not isinstance(table, dict):
        table = stage.summary.get("table")
    return table if isinstance(table, dict) and table else None


def lab_responses(stage: Stage) -> dict[str, list[dict[str, Any]]]:
    """A lab_eval stage's scored responses per model (`responses-<model>.jsonl`)."""
    out = {}
    for p in sorted(stage.dir.glob("responses-*.jsonl")):
        m = LAB_RESPONSES.match(p.name)
        if m:
            out[m[1]] = read_jsonl(p)
    return out


def lab_subtypes(run: Run, stage: Stage) -> dict[str, str]:
    """Prompt id -> subtype (e.g. the jailbreak wrapper) from the world a lab_eval stage read."""
    world = input_path(run, stage.config.get("world"))
    if world is None:
        return {}
    rows = read_jsonl(declared(world, "lab_world", "eval") if world.is_dir() else world)
    return {str(r["id"]): str(r["subtype"]) for r in rows if "id" in r and "subtype" in r}


def lab_models(stage: Stage) -> list[str]:
    """The models a lab_eval stage compared, in the order its config names them."""
    models = stage.config.get("models")
    return [str(m) for m in models] if isinstance(models, dict) else []


def suite_results(run: Run) -> list[SuiteResult]:
    """Every eval-suite summary of the run, in run order: those an eval stage lists in its declared
    `results` (a recipe's eval stages, and `alignlab eval --output DIR/evals/NAME`), then any other
    suite summary below a stage directory or `DIR/evals/`."""
    out: list[SuiteResult] = []
    evals = run.dir / EVALS_DIR
    listed = [(s.name, s.dir) for s in run.of_kind(EVAL_KIND)]
    listed += [(f"{EVALS_DIR}/{d.name}", d) for d in _children(evals) if _is_eval_stage(d)]
    for source, d in listed:
        out += _listed_results(source, d)
    # What an eval stage lists is all it holds; other folders are searched by convention.
    declared_dirs = {d.resolve() for _, d in listed if eval_results(d) is not None}
    roots = [(s.name, s.dir) for s in run.stages if s.dir.resolve() not in declared_dirs]
    roots.append((EVALS_DIR, evals))
    for source, root in roots:
        for path in _summaries(root, SUITE_DEPTH):
            summary = _suite_summary(path)
            if summary is None or any(p.resolve() in declared_dirs for p in path.parents):
                continue
            above = path.parent.parent
            checkpoint = source if above == root else above.name
            out.append(SuiteResult(checkpoint, summary["suite"], summary, source, path))
    return out


def eval_results(stage_dir: Path) -> dict[str, Any] | None:
    """An eval stage's `results.json` (`alignlab.evals.results`), or None."""
    data = read_json(declared(stage_dir, EVAL_KIND, "results"))
    return data if isinstance(data, dict) and isinstance(data.get("results"), dict) else None


def eval_checkpoints(stage: Stage) -> list[str]:
    """The checkpoints an eval stage ran, in the order its config names them."""
    models = stage.config.get("models")
    return [str(m) for m in models] if isinstance(models, dict) else []


def _is_eval_stage(d: Path) -> bool:
    info = read_json(d / STAGE_FILE)
    return isinstance(info, dict) and info.get("kind") == EVAL_KIND


def _children(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _listed_results(source: str, stage_dir: Path) -> list[SuiteResult]:
    data = eval_results(stage_dir) or {}
    out = []
    for ckpt, suites in data.get("results", {}).items():
        for suite, entry in (suites if isinstance(suites, dict) else {}).items():
            rel = entry.get("path") if isinstance(entry, dict) else None
            path = stage_dir / str(rel) / SUITE_SUMMARY if rel else None
            summary = _suite_summary(path) if path else None
            if summary is not None:
                out.append(SuiteResult(str(ckpt), str(suite), summary, source, path))  # type: ignore[arg-type]
    return out


def _suite_summary(path: Path) -> dict[str, Any] | None:
    summary = read_json(path)
    ok = (isinstance(summary, dict) and isinstance(summary.get("suite"), str)
          and isinstance(summary.get("metrics"), dict))  # fmt: skip
    return summary if ok else None


def _summaries(root: Path, depth: int) -> Iterator[Path]:
    if depth < 0 or not root.is_dir():
        return
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and child.name != "checkpoints":
            if (child / SUITE_SUMMARY).is_file():
                yield child / SUITE_SUMMARY
            yield from _summaries(child, depth - 1)


def overoptimisation(run: Run) -> list[tuple[str, dict[str, Any]]]:
    """(source, content) of every `overoptimisation.json` in the run or a stage directory."""
    found = [("run", run.dir / OVEROPT_FILE)] + [(s.name, s.dir / OVEROPT_FILE) for s in run.stages]
    out = []
    for source, path in found:
        data = read_json(path) if path.is_file() else None
        if isinstance(data, dict):
            out.append((source, data))
    return out
