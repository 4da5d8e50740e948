"""Preference data for every stage that reads it: reward models, the DPO family, scoring, evals.

- `with_system_prompt`: the config's system prompt, added to a prompt that has none (SFT too).
- Pairs: `encode_preference_split` reads, splits and encodes `PreferencePair`s into `EncodedPair`s
  (target probability from ties, confidence and label smoothing; a graded margin); `collate_pairs`
  is THE pair collator: one (2B, T) batch, chosen rows then rejected rows, so a reward model scores
  and a policy computes log-probs of both sides in one forward pass.
- Unpaired feedback (KTO): `encode_feedback_split` encodes `BinaryFeedback` records into
  `EncodedFeedback` (each completion, and its prompt with another record's completion for KTO's
  reference point); `collate_feedback` batches them.
Reference log-probs cached by the DPO family travel with the items (`ref_<side>`).
Not supported: packing (a pair's two sides must stay in their own rows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from alignlab.data.collators import pad_batch
from alignlab.data.readers import read_feedback, read_preferences
from alignlab.data.schema import BinaryFeedback, Message, PreferencePair
from alignlab.data.splits import EncodedSplit, Log, encode_split, read_split
from alignlab.data.templating import EncodedExample, encode_prompt_response, fit_to_length, has_targets
from alignlab.errors import ConfigError

if TYPE_CHECKING:
    from alignlab.config import DataConfig, RewardLossConfig

Tensor = torch.Tensor
PAIR_SIDES = ("chosen", "rejected")
FEEDBACK_SIDES = ("completion", "kl")  # kl: the prompt with another record's completion (KTO's z0)


def with_system_prompt(messages: Sequence[Message], system_prompt: str | None) -> list[Message]:
    """`messages` with `system_prompt` first, unless there is none or they start with a system turn."""
    if system_prompt is None or messages[0].role == "system":
        return list(messages)
    return [Message(role="system", content=system_prompt), *messages]


def encode_response(tokenizer, prompt: Sequence[Message], response: Sequence[Message], data: DataConfig,
                    tools: Any = None) -> EncodedExample:
    """Prompt (with the system prompt) + response, cut to `data.max_length` from the prompt's side."""
    messages = with_system_prompt(prompt, data.system_prompt)
    return fit_to_length(encode_prompt_response(tokenizer, messages, response, tools=tools), data.max_length)


# ------------------------------------------------------------------------------------ pairs


@dataclass(frozen=True)
class EncodedPair:
    chosen: EncodedExample
    rejected: EncodedExample
    target_prob: float = 1.0  # P(chosen is better) a reward model aims at: 1, 1 − ε, a confidence, 0.5 (tie)
    margin: float = 0.0  # graded preference strength (0 when the record has none)
    tie: bool = False
    category: str | None = None
    ref_chosen: float | None = None  # summed reference log-probs, once cached (the DPO family)
    ref_rejected: float | None = None

    @property
    def width(self) -> int:
        """Padded width the pair brings to a batch: chosen and rejected share one padded tensor."""
        return max(len(self.chosen), len(self.rejected))


def _target(pair: PreferencePair, smoothing: float, use_confidence: bool) -> float:
    p = 0.5 if pair.tie else (pair.confidence if use_confidence and pair.confidence is not None else 1.0)
    # Label flipped with probability ε: p' = (1 − ε)·p + ε·(1 − p); a tie stays at 0.5.
    return (1.0 - smoothing) * p + smoothing * (1.0 - p)


def encode_pair(tokenizer, pair: PreferencePair, data: DataConfig,
                loss: RewardLossConfig | None) -> EncodedPair:
    tools = pair.metadata.get("tools")
    chosen = encode_response(tokenizer, pair.prompt, pair.chosen, data, tools)
    rejected = encode_response(tokenizer, pair.prompt, pair.rejected, data, tools)
    smoothing, use_conf = (loss.label_smoothing, loss.use_confidence) if loss else (0.0, False)
    margin = (loss.margin_scale * pair.margin) if loss and pair.margin is not None else 0.0
    category = pair.metadata.get("category")
    target = _target(pair, smoothing, use_conf)
    return EncodedPair(chosen, rejected, target, margin, pair.tie,
                       None if category is None else str(category))


def encode_preference_split(
    tokenizer, data: DataConfig, *, loss: RewardLossConfig | None = None, keep_ties: bool = True,
    log: Log = print, min_held: int = 0
) -> EncodedSplit[EncodedPair]:
    """Read, split and encode the preference pairs of `data` (ties kept only with `keep_ties`; at
    least `min_held` pairs held out when `data.eval_fraction` > 0, see `splits.holdout`)."""
    if data.packing:
        raise ConfigError(
            "config key 'data.packing': packing is not supported for preference pairs; set it to false"
        )

    def encode(pair: PreferencePair) -> EncodedPair | None:
        if pair.tie and not keep_ties:
            return None
        enc = encode_pair(tokenizer, pair, data, loss)
        # Identical token sequences (or responses truncated away) carry no preference signal.
        usable = (
            has_targets(enc.chosen) and has_targets(enc.rejected) and (enc.tie or enc.chosen != enc.rejected)
        )
        return enc if usable else None

    why = f"ties, identical responses, or responses past data.max_length={data.max_length}"
    return encode_split(read_split(read_preferences, data, log, min_held), encode, data,
                        what="preference pairs", why=why, log=log)


