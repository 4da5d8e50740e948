"""GCG: greedy coordinate gradient search for an adversarial attack string (Zou et al. 2023).

"Universal and Transferable Adversarial Attacks on Aligned Language Models", arXiv:2307.15043.
The prompt is rendered with the model's chat template, an attack of k tokens is appended to the last
user message (or put before it), and the loss is the mean cross-entropy of the target string (the
start of the wanted reply) after the generation prompt::

    [before][attack: k tokens][after: rest of the turn + generation prompt][target: L tokens]

Each step (Algorithm 1): the gradient w.r.t. the attack's one-hot matrix (k, V) ranks, per
position, the top-k swaps by first-order loss decrease; B candidates, each one random swap among
those, are scored exactly in batched forward passes sharing the KV cache of the fixed `before`
part; the best becomes the attack (even if worse, as in the paper; one that already emits the
targets under teacher forcing counts as best) and the best seen is kept.
Candidates whose text does not re-tokenize to the same ids inside the rendered prompt are dropped,
so the attack optimised is one a user can send as text. The search stops when greedy decoding of
the real prompt emits the target, or the loss falls below `stop_loss`. Several (prompt, target)
pairs give the universal variant (summed losses). `transfer` tries an attack on any `Generator`.
Not here: the paper's multi-model ensembles and progressive prompt schedule; multi-token swaps.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F

from alignlab.data.labels import IGNORE_INDEX
from alignlab.data.schema import Message
from alignlab.data.templating import render
from alignlab.errors import ConfigError, DataError
from alignlab.generation.base import Generator, SamplingParams
from alignlab.generation.hf import HFGenerator
from alignlab.modeling.logprobs import token_logps

Tensor = torch.Tensor
Position = Literal["suffix", "prefix"]
_SLOT = "\ue000GCG\ue000"  # private-use characters: no template or user text contains them


@dataclass(frozen=True)
class GCGConfig:
    """Search settings; the defaults are the paper's (20 tokens, top-k 256, B 512, 500 steps)."""

    num_tokens: int = 20  # attack length k (ignored when `init` is given)
    steps: int = 500
    top_k: int = 256  # substitutions kept per position
    batch_size: int = 512  # candidates B scored per step
    eval_batch_size: int | None = None  # rows per forward (default B); bounds the KV memory of a pass
    position: Position = "suffix"  # after the user's text (as is), or before it (plus a space)
    init: str | None = None  # initial attack text; default k times the " !" token (or "!")
    allow_non_ascii: bool = False
    allow_special: bool = False  # special tokens (eos, chat markers) as attack tokens
    stop_loss: float | None = None  # also stop when the summed loss falls below this
    early_stop: bool = True  # stop when greedy decoding emits every target
    prefix_cache: bool = True  # reuse the KV cache of the fixed part before the attack
    seed: int = 0

    def __post_init__(self) -> None:
        for key, least in (
            ("num_tokens", 1),
            ("steps", 0),
            ("top_k", 1),
            ("batch_size", 1),
            ("eval_batch_size", 1),
        ):
            if (value := getattr(self, key)) is not None and value < least:
                raise ConfigError(f"gcg.{key} must be at least {least}, got {value}")
        if self.position not in ("suffix", "prefix"):
            raise ConfigError(f"gcg.position must be 'suffix' or 'prefix', got {self.position!r}")


@dataclass(frozen=True)
class GCGTarget:
    """A conversation ending in a user turn, and the start of the reply the attack should force."""

    messages: tuple[Message, ...]
    target: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(self.messages))
        if not self.messages or self.messages[-1].role != "user":
            raise DataError("a GCG prompt must end with a user message: the attack is placed in that turn")
        if not self.target.strip():
            raise DataError("a GCG target must be non-empty text (the start of the wanted reply)")


@dataclass(frozen=True)
class GCGResult:
    """What a search found; `to_json()` gives one JSON-ready record."""

    attack: str  # attack text, placed in the user turn as `with_attack` does
    attack_ids: tuple[int, ...]
    position: Position
    success: bool  # greedy decoding of every prompt with `attack` starts with its target
    steps: int  # optimisation steps run
    losses: tuple[float, ...]  # summed loss of the current attack: initial, then after each step
    best_loss: float  # loss of `attack`
    responses: tuple[str, ...]  # greedy replies (target length) to each prompt with `attack`
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class PromptLayout(NamedTuple):
    """Token ids of one prompt rendered around the attack slot, and of its target."""

    before_ids: tuple[int, ...]
    after_ids: tuple[int, ...]
    target_ids: tuple[int, ...]


@dataclass(frozen=True)
class TransferOutcome:
    """One reply of a (possibly different) model to a prompt carrying the attack."""

    index: int  # which target
    target: str
    response: str
    hit: bool  # the target string appears in the response
    error: str | None = None  # the backend's message when generation failed


