"""`ChoiceScorer` for an in-process Hugging Face causal LM: option probabilities from one forward pass.

The context is `encode_prompt(tokenizer, messages)` (chat template and generation prompt) followed
by the tokens of the answer prefix (e.g. "Answer:", after the judge's reasoning with chain of
thought), tokenized on their own as the model would have generated them. Each option is scored as
every way the reply could spell it next: the option alone and with a leading space ("A" and " A"
are different tokens in most BPE vocabularies; SentencePiece vocabularies may make them the same,
and duplicates are counted once). An option's probability is the sum over its spellings of the
probability of that spelling's tokens (a multi-token spelling is the product over its tokens,
through `modeling.logprobs.model_sequence_logps`), normalised over the options. This is how
Bai et al. 2022 (arXiv:2212.08073, section 4.1) and Lee et al. 2023 (arXiv:2309.00267, section 2.1)
read soft preference labels off the answer tokens.

When every spelling is one token (the usual case for "A" / "B"), one forward pass per prompt gives
them all (logits kept only at each row's last position); otherwise each (prompt, spelling) is one
sequence. Sequences are batched by length and right-padded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from alignlab.data.labels import IGNORE_INDEX
from alignlab.data.templating import encode_prompt
from alignlab.generation.base import Prompt
from alignlab.modeling.logprobs import TokenBatch, model_sequence_logps


class HFChoiceScorer:
    """`feedback.judge.ChoiceScorer` over `model` (a causal LM) and its `tokenizer`."""

    def __init__(self, model, tokenizer, batch_size: int = 8):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def spellings(self, option: str) -> list[tuple[int, ...]]:
        """Distinct token sequences of `option` and ` option`."""
        out: list[tuple[int, ...]] = []
        for text in (option, " " + option):
            ids = tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if ids and ids not in out:
                out.append(ids)
        return out

    @torch.no_grad()
    def choice_probabilities(
        self, prompts: Sequence[Prompt], options: Sequence[str], answer_prefixes: Sequence[str]
    ) -> list[list[float]]:
        """(len(prompts), len(options)) probabilities; each row sums to 1."""
        if len(answer_prefixes) != len(prompts):
            raise ValueError(f"got {len(answer_prefixes)} answer prefixes for {len(prompts)} prompts")
        spellings = [self.spellings(o) for o in options]
        contexts = []
        for prompt, prefix in zip(prompts, answer_prefixes, strict=True):
            context = encode_prompt(self.tokenizer, prompt)
            contexts.append(
                context + (self.tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else [])
            )
        was_training = self.model.training
        self.model.eval()
        try:
            if all(len(ids) == 1 for options_ids in spellings for ids in options_ids):
                scores = self._single_token_scores(contexts, spellings)
            else:
                scores = self._sequence_scores(contexts, spellings)
        finally:
            self.model.train(was_training)
        return scores.softmax(-1).tolist()

    def _batches(self, seqs: Sequence[Sequence[int]]):
        """(row indices, right-padded ids, attention mask) per batch, similar lengths together."""
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        order = sorted(range(len(seqs)), key=lambda j: len(seqs[j]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = max(len(seqs[j]) for j in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, j in enumerate(idx):
                ids[row, : len(seqs[j])] = torch.tensor(seqs[j])
                mask[row, : len(seqs[j])] = 1
            yield idx, ids.to(device), mask.to(device)

    def _single_token_scores(
        self, contexts: list[list[int]], spellings: list[list[tuple[int, ...]]]
    ) -> torch.Tensor:
        """One forward per context: log P(spelling) from the next-token distribution after it."""
        scores = torch.full((len(contexts), len(spellings)), float("-inf"), dtype=torch.float64)
        for idx, ids, mask in self._batches(contexts):
            last = mask.sum(1) - 1  # (B,) position of each row's last real token
            keep, where = torch.unique(last, return_inverse=True)
            logits = self._logits_at(ids, mask, keep)
            logps = logits[torch.arange(len(idx), device=ids.device), where].double().log_softmax(-1).cpu()
            for row, i in enumerate(idx):
                for k, options_ids in enumerate(spellings):
                    scores[i, k] = torch.logsumexp(logps[row, [t[0] for t in options_ids]], 0)
        return scores

    def _logits_at(self, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """(B, len(keep), V) logits at positions `keep` only, where the model can skip the others."""
        try:
            return self.model(input_ids=ids, attention_mask=mask, use_cache=False, logits_to_keep=keep).logits
        except TypeError:  # an architecture without `logits_to_keep`: every position, then the kept ones
            return self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, keep]

    def _sequence_scores(
        self, contexts: list[list[int]], spellings: list[list[tuple[int, ...]]]
    ) -> torch.Tensor:
        """One sequence per (context, spelling): summed log-probs of the spelling's tokens."""
        seqs = [(i, k, ctx + list(ids), len(ids)) for i, ctx in enumerate(contexts)
                for k, options_ids in enumerate(spellings) for ids in options_ids]
        scores = torch.full((len(contexts), len(spellings)), float("-inf"), dtype=torch.float64)
        for idx, ids, mask in self._batches([tokens for _, _, tokens, _ in seqs]):
            labels = torch.full_like(ids, IGNORE_INDEX)
            for row, j in enumerate(idx):
                _, _, tokens, n = seqs[j]
                labels[row, len(tokens) - n : len(tokens)] = ids[row, len(tokens) - n : len(tokens)]
            logps = model_sequence_logps(self.model, TokenBatch(ids, mask, labels)).logps.double().cpu()
            for row, j in enumerate(idx):
                i, k = seqs[j][0], seqs[j][1]
                scores[i, k] = torch.logaddexp(scores[i, k], logps[row])
        return scores
