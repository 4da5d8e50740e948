"""Critique and revise (SL-CAI; Bai et al. 2022, "Constitutional AI", arXiv:2212.08073, section 3).

For each prompt the policy writes a response; then, for `rounds` rounds, the critic is asked a
critique request of a principle drawn at random (seeded per prompt and round) and writes a critique,
then is asked that principle's revision request and writes a revision, which becomes the response
of the next round. The final revisions are supervised data: `Conversation(prompt + revision)`.

Choices, and where they differ from the paper:
- The critic may be another `Generator` than the policy (by default it is the policy). It writes
  both critique and revision, seeing the prompt (system prompt included, so it can judge the
  instruction hierarchy), the response and the requests as chat turns.
- Each round starts from the prompt and the latest revision; the paper appends every round to one
  growing context. Short contexts fit small critics; the audit keeps every step either way.
- Few-shot examples (`Constitution.few_shot`) are chat turns placed after the prompt's system
  messages and before its first other turn.
- A generation that fails (backend error) or comes back empty is counted and reported in
  `CritiqueResult.failures` and the audit; its prompt yields no training example, and nothing is
  guessed in its place; a re-run with the same audit tries it again. Replies cut at the token
  limit are kept and counted (`truncated`).

The audit JSONL has one `step` row per prompt and round (prompt, response, principle, critique
request, critique, revision request, revision, round, constitution hash) and one `failure` row per
failed prompt. It doubles as the resume journal (`alignlab.feedback.journal`): a re-run with the same
settings does only the prompts not finished (failed ones included).
"""

from __future__ import annotations

import hashlib
import os
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from alignlab.data.schema import Conversation, Message
from alignlab.errors import DataError
from alignlab.feedback.constitution import Constitution, Principle
from alignlab.feedback.journal import Journal
from alignlab.generation.base import Completion, Generator, Prompt, SamplingParams

STEPS = ("response", "critique", "revision")


@dataclass(frozen=True)
class Failure:
    """A prompt that produced no training example: which step failed in which round, and why."""

    index: int
    id: str
    round: int  # 0 = the initial response
    step: str  # response | critique | revision
    error: str


@dataclass
class CritiqueResult:
    """The SFT conversations (input order, failed prompts left out) and what happened on the way."""

    conversations: list[Conversation]
    failures: list[Failure]
    steps: list[dict[str, Any]]  # the audit rows of every round of every prompt
    constitution_hash: str
    resumed: int = 0  # prompts read back from an earlier run's audit
    truncated: int = 0  # generations cut at max_new_tokens (kept)
    prompts: int = 0

    def summary(self) -> dict[str, Any]:
        by_step = Counter(f.step for f in self.failures)
        return {
            "prompts": self.prompts,
            "revised": len(self.conversations),
            "failed": len(self.failures),
            "failed_by_step": {s: by_step.get(s, 0) for s in STEPS},
            "truncated": self.truncated,
            "resumed": self.resumed,
            "constitution": self.constitution_hash,
        }


@dataclass
class _Item:
    """One prompt's state while it goes through the rounds."""

    index: int
    id: str
    prompt: list[Message]
    response: str = ""
    principle: Principle | None = None  # this round's
    request: str = ""
    critique: Completion | None = None
    truncated: list[str] = field(default_factory=list)  # steps of this round cut at the token limit