def target_hit(target: str, reply: str) -> bool:
    """The reply carries the target string (the transfer test; the search itself asks for a reply that
    starts with it)."""
    return target.strip() in reply


def with_attack(messages: Sequence[Message], attack: str, position: Position = "suffix") -> list[Message]:
    """`messages` with `attack` in the last user turn: appended as is, or put before it plus a space."""
    if not attack:
        return list(messages)
    *head, last = messages
    content = last.content + attack if position == "suffix" else f"{attack} {last.content}"
    return [*head, last.model_copy(update={"content": content})]


def _encode(tokenizer, text: str) -> tuple[int, ...]:
    return tuple(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else ()


def prompt_layout(tokenizer, target: GCGTarget, position: Position = "suffix") -> PromptLayout:
    """Render `target`'s prompt with a placeholder attack and split the text around it."""
    text = render(tokenizer, with_attack(target.messages, _SLOT, position), add_generation_prompt=True)
    if text.count(_SLOT) != 1:
        raise DataError(
            "the chat template does not render the user's text verbatim, so the attack has no place: "
            "use a template that writes message content unchanged"
        )
    before, after = text.split(_SLOT)
    return PromptLayout(
        _encode(tokenizer, before), _encode(tokenizer, after), _encode(tokenizer, target.target)
    )


def allowed_tokens(
    tokenizer, vocab_size: int, *, allow_non_ascii: bool = False, allow_special: bool = False
) -> Tensor:
    """(vocab_size,) bool: ids an attack may use; never rows of the embedding beyond the tokenizer."""
    n = min(len(tokenizer), vocab_size)
    ok = torch.zeros(vocab_size, dtype=torch.bool)
    ok[:n] = True
    if not allow_special:
        special = set(tokenizer.all_special_ids)
        special.update(i for i, t in tokenizer.added_tokens_decoder.items() if t.special)
        ok[[i for i in special if i < vocab_size]] = False
    if not allow_non_ascii:
        texts = tokenizer.batch_decode([[i] for i in range(n)], clean_up_tokenization_spaces=False)
        ok[:n] &= torch.tensor([bool(t) and t.isascii() and t.isprintable() for t in texts])
    return ok


def retokenizes(tokenizer, target: GCGTarget, candidates: Tensor, position: Position = "suffix") -> Tensor:
    """(B,) bool: rows of `candidates` (B, k) that, decoded to text and rendered into the prompt by the
    chat template (as `encode_prompt` does), tokenize back to exactly [before][row][after]."""
    head, tail, _ = prompt_layout(tokenizer, target, position)
    if not (rows := candidates.tolist()):
        return torch.zeros(0, dtype=torch.bool)
    texts = [
        render(tokenizer, with_attack(target.messages, text, position), add_generation_prompt=True)
        for text in tokenizer.batch_decode(rows, clean_up_tokenization_spaces=False)
    ]
    full = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return torch.tensor([ids == [*head, *row, *tail] for ids, row in zip(full, rows, strict=True)])


def sample_candidates(
    attack: Tensor, grad: Tensor, allowed: Tensor, top_k: int, batch: int, generator
) -> Tensor:
    """(batch, k) copies of `attack` (k,), each with one random position set to one of its top-k tokens.

    grad: (k, V) gradient of the loss w.r.t. the one-hot attack; the top-k tokens of a position are
    those with the most negative gradient (the largest first-order decrease), among `allowed` (V,).
    """
    scores = grad.float().cpu().masked_fill(~allowed, float("inf"))
    top = (-scores).topk(min(top_k, int(allowed.sum())), dim=1).indices  # (k, top_k)
    pos = torch.randint(len(attack), (batch,), generator=generator)
    pick = torch.randint(top.shape[1], (batch,), generator=generator)
    candidates = attack.cpu().repeat(batch, 1)
    candidates[torch.arange(batch), pos] = top[pos, pick]
    return candidates


class _Objective:
    """The summed target loss of an attack over every prompt: exactly, in batches, and its gradient."""

    def __init__(self, model, layouts: Sequence[PromptLayout], prefix_cache: bool, eval_batch: int) -> None:
        self.model, self.layouts, self.eval_batch = model, layouts, eval_batch
        self.device = next(model.parameters()).device
        self.embed = model.get_input_embeddings()
        self.scale = getattr(self.embed, "embed_scale", 1.0)  # Gemma-3 scales inside the embedding
        ids = lambda xs: torch.tensor(xs, dtype=torch.long, device=self.device)  # noqa: E731
        self.before = [ids(lay.before_ids) for lay in layouts]
        self.rest = [ids(lay.after_ids + lay.target_ids) for lay in layouts]
        self.keep = "logits_to_keep" in inspect.signature(model.forward).parameters
        self.kv = [self._prefix_kv(b) if prefix_cache else None for b in self.before]

    @torch.no_grad()
    def _prefix_kv(self, before: Tensor) -> list[tuple[Tensor, Tensor]] | None:
        from transformers.cache_utils import DynamicLayer

        if before.numel() == 0:
            return None
        cache = self.model(input_ids=before[None], use_cache=True).past_key_values
        layers = getattr(cache, "layers", None)
        # Sliding-window and recurrent layers cannot be shared this way: recompute the prefix.
        if not layers or any(type(layer) is not DynamicLayer for layer in layers):
            return None
        return [(layer.keys, layer.values) for layer in layers]

    def _logits(self, i: int, rows: int, ids: Tensor | None = None, embeds: Tensor | None = None) -> Tensor:
        """(rows, L + 1, V) logits at the last L + 1 positions of [before][attack][after][target]."""
        from transformers import DynamicCache

        keep = len(self.layouts[i].target_ids) + 1
        kwargs: dict[str, Any] = {"logits_to_keep": keep} if self.keep else {}
        if self.kv[i] is not None:
            # A fresh cache per call: the forward appends to it. expand() shares the prefix's memory.
            shape = (rows, -1, -1, -1)
            kwargs["past_key_values"] = DynamicCache(
                [(k.expand(shape), v.expand(shape)) for k, v in self.kv[i]]
            )
            kwargs["use_cache"] = True
        else:
            kwargs["use_cache"] = False
            before = self.before[i].expand(rows, -1)
            embeds = None if embeds is None else torch.cat([self.embed(before), embeds], 1)
            ids = None if ids is None else torch.cat([before, ids], 1)
        return self.model(input_ids=ids, inputs_embeds=embeds, **kwargs).logits[:, -keep:]

    def _loss(self, i: int, logits: Tensor) -> tuple[Tensor, Tensor]:
        """(rows,) mean target cross-entropy and (rows,) whether each target token is the argmax."""
        target = self.rest[i][-len(self.layouts[i].target_ids) :]
        labels = F.pad(target, (1, 0), value=IGNORE_INDEX).expand(len(logits), -1)  # logits[:, t] -> t + 1
        return -token_logps(logits, labels).mean(-1), (logits[:, :-1].argmax(-1) == target).all(-1)

    def gradient(self, attack: Tensor) -> Tensor:
        """(k, V) gradient of the summed loss w.r.t. the one-hot matrix of `attack` (k,)."""
        weight = self.embed.weight
        one_hot = F.one_hot(attack, weight.shape[0]).to(weight.dtype).requires_grad_()
        grad = torch.zeros(one_hot.shape, dtype=torch.float32, device=self.device)
        for i in range(len(self.layouts)):
            embeds = torch.cat([(one_hot @ weight) * self.scale, self.embed(self.rest[i])])[None]
            loss, _ = self._loss(i, self._logits(i, 1, embeds=embeds))
            grad += torch.autograd.grad(loss.sum(), one_hot)[0].float()
        return grad

    @torch.no_grad()
    def losses(self, candidates: Tensor) -> tuple[Tensor, Tensor]:
        """(B,) summed loss of each candidate attack (B, k) and (B,) whether every target is argmax."""
        total = torch.zeros(len(candidates), device=self.device)
        exact = torch.ones(len(candidates), dtype=torch.bool, device=self.device)
        for i in range(len(self.layouts)):
            for s in range(0, len(candidates), self.eval_batch):
                chunk = candidates[s : s + self.eval_batch]
                ids = torch.cat([chunk, self.rest[i].expand(len(chunk), -1)], 1)
                loss, hit = self._loss(i, self._logits(i, len(chunk), ids=ids))
                total[s : s + len(chunk)] += loss
                exact[s : s + len(chunk)] &= hit
        return total, exact


@contextmanager
def _frozen_eval(model) -> Iterator[None]:
    """Eval mode and no weight gradients during the search; both restored afterwards."""
    was_training, trainable = model.training, [p for p in model.parameters() if p.requires_grad]
    model.eval().requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)
        model.train(was_training)


