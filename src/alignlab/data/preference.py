"""Preference data for every stage that reads it: reward models, the DPO family, scoring, evals.

- `with_system_prompt`: the config's system prompt, added to a prompt that has none (SFT too).
- Pairs: `encode_preference_split` reads, splits and encodes `PreferencePair`s into `EncodedPair`s
  (target probability from ties, confidence and label smoothing; a graded margin); `collate_pairs`
  is THE pair collator: one (2B, T) batch, chosen rows then rejected rows, so a reward model scores
  and a policy computes log-probs of both sides in one forward pass.
- Unpaired feedback (KTO): `encode_feedback_split` encodes `BinaryFeedback` records into
  `EncodedFeedback` (each completion, and its prompt with another record's completion for KTO's
  reference point); `collate_feedback` batches them.
- Length: the responses of one record share ONE prompt cut (`fit_sides`): the prompt keeps its end
  and gives way to the longer response (or to `data.max_prompt_length`, which then cuts long
  responses at their end); a record with no prompt left is dropped, and the counts are logged.
Reference log-probs cached by the DPO family travel with the items (`ref_<side>`).
Not supported: `data.packing` (rows filled up to max_length) for pairs; padding-free and
prefix-shared batches are `train.padding_free` / `train.prefix_sharing` (a `BatchLayout`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from alignlab.data.collators import pad_batch
from alignlab.data.layout import BatchLayout, lay_out_pairs, lay_out_sequences, shared_prompt_length
from alignlab.data.readers import read_feedback, read_preferences
from alignlab.data.schema import BinaryFeedback, Message, PreferencePair
from alignlab.data.splits import EncodedSplit, Log, encode_split, read_split
from alignlab.data.templating import EncodedExample, encode_prompt_response, has_targets
from alignlab.errors import ConfigError, DataError

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


class NoPromptLeft(DataError):
    """The longer response leaves no room for any prompt token within `data.max_length`."""


@dataclass
class FitCounts:
    """What fitting prompts and responses to `data.max_length` did to a dataset, for the log."""

    prompts_cut: int = 0
    responses_cut: int = 0
    no_prompt_left: int = 0

    def describe(self, what: str, data: DataConfig) -> list[str]:
        lines = []
        if self.prompts_cut:
            lines.append(f"cut the prompt of {_count(self.prompts_cut, what)} to fit data.max_length="
                         f"{data.max_length} (one cut for every response of a record, its end kept)")
        if self.responses_cut:
            lines.append(f"cut the responses of {_count(self.responses_cut, what)} at their end "
                         f"(data.max_prompt_length={data.max_prompt_length})")
        if self.no_prompt_left:
            lines.append(f"dropped {_count(self.no_prompt_left, what)} whose longer response leaves no room "
                         f"for the prompt within data.max_length={data.max_length} (raise it, or set "
                         "data.max_prompt_length to keep that many prompt tokens and cut long responses)")
        return lines


def _count(n: int, what: str) -> str:
    return f"{n} {what if n != 1 else what.removesuffix('s')}"


def fit_sides(sides: Sequence[EncodedExample], max_length: int, max_prompt_length: int | None = None,
              counts: FitCounts | None = None) -> tuple[list[EncodedExample], int]:
    """Cut responses that share one prompt to `max_length` with ONE prompt cut for all of them.

    The prompt keeps its end (the turns nearest the responses) and gives way to the longest
    response; with `max_prompt_length` it keeps at most that many tokens and responses longer than
    what is left are cut at their end (TRL's `max_prompt_length`). Returns the fitted sides and the
    kept prompt length; raises `NoPromptLeft` when no prompt token would be left: a response alone
    is not what the data prefers given its prompt.
    """
    prompt = shared_prompt_length(sides)
    longest = max(len(ex) for ex in sides) - prompt
    keep = min(prompt, max_length - longest) if max_prompt_length is None else min(prompt, max_prompt_length)
    if keep <= 0:
        if counts is not None:
            counts.no_prompt_left += 1
        raise NoPromptLeft(f"the longer response ({longest} tokens) leaves no room for the prompt within "
                           f"data.max_length={max_length}; raise it or set data.max_prompt_length")
    start = prompt - keep
    fitted = [EncodedExample(ex.input_ids[start:][:max_length], ex.labels[start:][:max_length])
              for ex in sides]
    if counts is not None:
        counts.prompts_cut += keep < prompt
        counts.responses_cut += longest > max_length - keep
    return fitted, keep


def encode_responses(tokenizer, prompt: Sequence[Message], responses: Sequence[Sequence[Message]],
                     data: DataConfig, tools: Any = None,
                     counts: FitCounts | None = None) -> tuple[list[EncodedExample], int]:
    """Each response after the same prompt (with the system prompt), fitted together (`fit_sides`)."""
    messages = with_system_prompt(prompt, data.system_prompt)
    sides = [encode_prompt_response(tokenizer, messages, r, tools=tools) for r in responses]
    return fit_sides(sides, data.max_length, data.max_prompt_length, counts)


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

    @functools.cached_property
    def prompt_len(self) -> int:
        """Tokens both sides start with before any learned one: the prompt, encoded once for both."""
        return shared_prompt_length([self.chosen, self.rejected])


def _target(pair: PreferencePair, smoothing: float, use_confidence: bool) -> float:
    p = 0.5 if pair.tie else (pair.confidence if use_confidence and pair.confidence is not None else 1.0)
    # Label flipped with probability ε: p' = (1 − ε)·p + ε·(1 − p); a tie stays at 0.5.
    return (1.0 - smoothing) * p + smoothing * (1.0 - p)


def encode_pair(tokenizer, pair: PreferencePair, data: DataConfig,
                loss: RewardLossConfig | None, counts: FitCounts | None = None) -> EncodedPair:
    """Both responses after one prompt, fitted together (`fit_sides`; raises `NoPromptLeft`)."""
    (chosen, rejected), _ = encode_responses(tokenizer, pair.prompt, [pair.chosen, pair.rejected], data,
                                             pair.metadata.get("tools"), counts)
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

    counts = FitCounts()

    def encode(pair: PreferencePair) -> EncodedPair | None:
        if pair.tie and not keep_ties:
            return None
        try:
            enc = encode_pair(tokenizer, pair, data, loss, counts)
        except NoPromptLeft:
            return None
        # Identical token sequences (or responses truncated away) carry no preference signal.
        usable = (
            has_targets(enc.chosen) and has_targets(enc.rejected) and (enc.tie or enc.chosen != enc.rejected)
        )
        return enc if usable else None

    records = read_split(read_preferences, data, log, min_held)
    why = f"ties, identical responses, or no room for the prompt within data.max_length={data.max_length}"
    try:
        return encode_split(records, encode, data, what="preference pairs", why=why, log=log)
    finally:
        for line in counts.describe("pairs", data):
            log(line)


def collate_pairs(pairs: Sequence[EncodedPair], pad_token_id: int,
                  layout: BatchLayout | None = None) -> dict[str, Tensor]:
    """The one pair batch: (2B, T) input_ids / attention_mask / labels, chosen rows then rejected
    rows, right-padded together; (B,) target_prob and margin; (B,) ref_chosen / ref_rejected when
    every pair carries cached reference log-probs. With a `layout`, the sequences are laid out
    padding-free (each pair's prompt once, with `layout.share_prompt`; `alignlab.data.layout`) and
    still counted chosen first, then rejected."""
    if layout is not None:
        batch = lay_out_pairs([(p.chosen, p.rejected, p.prompt_len) for p in pairs], pad_token_id, layout)
    else:
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
    full: EncodedExample  # prompt + completion, before fitting to data.max_length
    prompt_kept: int  # prompt tokens left by the fit
    desirable: bool


def encode_feedback_split(tokenizer, data: DataConfig, log: Log = print) -> EncodedSplit[EncodedFeedback]:
    """Read, split and encode unpaired feedback: each completion, its label, and its prompt paired
    with the next record's completion (a fixed mismatch, so a cached reference stays valid whatever
    the batch order)."""

    counts = FitCounts()

    def encode(rec: BinaryFeedback) -> _Completion | None:
        prompt, tools = with_system_prompt(rec.prompt, data.system_prompt), rec.metadata.get("tools")
        full = encode_prompt_response(tokenizer, prompt, rec.completion, tools=tools)
        try:
            (ex,), keep = fit_sides([full], data.max_length, data.max_prompt_length, counts)
        except NoPromptLeft:
            return None
        usable = has_targets(ex)
        return _Completion(prompt, tools, list(rec.completion), full, keep, rec.label) if usable else None

    def mismatched(items: list[_Completion]) -> list[EncodedFeedback]:
        out = []
        for i, it in enumerate(items):
            other = items[(i + 1) % len(items)].response
            kl = encode_prompt_response(tokenizer, it.prompt, other, tools=it.tools)
            # The completion's own prompt cut, for both: the other completion is cut at its end if long.
            (completion, kl), _ = fit_sides([it.full, kl], data.max_length, it.prompt_kept)
            out.append(EncodedFeedback(completion, kl, it.desirable))
        return out

    why = f"no room for the prompt within data.max_length={data.max_length}"
    try:
        records = read_split(read_feedback, data, log)
        split = encode_split(records, encode, data, what="records", why=why, log=log)
    finally:
        for line in counts.describe("records", data):
            log(line)
    return EncodedSplit(mismatched(split.train), mismatched(split.eval), split.skipped_records, split.dropped)


def collate_feedback(items: Sequence[EncodedFeedback], pad_token_id: int,
                     layout: BatchLayout | None = None) -> dict[str, Tensor]:
    """Per side `completion_*` and `kl_*` (B, T) input_ids / attention_mask / labels; (B,) bool
    `label` (desirable); (B,) ref_completion / ref_kl when cached. With a `layout`, each side is
    laid out padding-free on its own (the steps run the KL side without gradients)."""
    batch: dict[str, Tensor] = {}
    for side in FEEDBACK_SIDES:
        sequences = [getattr(it, side) for it in items]
        if layout is not None:
            sub = lay_out_sequences(sequences, pad_token_id, layout)
        else:
            sub = pad_batch(sequences, pad_token_id)
        batch.update({f"{side}_{k}": v for k, v in sub.items()})
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
