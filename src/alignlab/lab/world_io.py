"""A lab_world stage directory read back: the world it was built from, and its samples by id."""

from __future__ import annotations

import json
from pathlib import Path

from alignlab.lab.sample import Sample
from alignlab.lab.world import World, WorldConfig, build_world


def load_world(world_dir: str | Path) -> World:
    """The world of a lab_world stage, rebuilt from the config its manifest records (a pure function)."""
    from alignlab.lab.stages import world_file

    manifest = json.loads(world_file(str(world_dir), "manifest").read_text())
    return build_world(WorldConfig.model_validate(manifest["world_config"]))


def samples_by_id(world: World) -> dict[str, Sample]:
    """Every distinct prompt of every family, train and eval, by its stable id (`tasks.candidates`)."""
    from alignlab.lab.tasks import FAMILIES, candidates

    return {s.id: s for f in FAMILIES for split in ("train", "eval") for s in candidates(world, f, split)}
