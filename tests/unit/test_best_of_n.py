"""Best-of-n: the unbiased estimator of the best of n among N samples (hand-worked and against
enumerating every n-subset, ties included), its KL formula, and the empirical KL."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from alignlab.evals.best_of_n import (
    best_of_n_kl,
    best_of_n_value,
    best_of_n_weights,
    empirical_best_of_n_kl,
    powers_of_two,
)


def test_weights_by_hand():
    # Scores 4, 1, 3, 2 have ascending ranks 3, 0, 2, 1; the rank-i sample is the best of a random
    # pair with probability C(i, 1) / C(4, 2) = i / 6: the pairs {4,1}, {4,3}, {4,2} (3 of 6) pick 4,
    # {1,3}, {3,2} pick 3, {1,2} picks 2.
    assert best_of_n_weights([4, 1, 3, 2], 2) == pytest.approx([3 / 6, 0, 2 / 6, 1 / 6])
    assert best_of_n_weights([4, 1, 3, 2], 1) == pytest.approx([0.25] * 4)  # n = 1: one random sample
    assert best_of_n_weights([4, 1, 3, 2], 4) == pytest.approx([1, 0, 0, 0])  # n = N: the top one
    # Tied scores share their ranks' weight: the two 5s hold ranks 1 and 2 of 3 -> (1/3 + 2/3) / 2.
    assert best_of_n_weights([5, 0, 5], 2) == pytest.approx([0.5, 0, 0.5])


def _enumerated(scores, values, n):
    """E[value of the best of a uniformly random n-subset], a tie within a subset broken at random."""
    totals = []
    for subset in itertools.combinations(range(len(scores)), n):
        top = max(scores[i] for i in subset)
        best = [values[i] for i in subset if scores[i] == top]
        totals.append(sum(best) / len(best))
    return sum(totals) / len(totals)


@pytest.mark.parametrize("seed", range(6))
def test_the_estimate_equals_enumerating_every_subset(seed):
    rng = random.Random(seed)
    size = rng.randint(2, 9)
    scores = [rng.choice([0.0, 0.5, 1.0, 1.5]) if seed % 2 else rng.random() for _ in range(size)]  # ties
    values = [rng.random() for _ in range(size)]
    for n in range(1, size + 1):
        assert best_of_n_value(scores, values, n) == pytest.approx(_enumerated(scores, values, n)), n
        assert sum(best_of_n_weights(scores, n)) == pytest.approx(1.0)


def test_bad_n_and_mismatched_lengths_are_errors():
    with pytest.raises(ValueError, match="1 <= n <= the 2 samples"):
        best_of_n_weights([1, 2], 3)
    with pytest.raises(ValueError, match="2 scores but 1 values"):
        best_of_n_value([1, 2], [1], 1)
    with pytest.raises(ValueError, match="at least 1"):
        best_of_n_kl(0)


def test_kl_formula():
    assert best_of_n_kl(1) == 0.0
    assert best_of_n_kl(2) == pytest.approx(math.log(2) - 0.5)  # 0.1931
    assert best_of_n_kl(16) == pytest.approx(math.log(16) - 15 / 16)  # 1.8351


def test_empirical_kl_by_hand_and_towards_the_formula():
    # N = 2 distinct samples, n = 2: the lower is picked with (1/2)^2 = 1/4, the upper with 3/4;
    # KL = 1/4 log(1/4 / 1/2) + 3/4 log(3/4 / 1/2) = 0.1308, below log 2 - 1/2 = 0.1931.
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert empirical_best_of_n_kl([0.1, 0.7], 2) == pytest.approx(expected)
    assert empirical_best_of_n_kl([2.0] * 5, 3) == 0.0  # one reply, repeated: best-of-n is the policy
    # Many distinct samples: the formula's limit.
    many = [i / 4000 for i in range(4000)]
    assert empirical_best_of_n_kl(many, 4) == pytest.approx(best_of_n_kl(4), abs=2e-3)


def test_powers_of_two():
    assert powers_of_two(1) == [1]
    assert powers_of_two(16) == [1, 2, 4, 8, 16]
    assert powers_of_two(12) == [1, 2, 4, 8, 12]
