"""Reward-model training (Bradley-Terry on preference pairs) and the report that judges the result.

Supports: one reward model or an ensemble (k heads on one backbone, or k separate models, trained
in one loop), margins from graded preferences, label smoothing, labeller confidence and ties as
soft targets, a reward-centering term, LoRA (merged into the saved model). The report, written to
`report.json` in the stage directory, gives held-out pairwise accuracy (per member and
aggregated), a reliability table and ECE of σ(r_c − r_r), the correlation of reward with response
length and, when records carry `metadata.category`, accuracy per category.

Also here, shared with the DPO family: encoding preference pairs (`encode_preference_split`).
Not supported: pairwise (two-response-in-one-context) reward models, packing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from alignlab.config import DataConfig, RewardLossConfig, RewardModelConfig
from alignlab.data.collators import pad_batch
from alignlab.data.readers import read_preferences
from alignlab.data.schema import Message, PreferencePair
from alignlab.data.splits import holdout
from alignlab.data.templating import (
    EncodedExample,
    encode_prompt_response,
    ensure_chat_template,
    fit_to_length,
    has_targets,
)
from alignlab.distributed import wait_for_everyone
from alignlab.errors import ConfigError, DataError
from alignlab.io import atomic_write_json
from alignlab.losses.reward import (
    aggregate_ensemble,
    bradley_terry_loss,
    expected_calibration_error,
    pairwise_accuracy,
    reliability_table,
)
from alignlab.losses.sft import IGNORE_INDEX
from alignlab.stage_io import StageContext
from alignlab.training.loop import StepOutput, train

REPORT_FILE = "report.json"


# ------------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class EncodedPair:
    chosen: EncodedExample
    rejected: EncodedExample
    target_prob: float  # P(chosen is better) the loss aims at: 1, 1 − ε, a confidence, 0.5 for a tie
    margin: float  # graded preference strength (0 when the record has none)
    tie: bool
    category: str | None


@dataclass(frozen=True)
class PreferenceSplit:
    train: list[EncodedPair]
    eval: list[EncodedPair]
    skipped_records: int  # malformed records skipped (data.skip_invalid)
    dropped: int  # pairs with nothing to compare after truncation, identical responses, or ties


def with_system_prompt(prompt: list[Message], system_prompt: str | None) -> list[Message]:
    if system_prompt is None or prompt[0].role == "system":
        return prompt
    return [Message(role="system", content=system_prompt), *prompt]


def _target(pair: PreferencePair, smoothing: float, use_confidence: bool) -> float:
    p = 0.5 if pair.tie else (pair.confidence if use_confidence and pair.confidence is not None else 1.0)
    # Label flipped with probability ε: p' = (1 − ε)·p + ε·(1 − p); a tie stays at 0.5.
    return (1.0 - smoothing) * p + smoothing * (1.0 - p)


def encode_pair(tokenizer, pair: PreferencePair, data: DataConfig, loss: RewardLossConfig | None) -> EncodedPair:
    prompt = with_system_prompt(list(pair.prompt), data.system_prompt)
    chosen, rejected = (
        fit_to_length(encode_prompt_response(tokenizer, prompt, side, tools=pair.metadata.get("tools")), data.max_length)
        for side in (pair.chosen, pair.rejected)
    )
    smoothing, use_conf = (loss.label_smoothing, loss.use_confidence) if loss else (0.0, False)
    margin = (loss.margin_scale * pair.margin) if loss and pair.margin is not None else 0.0
    category = pair.metadata.get("category")
    return EncodedPair(
        chosen, rejected, _target(pair, smoothing, use_conf), margin, pair.tie,
        None if category is None else str(category),
    )  # fmt: skip


def split_records(records: list, data: DataConfig, read: Callable = read_preferences) -> tuple[list, list]:
    """(train, eval) records: the eval file (read with `read`), a seeded eval_fraction, or no eval set."""
    if data.eval_path:
        return records, read(data.eval_path, data.format, skip_invalid=data.skip_invalid).records
    return holdout(records, data.eval_fraction)


def encode_preference_split(
    tokenizer,
    data: DataConfig,
    *,
    loss: RewardLossConfig | None = None,
    keep_ties: bool = True,
    log: Callable[[str], None] = print,
) -> PreferenceSplit:
    """Read, split and encode the preference pairs of `data` (ties kept only with `keep_ties`)."""
    if data.packing:
        raise ConfigError("config key 'data.packing': packing is not supported for preference pairs; set it to false")
    result = read_preferences(data.path, data.format, split=data.split, skip_invalid=data.skip_invalid, limit=data.limit)
    if result.skipped:
        log(f"skipped {result.skipped} malformed records of {data.path}")
    train_records, eval_records = split_records(result.records, data)

    def encode_all(records: Sequence[PreferencePair]) -> tuple[list[EncodedPair], int]:
        out, dropped = [], 0
        for pair in records:
            if pair.tie and not keep_ties:
                dropped += 1
                continue
            enc = encode_pair(tokenizer, pair, data, loss)
            # Identical token sequences (or responses truncated away) carry no preference signal.
            if has_targets(enc.chosen) and has_targets(enc.rejected) and (enc.tie or enc.chosen != enc.rejected):
                out.append(enc)
            else:
                dropped += 1
        return out, dropped

    train_pairs, dropped = encode_all(train_records)
    eval_pairs, _ = encode_all(eval_records)
    if dropped:
        log(f"dropped {dropped} pairs (ties, identical responses, or responses past data.max_length={data.max_length})")
    if not train_pairs:
        raise DataError(f"{data.path}: no usable preference pair left (check the data or raise data.max_length)")
    return PreferenceSplit(train_pairs, eval_pairs, result.skipped, dropped)


def collate_pairs(pairs: Sequence[EncodedPair], pad_token_id: int) -> dict[str, torch.Tensor]:
    """One (2B, T) batch, chosen rows then rejected rows, plus (B,) target_prob and margin."""
    batch = pad_batch([p.chosen for p in pairs] + [p.rejected for p in pairs], pad_token_id)
    batch["target_prob"] = torch.tensor([p.target_prob for p in pairs], dtype=torch.float32)
    batch["margin"] = torch.tensor([p.margin for p in pairs], dtype=torch.float32)
    return batch


def count_pairs(batch: dict[str, torch.Tensor]) -> int:
    return int(batch["target_prob"].shape[0])


def pair_length(pair: EncodedPair) -> int:
    """Padded width a pair brings to a batch: chosen and rejected share one padded tensor."""
    return max(len(pair.chosen), len(pair.rejected))


# ------------------------------------------------------------------------------------ step


def make_reward_step(center_coef: float) -> Callable[[torch.nn.Module, dict[str, torch.Tensor]], StepOutput]:
    """Bradley-Terry step for a `RewardModel`: loss summed over pairs, averaged over members."""

    def step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        rewards = model(batch["input_ids"], batch["attention_mask"])  # (K, 2B)
        n = count_pairs(batch)
        chosen, rejected = rewards[:, :n], rewards[:, n:]
        bt = bradley_terry_loss(
            chosen, rejected, margin=batch["margin"], target_prob=batch["target_prob"], center_coef=center_coef
        )
        # Mean over members: an ensemble of k does not train k times faster than one model.
        loss = bt.losses.mean(0).sum()
        c, r = chosen.detach().mean(0), rejected.detach().mean(0)
        metrics = {
            "accuracy": pairwise_accuracy(c, r),
            "reward_margin": float((c - r).mean()),
            "reward_mean": float((c + r).mean() / 2),
        }
        return StepOutput(loss=loss, metrics=metrics)

    return step


@torch.no_grad()
def compute_pair_rewards(
    model: torch.nn.Module, pairs: Sequence[EncodedPair], pad_token_id: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, N) chosen and (K, N) rejected rewards of every member, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chosen, rejected = [], []
    for i in range(0, len(pairs), batch_size):
        batch = collate_pairs(pairs[i : i + batch_size], pad_token_id)
        rewards = model(batch["input_ids"].to(device), batch["attention_mask"].to(device)).float().cpu()
        n = count_pairs(batch)
        chosen.append(rewards[:, :n])
        rejected.append(rewards[:, n:])
    model.train(was_training)
    return torch.cat(chosen, 1), torch.cat(rejected, 1)


# ------------------------------------------------------------------------------------ report


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation; None when either side is constant or there are fewer than 2 points."""
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def response_length(ex: EncodedExample) -> int:
    """Response tokens of an encoded example (its labelled positions)."""
    return sum(label != IGNORE_INDEX for label in ex.labels)


