"""The dataflow that makes one rollout batch: generate → score → reference log-probs → values →
advantages, each a named method with a timer (the order of verl's `RayPPOTrainer.fit()`). The
update that follows (policy, and the critic for PPO) is the training loop's step
(`alignlab.training.rl_step`); `RolloutSource` calls `make_batch` when it needs a new batch.

- generate: `params.n` replies per prompt from the policy's own weights (`generation.hf`);
- score: the replies as text through every reward (`alignlab.rewards`);
- reference log-probs: the policy's (π_old, recomputed with the training forward so the first
  ratio is exactly 1) and the reference's log-probs of the sampled tokens, both of the tempered
  distribution; for a LoRA policy the reference is the policy with its adapters disabled;
- values: the critic's V(s_t) on the response tokens (PPO);
- advantages: the KL penalty in the reward (per token or per reply) or left to the loss, then the
  registered estimator (`losses.advantages`), whitened when asked; the KL controller then updates.
The KL logged as `kl` is the k1 estimate summed over each reply's tokens, averaged over replies
(Gao et al. 2023's x-axis). With top-k or top-p sampling the replies are not draws from the
tempered policy and the KL estimates are biased.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from alignlab.data.prompts import PromptRecord
from alignlab.generation.base import SamplingParams
from alignlab.generation.hf import HFGenerator, Rollout, unwrap_model
from alignlab.generation.stops import cut_at_stop
from alignlab.io import append_jsonl
from alignlab.losses.advantages import AdvantageSpec, masked_whiten
from alignlab.losses.kl import KLController, kl_k1, kl_shaped_rewards, kl_shaped_scores, sequence_kl, token_kl
from alignlab.losses.masked import masked_mean
from alignlab.losses.policy import explained_variance
from alignlab.modeling.inference import inference_mode
from alignlab.modeling.responses import response_logps
from alignlab.modeling.value_model import token_values
from alignlab.rewards.base import RewardInputs
from alignlab.rewards.combine import RewardScores, RewardSet
from alignlab.training.checkpoint import truncate_metrics
from alignlab.training.rollouts import RolloutBatch

Tensor = torch.Tensor


@dataclass(frozen=True)
class Prompts:
    records: list[PromptRecord]
    ids: list[list[int]]  # each prompt templated and tokenized, ending with the generation prompt


@dataclass(frozen=True)
class AdvantageSettings:
    spec: AdvantageSpec
    params: dict[str, float]
    whiten: bool
    kl_estimator: str  # of the penalty: "k1", "k2" or "k3"
    kl_in_reward: bool  # else the KL is in the loss (the step reads `ref_logps` and `kl_coef`)


class SamplesLog:
    """A JSONL file of reply rows with the step they belong to: `samples.jsonl` (some rows of every
    N-th rollout batch, with the rollout's index) or `eval_samples.jsonl` (every held-out reply of
    every evaluation).

    Before the first write of a run, rows of that step or later (left by an interrupted run, whose
    batch or evaluation is being made again) are dropped."""

    def __init__(self, path: Path, *, every: int = 1, rows: int | None = None, enabled: bool = True) -> None:
        self.path, self.every, self.rows, self.enabled = path, every, rows, enabled
        self._checked = False

    def write(self, step: int, rows: list[dict[str, Any]], rollout: int | None = None) -> None:
        """`rows` of `step`; with `rollout`, only every `every`-th rollout's first `rows` rows."""
        if not self.enabled:
            return
        if not self._checked:
            truncate_metrics(self.path, step - 1)
            self._checked = True
        if rollout is None:
            for row in rows:
                append_jsonl(self.path, {"step": step, **row})
        elif rollout % self.every == 0:
            for row in rows[: self.rows]:
                append_jsonl(self.path, {"step": step, "rollout": rollout, **row})