def _initial_ids(tokenizer, config: GCGConfig) -> list[int]:
    if config.init is None:  # the paper's "! ! ! ...": one token per "!"
        bang = _encode(tokenizer, " !")
        return list(bang if len(bang) == 1 else _encode(tokenizer, "!")[:1]) * config.num_tokens
    if not (ids := list(_encode(tokenizer, config.init))):
        raise ConfigError("gcg.init tokenizes to no tokens: give a non-empty initial attack")
    return ids


def _greedy_hit(model, tokenizer, targets: Sequence[GCGTarget], attack: str, position: Position):
    """Greedy replies to the real prompts (as long as the longest target); do all start with their target?"""
    length = max(len(_encode(tokenizer, t.target)) for t in targets)
    prompts = [with_attack(t.messages, attack, position) for t in targets]
    completions = HFGenerator(model, tokenizer).generate(prompts, SamplingParams(max_new_tokens=length))
    replies = [c[0].text for c in completions]
    return all(r.strip().startswith(t.target.strip()) for t, r in zip(targets, replies, strict=True)), replies


def _best_candidate(tokenizer, targets, position: Position, objective: _Objective, candidates: Tensor):
    """(attack, loss, exact) of the lowest-loss candidate whose text keeps its ids in every prompt."""
    candidates = candidates.unique(dim=0)
    for target in targets:
        candidates = candidates[retokenizes(tokenizer, target, candidates, position)]
    if not len(candidates):
        return None
    losses, exact = objective.losses(candidates.to(objective.device))
    # A candidate that already emits every target beats a lower-loss one that does not: the mean
    # cross-entropy can be lowest where one target token is still not the argmax.
    j = int(losses.masked_fill(~exact, torch.inf).argmin() if exact.any() else losses.argmin())
    return candidates[j].to(objective.device), losses[j], exact[j]


