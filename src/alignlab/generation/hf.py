"""Batched generation from an in-process Hugging Face causal LM.

Prompts are conversations rendered with the tokenizer's chat template and a generation prompt.
Generation stops at eos or at the template's end-of-turn token. Batches are formed from prompts of
similar length (left-padded) and results are returned in the input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from alignlab.data.schema import Message
from alignlab.data.templating import encode_prompt

# End-of-turn markers of the common chat templates; whichever the tokenizer knows also stops generation.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>")


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    batch_size: int = 16
    seed: int = 0


def stop_token_ids(tokenizer) -> list[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
    return sorted(ids)


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[Sequence[Message]], params: SamplingParams = SamplingParams()) -> list[str]:
    """One completion per prompt (text after the generation prompt, special tokens removed)."""
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = stop_token_ids(tokenizer)
    out: list[str] = [""] * len(encoded)
    was_training = model.training
    model.eval()
    gen = torch.Generator(device="cpu").manual_seed(params.seed)
    for start in range(0, len(order), params.batch_size):
        idx = order[start : start + params.batch_size]
        width = max(len(encoded[i]) for i in idx)
        input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
        attention = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):  # left padding keeps every prompt's last token adjacent to its reply
            ids = encoded[i]
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention[row, width - len(ids) :] = 1
        sample = params.temperature > 0
        if sample:
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        result = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=params.max_new_tokens,
            do_sample=sample,
            temperature=params.temperature if sample else None,
            top_p=params.top_p if sample else None,
            top_k=None,
            eos_token_id=stops,
            pad_token_id=pad,
        )
        for row, i in enumerate(idx):
            out[i] = tokenizer.decode(result[row, width:], skip_special_tokens=True).strip()
    model.train(was_training)
    return out
