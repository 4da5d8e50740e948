"""Reward-model training (Bradley-Terry on preference pairs) and the report that judges the result.

Supports: one reward model or an ensemble (k heads on one backbone, or k separate models, trained
in one loop), margins from graded preferences, label smoothing, labeller confidence and ties as
soft targets, a reward-centering term, LoRA (merged into the saved model). The report, written to
`report.json` in the stage directory, gives held-out pairwise accuracy (per member and
aggregated, with a 95 % Wilson interval), a reliability table and ECE of σ(r_c − r_r), the
correlation of reward with response length and, when records carry `metadata.category`, accuracy
per category. Held out by default: 5 % of the file, at least 50 pairs (at most a fifth of it).

Data: `alignlab.data.preference` (pairs, splits, the pair collator); batches are laid out with
each pair's prompt once and no padding where the model allows it (`train.prefix_sharing`,
`train.padding_free`), each side's reward read at its own last token. Not supported: pairwise
(two-response-in-one-context) reward models, data.packing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from alignlab.config import RewardModelConfig
from alignlab.data.labels import IGNORE_INDEX
from alignlab.data.layout import BatchLayout
from alignlab.data.preference import (
    EncodedPair,
    collate_pairs,
    count_pairs,
    encode_preference_split,
    item_width,
)
from alignlab.data.splits import EncodedSplit
from alignlab.data.templating import EncodedExample
from alignlab.distributed import wait_for_everyone
from alignlab.io import atomic_write_json
from alignlab.losses.reward import (
    aggregate_ensemble,
    bradley_terry_loss,
    expected_calibration_error,
    pairwise_accuracy,
    reliability_table,
)
from alignlab.modeling.reward_model import reward_inputs
from alignlab.stage_io import StageContext
from alignlab.stats import wilson_interval
from alignlab.training.loop import StepOutput, train

# ------------------------------------------------------------------------------------ step


def make_reward_step(center_coef: float) -> Callable[[torch.nn.Module, dict[str, torch.Tensor]], StepOutput]:
    """Bradley-Terry step for a `RewardModel`: loss summed over pairs, averaged over members."""

    def step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        rewards = model(**reward_inputs(batch))  # (K, 2B)
        n = count_pairs(batch)
        chosen, rejected = rewards[:, :n], rewards[:, n:]
        bt = bradley_terry_loss(
            chosen, rejected, margin=batch["margin"], target_prob=batch["target_prob"],
            center_coef=center_coef
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
    kept = int(keep.sum())  # ties of the model's rewards count half, as in the accuracy
    interval = wilson_interval(report["accuracy"] * kept, kept)
    report["accuracy_interval"] = [interval.low, interval.high]
    report["member_accuracy"] = [pairwise_accuracy(c[keep], r[keep]) for c, r in zip(chosen, rejected,
                                                                                     strict=True)]
    # What a "longer is better" judge would score: how much length alone explains the labels.
    longer = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b, p in zip(lengths_c, lengths_r, pairs,
                                                                          strict=True) if not p.tie]
    report["longer_is_chosen"] = sum(longer) / len(longer)
    report["ece"] = expected_calibration_error(rc[keep], rr[keep], num_bins)
    report["reliability"] = [b._asdict() for b in reliability_table(rc[keep], rr[keep], num_bins)]
    categories = sorted({p.category for p in pairs if p.category is not None and not p.tie})
    if categories:
        report["per_category"] = {}
        for cat in categories:
            mask = torch.tensor([p.category == cat and not p.tie for p in pairs], dtype=torch.bool)
            report["per_category"][cat] = {"pairs": int(mask.sum()),
                                           "accuracy": pairwise_accuracy(rc[mask], rr[mask])}
    return report


# ------------------------------------------------------------------------------------ stage


def run_reward_model(config: RewardModelConfig, ctx: StageContext) -> dict[str, float]:
    """Train a reward model on `config.data`; save it and write `report.json` to ctx.output_dir."""
    from alignlab.modeling.loading import count_parameters, load_model_tokenizer, load_options
    from alignlab.modeling.reward_model import apply_reward_lora, build_reward_model, save_reward_model

    ens, lora = config.ensemble, config.lora
    tokenizer = load_model_tokenizer(config.model)
    split = encode_preference_split(tokenizer, config.data, loss=config.loss, log=ctx.log,
                                    min_held=config.data.eval_min)
    model = build_reward_model(
        config.model.path, num_members=ens.size, kind=ens.kind, pad_token_id=tokenizer.pad_token_id,
        seed=config.train.seed, **load_options(config.model),
    )
    if lora.enabled:
        model = apply_reward_lora(model, r=lora.r, alpha=lora.alpha, dropout=lora.dropout,
                                  target_modules=lora.target_modules)
    trainable, total = count_parameters(model)
    layout, why = batch_layout(model, config)
    ctx.log(
        f"rm: {len(split.train)} training pairs, {len(split.eval)} held-out; "
        f"{ens.size} member(s) ({ens.kind}); {trainable:,} of {total:,} parameters trainable; {why}"
    )
    pad = tokenizer.pad_token_id

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        rep = report_on(model, split.eval, pad, config, layout)
        return {k: rep[k] for k in ("accuracy", "ece") if k in rep}

    result = train(
        model, make_reward_step(config.loss.center_coef), count_pairs, split.train,
        lambda b: collate_pairs(b, pad, layout),
        output_dir=ctx.output_dir, train=config.train, optim=config.optim, schedule=config.schedule,
        eval_fn=evaluate if split.eval else None, example_length=item_width,
    )
    summary = {k: float(v) for k, v in result.last_metrics.items() if isinstance(v, int | float)}
    summary.update(steps=float(result.global_step), train_pairs=float(len(split.train)),
                   dropped=float(split.dropped))
    if result.is_main_process:  # the others only wait: the files come from one process
        save_reward_model(result.model, tokenizer, ctx.output_dir, aggregate=ens.aggregate,
                          std_coef=ens.std_coef, state_dict=result.state_dict,
                          max_length=config.data.max_length)
        report = write_report(result.model, split, pad, config, ctx, layout)
        summary.update({f"report/{k}": float(report[k]) for k in ("accuracy",
                                                                  "ece") if report.get(k) is not None})
    wait_for_everyone()
    return summary


def batch_layout(model, config: RewardModelConfig) -> tuple[BatchLayout | None, str]:
    """How this stage lays out pair batches (`train.padding_free`, `train.prefix_sharing`)."""
    from alignlab.modeling.attention import choose_layout
    from alignlab.modeling.reward_model import can_lay_out

    if not can_lay_out(model):
        return None, "padded batches: the reward model has no decoder score head to read laid-out batches"
    t = config.train
    return choose_layout(model, padding_free=t.padding_free, prefix_sharing=t.prefix_sharing,
                         attention=t.packed_attention, pairs=True)


def report_on(model, pairs: Sequence[EncodedPair], pad_token_id: int,
              config: RewardModelConfig, layout: BatchLayout | None = None) -> dict[str, Any]:
    """`reward_report` of `model` on `pairs` with the stage's ensemble aggregate and bins."""
    from alignlab.modeling.reward_model import pair_rewards

    ens = config.ensemble
    c, r = pair_rewards(model, pairs, pad_token_id=pad_token_id, batch_size=config.train.batch_size,
                        layout=layout)
    return reward_report(c, r, pairs, aggregate=ens.aggregate, std_coef=ens.std_coef,
                         num_bins=config.report_bins)


def write_report(
    model, split: EncodedSplit[EncodedPair], pad_token_id: int, config: RewardModelConfig, ctx: StageContext,
    layout: BatchLayout | None = None,
) -> dict[str, Any]:
    """`report.json` of the trained model on the held-out pairs (or the training pairs if none)."""
    if not split.eval:
        ctx.log(
            "rm: no held-out pairs (set data.eval_fraction or data.eval_path); "
            "the report is on training pairs"
        )
    report = report_on(model, split.eval or split.train, pad_token_id, config, layout)
    ens = config.ensemble
    report = {"split": "eval" if split.eval else "train", "members": ens.size, "aggregate": ens.aggregate,
              **report}
    atomic_write_json(ctx.path("report"), report)
    return report
