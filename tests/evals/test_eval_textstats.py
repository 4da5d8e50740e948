"""Length and diversity statistics against hand-worked values."""

from __future__ import annotations

import math

import pytest

from alignlab.evals.textstats import bleu, distinct_n, exact_match_entropy, self_bleu, tokens


def test_distinct_n_counts_unique_ngrams():
    # "a b a" and "a b c": unigrams a,b,a,a,b,c -> 3 distinct of 6; bigrams ab,ba,ab,bc -> 3 of 4.
    assert distinct_n(["a b a", "a b c"], 1) == pytest.approx(3 / 6)
    assert distinct_n(["a b a", "a b c"], 2) == pytest.approx(3 / 4)
    assert distinct_n([""], 2) == 0.0


def test_bleu_hand_worked():
    hyp = tokens("the cat sat on the mat")
    assert bleu(hyp, [hyp]) == pytest.approx(1.0)
    # Reference "the cat sat on a mat": clipped precisions 5/6, 3/5, 2/4, 1/3; equal lengths (BP 1).
    ref = tokens("the cat sat on a mat")
    assert bleu(hyp, [ref]) == pytest.approx((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    # "a b c d" vs "a b c e": 3/4, 2/3, 1/2 and no 4-gram match, which counts 0.1 of a match (method 1).
    assert bleu(tokens("a b c d"), [tokens("a b c e")]) == pytest.approx(
        (3 / 4 * 2 / 3 * 1 / 2 * 0.1 / 1) ** 0.25
    )
    # A 3-token hypothesis against a 6-token reference: brevity penalty exp(1 - 6/3).
    short = tokens("the cat sat")
    assert bleu(short, [hyp], max_n=2) == pytest.approx(math.exp(1 - 2) * 1.0)
    assert bleu(tokens("cat"), [hyp]) == 0.0  # no bigram at all


def test_self_bleu_is_one_for_copies_and_low_for_different_texts():
    assert self_bleu(["the cat sat on the mat"] * 3) == pytest.approx(1.0)
    assert self_bleu(["the cat sat on the mat", "dogs run in green parks today"]) < 0.05
    assert math.isnan(self_bleu(["alone"]))


def test_exact_match_entropy_in_bits():
    assert exact_match_entropy(["a", "A ", "a"]) == 0.0
    assert exact_match_entropy(["a", "b", "c", "d"]) == pytest.approx(2.0)
    assert exact_match_entropy(["a", "a", "b", "b"]) == pytest.approx(1.0)