def critique_and_revise(
    policy: Generator,
    prompts: Sequence[Prompt],
    constitution: Constitution,
    *,
    rounds: int = 1,
    seed: int = 0,
    audit_path: str | os.PathLike | None = None,
    critic: Generator | None = None,
    params: SamplingParams = SamplingParams(max_new_tokens=256),
    ids: Sequence[str] | None = None,
    chunk_size: int = 64,
) -> CritiqueResult:
    """SL-CAI data from `prompts` (conversations ending in a user or tool turn); see the module doc.

    `ids` name the prompts in the output and the audit (default `cai-<index>`); `chunk_size`
    prompts go through all rounds before their audit rows are written, so a crash loses one chunk.
    `params.n` is ignored (one completion per request); each request gets its own derived seed.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    principles = constitution.critique_principles()
    items = _items(prompts, ids)
    chash = constitution.content_hash()
    settings = {
        "kind": "cai",
        "constitution": chash,
        "rounds": rounds,
        "seed": seed,
        "params": asdict(params),
    }
    journal = Journal(audit_path, settings)
    # Failed prompts are tried again: a backend that was down may be back.
    done = {r["id"] for r in journal.rows if r["kind"] == "step" and r["round"] == rounds}
    resumed = sum(it.id in done for it in items)
    todo = [it for it in items if it.id not in done]
    run = _Run(policy, critic or policy, constitution, principles, rounds, seed, replace(params, n=1), chash)
    for start in range(0, len(todo), chunk_size):
        journal.append(run.chunk(todo[start : start + chunk_size]))
    return _result(items, journal.rows, rounds, chash, resumed)


def _items(prompts: Sequence[Prompt], ids: Sequence[str] | None) -> list[_Item]:
    if ids is not None and len(ids) != len(prompts):
        raise ValueError(f"got {len(ids)} ids for {len(prompts)} prompts")
    out = []
    for i, prompt in enumerate(prompts):
        pid = str(ids[i]) if ids is not None else f"cai-{i}"
        if not prompt or prompt[-1].role not in ("user", "tool"):
            raise DataError(f"prompt {pid}: must end with a user (or tool) turn for the assistant to answer")
        out.append(_Item(i, pid, list(prompt)))
    if len({it.id for it in out}) != len(out):
        raise DataError("prompt ids are not unique; give each prompt its own id")
    return out


def _draw(seed: int, item_id: str, round_: int, principles: Sequence[Principle]) -> tuple[Principle, str]:
    """The principle and critique request for one round: the same whatever the batching or resume."""
    rng = random.Random(f"alignlab-cai-{seed}-{item_id}-{round_}")
    principle = rng.choice(principles)
    return principle, rng.choice(principle.critique)


def _seed(seed: int, *parts: object) -> int:
    text = "-".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") >> 1


def _problem(c: Completion) -> str | None:
    if c.failed:
        return c.error or "generation failed"
    if not c.text.strip():
        return "empty reply"
    return None


@dataclass
class _Run:
    policy: Generator
    critic: Generator
    constitution: Constitution
    principles: tuple[Principle, ...]
    rounds: int
    seed: int
    params: SamplingParams
    chash: str

    def _generate(self, gen: Generator, prompts: list[list[Message]], tag: str) -> list[Completion]:
        params = replace(self.params, seed=_seed(self.seed, tag))
        out = gen.generate(prompts, params)
        if len(out) != len(prompts) or any(len(c) < 1 for c in out):
            raise RuntimeError(f"generator returned {len(out)} results for {len(prompts)} prompts")
        return [c[0] for c in out]

    def _context(self, it: _Item) -> list[Message]:
        """System turns, few-shot examples, the rest of the prompt, the current response."""
        k = next((i for i, m in enumerate(it.prompt) if m.role != "system"), len(it.prompt))
        shots = [m for ex in self.constitution.few_shot for m in ex.messages()]
        return [*it.prompt[:k], *shots, *it.prompt[k:], Message(role="assistant", content=it.response)]

    def _critique_prompt(self, it: _Item) -> list[Message]:
        return [*self._context(it), Message(role="user", content=it.request)]

    def _revision_prompt(self, it: _Item) -> list[Message]:
        assert it.critique is not None and it.principle is not None and it.principle.revision is not None
        return [*self._critique_prompt(it), Message(role="assistant", content=it.critique.text),
                Message(role="user", content=it.principle.revision)]

    def chunk(self, items: list[_Item]) -> list[dict[str, Any]]:
        """All rounds for `items`; returns their audit rows (steps and failures)."""
        rows: list[dict[str, Any]] = []
        tag = items[0].id  # seeds differ between chunks
        responded = self._step(items, rows, 0, "response", lambda it: it.prompt, self.policy, tag)
        for it, c in responded:
            it.response = c.text
            it.truncated = ["response"] if c.finish_reason == "length" else []
        live = [it for it, _ in responded]
        for r in range(1, self.rounds + 1):
            for it in live:
                it.principle, it.request = _draw(self.seed, it.id, r, self.principles)
            critiqued = self._step(live, rows, r, "critique", self._critique_prompt, self.critic, tag)
            for it, c in critiqued:
                it.critique = c
            live = [it for it, _ in critiqued]
            revised = self._step(live, rows, r, "revision", self._revision_prompt, self.critic, tag)
            for it, c in revised:
                rows.append(self._row(it, r, c))
                it.response, it.truncated = c.text, []
            live = [it for it, _ in revised]
        return rows

    def _step(
        self, items: list[_Item], rows: list[dict], round_: int, step: str,
        prompt_of: Callable[[_Item], list[Message]], gen: Generator, tag: str,
    ) -> list[tuple[_Item, Completion]]:
        """Generate one step for `items`; failures become audit rows, the rest are returned."""
        if not items:
            return []
        outs = self._generate(gen, [prompt_of(it) for it in items], f"{tag}-{round_}-{step}")
        ok = []
        for it, c in zip(items, outs, strict=True):
            problem = _problem(c)
            if problem is None:
                ok.append((it, c))
                if c.finish_reason == "length" and step != "response":
                    it.truncated.append(step)
            else:
                rows.append({"kind": "failure", "id": it.id, "index": it.index, "round": round_, "step": step,
                             "error": problem, "constitution": self.chash})
        return ok

    def _row(self, it: _Item, round_: int, revision: Completion) -> dict[str, Any]:
        assert it.principle is not None and it.critique is not None
        return {
            "kind": "step", "id": it.id, "index": it.index, "round": round_,
            "prompt": [m.to_json() for m in it.prompt],
            "response": it.response,
            "principle": it.principle.id,
            "critique_request": it.request,
            "critique": it.critique.text,
            "revision_request": it.principle.revision,
            "revision": revision.text,
            "truncated": list(it.truncated),
            "constitution": self.chash,
        }


def _result(items: list[_Item], rows: list[dict], rounds: int, chash: str, resumed: int) -> CritiqueResult:
    """Conversations, failures and counts from the audit rows of this and any earlier run."""
    by_id = {it.id: it for it in items}
    final = {r["id"]: r for r in rows if r["kind"] == "step" and r["round"] == rounds}
    # The latest attempt's failure of each prompt that never finished (the audit keeps them all).
    last_failure = {
        r["id"]: r for r in rows if r["kind"] == "failure" and r["id"] in by_id and r["id"] not in final
    }
    failures = [
        Failure(by_id[i].index, i, r["round"], r["step"], r["error"]) for i, r in last_failure.items()
    ]
    principles: dict[str, list[str]] = {}
    for r in sorted((r for r in rows if r["kind"] == "step"), key=lambda r: r["round"]):
        principles.setdefault(r["id"], []).append(r["principle"])
    conversations = [
        Conversation(
            messages=[*it.prompt, Message(role="assistant", content=final[it.id]["revision"])],
            id=it.id,
            metadata={"constitution": chash, "principles": principles[it.id], "rounds": rounds},
        )
        for it in items
        if it.id in final
    ]
    steps = [r for r in rows if r["kind"] == "step" and r["id"] in by_id]
    truncated = sum(bool(r["truncated"]) for r in steps)
    return CritiqueResult(conversations, sorted(failures, key=lambda f: f.index), steps, chash, resumed,
                          truncated, len(items))