def reward_report(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    pairs: Sequence[EncodedPair],
    *,
    aggregate: str = "mean",
    std_coef: float = 1.0,
    num_bins: int = 10,
) -> dict[str, Any]:
    """Accuracy, calibration, length correlation and per-category accuracy of (K, N) rewards.

    Ties are left out of accuracy and calibration (neither response is the right answer) but
    count in the length correlation, which is over every response.
    """
    rc, rr = (aggregate_ensemble(t, aggregate, std_coef=std_coef) for t in (chosen, rejected))
    keep = torch.tensor([not p.tie for p in pairs], dtype=torch.bool)
    lengths_c = [response_length(p.chosen) for p in pairs]
    lengths_r = [response_length(p.rejected) for p in pairs]
    report: dict[str, Any] = {"pairs": len(pairs), "ties": int((~keep).sum())}
    rewards = rc.tolist() + rr.tolist()
    report["length_correlation"] = pearson(rewards, [float(n) for n in lengths_c + lengths_r])
    report["mean_reward_chosen"], report["mean_reward_rejected"] = float(rc.mean()), float(rr.mean())
    if not bool(keep.any()):
        return report
    report["accuracy"] = pairwise_accuracy(rc[keep], rr[keep])
    report["member_accuracy"] = [pairwise_accuracy(c[keep], r[keep]) for c, r in zip(chosen, rejected, strict=True)]
    # What a "longer is better" judge would score: how much length alone explains the labels.
    longer = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b, p in zip(lengths_c, lengths_r, pairs, strict=True) if not p.tie]
    report["longer_is_chosen"] = sum(longer) / len(longer)
    report["ece"] = expected_calibration_error(rc[keep], rr[keep], num_bins)
    report["reliability"] = [b._asdict() for b in reliability_table(rc[keep], rr[keep], num_bins)]
    categories = sorted({p.category for p in pairs if p.category is not None and not p.tie})
    if categories:
        report["per_category"] = {}
        for cat in categories:
            mask = torch.tensor([p.category == cat and not p.tie for p in pairs], dtype=torch.bool)
            report["per_category"][cat] = {"pairs": int(mask.sum()), "accuracy": pairwise_accuracy(rc[mask], rr[mask])}
    return report