def collate_pairs(pairs: Sequence[EncodedPair], pad_token_id: int) -> dict[str, Tensor]:
    """The one pair batch: (2B, T) input_ids / attention_mask / labels, chosen rows then rejected
    rows, right-padded together; (B,) target_prob and margin; (B,) ref_chosen / ref_rejected when
    every pair carries cached reference log-probs."""
    batch = pad_batch([p.chosen for p in pairs] + [p.rejected for p in pairs], pad_token_id)
    batch["target_prob"] = torch.tensor([p.target_prob for p in pairs], dtype=torch.float32)
    batch["margin"] = torch.tensor([p.margin for p in pairs], dtype=torch.float32)
    _add_reference(batch, pairs, PAIR_SIDES)
    return batch


def count_pairs(batch: Mapping[str, Tensor]) -> int:
    """Pairs in a `collate_pairs` batch: what a pairwise loss sums over."""
    return int(batch["target_prob"].shape[0])


# ------------------------------------------------------------------------------------ unpaired feedback


@dataclass(frozen=True)
class EncodedFeedback:
    completion: EncodedExample
    kl: EncodedExample  # the same prompt with another record's completion
    desirable: bool
    ref_completion: float | None = None
    ref_kl: float | None = None

    @property
    def width(self) -> int:
        """Padded width the item brings to a batch: the longer of its two sequences."""
        return max(len(self.completion), len(self.kl))


@dataclass(frozen=True)
class _Completion:
    prompt: list[Message]
    tools: Any
    response: list[Message]
    encoded: EncodedExample
    desirable: bool


def encode_feedback_split(tokenizer, data: DataConfig, log: Log = print) -> EncodedSplit[EncodedFeedback]:
    """Read, split and encode unpaired feedback: each completion, its label, and its prompt paired
    with the next record's completion (a fixed mismatch, so a cached reference stays valid whatever
    the batch order)."""

    def encode(rec: BinaryFeedback) -> _Completion | None:
        prompt, tools = with_system_prompt(rec.prompt, data.system_prompt), rec.metadata.get("tools")
        ex = fit_to_length(encode_prompt_response(tokenizer, prompt, rec.completion, tools=tools),
                           data.max_length)
        return _Completion(prompt, tools, list(rec.completion), ex, rec.label) if has_targets(ex) else None

    def mismatched(items: list[_Completion]) -> list[EncodedFeedback]:
        out = []
        for i, it in enumerate(items):
            other = items[(i + 1) % len(items)].response
            kl = encode_prompt_response(tokenizer, it.prompt, other, tools=it.tools)
            out.append(EncodedFeedback(it.encoded, fit_to_length(kl, data.max_length), it.desirable))
        return out

    why = f"completions past data.max_length={data.max_length}"
    split = encode_split(read_split(read_feedback, data, log), encode, data, what="records", why=why, log=log)
    return EncodedSplit(mismatched(split.train), mismatched(split.eval), split.skipped_records, split.dropped)


def collate_feedback(items: Sequence[EncodedFeedback], pad_token_id: int) -> dict[str, Tensor]:
    """Per side `completion_*` and `kl_*` (B, T) input_ids / attention_mask / labels; (B,) bool
    `label` (desirable); (B,) ref_completion / ref_kl when cached."""
    batch: dict[str, Tensor] = {}
    for side in FEEDBACK_SIDES:
        padded = pad_batch([getattr(it, side) for it in items], pad_token_id)
        batch.update({f"{side}_{k}": v for k, v in padded.items()})
    batch["label"] = torch.tensor([it.desirable for it in items], dtype=torch.bool)
    _add_reference(batch, items, FEEDBACK_SIDES)
    return batch


def count_feedback(batch: Mapping[str, Tensor]) -> int:
    """Completions in a `collate_feedback` batch."""
    return int(batch["label"].shape[0])


# ------------------------------------------------------------------------------------ reference log-probs


def _add_reference(batch: dict[str, Tensor], items: Sequence[Any], sides: tuple[str, str]) -> None:
    for side in sides:
        values = [getattr(it, f"ref_{side}") for it in items]
        if all(v is not None for v in values):
            batch[f"ref_{side}"] = torch.tensor(values, dtype=torch.float32)


def with_reference(items: Sequence[Any], side: str, values: Sequence[float]) -> list[Any]:
    """Copies of `items` (pairs or feedback) carrying the reference log-prob of `side`."""
    return [dataclasses.replace(it, **{f"ref_{side}": float(v)}) for it, v in zip(items, values, strict=True)]


def sequences_of(items: Sequence[Any], side: str) -> list[EncodedExample]:
    return [getattr(it, side) for it in items]


def item_width(item: EncodedPair | EncodedFeedback) -> int:
    """What the loop groups items by (`train.group_by_length`): the padded width of a pair or item."""
    return item.width
