"""Interval statistics against published and hand-worked values."""

import math

import pytest

from alignlab.stats import (
    bootstrap_interval,
    mean_interval,
    paired_difference,
    proportion_difference,
    standard_deviation,
    student_t_quantile,
    wilson_interval,
)


def test_wilson_interval_matches_the_closed_form_value():
    # 8 of 10 at 95 %: centre (0.8 + z²/20) / (1 + z²/10), the textbook [0.4902, 0.9433].
    est = wilson_interval(8, 10)
    assert est.value == 0.8
    assert est.low == pytest.approx(0.4902, abs=1e-4)
    assert est.high == pytest.approx(0.9433, abs=1e-4)
    assert est.n == 10


def test_wilson_interval_at_the_edges_stays_inside_zero_one():
    none = wilson_interval(0, 20)
    assert none.low == 0.0 and 0 < none.high < 0.2
    every = wilson_interval(20, 20)
    assert every.high == 1.0 and 0.8 < every.low < 1.0
    empty = wilson_interval(0, 0)
    assert math.isnan(empty.value) and (empty.low, empty.high) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (30, 2.0423), (1000, 1.9623)],
)
def test_student_t_quantiles_match_the_tables(df, expected):
    assert student_t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)
    assert student_t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-3)


def test_mean_interval_of_three_seeds_uses_t_with_two_degrees_of_freedom():
    # mean 2, sd 1, half-width t(0.975, 2) * 1 / sqrt(3) = 4.3027 / 1.7321 = 2.4841.
    est = mean_interval([1.0, 2.0, 3.0])
    assert est.value == 2.0
    assert est.high - est.value == pytest.approx(2.4841, abs=1e-3)
    assert est.value - est.low == pytest.approx(2.4841, abs=1e-3)
    assert standard_deviation([1.0, 2.0, 3.0]) == 1.0
    assert math.isinf(mean_interval([5.0]).high)


def test_newcombe_difference_matches_the_published_example():
    # Newcombe (1998), table II, example (a): 56/70 - 48/80 = 0.2000, [0.0524, 0.3339].
    d = proportion_difference(56, 70, 48, 80)
    assert d.value == pytest.approx(0.2)
    assert d.low == pytest.approx(0.0524, abs=1e-4)
    assert d.high == pytest.approx(0.3339, abs=1e-4)
    assert d.excludes_zero


def test_a_small_difference_on_few_samples_is_not_a_difference():
    d = proportion_difference(6, 10, 5, 10)
    assert d.value == pytest.approx(0.1)
    assert not d.excludes_zero


def test_paired_difference_is_the_mean_of_per_item_differences():
    a = [1.0, 1.0, 0.5, 1.0, 0.0, 1.0]
    b = [0.5, 1.0, 0.0, 0.5, 0.0, 0.5]
    d = paired_difference(a, b)
    assert d.value == pytest.approx(sum(x - y for x, y in zip(a, b, strict=True)) / 6)
    assert d.low < d.value < d.high
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 2.0])


def test_bootstrap_interval_is_reproducible_and_covers_the_mean():
    values = [float(i % 7) for i in range(200)]
    first = bootstrap_interval(values, seed=3)
    assert first == bootstrap_interval(values, seed=3)
    assert first.low < first.value < first.high
    # For a mean of 200 values the bootstrap interval is close to the normal one.
    normal = mean_interval(values)
    assert first.low == pytest.approx(normal.low, abs=0.1)
    assert first.high == pytest.approx(normal.high, abs=0.1)
