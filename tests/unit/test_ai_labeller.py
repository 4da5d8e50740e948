"""The AI labeller (RL-CAI / RLAIF): prompts, answer parsing, log-prob soft labels, both orders combined,
ties, unparseable replies, chain of thought, resume, and the Labeller protocol."""

from __future__ import annotations

import json
import math

import pytest
from judge_support import LengthJudge, LogprobCompletion, TableJudge

from alignlab.data.schema import assistant, system, user
from alignlab.feedback.constitution import Constitution, Principle
from alignlab.feedback.judge import (
    AIJudge,
    comparison_messages,
    parse_answer,
    probabilities_from_logprobs,
    reasoning_before_answer,
)
from alignlab.feedback.labeller import Labeller, PairToLabel
from alignlab.feedback.rlaif import AILabeller, combine_orders, label_of, label_pairs
from alignlab.generation.base import Completion

CONSTITUTION = Constitution(
    name="judge-test",
    principles=(
        Principle(id="helpful", comparison="Which response is more helpful?"),
        Principle(id="harmless", comparison="\nWhich response is less harmful? Options:"),
        Principle(id="critique-only", critique=("C?",), revision="R!"),
    ),
)


def item(i: int, x: str, y: str, **kw) -> PairToLabel:
    return PairToLabel((user(f"q{i}"),), (assistant(x),), (assistant(y),), **kw)


def swapped(it: PairToLabel) -> PairToLabel:
    return PairToLabel(it.prompt, it.second, it.first, it.id, it.metadata)


def test_combine_orders_hand_values():
    # p_ab = 0.9 (first shown as A wins), p_ba = 0.3 (second shown as A loses): (0.9 + 0.7) / 2 = 0.8.
    assert combine_orders(0.9, 0.3) == pytest.approx(0.8)
    # A judge that always answers A, whatever the content, learns nothing: 0.5.
    assert combine_orders(1.0, 1.0) == 0.5
    assert (
        label_of(0.53, 0.05) == "tie" and label_of(0.53, 0.02) == "first" and label_of(0.2, 0.05) == "second"
    )


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Answer: A", "A"),
        ("The answer is (B).", "B"),
        ("**Answer:** B", "B"),
        ("A", "A"),
        ("(B)", "B"),
        ("Response A is short. Response B is better.\nAnswer: B", "B"),
        ("Answer: A\nOn reflection, Answer: B", "B"),
        ("Answer: a tie", None),
        ("I cannot decide between them.", None),
        ("A or B", None),
        ("Answer: AB", None),
    ],
)
def test_parse_answer(text, answer):
    assert parse_answer(text) == answer


def test_reasoning_before_answer_drops_the_final_answer_line():
    assert reasoning_before_answer("B adds detail.\nAnswer: B") == "B adds detail."
    assert reasoning_before_answer("no answer given") == "no answer given"


def test_probabilities_from_openai_chat_and_legacy_logprobs():
    chat = {"content": [
        {"token": "Answer", "logprob": -0.01, "top_logprobs": [{"token": "Answer", "logprob": -0.01}]},
        {"token": ":", "logprob": -0.01, "top_logprobs": []},
        {"token": " A", "logprob": math.log(0.6), "top_logprobs": [
            {"token": " A", "logprob": math.log(0.6)}, {"token": "A", "logprob": math.log(0.1)},
            {"token": " B", "logprob": math.log(0.2)}, {"token": " C", "logprob": math.log(0.05)}]},
        {"token": ".", "logprob": -0.1, "top_logprobs": []},
    ]}
    # " A" and "A" are one option: 0.7 against 0.2; " C" is not an option.
    found = probabilities_from_logprobs(chat)
    assert found.answer == "A" and found.probabilities == pytest.approx([0.7 / 0.9, 0.2 / 0.9])
    assert probabilities_from_logprobs(chat["content"]) == found
    legacy = {"tokens": ["Answer", ":", " B"], "token_logprobs": [0.0, 0.0, math.log(0.75)],
              "top_logprobs": [{"Answer": 0.0}, {":": 0.0}, {" B": math.log(0.75), " A": math.log(0.25)}]}
    found = probabilities_from_logprobs(legacy)
    assert found.answer == "B" and found.probabilities == pytest.approx([0.25, 0.75])
    assert probabilities_from_logprobs({"content": [{"token": "Hmm", "logprob": 0.0}]}) is None


def test_comparison_prompt_shows_conversation_question_and_options():
    (msg,) = comparison_messages([system("Be kind."), user("hi")], [assistant("x")], [assistant("y")],
                                 "Which is kinder?", cot=False)
    assert msg.role == "user"
    assert "System: Be kind.\n\nHuman: hi" in msg.content
    assert "Which is kinder?\nOptions:\n(A) x\n(B) y" in msg.content
    assert msg.content.endswith("`Answer: A` or `Answer: B`.")
    (published,) = comparison_messages([user("hi")], [assistant("x")], [assistant("y")], "\nWhich? Options:")
    assert "Which? Options:\n(A) x" in published.content and "Options:\nOptions:" not in published.content
    (cot,) = comparison_messages([user("hi")], [assistant("x")], [assistant("y")], "Which?", cot=True)
    assert "think step by step" in cot.content