class Dataflow:
    """Makes rollout batches (and held-out evaluations) for one RL run; see the module docstring."""

    def __init__(self, *, tokenizer, prompts: Prompts, sampling: SamplingParams, rewards: RewardSet,
                 kl_controller: KLController, advantage: AdvantageSettings, reference: torch.nn.Module | None,
                 forward_rows: int, max_batch_rows: int = 64, samples: SamplesLog | None = None) -> None:
        self.tokenizer, self.prompts, self.sampling = tokenizer, prompts, sampling
        self.rewards, self.kl, self.advantage = rewards, kl_controller, advantage
        self.reference, self.forward_rows, self.max_batch_rows = reference, forward_rows, max_batch_rows
        self.samples = samples
        self.timings: dict[str, float] = {}
        self._last_end: float | None = None

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - t0

    # ------------------------------------------------------------------------------ one batch

    def make_batch(self, model: torch.nn.Module, indices: list[int], rollout_index: int, seed: int,
                   step: int) -> tuple[RolloutBatch, dict[str, float]]:
        """The rollout batch of the prompts `indices` (a `MakeBatch` for `RolloutSource`)."""
        t0 = time.perf_counter()
        update_s = t0 - self._last_end if self._last_end is not None else 0.0
        modules = unwrap_model(model)
        self.timings = {}
        with self.timed("generate"):
            params = dataclasses.replace(self.sampling, seed=seed)
            rollout = self.generate(modules.policy, self.prompts, indices, params)
        with self.timed("score"):
            texts, scores = self.score(self.prompts, indices, rollout, update=True)
        with self.timed("reference"):
            old, ref = self.log_probs(modules.policy, rollout)
        with self.timed("values"):
            values = self.values(modules.critic, rollout) if modules.critic is not None else None
        with self.timed("advantages"):
            beta = self.kl.value
            advantages, returns = self.advantages(scores.total.to(old.device), old, ref, values,
                                                  rollout.response_mask.float())
        ids, mask, _ = rollout.sequences()
        batch = RolloutBatch(ids, mask, rollout.prompt_ids.shape[1], old, ref, advantages, beta, values,
                             returns)
        metrics = self.metrics(rollout, scores, old, ref, batch, beta)
        metrics["time/update"] = update_s
        if self.samples is not None:
            rows = self.sample_rows(self.prompts, indices, texts, scores, old, ref, rollout)
            self.samples.write(step, rows, rollout=rollout_index)
        self._last_end = time.perf_counter()
        return batch, metrics

    def generate(self, policy: torch.nn.Module, prompts: Prompts, indices: list[int],
                 params: SamplingParams) -> Rollout:
        generator = HFGenerator(policy, self.tokenizer, max_batch_rows=self.max_batch_rows)
        return generator.generate_ids([prompts.ids[i] for i in indices], params)

    def score(self, prompts: Prompts, indices: list[int], rollout: Rollout, *,
              update: bool) -> tuple[list[str], RewardScores]:
        """The replies as text, and their rewards (`update`: the normaliser learns from them)."""
        n = len(rollout.finish_reasons) // len(indices)
        ids, texts = decode_replies(self.tokenizer, rollout, self.sampling.stop)
        records = [prompts.records[i] for i in indices for _ in range(n)]
        return texts, self.rewards(RewardInputs(records, texts, ids), update=update)

    def log_probs(self, policy: torch.nn.Module, rollout: Rollout) -> tuple[Tensor, Tensor]:
        """(N, R) log-probs of the sampled tokens under the policy and under the reference."""
        old = self._forward(policy, rollout, response_logps)
        reference = nullcontext(self.reference) if self.reference is not None else _adapters_off(policy)
        with reference as ref_model:
            ref = self._forward(ref_model, rollout, response_logps)
        return old, ref

    def values(self, critic: torch.nn.Module, rollout: Rollout) -> Tensor:
        return self._forward(critic, rollout, token_values)

    def advantages(self, scores: Tensor, old: Tensor, ref: Tensor, values: Tensor | None,
                   mask: Tensor) -> tuple[Tensor, Tensor | None]:
        """(N, R) advantages and (PPO) returns; then one update of the KL controller."""
        a, beta = self.advantage, self.kl.value
        spec = a.spec
        kl_tokens = token_kl(old, ref, a.kl_estimator)
        penalty = beta if a.kl_in_reward else 0.0
        if spec.rewards == "token":
            rewards = kl_shaped_rewards(scores, kl_tokens, mask, penalty)
        else:
            rewards = kl_shaped_scores(scores, kl_tokens, mask, penalty)
        kwargs: dict[str, Any] = dict(a.params)
        if spec.needs_values:
            kwargs["values"] = values
        if spec.needs_groups:
            kwargs["group_size"] = self.sampling.n
        out = spec.fn(rewards, mask, **kwargs)
        advantages = masked_whiten(out.advantages, mask) if a.whiten else out.advantages
        self.kl.update(float(sequence_kl(kl_tokens, mask).mean()), int(mask.shape[0]))
        return advantages, out.returns

    # ------------------------------------------------------------------------------ evaluation, logs

    def evaluate(self, model: torch.nn.Module, prompts: Prompts,
                 seed: int = 0) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """One reply per held-out prompt: the mean of every reward, the KL and the length; and each
        reply's row (`sample_rows`). The same `seed` at every evaluation draws the same random
        numbers, so the changes between evaluations are not sampling noise of their own."""
        policy = unwrap_model(model).policy
        indices = list(range(len(prompts.records)))
        rollout = self.generate(policy, prompts, indices, dataclasses.replace(self.sampling, n=1, seed=seed))
        texts, scores = self.score(prompts, indices, rollout, update=False)
        old, ref = self.log_probs(policy, rollout)
        mask = rollout.response_mask
        out = {f"reward/{k}": float(v.mean()) for k, v in scores.components.items()}
        out.update(reward=float(scores.raw.mean()), kl=float(sequence_kl(kl_k1(old, ref), mask).mean()),
                   response_length=float(mask.sum(1).float().mean()))
        return out, self.sample_rows(prompts, indices, texts, scores, old, ref, rollout)

    def metrics(self, rollout: Rollout, scores: RewardScores, old: Tensor, ref: Tensor, batch: RolloutBatch,
                beta: float) -> dict[str, float]:
        mask = rollout.response_mask
        lengths = mask.sum(1).float()
        out = {f"reward/{k}": float(v.mean()) for k, v in scores.components.items()}
        out.update({
            "reward": float(scores.total.mean()), "reward/raw": float(scores.raw.mean()),
            "kl": float(sequence_kl(kl_k1(old, ref), mask).mean()), "kl_coef": beta,
            "response_length": float(lengths.mean()), "response_length/max": float(lengths.max()),
            "response/clipped": sum(r == "length" for r in rollout.finish_reasons) / len(lengths),
            "advantages/mean": float(masked_mean(batch.advantages, mask)),
            "rollout/logprob_gap": float(masked_mean((rollout.logprobs - old).abs(), mask)),
            "generate/tokens_per_s": float(lengths.sum()) / max(self.timings["generate"], 1e-9),
        })
        if batch.values is not None and batch.returns is not None:
            out["values/mean"] = float(masked_mean(batch.values, mask))
            out["returns/mean"] = float(masked_mean(batch.returns, mask))
            ev = float(explained_variance(batch.values, batch.returns, mask))
            out["value/explained_variance"] = ev if ev == ev else 0.0  # NaN when the returns are constant
        out.update({f"time/{k}": v for k, v in self.timings.items()})
        return out

    def sample_rows(self, prompts: Prompts, indices: list[int], texts: list[str], scores: RewardScores,
                    old: Tensor, ref: Tensor, rollout: Rollout) -> list[dict[str, Any]]:
        """One row per reply: its prompt (and the record's `id`, else the prompt's index in the file),
        the reply, the summed reward and each component, the KL (k1, summed over its tokens), the
        length in tokens and why it ended."""
        n = len(texts) // len(indices)
        kl = sequence_kl(kl_k1(old, ref), rollout.response_mask).tolist()
        rows = []
        for row, text in enumerate(texts):
            record = prompts.records[indices[row // n]]
            rows.append({
                "prompt": record.text, "id": record.fields.get("id", indices[row // n]),
                "completion": text, "reward": float(scores.total[row]),
                **{f"reward/{k}": float(v[row]) for k, v in scores.components.items()},
                "kl": kl[row], "length": int(rollout.response_mask[row].sum()),
                "finish": rollout.finish_reasons[row],
            })
        return rows

    def _forward(self, model: torch.nn.Module, rollout: Rollout, fn) -> Tensor:
        return rollout_forward(model, rollout, fn, rows=self.forward_rows,
                               temperature=self.sampling.temperature)


def decode_replies(tokenizer, rollout: Rollout,
                   stop: Sequence[str] = ()) -> tuple[list[list[int]], list[str]]:
    """Each reply's generated token ids (a final stop token included) and its text: special tokens
    and a matched stop string removed, stripped (what rewards score)."""
    lengths = rollout.response_mask.sum(1).tolist()
    ids = [rollout.response_ids[i, :length].tolist() for i, length in enumerate(lengths)]
    decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
    return ids, [cut_at_stop(text, stop)[0].strip() for text in decoded]


def rollout_forward(model: torch.nn.Module, rollout: Rollout, fn, *, rows: int,
                    temperature: float = 1.0) -> Tensor:
    """(N, R) `fn(model, ids, mask, positions, start[, temperature])` over the rollout's prompt + reply
    rows, `rows` at a time, without gradients: `response_logps` (tempered log-probs of the sampled
    tokens) or `token_values` (a critic's values)."""
    ids, mask, positions = rollout.sequences()
    start = rollout.prompt_ids.shape[1]
    extra = {"temperature": temperature} if fn is response_logps else {}
    out = []
    with inference_mode(model):
        for s in range(0, ids.shape[0], rows):
            sl = slice(s, s + rows)
            out.append(fn(model, ids[sl], mask[sl], positions[sl], start, **extra).float())
    return torch.cat(out)


@contextmanager
def _adapters_off(policy: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The LoRA policy's base model: the same module with its adapters disabled (no second copy)."""
    with policy.disable_adapter():
        yield policy
