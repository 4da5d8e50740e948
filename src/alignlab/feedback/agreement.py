"""Agreement statistics between labellers, human or AI: pure functions on plain Python values.

Inputs come in two shapes:

- **units**: one sequence of ratings per rated item (a "unit"), in any rater order; a missing
  rating is `None` (or float NaN) or simply left out. Pairwise agreement, Fleiss' kappa and
  Krippendorff's alpha depend only on which values each unit received, not on who gave them.
- **two aligned sequences** for Cohen's kappa: rater 1's and rater 2's ratings of the same items.

`ratings_by_unit` turns `(unit, rater, value)` records into both shapes.

Conventions where the textbook formula is 0/0:

- No unit with two or more ratings (nothing to compare): the statistic is `nan`.
- Perfect observed agreement with no variation at all (every rating the same value, so expected
  agreement is 1 too): the statistic is `1.0`. The `krippendorff` package raises instead;
  `sklearn.metrics.cohen_kappa_score` returns `nan`. A pool that agrees perfectly should read as 1.

References: Cohen (1960), "A coefficient of agreement for nominal scales"; Fleiss (1971),
"Measuring nominal scale agreement among many raters" (here generalised to a varying number of
raters per unit, which reduces to Fleiss' formula when every unit has the same number);
Krippendorff (2011), "Computing Krippendorff's alpha-reliability" (coincidence-matrix form, with
missing data).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from itertools import combinations
from typing import Literal

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")


def _present(values: Iterable[Hashable | None]) -> list[Hashable]:
    """Drop missing ratings (None or float NaN)."""
    return [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def _pairable(units: Iterable[Sequence[Hashable | None]]) -> list[list[Hashable]]:
    """Units with at least two ratings: the only ones that say anything about agreement."""
    kept = (_present(u) for u in units)
    return [u for u in kept if len(u) >= 2]


def ratings_by_unit(
    records: Iterable[tuple[Hashable, Hashable, Hashable]],
) -> dict[Hashable, dict[Hashable, Hashable]]:
    """Group `(unit, rater, value)` records into `{unit: {rater: value}}`.

    A rater who rates the same unit twice is an error: which rating counts would be a guess.
    """
    out: dict[Hashable, dict[Hashable, Hashable]] = defaultdict(dict)
    for unit, rater, value in records:
        if rater in out[unit]:
            raise ValueError(f"rater {rater!r} rated unit {unit!r} twice")
        out[unit][rater] = value
    return dict(out)


def pairwise_agreement(units: Iterable[Sequence[Hashable | None]]) -> float:
    """Mean over units of the share of rater pairs that gave the same value (Fleiss' P-bar).

    Units with fewer than two ratings are skipped; `nan` when none is left.
    """
    per_unit = []
    for u in _pairable(units):
        counts = Counter(u)
        n = len(u)
        per_unit.append(sum(c * (c - 1) for c in counts.values()) / (n * (n - 1)))
    return sum(per_unit) / len(per_unit) if per_unit else math.nan


def cohen_kappa(rater1: Sequence[Hashable | None], rater2: Sequence[Hashable | None]) -> float:
    """Cohen's kappa of two raters on the same items: (p_o - p_e) / (1 - p_e).

    Items where either rating is missing are skipped. p_o is the observed share of equal ratings;
    p_e = sum_k p1(k) p2(k) uses each rater's own marginal distribution (Cohen 1960).
    """
    if len(rater1) != len(rater2):
        raise ValueError(f"cohen_kappa needs aligned ratings, got {len(rater1)} and {len(rater2)}")
    both = [(a, b) for a, b in zip(rater1, rater2, strict=True) if _present([a]) and _present([b])]
    if not both:
        return math.nan
    n = len(both)
    p_o = sum(a == b for a, b in both) / n
    if p_o == 1.0:
        return 1.0
    m1 = Counter(a for a, _ in both)
    m2 = Counter(b for _, b in both)
    p_e = sum(m1[k] * m2[k] for k in m1) / (n * n)
    return (p_o - p_e) / (1.0 - p_e)


def cohen_kappa_pairs(
    by_unit: Mapping[Hashable, Mapping[Hashable, Hashable]], min_items: int = 2
) -> dict[tuple[Hashable, Hashable], tuple[float, int]]:
    """Cohen's kappa for every pair of raters who rated at least `min_items` items in common.

    Returns `{(rater1, rater2): (kappa, n_common_items)}` with rater1 < rater2 by `str` order.
    """
    shared: dict[tuple[Hashable, Hashable], tuple[list, list]] = defaultdict(lambda: ([], []))
    for ratings in by_unit.values():
        for r1, r2 in combinations(sorted(ratings, key=str), 2):
            xs, ys = shared[(r1, r2)]
            xs.append(ratings[r1])
            ys.append(ratings[r2])
    return {
        key: (cohen_kappa(xs, ys), len(xs)) for key, (xs, ys) in shared.items() if len(xs) >= min_items
    }


def fleiss_kappa(units: Iterable[Sequence[Hashable | None]]) -> float:
    """Fleiss' kappa of a pool of raters: (P-bar - P_e) / (1 - P_e).

    P-bar is `pairwise_agreement`; P_e = sum_j p_j^2 with p_j the share of all ratings (in units
    with two or more) that fall in category j. With a varying number of raters per unit each unit's
    agreement is computed on its own count; equal counts give Fleiss (1971) exactly.
    """
    kept = _pairable(units)
    if not kept:
        return math.nan
    p_bar = pairwise_agreement(kept)
    totals = Counter(v for u in kept for v in u)
    n_ratings = sum(totals.values())
    p_e = sum((c / n_ratings) ** 2 for c in totals.values())
    if p_e == 1.0:
        return 1.0
    return (p_bar - p_e) / (1.0 - p_e)


def _delta2(level: str, values: list, counts: Mapping) -> dict[tuple, float]:
    """Squared distance between every two values for the given level of measurement."""
    out: dict[tuple, float] = {}
    for i, c in enumerate(values):
        for k in values[i:]:
            if level == "nominal":
                d = 0.0 if c == k else 1.0
            elif level == "ordinal":
                # Krippendorff's ordinal metric: (sum of n_g for g from c to k - (n_c + n_k) / 2)^2.
                lo, hi = sorted((values.index(c), values.index(k)))
                d = (sum(counts[g] for g in values[lo : hi + 1]) - (counts[c] + counts[k]) / 2) ** 2
            elif level == "interval":
                d = float(c - k) ** 2
            else:
                d = ((c - k) / (c + k)) ** 2 if c + k != 0 else 0.0
            out[(c, k)] = out[(k, c)] = d
    return out


def krippendorff_alpha(units: Iterable[Sequence[Hashable | None]], level: Level = "nominal") -> float:
    """Krippendorff's alpha = 1 - D_o / D_e from the coincidence matrix, missing ratings allowed.

    Each unit u with m_u >= 2 ratings adds 1 / (m_u - 1) to o[c, k] for every ordered pair of its
    ratings (c, k) from different raters; n_c = sum_k o[c, k], n = sum_c n_c.
    D_o = sum o[c, k] delta2(c, k) / n and D_e = sum n_c n_k delta2(c, k) / (n (n - 1)).
    Levels other than nominal need numeric, ordered values.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
    kept = _pairable(units)
    coincidences: Counter = Counter()
    for u in kept:
        for i, c in enumerate(u):
            for j, k in enumerate(u):
                if i != j:
                    coincidences[(c, k)] += 1.0 / (len(u) - 1)
    n_c: Counter = Counter()
    for (c, _), o in coincidences.items():
        n_c[c] += o
    n = sum(n_c.values())
    if n < 2:
        return math.nan
    values = sorted(n_c) if level != "nominal" else list(n_c)
    d2 = _delta2(level, values, n_c)
    d_o = sum(o * d2[ck] for ck, o in coincidences.items()) / n
    d_e = sum(n_c[c] * n_c[k] * d2[(c, k)] for c in values for k in values) / (n * (n - 1))
    if d_e == 0.0:
        return 1.0
    return 1.0 - d_o / d_e


def position_bias_rate(picked_first: Iterable[bool | None]) -> float:
    """Share of decisive judgements that picked the response shown first (0.5 = no bias).

    `picked_first` holds True when the labeller preferred the response displayed first (left),
    False when they preferred the second, and None for a tie, "both bad" or a skip.
    """
    decisive = [p for p in picked_first if p is not None]
    return sum(decisive) / len(decisive) if decisive else math.nan


def position_consistency(verdicts: Sequence[Hashable], swapped_verdicts: Sequence[Hashable]) -> float:
    """Share of items judged the same when asked again with the two responses swapped.

    Both verdicts must be given in the same canonical terms (which response won, not which side);
    an order-blind judge scores 1.0. The usual check of an AI judge's position bias.
    """
    if len(verdicts) != len(swapped_verdicts):
        raise ValueError(f"need aligned verdicts, got {len(verdicts)} and {len(swapped_verdicts)}")
    if not verdicts:
        return math.nan
    return sum(a == b for a, b in zip(verdicts, swapped_verdicts, strict=True)) / len(verdicts)


def tie_rate(labels: Iterable[Hashable | None], tie_values: Iterable[Hashable] = ("tie",)) -> float:
    """Share of the (non-missing) labels that are ties."""
    ties = set(tie_values)
    present = _present(labels)
    return sum(v in ties for v in present) / len(present) if present else math.nan