def gcg_attack(
    model, tokenizer, targets: GCGTarget | Sequence[GCGTarget], config: GCGConfig = GCGConfig()
) -> GCGResult:
    """Search an attack string that makes `model` start its reply to every prompt with its target.

    The model is used in eval mode without weight gradients; both are restored afterwards.
    Reproducible for a given `config.seed` (candidates are drawn from their own CPU generator).
    """
    targets = [targets] if isinstance(targets, GCGTarget) else list(targets)
    if not targets:
        raise DataError("GCG needs at least one (prompt, target) pair")
    start, pos = time.perf_counter(), config.position
    rng = torch.Generator().manual_seed(config.seed)
    text = lambda ids: tokenizer.decode(ids.tolist(), clean_up_tokenization_spaces=False)  # noqa: E731
    with _frozen_eval(model):
        layouts = [prompt_layout(tokenizer, t, pos) for t in targets]
        objective = _Objective(
            model, layouts, config.prefix_cache, config.eval_batch_size or config.batch_size
        )
        vocab = objective.embed.weight.shape[0]
        allowed = allowed_tokens(tokenizer, vocab, allow_non_ascii=config.allow_non_ascii,
                                 allow_special=config.allow_special)  # fmt: skip
        attack = torch.tensor(_initial_ids(tokenizer, config), device=objective.device)
        loss, exact = (x[0] for x in objective.losses(attack[None]))
        history, best, found = [float(loss)], (float(loss), attack), None
        for step in range(config.steps + 1):
            # Teacher-forced argmax is a cheap necessary condition; the greedy decode decides.
            if config.early_stop and exact and _greedy_hit(model, tokenizer, targets, text(attack), pos)[0]:
                found = (history[-1], attack)
                break
            if (config.stop_loss is not None and history[-1] < config.stop_loss) or step == config.steps:
                break
            grad = objective.gradient(attack)
            candidates = sample_candidates(attack, grad, allowed, config.top_k, config.batch_size, rng)
            picked = _best_candidate(tokenizer, targets, pos, objective, candidates)
            if picked is not None:  # else no candidate survived the re-tokenization check: keep the attack
                attack, loss, exact = picked
            history.append(float(loss))
            if history[-1] < best[0]:
                best = (history[-1], attack)
        best_loss, attack = found or best
        success, replies = _greedy_hit(model, tokenizer, targets, text(attack), pos)
    return GCGResult(
        attack=text(attack), attack_ids=tuple(attack.tolist()), position=pos, success=success,
        steps=len(history) - 1, losses=tuple(history), best_loss=best_loss, responses=tuple(replies),
        seconds=time.perf_counter() - start,
    )  # fmt: skip


def transfer(
    generator: Generator, targets: GCGTarget | Sequence[GCGTarget], attack: str, *,
    position: Position = "suffix", params: SamplingParams = SamplingParams(max_new_tokens=64),
) -> list[TransferOutcome]:  # fmt: skip
    """Send each prompt with `attack` to `generator` (any model or endpoint); one outcome per completion.

    `attack=""` gives the baseline without the attack. A failed generation is an outcome with its
    error and `hit=False`, so a long transfer run records it and goes on.
    """
    targets = [targets] if isinstance(targets, GCGTarget) else list(targets)
    replies = generator.generate([with_attack(t.messages, attack, position) for t in targets], params)
    return [
        TransferOutcome(i, t.target, c.text, not c.failed and target_hit(t.target, c.text), c.error)
        for i, (t, completions) in enumerate(zip(targets, replies, strict=True))
        for c in completions
    ]
