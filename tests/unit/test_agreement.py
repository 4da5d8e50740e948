"""Agreement statistics against textbook fixtures, hand-worked values and the `krippendorff` package."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from alignlab.feedback.agreement import (
    cohen_kappa,
    cohen_kappa_pairs,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_agreement,
    position_bias_rate,
    position_consistency,
    ratings_by_unit,
    tie_rate,
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
# 12 units, values 1-5, missing ratings as None. Published: nominal 0.743, ordinal 0.815,
# interval 0.849, ratio 0.797.
K2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
K2011_UNITS = [list(col) for col in zip(*K2011, strict=True)]

# Fleiss' kappa worked example (Wikipedia, "Fleiss' kappa"): 10 subjects, 14 raters each,
# counts per category 1..5. Published: P-bar = 0.378, P_e = 0.213, kappa = 0.210.
FLEISS_COUNTS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]
FLEISS_UNITS = [[cat for cat, c in enumerate(row, 1) for _ in range(c)] for row in FLEISS_COUNTS]


def _cohen_table(yy: int, yn: int, ny: int, nn: int) -> tuple[list[str], list[str]]:
    """Expand a 2x2 table (rater 1 first) into two aligned rating sequences."""
    r1 = ["yes"] * (yy + yn) + ["no"] * (ny + nn)
    r2 = ["yes"] * yy + ["no"] * yn + ["yes"] * ny + ["no"] * nn
    return r1, r2


def test_cohen_kappa_textbook_example():
    # Wikipedia "Cohen's kappa": 50 proposals; p_o = 35/50 = 0.7, p_e = 0.5*0.6 + 0.5*0.4 = 0.5.
    assert cohen_kappa(*_cohen_table(20, 5, 10, 15)) == pytest.approx(0.4, abs=1e-12)


@pytest.mark.parametrize(
    ("table", "kappa"),
    [
        # Same p_o = 0.6, different marginals (Wikipedia): 0.1304 and 0.2593.
        ((45, 15, 25, 15), Fraction(60 - 54, 100 - 54)),
        ((25, 35, 5, 35), Fraction(60 - 46, 100 - 46)),
    ],
)
def test_cohen_kappa_marginals_matter(table, kappa):
    got = cohen_kappa(*_cohen_table(*table))
    assert got == pytest.approx(float(kappa), abs=1e-12)
    assert round(got, 4) in (0.1304, 0.2593)


def test_cohen_kappa_perfect_missing_and_errors():
    assert cohen_kappa(["a", "b", "a"], ["a", "b", "a"]) == 1.0
    # Constant and equal: p_e = 1, still perfect agreement.
    assert cohen_kappa(["a", "a"], ["a", "a"]) == 1.0
    # Missing ratings are skipped: only items 0 and 2 count, and they agree.
    assert cohen_kappa(["a", None, "b"], ["a", "b", "b"]) == 1.0
    # Total disagreement with balanced marginals: p_o = 0, p_e = 0.5 -> -1.
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    assert math.isnan(cohen_kappa([None], ["a"]))
    with pytest.raises(ValueError, match="aligned"):
        cohen_kappa(["a"], ["a", "b"])


def test_fleiss_kappa_textbook_example():
    # Exact value from the formula with fractions, then the published rounding.
    n = 14
    p_i = [Fraction(sum(c * c for c in row) - n, n * (n - 1)) for row in FLEISS_COUNTS]
    p_bar = sum(p_i) / len(p_i)
    p_j = [Fraction(sum(col), n * len(FLEISS_COUNTS)) for col in zip(*FLEISS_COUNTS, strict=True)]
    p_e = sum(p * p for p in p_j)
    expected = float((p_bar - p_e) / (1 - p_e))
    assert round(float(p_bar), 3) == 0.378 and round(float(p_e), 3) == 0.213
    assert fleiss_kappa(FLEISS_UNITS) == pytest.approx(expected, abs=1e-12)
    assert round(fleiss_kappa(FLEISS_UNITS), 3) == 0.210
    assert pairwise_agreement(FLEISS_UNITS) == pytest.approx(float(p_bar), abs=1e-12)


def test_fleiss_kappa_perfect_and_missing():
    assert fleiss_kappa([["a", "a", "a"], ["b", "b"], ["a", "a"]]) == 1.0
    assert fleiss_kappa([["a", "a"], ["a", "a"]]) == 1.0
    # Single-rating units carry no agreement information and are dropped.
    assert fleiss_kappa([["a", "b"], ["a"], [None, "b", None]]) == fleiss_kappa([["a", "b"]])
    assert math.isnan(fleiss_kappa([["a"], [None, "b"]]))


def test_fleiss_varying_raters_hand_worked():
    # Units: [a, a, b] -> P = 2/6 = 1/3; [a, b] -> P = 0. P-bar = 1/6.
    # Ratings: a = 3, b = 2 of 5 -> P_e = 9/25 + 4/25 = 13/25. kappa = (1/6 - 13/25) / (12/25).
    expected = (Fraction(1, 6) - Fraction(13, 25)) / Fraction(12, 25)
    assert fleiss_kappa([["a", "a", "b"], ["a", "b"]]) == pytest.approx(float(expected), abs=1e-12)
    assert pairwise_agreement([["a", "a", "b"], ["a", "b"], ["c"]]) == pytest.approx(1 / 6)


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_krippendorff_published_example(level, published):
    krippendorff = pytest.importorskip("krippendorff")
    got = krippendorff_alpha(K2011_UNITS, level=level)
    assert round(got, 3) == published
    reference = krippendorff.alpha(
        reliability_data=[[math.nan if v is None else v for v in row] for row in K2011],
        level_of_measurement=level,
    )
    assert got == pytest.approx(reference, abs=1e-12)


def test_krippendorff_nominal_hand_worked():
    # Units [a, a] and [a, b]: o(a,a) = 2, o(a,b) = o(b,a) = 1; n_a = 3, n_b = 1, n = 4.
    # D_o = 2/4; D_e = 2 * 3 * 1 / (4 * 3) = 1/2 -> alpha = 0.
    assert krippendorff_alpha([["a", "a"], ["a", "b"]]) == pytest.approx(0.0, abs=1e-12)
    # Units [a, a], [b, b], [a, b]: D_o = 2/6; n_a = n_b = 3, D_e = 18/30 -> alpha = 1 - 5/9.
    assert krippendorff_alpha([["a", "a"], ["b", "b"], ["a", "b"]]) == pytest.approx(4 / 9)


def test_krippendorff_matches_package_on_random_data_with_missing():
    krippendorff = pytest.importorskip("krippendorff")
    rng = random.Random(0)
    for trial in range(20):
        n_raters, n_units = rng.randint(2, 5), rng.randint(5, 25)
        data = [
            [rng.choice([1, 2, 3, 4]) if rng.random() > 0.3 else None for _ in range(n_units)]
            for _ in range(n_raters)
        ]
        units = [list(col) for col in zip(*data, strict=True)]
        if len({v for u in units if sum(x is not None for x in u) >= 2 for v in u if v is not None}) < 2:
            continue
        nan_data = [[math.nan if v is None else v for v in row] for row in data]
        for level in ("nominal", "ordinal", "interval", "ratio"):
            ref = krippendorff.alpha(reliability_data=nan_data, level_of_measurement=level)
            assert krippendorff_alpha(units, level=level) == pytest.approx(ref, abs=1e-9), (trial, level)


def test_krippendorff_perfect_missing_and_errors():
    assert krippendorff_alpha([["a", "a", None], ["b", "b"], [None, "c", "c"]]) == 1.0
    # No variation at all: perfect agreement by convention (the package raises here).
    assert krippendorff_alpha([["a", "a"], ["a", "a", "a"]]) == 1.0
    assert math.isnan(krippendorff_alpha([["a"], [None, "b"]]))
    assert krippendorff_alpha([[1.0, float("nan"), 1.0], [2.0, 2.0]], level="interval") == 1.0
    with pytest.raises(ValueError, match="unknown level"):
        krippendorff_alpha([["a", "a"]], level="cardinal")  # type: ignore[arg-type]


def test_ratings_by_unit_and_pairwise_cohen():
    records = [
        ("p1", "ann", "a"), ("p1", "bob", "a"), ("p1", "cy", "b"),
        ("p2", "ann", "b"), ("p2", "bob", "b"),
        ("p3", "ann", "a"), ("p3", "bob", "b"), ("p3", "cy", "a"),
    ]
    by_unit = ratings_by_unit(records)
    assert by_unit["p2"] == {"ann": "b", "bob": "b"}
    pairs = cohen_kappa_pairs(by_unit)
    # ann vs bob on p1, p2, p3: (a,a), (b,b), (a,b): p_o = 2/3, marginals ann a2 b1, bob a1 b2:
    # p_e = (2*1 + 1*2) / 9 = 4/9 -> kappa = (2/3 - 4/9) / (5/9) = 0.4.
    assert pairs[("ann", "bob")] == (pytest.approx(0.4), 3)
    # ann vs cy share p1 and p3: (a,b), (a,a).
    assert pairs[("ann", "cy")][1] == 2
    assert ("bob", "cy") in pairs and pairs[("bob", "cy")][0] == pytest.approx(-1.0)
    assert ("ann", "cy") not in cohen_kappa_pairs(by_unit, min_items=3)
    with pytest.raises(ValueError, match="twice"):
        ratings_by_unit([("p1", "ann", "a"), ("p1", "ann", "b")])


def test_position_bias_tie_rate_consistency():
    assert position_bias_rate([True, True, False, None, True]) == 0.75
    assert math.isnan(position_bias_rate([None, None]))
    assert tie_rate(["a", "tie", "b", "tie", None]) == 0.5
    assert tie_rate(["a", "tie", "both_bad", "b"], tie_values=("tie", "both_bad")) == 0.5
    assert position_consistency(["a", "b", "tie", "a"], ["a", "a", "tie", "b"]) == 0.5
    with pytest.raises(ValueError):
        position_consistency(["a"], [])