# ------------------------------------------------------------------------------------ stage


def run_reward_model(config: RewardModelConfig, ctx: StageContext) -> dict[str, float]:
    """Train a reward model on `config.data`; save it and write `report.json` to ctx.output_dir."""
    from alignlab.modeling.loading import count_parameters, load_tokenizer
    from alignlab.modeling.reward_model import apply_reward_lora, build_reward_model, save_reward_model

    m, ens = config.model, config.ensemble
    tokenizer = load_tokenizer(m.path, allow_hub=m.allow_hub, revision=m.revision, trust_remote_code=m.trust_remote_code)
    ensure_chat_template(tokenizer)
    split = encode_preference_split(tokenizer, config.data, loss=config.loss, log=ctx.log)
    model = build_reward_model(
        m.path, num_members=ens.size, kind=ens.kind, pad_token_id=tokenizer.pad_token_id, seed=config.train.seed,
        dtype=m.dtype, device=m.device, allow_hub=m.allow_hub, revision=m.revision,
        trust_remote_code=m.trust_remote_code,
    )  # fmt: skip
    if config.lora.enabled:
        lo = config.lora
        model = apply_reward_lora(model, r=lo.r, alpha=lo.alpha, dropout=lo.dropout, target_modules=lo.target_modules)
    trainable, total = count_parameters(model)
    ctx.log(f"rm: {len(split.train)} training pairs, {len(split.eval)} held-out; {ens.size} member(s) ({ens.kind}); "
            f"{trainable:,} of {total:,} parameters trainable")  # fmt: skip
    pad, bs = tokenizer.pad_token_id, config.train.batch_size

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        c, r = compute_pair_rewards(model, split.eval, pad, bs)
        rep = reward_report(c, r, split.eval, aggregate=ens.aggregate, std_coef=ens.std_coef, num_bins=config.report_bins)
        return {k: rep[k] for k in ("accuracy", "ece") if k in rep}

    result = train(
        model, make_reward_step(config.loss.center_coef), count_pairs, split.train, lambda b: collate_pairs(b, pad),
        output_dir=ctx.output_dir, train=config.train, optim=config.optim, schedule=config.schedule,
        eval_fn=evaluate if split.eval else None, example_length=pair_length,
    )  # fmt: skip
    summary = {k: float(v) for k, v in result.last_metrics.items() if isinstance(v, int | float)}
    summary.update(steps=float(result.global_step), train_pairs=float(len(split.train)), dropped=float(split.dropped))
    if result.is_main_process:  # the others only wait: the files come from one process
        save_reward_model(result.model, tokenizer, ctx.output_dir, aggregate=ens.aggregate, std_coef=ens.std_coef,
                          state_dict=result.state_dict)  # fmt: skip
        report = write_report(result.model, split, pad, config, ctx)
        summary.update({f"report/{k}": float(report[k]) for k in ("accuracy", "ece") if report.get(k) is not None})
    wait_for_everyone()
    return summary


def write_report(
    model, split: PreferenceSplit, pad_token_id: int, config: RewardModelConfig, ctx: StageContext
) -> dict[str, Any]:
    """`report.json` of the trained model on the held-out pairs (or the training pairs if none)."""
    ens = config.ensemble
    on = split.eval or split.train
    if not split.eval:
        ctx.log("rm: no held-out pairs (set data.eval_fraction or data.eval_path); the report is on training pairs")
    c, r = compute_pair_rewards(model, on, pad_token_id, config.train.batch_size)
    report = reward_report(c, r, on, aggregate=ens.aggregate, std_coef=ens.std_coef, num_bins=config.report_bins)
    report = {"split": "eval" if split.eval else "train", "members": ens.size, "aggregate": ens.aggregate, **report}
    atomic_write_json(ctx.output_dir / REPORT_FILE, report)
    return report
