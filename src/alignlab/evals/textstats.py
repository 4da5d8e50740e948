"""Text statistics for length and diversity: pure functions on strings.

- `tokens`: lower-cased words and punctuation marks (the unit of every statistic here);
- `distinct_n`: distinct n-grams / all n-grams over a set of texts (Li et al. 2016);
- `bleu`: sentence BLEU-4 of one hypothesis against references (Papineni et al. 2002): clipped
  n-gram precisions, geometric mean, brevity penalty against the closest reference length;
  a precision with no match counts 0.1 matches (Chen & Cherry 2014, smoothing method 1, as NLTK's
  `SmoothingFunction().method1`, which Texygen's self-BLEU uses);
- `self_bleu`: mean BLEU of each text against all the others (Zhu et al. 2018, Texygen): high when
  samples repeat each other;
- `exact_match_entropy`: entropy (bits) of the distribution of distinct texts among samples.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def ngrams(toks: Sequence[str], n: int) -> Counter:
    return Counter(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams of `texts` (0 when there is no n-gram)."""
    counts: Counter = Counter()
    for t in texts:
        counts.update(ngrams(tokens(t), n))
    total = sum(counts.values())
    return len(counts) / total if total else 0.0


def bleu(
    hypothesis: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4, epsilon: float = 0.1
) -> float:
    """Sentence BLEU of token lists, uniform weights over 1..max_n-grams (0 for an empty hypothesis)."""
    if not hypothesis or not references:
        return 0.0
    log_precision = 0.0
    for n in range(1, max_n + 1):
        hyp = ngrams(hypothesis, n)
        total = sum(hyp.values())
        if total == 0:
            return 0.0  # shorter than n tokens: no n-gram to compare (NLTK returns 0 too)
        best: Counter = Counter()
        for ref in references:
            best |= ngrams(ref, n)
        matched = sum(min(c, best[g]) for g, c in hyp.items())
        log_precision += math.log((matched or epsilon) / total) / max_n
    c = len(hypothesis)
    r = min((len(ref) for ref in references), key=lambda length: (abs(length - c), length))
    brevity = 1.0 if c > r else math.exp(1 - r / c)
    return brevity * math.exp(log_precision)


def self_bleu(texts: Sequence[str], max_n: int = 4) -> float:
    """Mean BLEU of each text against the others (NaN for fewer than two texts)."""
    if len(texts) < 2:
        return math.nan
    toks = [tokens(t) for t in texts]
    return sum(bleu(toks[i], toks[:i] + toks[i + 1 :], max_n) for i in range(len(toks))) / len(toks)


def exact_match_entropy(texts: Sequence[str]) -> float:
    """Entropy in bits of the distinct texts (whitespace and case folded) among the samples."""
    counts = Counter(" ".join(t.split()).casefold() for t in texts)
    n = sum(counts.values())
    return -sum(c / n * math.log2(c / n) for c in counts.values()) if n else math.nan


def word_count(text: str) -> int:
    return len(text.split())
