"""The score stage: score (prompt, response) records with a reward model (inference, no training).

Reads any record file `alignlab.data.readers` reads: a conversation's last assistant turn is
scored given the turns before it (a `{prompt, response}` record is a two-turn conversation); a
preference pair gets a reward for each response (and the file a pairwise accuracy); a KTO record's
completion is scored. Writes one JSON line per record: the
record in alignlab's own format plus `reward` (or `chosen_reward` / `rejected_reward`), and the
per-member rewards of an ensemble. Sequences are cut as in training: one prompt cut per record,
keeping the prompt's end (a record with no prompt left is an error), at the length the reward model
was trained at unless `data.max_length` says otherwise.

Not supported: scoring only a slice of a multi-turn response, streaming very large files (the
records are read into memory).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from alignlab.config import DataConfig, ScoreConfig, ScoreDataConfig
from alignlab.data.preference import NoPromptLeft, encode_responses
from alignlab.data.readers import read_records
from alignlab.data.schema import Conversation, PreferencePair
from alignlab.data.templating import EncodedExample
from alignlab.errors import DataError
from alignlab.io import atomic_write_jsonl
from alignlab.losses.reward import aggregate_ensemble, pairwise_accuracy
from alignlab.stage_io import StageContext
from alignlab.stats import wilson_interval


def responses_of(record) -> list[tuple[str, list, list]]:
    """(field prefix, prompt, response) to score in `record`: one, or two for a preference pair."""
    if isinstance(record, PreferencePair):
        return [("chosen_", list(record.prompt), list(record.chosen)), ("rejected_", list(record.prompt),
                                                                        list(record.rejected))]
    if isinstance(record, Conversation):
        last = max(i for i, m in enumerate(record.messages) if m.role == "assistant")
        if last == 0:
            raise DataError(
                "a conversation whose first turn is the assistant's has no prompt to score against"
            )
        return [("", list(record.messages[:last]), list(record.messages[last:]))]
    return [("", list(record.prompt), list(record.completion))]


def score_file(config: ScoreConfig, output: str | Path, log: Callable[[str],
                                                                      None] = print) -> dict[str, float]:
    """Score every record of `config.data`, write them to `output` (JSONL); return a summary."""
    from alignlab.modeling.attention import choose_layout
    from alignlab.modeling.loading import load_model_tokenizer, load_options
    from alignlab.modeling.reward_model import can_lay_out, load_reward_model, score_groups

    rm = config.reward_model
    model, manifest = load_reward_model(rm.path, **load_options(rm))
    data = _at_trained_length(config.data, manifest.max_length, log)
    tokenizer = load_model_tokenizer(rm)
    result = read_records(data.path, data.format, split=data.split, skip_invalid=data.skip_invalid,
                          limit=data.limit)
    if result.skipped:
        log(f"skipped {result.skipped} malformed records of {data.path}")
    slots: list[tuple[int, str]] = []
    groups: list[list[EncodedExample]] = []
    for i, rec in enumerate(result.records):
        sides = responses_of(rec)
        try:  # the responses of one record share one prompt cut
            encoded, _ = encode_responses(tokenizer, sides[0][1], [r for _, _, r in sides], data,
                                          rec.metadata.get("tools"))
        except NoPromptLeft as err:
            raise DataError(f"{data.path}: record {i + 1}: {err}") from None
        groups.append(encoded)
        slots += [(i, prefix) for prefix, _, _ in sides]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    layout, why = None, "padded batches"
    if can_lay_out(model):
        layout, why = choose_layout(model, padding_free=config.padding_free, attention="auto", pairs=True,
                                    prefix_sharing=config.prefix_sharing, training=False)
    log(f"score: {why}")
    members = score_groups(model, groups, pad_token_id=pad, batch_size=config.batch_size, layout=layout)
    aggregate = config.aggregate or manifest.aggregate
    std_coef = config.std_coef if config.std_coef is not None else manifest.std_coef
    rewards = aggregate_ensemble(members, aggregate, std_coef=std_coef)
    rows: list[dict[str, Any]] = [rec.to_json() for rec in result.records]
    for j, (i, prefix) in enumerate(slots):
        rows[i][f"{prefix}reward"] = float(rewards[j])
        if members.shape[0] > 1:
            rows[i][f"{prefix}member_rewards"] = members[:, j].tolist()
    atomic_write_jsonl(output, rows)
    log(f"scored {len(slots)} responses of {len(rows)} records into {output}")
    return _summary(rows, rewards, log)


def _at_trained_length(data: ScoreDataConfig, trained: int | None, log: Callable[[str], None]) -> DataConfig:
    """The data settings with `max_length` resolved: the config's, else the reward model's, else the
    default. A reward model scores what it was trained to score: cut at another length, its rewards
    (and a pair accuracy) differ from its report's."""
    if data.max_length is not None:
        length = data.max_length
    else:
        length = trained or DataConfig.model_fields["max_length"].default
        why = "as the reward model was trained" if trained else "the default"
        log(f"scoring sequences of at most {length} tokens ({why}; data.max_length changes it)")
    fields = {k: getattr(data, k) for k in DataConfig.model_fields}
    return DataConfig(**{**fields, "max_length": length})


def _summary(rows: list[dict[str, Any]], rewards: torch.Tensor,
             log: Callable[[str], None]) -> dict[str, float]:
    """Record count and mean reward; for preference pairs (ties left out) the fraction whose chosen
    response scores higher, logged with its Wilson interval, the figure to set beside report.json's."""
    summary = {"records": float(len(rows)), "mean_reward": float(rewards.mean())}
    pairs = [r for r in rows if "chosen_reward" in r and not r.get("tie")]
    if pairs:
        c = torch.tensor([r["chosen_reward"] for r in pairs])
        accuracy = pairwise_accuracy(c, torch.tensor([r["rejected_reward"] for r in pairs]))
        summary["pair_accuracy"], summary["pairs"] = accuracy, float(len(pairs))
        estimate = wilson_interval(accuracy * len(pairs), len(pairs))
        log(f"pair accuracy (chosen scored above rejected): {estimate}")
    return summary


def run_score(config: ScoreConfig, ctx: StageContext) -> dict[str, float]:
    """The score stage: writes its `scores` output (scores.jsonl) into the stage directory."""
    return score_file(config, ctx.path("scores"), ctx.log)