def test_swapping_a_and_b_flips_the_raw_judgement_and_keeps_the_label_text_judge():
    judge = AIJudge("len", generator=LengthJudge())
    it = item(0, "a much longer answer", "short", id="p0")
    (pair,), report = label_pairs(judge, [it], CONSTITUTION)
    (pair_sw,), report_sw = label_pairs(judge, [swapped(it)], CONSTITUTION)
    raw = [o["reply"] for o in report.records[0]["orders"]]
    raw_sw = [o["reply"] for o in report_sw.records[0]["orders"]]
    assert raw == ["Answer: A", "Answer: B"] and raw_sw == ["Answer: B", "Answer: A"]
    assert pair.chosen == pair_sw.chosen == [assistant("a much longer answer")]
    assert pair.confidence == pair_sw.confidence == 1.0
    assert report.records[0]["p_first"] == 1.0 and report_sw.records[0]["p_first"] == 0.0


def test_swapping_a_and_b_keeps_the_soft_label_of_a_position_biased_judge():
    # P(A) = sigmoid(len(A) - len(B) + 1.5): the judge leans to (A), and the two orders cancel it.
    judge = AIJudge("len", generator=LengthJudge(bias=1.5, logprobs=True))
    it = item(0, "abcd", "abc", id="p0")  # one character longer
    (pair,), report = label_pairs(judge, [it], CONSTITUTION, tie_band=0.0)
    (pair_sw,), report_sw = label_pairs(judge, [swapped(it)], CONSTITUTION, tie_band=0.0)
    s = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    p_ab, p_ba = s(1 + 1.5), s(-1 + 1.5)  # both orders pick (A): position, not content
    assert [o["p_a"] for o in report.records[0]["orders"]] == pytest.approx([p_ab, p_ba])
    assert [o["p_a"] for o in report_sw.records[0]["orders"]] == pytest.approx([p_ba, p_ab])
    assert report.records[0]["p_first"] == pytest.approx((p_ab + 1 - p_ba) / 2)
    assert report_sw.records[0]["p_first"] == pytest.approx(1 - report.records[0]["p_first"])
    assert pair.chosen == pair_sw.chosen == [assistant("abcd")]
    # sigmoid(2.5) = 0.9241, sigmoid(0.5) = 0.6225: (0.9241 + 1 - 0.6225) / 2 = 0.6508.
    assert pair.confidence == pytest.approx(pair_sw.confidence)
    assert pair.confidence == pytest.approx(0.6508, abs=1e-4)
    assert pair.metadata["label_source"] == "logprobs" and "reasoning" not in pair.metadata


def test_pairs_carry_confidence_annotator_principle_and_hash():
    judge = AIJudge("judge-1", generator=LengthJudge(logprobs=True))
    items = [item(i, "x" * (i + 2), "y", id=f"p{i}", metadata={"source": "s"}) for i in range(30)]
    pairs, report = label_pairs(judge, items, CONSTITUTION, seed=5)
    assert len(pairs) == 30 and report.summary()["labelled"] == 30
    principles = {p.reason for p in pairs}
    assert principles == {"helpful", "harmless"}  # drawn per pair, only principles with a question
    for p in pairs:
        assert p.annotator == "judge-1" and p.id.startswith("p") and not p.tie
        assert p.metadata["constitution"] == CONSTITUTION.content_hash() and p.metadata["source"] == "s"
        assert p.confidence == pytest.approx(max(p.metadata["p_first"], 1 - p.metadata["p_first"]))
    again, _ = label_pairs(judge, items, CONSTITUTION, seed=5)
    assert [p.reason for p in again] == [p.reason for p in pairs]
    other, _ = label_pairs(judge, items, CONSTITUTION, seed=6)
    assert [p.reason for p in other] != [p.reason for p in pairs]


def test_a_judge_that_follows_position_gives_ties_and_the_band_is_configurable():
    always_a = AIJudge("a", generator=TableJudge({}, default="Answer: A"))
    pairs, report = label_pairs(always_a, [item(0, "x", "y")], CONSTITUTION)
    assert pairs[0].tie and pairs[0].confidence == 0.5 and report.summary()["ties"] == 1
    soft = {"x": LogprobCompletion("Answer: A", top_logprobs=[
                {"token": "A", "logprob": math.log(0.56), "top_logprobs": [
                    {"token": "A", "logprob": math.log(0.56)}, {"token": "B", "logprob": math.log(0.44)}]}]),
            "y": LogprobCompletion("Answer: B", top_logprobs=[
                {"token": "B", "logprob": math.log(0.5), "top_logprobs": [
                    {"token": "A", "logprob": math.log(0.5)}, {"token": "B", "logprob": math.log(0.5)}]}])}
    judge = AIJudge("soft", generator=TableJudge(soft))
    # p = (0.56 + 0.5) / 2 = 0.53: a tie within 0.05 of one half, a label within 0.02.
    assert label_pairs(judge, [item(0, "x", "y")], CONSTITUTION, tie_band=0.05)[0][0].tie
    (pair,), _ = label_pairs(judge, [item(0, "x", "y")], CONSTITUTION, tie_band=0.02)
    assert not pair.tie and pair.chosen == [assistant("x")] and pair.confidence == pytest.approx(0.53)


