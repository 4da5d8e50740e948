"""The recipe file: named stages of registered kinds, references between them, `extends:` and a seed.

A recipe YAML names stages; a stage's config refers to another stage's output directory as
`${name}` (e.g. `model: {path: "${sft}"}`), to one of its declared artefacts as `${name.artefact}`
(e.g. `data: {path: "${world.sft}"}`, see `StageKind.outputs`), to the recipe's own folder as
`${recipe_dir}` and to the recipe's `seed` as `${seed}` (a value that is only `${seed}` stays an
integer), so one number reseeds every stage that refers to it (`alignlab run --seeds`, `sweep.py`).

`extends: other.yaml` (relative to the recipe) starts from that recipe's stages: a stage named
again is merged into it key by key (lists are replaced), and a key set to null is removed
(`stage: null` drops a stage). Recipes that extend one recipe share its stages in one run
directory, since equal configs hash alike. Planning and running are `alignlab.pipeline`'s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from alignlab.config import Section, apply_overrides, load_yaml, validate_config
from alignlab.errors import ConfigError, PipelineError
from alignlab.stages import STAGE_KINDS, StageKind

# ${stage} or ${stage.artefact}
REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}")
VARIABLES = ("recipe_dir", "seed")  # ${...} names that are the recipe's, not stages'
RECIPE_FILE = "recipe.yaml"  # the recipe as run (overrides applied), kept in the run directory


class StageSpec(Section):
    kind: str = Field(description=f"Stage kind (`alignlab stages` lists them): {', '.join(STAGE_KINDS)}.")
    config: dict[str, Any] = Field(default_factory=dict, description="The stage kind's config.")


class Recipe(Section):
    name: str = Field(description="Recipe name; the default run directory is runs/<name>.")
    description: str = Field(default="", description="What the recipe does.")
    run_dir: str | None = Field(default=None, description="Where stage directories go.")
    seed: int = Field(default=0, description="The seed stages refer to as ${seed}; `alignlab run --seeds` "
                      "runs the recipe once per seed.")
    stages: dict[str, StageSpec] = Field(min_length=1, description="Stages by name, in any order.")


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Load a recipe; `stage.key.sub=value` overrides a stage's config, `run_dir=...` the recipe."""
    data = extended(Path(path), ())
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


def extended(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """The recipe's YAML with the stages of the recipe it `extends` merged under its own."""
    data = load_yaml(path)
    base = data.pop("extends", None)
    if base is None:
        return data
    where = (path.parent / str(base)).resolve()
    if where in seen or where == path.resolve():
        raise PipelineError(f"{path}: extends {base}, which extends it again (a cycle)")
    if not where.is_file():
        raise ConfigError(f"{path}: config key 'extends': recipe '{base}' not found (looked for {where})")
    stages = _merge(extended(where, (*seen, path.resolve())).get("stages") or {}, data.get("stages") or {})
    return {**data, "stages": stages}


def _merge(base: Any, over: Any) -> Any:
    """`over` on top of `base`: mappings merged key by key, a key set to null removed (a stage, or an
    inherited config key, which then takes its default); anything else (lists too) replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
        return {k: v for k, v in merged.items() if not (k in over and over[k] is None)}
    return over


def uses_seed(recipe: Recipe) -> bool:
    """Whether any stage refers to the recipe's ${seed} (else every seed runs the same stages)."""
    return any(stage == "seed" for spec in recipe.stages.values() for stage, _ in references(spec.config))


def references(obj: Any) -> set[tuple[str, str | None]]:
    """(stage, artefact or None) of every reference in a stage's raw config."""
    if isinstance(obj, str):
        return {(m.group(1), m.group(2)) for m in REF.finditer(obj)}
    if isinstance(obj, dict):
        return set().union(*(references(v) for v in obj.values())) if obj else set()
    if isinstance(obj, list):
        return set().union(*(references(v) for v in obj)) if obj else set()
    return set()


def substitute(obj: Any, values: dict[str, tuple[str, StageKind | None]], variables: dict[str, Any]) -> Any:
    """Replace references: `${stage}` by the directory in `values`, `${stage.x}` by x's path in it,
    `${recipe_dir}` and `${seed}` by the recipe's (a string that is one variable becomes its value; a
    stage of kind None is a placeholder: every reference to it becomes its text)."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1) in variables:
            return str(variables[m.group(1)])
        where, kind = values[m.group(1)]
        if m.group(2) is None or kind is None:
            return where
        rel = kind.outputs[m.group(2)].path
        return where if rel == "." else f"{where}/{rel}"

    if isinstance(obj, str):
        whole = REF.fullmatch(obj)
        if whole and whole.group(2) is None and whole.group(1) in variables:
            return variables[whole.group(1)]
        return REF.sub(repl, obj)
    if isinstance(obj, dict):
        return {k: substitute(v, values, variables) for k, v in obj.items()}
    if isinstance(obj, list):
        return [substitute(v, values, variables) for v in obj]
    return obj


def topological_order(deps: dict[str, set[str]], source: str) -> list[str]:
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
