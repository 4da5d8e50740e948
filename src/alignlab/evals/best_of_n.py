"""Best-of-n sampling as a point on the over-optimisation curve: the expected value of the reply a
selector (a reward model) picks among n samples, estimated from N ≥ n samples per prompt, and
best-of-n's KL from the policy it samples.

Unbiased estimator (Nakano et al. 2021, WebGPT, appendix; Gao, Schulman & Hilton 2023, sec. 2.2):
sort a prompt's N samples by their selection score ascending (ranks i = 1 … N); in a uniformly
random n-subset, the sample of rank i is the best with probability C(i − 1, n − 1) / C(N, n), so

    E[value of the best of n] ≈ Σ_i C(i − 1, n − 1) / C(N, n) · value_i

with no bias for every n ≤ N from one set of N samples. Samples whose scores tie (identical replies,
or an exact tie) share their group's weight equally: the best among tied samples is any of them.

KL: best-of-n of a policy π is KL(π_bon ‖ π) = log n − (n − 1)/n from π (Stiennon et al. 2020,
appendix G.3) when no two replies tie; Beirami et al. 2024 ("Theoretical guarantees on the
best-of-n alignment policy") show it is an upper bound, loose when some replies are likely enough
to be drawn more than once. `empirical_best_of_n_kl` gives the exact KL of best-of-n over the
samples' own empirical distribution (repeats merged), which shows how much the repeats matter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def best_of_n_kl(n: int) -> float:
    """KL(π_bon ‖ π) = log n − (n − 1)/n in nats, for replies without ties (0 for n = 1).

    >>> round(best_of_n_kl(2), 4), round(best_of_n_kl(64), 4)
    (0.1931, 3.1745)
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return math.log(n) - (n - 1) / n


def best_of_n_weights(scores: Sequence[float], n: int) -> list[float]:
    """Each sample's probability of being the best of a uniformly random n-subset of `scores`
    (N = len(scores) samples, ties sharing their group's probability equally); sums to 1.

    >>> best_of_n_weights([0.3, 0.1, 0.2], 2)  # ranks 3, 1, 2: C(2,1)/3, 0, C(1,1)/3
    [0.6666666666666666, 0.0, 0.3333333333333333]
    """
    size = len(scores)
    if not 1 <= n <= size:
        raise ValueError(f"best of {n} needs 1 <= n <= the {size} samples")
    order = sorted(range(size), key=lambda i: scores[i])
    total = math.comb(size, n)
    by_rank = [math.comb(rank, n - 1) / total for rank in range(size)]  # rank 0 = the lowest score
    weights = [0.0] * size
    start = 0
    while start < size:  # each group of equal scores shares the sum of its ranks' weights
        end = start
        while end + 1 < size and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        share = sum(by_rank[start : end + 1]) / (end - start + 1)
        for rank in range(start, end + 1):
            weights[order[rank]] = share
        start = end + 1
    return weights


def best_of_n_value(scores: Sequence[float], values: Sequence[float], n: int) -> float:
    """The unbiased estimate of E[value of the best of n by `scores`] from one prompt's samples."""
    if len(scores) != len(values):
        raise ValueError(f"{len(scores)} scores but {len(values)} values")
    return sum(w * v for w, v in zip(best_of_n_weights(scores, n), values, strict=True))


def empirical_best_of_n_kl(scores: Sequence[float], n: int) -> float:
    """KL(bon ‖ p̂) of best-of-n over the empirical distribution p̂ of the samples, equal scores
    merged into one outcome: Σ_k P_k log(P_k / p_k) with P_k = F_k^n − F_(k−1)^n, F the
    cumulative p̂ in score order. Equals the ties-free formula only as N → ∞ with no repeats;
    with repeated replies it is smaller (see the module docstring).

    >>> round(empirical_best_of_n_kl([1.0, 1.0, 1.0, 1.0], 4), 6)  # one outcome: bon is p̂ itself
    0.0
    """
    size = len(scores)
    if not 1 <= n <= size:
        raise ValueError(f"best of {n} needs 1 <= n <= the {size} samples")
    masses: dict[float, int] = {}
    for s in scores:
        masses[s] = masses.get(s, 0) + 1
    kl, below = 0.0, 0.0
    for s in sorted(masses):
        p = masses[s] / size
        upto = below + p
        picked = upto**n - below**n
        if picked > 0:
            kl += picked * math.log(picked / p)
        below = upto
    return kl


def powers_of_two(limit: int) -> list[int]:
    """1, 2, 4, … up to `limit`, and `limit` itself when it is not a power of two."""
    out = [1]
    while out[-1] * 2 <= limit:
        out.append(out[-1] * 2)
    return out if out[-1] == limit else [*out, limit]
