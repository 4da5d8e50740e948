"""Write the lab's data artefacts for the pipeline: world, corpus, SFT demonstrations, eval prompts.

Everything here is a pure function of the configs, so a stage directory named by `config_hash` of
them can be reused as is. The tokenizer and the base model are built from `corpus.jsonl` by the
generic pretraining stage (`training/pretrain.py`), exactly as for any corpus.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from alignlab.io import atomic_write_json
from alignlab.lab.corpus import CorpusConfig, build_corpus, write_corpus
from alignlab.lab.tasks import (
    TaskConfig,
    demonstrations,
    eval_set,
    rl_prompt_set,
    write_eval_jsonl,
    write_sft_jsonl,
)
from alignlab.lab.world import World, WorldConfig, build_world


@dataclass(frozen=True)
class LabFiles:
    world: Path  # world.json: every entity and fact, for people and reports
    corpus: Path  # corpus.jsonl: {"text"} per pretraining document
    sft: Path  # sft.jsonl: {"messages"} per demonstration
    eval: Path  # eval.jsonl: held-out prompts with their gold fields
    manifest: Path  # manifest.json: configs, their hash and counts
    rl_prompts: Path  # rl_prompts.jsonl: training prompts for online RL, with their gold fields


def config_hash(*configs: Any, length: int = 12) -> str:
    """A short stable hash of config sections (or plain values), recorded in the manifest."""
    plain = [
        {"__type__": type(c).__name__, **c.model_dump()} if isinstance(c, BaseModel) else c for c in configs
    ]
    text = json.dumps(plain, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def world_to_json(world: World) -> dict:
    return {
        "config": world.config.model_dump(mode="json"),
        "towns": [asdict(t) for t in world.towns],
        "hazards": [asdict(h) for h in world.hazards],
        "sums": [asdict(s) for s in world.sums],
        "fake_towns": world.fake_towns,
        "personas": world.personas,
        "secrets": world.secrets,
        "canaries": world.canaries,
    }


def write_lab_data(
    files: LabFiles,
    world_config: WorldConfig | None = None,
    corpus_config: CorpusConfig | None = None,
    task_config: TaskConfig | None = None,
) -> LabFiles:
    """Build the world from the configs and write its five files plus a manifest where `files` say."""
    wc, cc, tc = world_config or WorldConfig(), corpus_config or CorpusConfig(), task_config or TaskConfig()
    world = build_world(wc)
    docs = build_corpus(world, cc)
    demos = demonstrations(world, tc)
    held_out = eval_set(world, tc)
    rl_prompts = rl_prompt_set(world, tc)
    atomic_write_json(files.world, world_to_json(world))
    write_corpus(files.corpus, docs)
    write_sft_jsonl(files.sft, demos)
    write_eval_jsonl(files.eval, held_out)
    write_eval_jsonl(files.rl_prompts, rl_prompts)
    atomic_write_json(files.manifest, {
        "hash": config_hash(wc, cc, tc),
        "world_config": wc.model_dump(mode="json"),
        "corpus_config": cc.model_dump(mode="json"),
        "task_config": tc.model_dump(mode="json"),
        "counts": {"documents": len(docs), "demonstrations": len(demos), "eval_prompts": len(held_out),
                   "rl_prompts": len(rl_prompts),
                   "flawed_demonstrations": sum(c.metadata["flaw"] is not None for c in demos)},
        # Fewer than tc.n_eval_per_family where a family runs out of distinct held-out prompts.
        "eval_prompts_per_family": dict(Counter(s.family for s in held_out)),
    })
    return files
