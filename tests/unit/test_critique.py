"""Critique and revise (SL-CAI) with scripted generators: the chain of steps, the audit, failures, resume."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from alignlab.data.schema import Message, assistant, system, user
from alignlab.errors import ConfigError, DataError
from alignlab.feedback.constitution import Constitution, FewShotExample, Principle
from alignlab.feedback.critique import critique_and_revise
from alignlab.generation.base import Completion, SamplingParams

CONSTITUTION = Constitution(
    name="test",
    principles=(
        Principle(id="p1", critique=("C1?",), revision="R1!"),
        Principle(id="p2", critique=("C2a?", "C2b?"), revision="R2!"),
        Principle(id="p3", comparison="Which is better?"),  # no critique: never drawn here
    ),
)
REQUESTS = {"C1?", "C2a?", "C2b?"}
REVISIONS = {"R1!", "R2!"}


class Scripted:
    """Replies from the conversation: a draft, a critique naming the response, or a revision of it."""

    def __init__(self, name="gen", fail=(), empty=(), crash_after=None, truncate=()):
        self.name, self.fail, self.empty, self.truncate = name, set(fail), set(empty), set(truncate)
        self.crash_after, self.batches = crash_after, 0
        self.calls: list[tuple[str, list[Message]]] = []

    def generate(self, prompts, params):
        if self.crash_after is not None and self.batches >= self.crash_after:
            raise KeyboardInterrupt("stopped")
        self.batches += 1
        out = []
        for p in prompts:
            last = p[-1].content
            if last in REQUESTS:
                step, text = "critique", f"{self.name}-critique[{p[-2].content}|{last}]"
            elif last in REVISIONS:
                step, text = "revision", f"{self.name}-rev({p[-4].content})"
            else:
                step, text = "response", f"{self.name}-draft:{last}"
            self.calls.append((step, list(p)))
            if (step, last) in self.fail or (step, p[0].content) in self.fail:
                out.append([Completion("", finish_reason="error", error="backend down")])
            elif (step, p[0].content) in self.empty:
                out.append([Completion("  ")])
            else:
                reason = "length" if (step, p[0].content) in self.truncate else "stop"
                out.append([Completion(text, finish_reason=reason)])
        return out


PROMPTS = [[user(f"q{i}")] for i in range(6)]


def test_rounds_chain_response_critique_revision_and_the_audit_keeps_every_step():
    gen = Scripted()
    result = critique_and_revise(gen, PROMPTS, CONSTITUTION, rounds=2, seed=3)
    assert len(result.conversations) == 6 and not result.failures
    conv = result.conversations[0]
    assert conv.id == "cai-0"
    assert conv.messages[0] == user("q0")
    assert conv.messages[1] == assistant("gen-rev(gen-rev(gen-draft:q0))")
    assert conv.metadata["constitution"] == CONSTITUTION.content_hash()
    rows = [r for r in result.steps if r["id"] == "cai-0"]
    assert [r["round"] for r in rows] == [1, 2]
    one, two = rows
    assert one["response"] == "gen-draft:q0" and two["response"] == one["revision"]
    assert one["critique"] == f"gen-critique[gen-draft:q0|{one['critique_request']}]"
    assert one["revision"] == "gen-rev(gen-draft:q0)"
    for r in rows:
        principle = next(p for p in CONSTITUTION.principles if p.id == r["principle"])
        assert r["critique_request"] in principle.critique and r["revision_request"] == principle.revision
        assert r["constitution"] == CONSTITUTION.content_hash() and r["prompt"] == [
            {"role": "user", "content": "q0"}
        ]
    assert conv.metadata["principles"] == [one["principle"], two["principle"]]
    assert result.summary()["revised"] == 6


def test_principles_are_drawn_per_prompt_reproducibly_and_only_from_critique_principles():
    def draws(seed, chunk):
        res = critique_and_revise(Scripted(), [[user(f"q{i}")] for i in range(40)], CONSTITUTION,
                                  rounds=2, seed=seed, chunk_size=chunk)
        return [tuple(c.metadata["principles"]) for c in res.conversations]

    a = draws(0, 64)
    assert a == draws(0, 7)  # batching does not change the draw
    assert a != draws(1, 64)
    counts = Counter(p for pair in a for p in pair)
    assert set(counts) == {"p1", "p2"} and min(counts.values()) > 20


def test_critic_may_differ_from_the_policy():
    policy, critic = Scripted("policy"), Scripted("critic")
    result = critique_and_revise(policy, PROMPTS[:2], CONSTITUTION, critic=critic)
    assert {step for step, _ in policy.calls} == {"response"}
    assert Counter(step for step, _ in critic.calls) == {"critique": 2, "revision": 2}
    assert result.conversations[0].messages[-1].content == "critic-rev(policy-draft:q0)"


def test_failed_and_empty_generations_are_counted_and_never_become_data(tmp_path):
    gen = Scripted(fail={("response", "q1"), ("revision", "q2")}, empty={("critique", "q3")})
    audit = tmp_path / "audit.jsonl"
    result = critique_and_revise(gen, PROMPTS, CONSTITUTION, audit_path=audit)
    assert [c.id for c in result.conversations] == ["cai-0", "cai-4", "cai-5"]
    assert [(f.id, f.step, f.round) for f in result.failures] == [
        ("cai-1", "response", 0), ("cai-2", "revision", 1), ("cai-3", "critique", 1)]
    assert result.failures[0].error == "backend down" and result.failures[2].error == "empty reply"
    summary = result.summary()
    assert summary["failed"] == 3 and summary["failed_by_step"] == {
        "response": 1,
        "critique": 1,
        "revision": 1,
    }
    rows = [json.loads(line) for line in audit.read_text().splitlines()]
    assert Counter(r["kind"] for r in rows) == {"step": 3, "failure": 3}
    # A re-run tries the failed prompts again (the backend may be back) and keeps the earlier rows.
    again = Scripted(fail={("revision", "q2")})
    retried = critique_and_revise(again, PROMPTS, CONSTITUTION, audit_path=audit)
    assert {p[0].content for step, p in again.calls if step == "response"} == {"q1", "q2", "q3"}
    assert [c.id for c in retried.conversations] == ["cai-0", "cai-1", "cai-3", "cai-4", "cai-5"]
    assert [(f.id, f.step) for f in retried.failures] == [("cai-2", "revision")]
    assert retried.resumed == 3 and len(audit.read_text().splitlines()) == 6 + 3


def test_truncated_generations_are_kept_and_counted():
    result = critique_and_revise(
        Scripted(truncate={("response", "q0"), ("revision", "q1")}), PROMPTS, CONSTITUTION
    )
    assert len(result.conversations) == 6 and result.truncated == 2
    assert {r["id"]: r["truncated"] for r in result.steps if r["truncated"]} == {
        "cai-0": ["response"], "cai-1": ["revision"]}


def test_an_interrupted_run_resumes_from_its_audit(tmp_path):
    audit = tmp_path / "audit.jsonl"
    # Two chunks of three prompts; each chunk takes 1 + 2 * 2 generate calls; stop inside the second.
    with pytest.raises(KeyboardInterrupt):
        critique_and_revise(
            Scripted(crash_after=7), PROMPTS, CONSTITUTION, rounds=2, audit_path=audit, chunk_size=3
        )
    written = {json.loads(line)["id"] for line in audit.read_text().splitlines()}
    assert written == {"cai-0", "cai-1", "cai-2"}
    with audit.open("a") as f:
        f.write('{"kind": "step", "id": "cai-3", "rou')  # the line being written when it stopped
    again = Scripted()
    resumed = critique_and_revise(again, PROMPTS, CONSTITUTION, rounds=2, audit_path=audit, chunk_size=3)
    fresh = critique_and_revise(Scripted(), PROMPTS, CONSTITUTION, rounds=2, chunk_size=3)
    assert resumed.resumed == 3
    assert {p[0].content for _, p in again.calls if _ == "response"} == {"q3", "q4", "q5"}
    assert [c.model_dump() for c in resumed.conversations] == [c.model_dump() for c in fresh.conversations]
    assert len(audit.read_text().splitlines()) == 12  # two rounds of six prompts, the broken line dropped


def test_an_audit_from_other_settings_is_refused(tmp_path):
    audit = tmp_path / "audit.jsonl"
    critique_and_revise(Scripted(), PROMPTS[:2], CONSTITUTION, audit_path=audit, seed=0)
    with pytest.raises(
        ConfigError, match=r"audit\.jsonl:1: this audit was written by a run with other settings"
    ):
        critique_and_revise(Scripted(), PROMPTS[:2], CONSTITUTION, audit_path=audit, seed=1)
    with pytest.raises(ConfigError, match="other settings"):
        critique_and_revise(Scripted(), PROMPTS[:2], CONSTITUTION, audit_path=audit,
                            params=SamplingParams(max_new_tokens=256, temperature=0.7))


def test_few_shot_examples_follow_the_system_prompt_in_the_critics_context():
    shot = FewShotExample(
        prompt=(user("ex?"),),
        response="ex-resp",
        critique_request="C1?",
        critique="ex-crit",
        revision_request="R1!",
        revision="ex-rev",
    )
    gen = Scripted()
    critique_and_revise(gen, [[system("Be brief."), user("q")]], CONSTITUTION.with_few_shot([shot]))
    step, context = next(c for c in gen.calls if c[0] == "critique")
    assert [m.content for m in context[:8]] == [
        "Be brief.",
        "ex?",
        "ex-resp",
        "C1?",
        "ex-crit",
        "R1!",
        "ex-rev",
        "q",
    ]
    assert context[8] == assistant("gen-draft:q")


def test_bad_prompts_are_errors():
    with pytest.raises(DataError, match="prompt cai-0: must end with a user"):
        critique_and_revise(Scripted(), [[user("q"), assistant("a")]], CONSTITUTION)
    with pytest.raises(DataError, match="not unique"):
        critique_and_revise(Scripted(), PROMPTS[:2], CONSTITUTION, ids=["x", "x"])
    with pytest.raises(ConfigError, match="no principle has critique and revision"):
        critique_and_revise(
            Scripted(), PROMPTS, Constitution(name="c", principles=(CONSTITUTION.principles[2],))
        )
