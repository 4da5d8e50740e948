"""The best_of_n stage: N replies per held-out prompt from a policy, every reward of each, and the
best-of-n estimates by one of them (`alignlab.evals.best_of_n`) for n = 1, 2, 4, … N; other
policies (e.g. DPO on the same preference data) sampled and scored beside it, with their KL to the
policy (k1 summed over each reply's tokens, as online RL logs it).

Outputs: `samples.jsonl`, one row per policy and prompt: `model`, `id`, `prompt`, `replies`, one list
per reward (by name), `length` (tokens) and, for the other policies, `kl`; `results.json`: the
best-of-n curve (per n: the KL formula, the empirical KL, each reward's and the length's mean with
a Student-t 95 % interval over prompts) and each other policy's figures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from alignlab.config.overopt import BestOfNConfig
from alignlab.config.rl import RewardShapingConfig
from alignlab.errors import ConfigError, DataError
from alignlab.evals.best_of_n import best_of_n_kl, best_of_n_value, empirical_best_of_n_kl, powers_of_two
from alignlab.io import atomic_write_json, atomic_write_jsonl
from alignlab.stage_io import StageContext
from alignlab.stats import mean_interval

Tensor = torch.Tensor


def run_best_of_n(config: BestOfNConfig, ctx: StageContext) -> dict[str, Any]:
    from alignlab.generation.decode import max_positions
    from alignlab.modeling.loading import load_model, load_model_tokenizer
    from alignlab.rewards.build import build_reward_set
    from alignlab.training.rl_run import load_prompts, spread

    rewards = build_reward_set(config.rewards, RewardShapingConfig(), config.policy)
    names = [r.name for r, _ in rewards.components]
    if config.select not in names:
        raise ConfigError(f"config key 'select': no reward is named {config.select!r}; the rewards are "
                          f"{', '.join(names)}")
    tokenizer, policy = load_model_tokenizer(config.policy), load_model(config.policy).eval()
    context = max_positions(policy)
    max_length = min(config.max_prompt_length, context - 1) if context else config.max_prompt_length
    prompts = load_prompts(config.prompts, tokenizer, max_length=max_length, log=ctx.log)
    prompts = spread(prompts, config.limit)
    rows = _sample(config, "policy", policy, None, tokenizer, prompts, rewards, config.n)
    for name, model_config in config.policies.items():
        other = load_model(model_config).eval()
        if load_model_tokenizer(model_config).get_vocab() != tokenizer.get_vocab():
            raise ConfigError(f"config key 'policies.{name}': its tokenizer differs from the policy's, so "
                              "its KL to the policy cannot be computed token by token")
        rows += _sample(config, name, other, policy, tokenizer, prompts, rewards, config.policy_samples)
        del other
    atomic_write_jsonl(ctx.path("samples"), rows)
    results = summarise(rows, names, config.select)
    atomic_write_json(ctx.path("results"), results)
    top = results["curve"][-1]
    figures = ", ".join(f"{k} {top[k]['value']:.3f} [{top[k]['low']:.3f}, {top[k]['high']:.3f}]"
                        for k in names)
    ctx.log(f"best of {top['n']} by {config.select} over {len(prompts.records)} prompts: {figures}; "
            f"KL {top['kl']:.2f} nats (formula), {top['kl_empirical']:.2f} (empirical)")
    return _flat(results)


def _sample(config: BestOfNConfig, name: str, model: torch.nn.Module, reference: torch.nn.Module | None,
            tokenizer, prompts, rewards, n: int) -> list[dict[str, Any]]:
    """`n` replies per prompt from `model`, every reward of each, and (with a reference) the KL."""
    from alignlab.generation.base import SamplingParams
    from alignlab.generation.hf import HFGenerator
    from alignlab.modeling.responses import response_logps
    from alignlab.training.rl_dataflow import decode_replies, rollout_forward

    params = SamplingParams(config.max_new_tokens, config.temperature, n=n, seed=config.seed)
    generator = HFGenerator(model, tokenizer, max_batch_rows=config.batch_rows)
    rollout = generator.generate_ids(prompts.ids, params)
    ids, texts = decode_replies(tokenizer, rollout)
    records = [r for r in prompts.records for _ in range(n)]
    scores = score_unique(rewards, records, texts, ids)
    mask = rollout.response_mask.float()
    kl = None
    if reference is not None:
        ref = rollout_forward(reference, rollout, response_logps, rows=config.batch_rows,
                              temperature=config.temperature)
        kl = ((rollout.logprobs - ref) * mask).sum(1).tolist()  # k1, summed over each reply's tokens
    lengths = mask.sum(1).tolist()
    out = []
    for p, record in enumerate(prompts.records):
        rows = slice(p * n, (p + 1) * n)
        row: dict[str, Any] = {"model": name, "id": record.fields.get("id", p), "prompt": record.text,
                               "replies": texts[rows], **{k: v[rows] for k, v in scores.items()},
                               "length": [int(x) for x in lengths[rows]]}
        if kl is not None:
            row["kl"] = kl[rows]
        out.append(row)
    return out


def score_unique(rewards, records: Sequence, texts: Sequence[str],
                 ids: Sequence[Sequence[int]]) -> dict[str, list[float]]:
    """Every reward of every reply, each distinct (prompt, reply) scored once: a policy that repeats
    itself (most do, at N = 64) costs the reward model only its distinct replies."""
    from alignlab.rewards.base import RewardInputs

    first: dict[tuple[int, str], int] = {}
    for i, (record, text) in enumerate(zip(records, texts, strict=True)):
        first.setdefault((id(record), text), i)
    unique = list(first.values())
    inputs = RewardInputs([records[i] for i in unique], [texts[i] for i in unique], [ids[i] for i in unique])
    parts = rewards.components_of(inputs)
    where = [first[(id(record), text)] for record, text in zip(records, texts, strict=True)]
    position = {row: k for k, row in enumerate(unique)}
    return {name: [float(v[position[w]]) for w in where] for name, v in parts.items()}


def per_prompt(rows: Sequence[dict[str, Any]], key: str, select: str, n: int) -> dict[Any, float]:
    """Prompt id -> the estimated mean of `key` of the best of `n` replies by `select` (n = 1: the mean
    over the replies, the expectation of one sample)."""
    return {row["id"]: best_of_n_value(row[select], row[key], n) for row in rows}


def summarise(rows: Sequence[dict[str, Any]], names: Sequence[str], select: str) -> dict[str, Any]:
    """The best-of-n curve of the `policy` rows and the other policies' figures (see the module docstring)."""
    base = [r for r in rows if r["model"] == "policy"]
    if not base:
        raise DataError("best_of_n: no replies of the policy")
    size = len(base[0]["replies"])
    curve = []
    for n in powers_of_two(size):
        point: dict[str, Any] = {"n": n, "kl": best_of_n_kl(n), "kl_empirical": mean_interval(
            [empirical_best_of_n_kl(r[select], n) for r in base]).value}
        for key in (*names, "length"):
            point[key] = mean_interval(list(per_prompt(base, key, select, n).values())).as_dict()
        curve.append(point)
    distinct = mean_interval([len(set(r["replies"])) for r in base]).as_dict()
    policies = {}
    for name in dict.fromkeys(r["model"] for r in rows if r["model"] != "policy"):
        mine = [r for r in rows if r["model"] == name]
        policies[name] = {key: mean_interval([sum(r[key]) / len(r[key]) for r in mine]).as_dict()
                          for key in (*names, "length", "kl")}
        policies[name]["samples"] = len(mine[0]["replies"])
    return {"select": select, "samples_per_prompt": size, "prompts": len(base), "distinct_replies": distinct,
            "curve": curve, "policies": policies}


def read_samples(stage_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a best_of_n stage's samples.jsonl."""
    from alignlab.stages import get_stage_kind

    path = Path(stage_dir) / get_stage_kind("best_of_n").outputs["samples"].path
    if not path.is_file():
        raise DataError(f"{path}: not found; is {stage_dir} a finished best_of_n stage?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _flat(results: dict[str, Any]) -> dict[str, Any]:
    """Numbers for the run index: each curve point's figures as `bon<n>/<key>`, each policy's as
    `<name>/<key>`, and the results themselves (the terminal and the report read them)."""
    flat: dict[str, Any] = {k: float(results[k]) for k in ("prompts", "samples_per_prompt")}
    for point in results["curve"]:
        flat[f"bon{point['n']}/kl"] = point["kl"]
        flat.update({f"bon{point['n']}/{k}": v["value"] for k, v in point.items() if isinstance(v, dict)})
    for name, figures in results["policies"].items():
        flat.update({f"{name}/{k}": v["value"] for k, v in figures.items() if isinstance(v, dict)})
    return {**flat, "results": results}
