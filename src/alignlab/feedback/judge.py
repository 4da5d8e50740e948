"""An AI judge: which of two responses, shown as options (A) and (B), better answers a principle's question.

The comparison prompt follows Constitutional AI (Bai et al. 2022, arXiv:2212.08073, section 4.1):
the conversation, the principle's comparison question, then `(A) response` and `(B) response`; the
judge answers `Answer: A` or `Answer: B`, optionally after reasoning step by step (chain of
thought, section 4.1 and Lee et al. 2023, "RLAIF", arXiv:2309.00267). Its verdict on one prompt is
`p_a`, the probability that the response shown as (A) is better, from whichever source it has:

- `scorer` (a `ChoiceScorer`, e.g. an in-process model, `feedback.hf_choice`): the probabilities it
  puts on "A" and "B" right after `Answer:` (after its own reasoning with chain of thought);
- `logprobs`: an endpoint's top log-probs at the answer token, when its completions carry them
  (`WithTopLogprobs`, OpenAI's `logprobs` object);
- `text`: the parsed answer, `p_a` = 1 or 0.

A reply with no parseable answer gives `p_a = None` and status "unparseable": it is counted, never
guessed. Both orders of a pair are judged by `feedback.rlaif`, which combines them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from alignlab.data.schema import Message
from alignlab.generation.base import Completion, Generator, Prompt, SamplingParams

OPTIONS = ("A", "B")
ANSWER_PREFIX = "Answer:"
ANSWER_INSTRUCTION = "Reply with one line: `Answer: A` or `Answer: B`."
COT_INSTRUCTION = (
    "First think step by step about which response better fits the question above. "
    "Then end with a final line: `Answer: A` or `Answer: B`."
)
_ROLE_NAMES = {"system": "System", "user": "Human", "assistant": "Assistant", "tool": "Tool"}
# The last "Answer: X" (also "answer is (X)", "**Answer:** X"); the letter must stand alone.
_ANSWER = re.compile(r"(?i:answer)(?:\s+(?i:is))?\s*[*_`]*\s*[:：]?\s*[*_`]*\s*\(?([AB])\)?(?![A-Za-z0-9])")
_ANSWER_START = re.compile(r"(?i:answer)(?:\s+(?i:is))?\s*[*_`]*\s*[:：]")
_OPTION_NOISE = " \t\n()[]*`_.:\u0120\u2581"  # markup around a letter; Ġ / ▁ from raw BPE tokens

Status = Literal["ok", "unparseable", "failed"]
Source = Literal["scorer", "logprobs", "text"]


def transcript(messages: Sequence[Message]) -> str:
    """`Human: ...\\n\\nAssistant: ...` (System and Tool turns named too), as in the CAI prompts."""
    return "\n\n".join(f"{_ROLE_NAMES[m.role]}: {m.content}" for m in messages)


def _response_text(turns: Sequence[Message]) -> str:
    return turns[0].content if len(turns) == 1 else transcript(turns)


def comparison_messages(
    prompt: Sequence[Message], a: Sequence[Message], b: Sequence[Message], question: str, cot: bool = False
) -> list[Message]:
    """The judge's user turn: conversation, question, `(A)` / `(B)` options, and how to answer.

    Published comparison instructions end with "Options:"; others get it appended.
    """
    q = question.strip()
    if not q.endswith("Options:"):
        q += "\nOptions:"
    text = (
        f"Consider the following conversation between a human and an assistant:\n\n{transcript(prompt)}\n\n"
        f"{q}\n(A) {_response_text(a)}\n(B) {_response_text(b)}\n\n"
        f"{COT_INSTRUCTION if cot else ANSWER_INSTRUCTION}"
    )
    return [Message(role="user", content=text)]


def parse_answer(text: str) -> str | None:
    """The judge's final answer, "A" or "B", or None when the reply does not give one.

    The last `Answer: X` wins (reasoning may mention both options before it); a bare reply "A",
    "(B)" or "**A**" counts too. Anything else is unparseable.
    """
    found = _ANSWER.findall(text)
    if found:
        return found[-1]
    bare = text.strip(_OPTION_NOISE)
    return bare if bare in OPTIONS else None


def reasoning_before_answer(text: str) -> str:
    """The reply without its final `Answer: ...` line (what the judge reasoned before answering)."""
    starts = [m.start() for m in _ANSWER_START.finditer(text)]
    return (text[: starts[-1]] if starts else text).rstrip()


def _option_index(token: str, options: Sequence[str]) -> int | None:
    t = token.strip(_OPTION_NOISE)
    return options.index(t) if t in options else None


def _entries(logprobs: Any) -> list[Mapping[str, Any]]:
    """Per-token entries `{"token", "logprob", "top_logprobs": [{"token", "logprob"}, ...]}`.

    Accepts the chat API's `logprobs` object (its `content` list) or that list itself, the
    legacy completions shape `{"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: lp}]}`,
    and `Completion.top_logprobs` (one `{token: lp}` mapping per generated token), whose entry
    token is taken as the most likely one there (judges decode greedily).
    """
    if isinstance(logprobs, Mapping) and "content" in logprobs:
        return list(logprobs["content"] or [])
    if isinstance(logprobs, Mapping) and "tokens" in logprobs:
        tops = logprobs.get("top_logprobs") or [None] * len(logprobs["tokens"])
        return [
            {
                "token": t,
                "logprob": lp,
                "top_logprobs": [{"token": k, "logprob": v} for k, v in (top or {}).items()],
            }
            for t, lp, top in zip(logprobs["tokens"], logprobs["token_logprobs"], tops, strict=True)
        ]
    entries = list(logprobs or [])
    if entries and all(isinstance(e, Mapping) and "token" not in e for e in entries):
        return [
            {"token": max(top, key=top.get), "logprob": max(top.values()),
             "top_logprobs": [{"token": k, "logprob": v} for k, v in top.items()]} if top else {}
            for top in entries
        ]
    return entries


class AnswerLogprobs(NamedTuple):
    answer: str  # the option the answer token reads as (what was generated)
    probabilities: list[float]  # per option, normalised


def probabilities_from_logprobs(logprobs: Any, options: Sequence[str] = OPTIONS) -> AnswerLogprobs | None:
    """Option probabilities at the answer token of an OpenAI-style `logprobs` structure.

    The answer token is the last generated token that reads as an option (" A", "A", "(A", ...).
    Each option's mass is the sum of exp(logprob) over the top alternatives there that read as
    it, so "A" and " A" count together; the masses are normalised over the options. None when no
    token reads as an option or no alternative there is an option.
    """
    for entry in reversed(_entries(logprobs)):
        k_answer = _option_index(str(entry.get("token", "")), options)
        if k_answer is None:
            continue
        alternatives = entry.get("top_logprobs") or [entry]
        mass = [0.0] * len(options)
        for alt in alternatives:
            k = _option_index(str(alt.get("token", "")), options)
            if k is not None and alt.get("logprob") is not None:
                mass[k] += math.exp(float(alt["logprob"]))
        total = sum(mass)
        return AnswerLogprobs(options[k_answer], [m / total for m in mass]) if total > 0 else None
    return None


@runtime_checkable
class ChoiceScorer(Protocol):
    """Probabilities a model puts on each option as the next text of its reply."""

    def choice_probabilities(
        self, prompts: Sequence[Prompt], options: Sequence[str], answer_prefixes: Sequence[str]
    ) -> list[list[float]]:
        """For prompt i: P(option k | prompt, generation prompt, answer_prefixes[i]), normalised over k."""
        ...


@runtime_checkable
class WithTopLogprobs(Protocol):
    """A completion from a backend asked for log-probs: `top_logprobs` holds OpenAI's `logprobs`
    object (or its `content` list) for the generated tokens, None when there are none."""

    top_logprobs: Any


@dataclass(frozen=True)
class Verdict:
    """One judgement of one ordering: P(the response shown as (A) is better) and where it came from."""

    p_a: float | None  # None when unparseable or failed
    status: Status
    source: Source | None
    reply: str = ""  # the judge's text (its reasoning with chain of thought); "" for a bare scorer
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AIJudge:
    """A judge model: a `generator` that writes its reply, a `scorer` that reads answer
    probabilities, or both (chain of thought with soft labels: the generator reasons, the scorer
    reads the answer after the reasoning; without chain of thought a scorer alone decides and the
    generator is not asked). `id` is recorded as the labels' annotator."""

    id: str
    generator: Generator | None = None
    scorer: ChoiceScorer | None = None
    cot: bool = False
    params: SamplingParams | None = None  # default: greedy, 512 new tokens with cot, else 16

    def __post_init__(self) -> None:
        if self.generator is None and self.scorer is None:
            raise ValueError(f"judge {self.id}: give a generator, a scorer, or both")
        if self.cot and self.generator is None:
            raise ValueError(f"judge {self.id}: chain of thought needs a generator to write the reasoning")

    @property
    def sampling(self) -> SamplingParams:
        return self.params or SamplingParams(max_new_tokens=512 if self.cot else 16)

    def judge(self, prompts: Sequence[Prompt], seed: int = 0) -> list[Verdict]:
        """One verdict per comparison prompt (from `comparison_messages`), in order."""
        if not prompts:
            return []
        replies: list[Completion | None] = [None] * len(prompts)
        if self.generator is not None and (self.cot or self.scorer is None):
            out = self.generator.generate(prompts, replace(self.sampling, n=1, seed=seed))
            if len(out) != len(prompts) or any(not c for c in out):
                raise RuntimeError(
                    f"judge {self.id}: generator returned {len(out)} results for {len(prompts)}"
                )
            replies = [c[0] for c in out]
        verdicts: list[Verdict | None] = [_failure(r) for r in replies]
        if self.scorer is not None:
            todo = [i for i, v in enumerate(verdicts) if v is None]
            prefixes = [_prefix(replies[i]) for i in todo]
            probs = (
                self.scorer.choice_probabilities([prompts[i] for i in todo], OPTIONS, prefixes)
                if todo
                else []
            )
            for i, p in zip(todo, probs, strict=True):
                reply = replies[i]
                verdicts[i] = Verdict(p[0], "ok", "scorer", reply.text if reply is not None else "")
        else:
            verdicts = [
                v if v is not None else _from_reply(r) for v, r in zip(verdicts, replies, strict=True)
            ]
        return [v for v in verdicts if v is not None]


def _failure(reply: Completion | None) -> Verdict | None:
    if reply is not None and reply.failed:
        return Verdict(None, "failed", None, reply.text, reply.error or "generation failed")
    return None


def _prefix(reply: Completion | None) -> str:
    """What the scorer reads the answer after: `Answer:`, after the reasoning when there is one."""
    if reply is None:
        return ANSWER_PREFIX
    reasoning = reasoning_before_answer(reply.text)
    return f"{reasoning}\n{ANSWER_PREFIX}" if reasoning else ANSWER_PREFIX


def _from_reply(reply: Completion | None) -> Verdict:
    assert reply is not None
    answer = parse_answer(reply.text)
    if answer is None:
        return Verdict(None, "unparseable", None, reply.text)
    logprobs = reply.top_logprobs if isinstance(reply, WithTopLogprobs) else None
    found = probabilities_from_logprobs(logprobs) if logprobs is not None else None
    # Only the log-probs of the token that wrote the parsed answer describe that answer.
    if found is not None and found.answer == answer:
        return Verdict(found.probabilities[0], "ok", "logprobs", reply.text)
    return Verdict(1.0 if answer == "A" else 0.0, "ok", "text", reply.text)