def test_unparseable_and_failed_replies_are_counted_never_guessed(tmp_path):
    replies = {"x0": "I am not sure.", "x1": Completion("", finish_reason="error", error="timeout")}
    judge = AIJudge("j", generator=TableJudge(replies, default="Answer: A"))
    items = [item(0, "x0", "y0"), item(1, "x1", "y1"), item(2, "x2", "y2")]
    audit = tmp_path / "labels.jsonl"
    pairs, report = label_pairs(judge, items, CONSTITUTION, audit_path=audit)
    assert [p.prompt[0].content for p in pairs] == ["q2"]
    summary = report.summary()
    assert (summary["unparseable"], summary["failed"], summary["labelled"]) == (1, 1, 1)
    rows = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [r["status"] for r in rows] == ["unparseable", "failed", "labelled"]
    assert rows[0]["orders"][0]["reply"] == "I am not sure." and rows[0]["p_first"] is None
    # A re-run judges only the failed pair again; the unparseable answer stands.
    rerun = TableJudge({"x0": "Answer: B"}, default="Answer: A")
    pairs, report = label_pairs(AIJudge("j", generator=rerun), items, CONSTITUTION, audit_path=audit)
    assert len(rerun.prompts) == 2 and all("Human: q1" in p[-1].content for p in rerun.prompts)
    assert report.resumed == 2 and report.summary()["unparseable"] == 1 and len(pairs) == 2


def test_chain_of_thought_with_a_scorer_reads_the_answer_after_the_reasoning():
    class Scorer:
        prefixes: list[str] = []

        def choice_probabilities(self, prompts, options, answer_prefixes):
            Scorer.prefixes.extend(answer_prefixes)
            return [[0.8, 0.2] for _ in prompts]

    reasoning = TableJudge({}, default="(A) is more direct.\nAnswer: A")
    judge = AIJudge("cot", generator=reasoning, scorer=Scorer(), cot=True)
    (pair,), report = label_pairs(judge, [item(0, "x", "y")], CONSTITUTION, clamp=(0.4, 0.6))
    assert Scorer.prefixes == ["(A) is more direct.\nAnswer:"] * 2
    assert "think step by step" in reasoning.prompts[0][-1].content
    # Each order's 0.8 is clamped to 0.6 (Bai et al.): p = (0.6 + 1 - 0.6) / 2 = 0.5, a tie.
    assert pair.tie and report.records[0]["p_first"] == pytest.approx(0.5)
    assert pair.metadata["reasoning"] == {
        "AB": "(A) is more direct.\nAnswer: A",
        "BA": "(A) is more direct.\nAnswer: A",
    }
    assert pair.metadata["label_source"] == "scorer"


def test_judge_settings_are_checked():
    with pytest.raises(ValueError, match="give a generator, a scorer"):
        AIJudge("j")
    with pytest.raises(ValueError, match="chain of thought needs a generator"):
        AIJudge("j", scorer=object(), cot=True)
    judge = AIJudge("j", generator=LengthJudge())
    with pytest.raises(ValueError, match="tie_band"):
        label_pairs(judge, [item(0, "x", "y")], CONSTITUTION, tie_band=0.5)
    with pytest.raises(Exception, match="same id"):
        label_pairs(judge, [item(0, "x", "y"), item(0, "y", "x")], CONSTITUTION)


def test_ai_labeller_is_a_labeller():
    labeller = AILabeller(AIJudge("ai", generator=TableJudge({"x1": "?"})), CONSTITUTION)
    assert isinstance(labeller, Labeller) and labeller.id == "ai"
    result = labeller.label([item(0, "x0", "y0", id="a"), item(1, "x1", "y1", id="b")])
    assert [p.id for p in result.pairs] == ["a"]
    assert [(s.index, s.id, s.reason) for s in result.skipped] == [(1, "b", "unparseable")]
    assert len(result.records) == 2


def test_soft_label_from_the_top_logprobs_a_generation_backend_returns() -> None:
    """`Completion.top_logprobs` (one {token: log-prob} mapping per generated token) reads as OpenAI's."""
    from alignlab.feedback.judge import probabilities_from_logprobs
    from alignlab.generation.base import Completion

    reply = Completion(
        "Answer: B",
        top_logprobs=({"Answer": 0.0}, {":": 0.0}, {" B": math.log(0.75), " A": math.log(0.25)}),
    )
    found = probabilities_from_logprobs(reply.top_logprobs)
    assert found is not None and found.answer == "B"
    assert found.probabilities == pytest.approx([0.25, 0.75])
