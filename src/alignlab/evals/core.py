"""The eval framework's records and interfaces, in the Inspect shape: a suite is samples + a solver
(how the model is asked) + scorers (what its answer is worth).

- `Sample`: one item of a benchmark: the conversation up to the request (`input`), user turns sent
  after each model reply (`followups`, multi-turn), reference fields (`target`, `label`, `correct`,
  `incorrect`), an optional `document` a solver places in the conversation, and `metadata`.
- `Solver`: sample -> `Dialogue` (the messages before the first reply + the follow-up user turns).
  The runner feeds each reply back before the next follow-up.
- `Episode`: one sample asked one way (`variant`, e.g. a jailbreak transform) once (`draw` of n),
  with the model's `Transcript`.
- `Scorer`: episodes -> one `Score` each (label, value, explanation and named per-episode metrics:
  a bool becomes a rate with a Wilson interval, a float a mean with a t interval).
- `Suite`: samples, named solver variants, scorers, default sampling, and an optional suite-level
  `aggregate` over all results (win rates, self-BLEU, differences between variants).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from alignlab.data.schema import Message
from alignlab.generation.base import Completion, SamplingParams
from alignlab.stats import Estimate

Mode = Literal["generate", "loglikelihood"]


@dataclass(frozen=True)
class Sample:
    """One benchmark item. `input` ends with the user turn the model answers."""

    id: str
    input: tuple[Message, ...]
    followups: tuple[str, ...] = ()  # user turns sent after each reply, in order
    target: str | None = None  # a reference string (AdvBench's target, an expected keyword)
    label: str | None = None  # a class of the item (XSTest's safe / unsafe)
    correct: tuple[str, ...] = ()  # correct answers (TruthfulQA), best first
    incorrect: tuple[str, ...] = ()  # incorrect answers
    document: str | None = None  # a document the solver places in the conversation (injection)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def request(self) -> str:
        """Text of the last user turn of `input`."""
        return next((m.content for m in reversed(self.input) if m.role == "user"), "")


@dataclass(frozen=True)
class Dialogue:
    """What the model is shown: `messages` before its first reply, then each of `followups` after
    each reply (a reply is fed back as an assistant turn)."""

    messages: tuple[Message, ...]
    followups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """What the model said: one completion per round (first reply, then one per follow-up)."""

    messages: tuple[Message, ...]  # the whole conversation, the model's replies included
    replies: tuple[Completion, ...] = ()
    option_logps: tuple[float, ...] = ()  # log-likelihood suites: one per answer option

    @property
    def response(self) -> str:
        """The final reply's text ("" when there is none)."""
        return self.replies[-1].text if self.replies else ""


@dataclass(frozen=True)
class Episode:
    """One sample asked one way (`variant`) once (`draw`), with what the model said."""

    sample: Sample
    variant: str
    draw: int
    dialogue: Dialogue
    transcript: Transcript

    @property
    def response(self) -> str:
        return self.transcript.response

    @property
    def key(self) -> str:
        return episode_key(self.sample.id, self.variant, self.draw)


def episode_key(sample_id: str, variant: str, draw: int) -> str:
    return f"{sample_id}|{variant}|{draw}"


@dataclass(frozen=True)
class Score:
    """A scorer's verdict on one episode.

    label: the class (e.g. "full_refusal"); value: a number when the scorer has one (1 = the
    behaviour measured happened); metrics: named values this episode contributes to the summary
    (bool -> rate, float -> mean); a metric left out is not counted for this episode; extra: other
    JSON values worth keeping with the sample (a judge's raw reply, a baseline's response).
    """

    label: str
    value: float | None = None
    explanation: str = ""
    metrics: Mapping[str, bool | float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {
            "label": self.label,
            "value": self.value,
            "explanation": self.explanation,
            "metrics": dict(self.metrics),
        }
        return out | ({"extra": dict(self.extra)} if self.extra else {})


class Solver(Protocol):
    """How the model is asked: a sample -> the dialogue the runner plays."""

    def __call__(self, sample: Sample) -> Dialogue: ...


class Scorer(Protocol):
    """Scores successful episodes, one `Score` each, in order (batched so a judge model can batch)."""

    name: str

    def __call__(self, episodes: Sequence[Episode]) -> list[Score]: ...


@dataclass(frozen=True)
class Result:
    """One line of `samples.jsonl`: an episode, what the model said and what the scorers found.

    `label`, `score` and `explanation` are the first scorer's; `scores` holds every scorer's.
    `reply_logps` is each reply's summed sampling log-prob when the backend gave one (entropy);
    `option_logps` each answer option's log-likelihood (log-likelihood suites).
    """

    id: str
    variant: str
    draw: int
    input: list[dict[str, Any]]
    followups: list[str]
    response: str | None
    replies: list[str]
    reply_logps: list[float | None]
    reply_tokens: list[int]
    option_logps: list[float]
    label: str | None
    score: float | None
    explanation: str
    scores: dict[str, dict[str, Any]]
    error: str | None
    metadata: dict[str, Any]

    @property
    def key(self) -> str:
        return episode_key(self.id, self.variant, self.draw)

    def metric_values(self) -> dict[str, bool | float]:
        """Every scorer's metrics, named `scorer/metric`."""
        return {f"{s}/{k}": v for s, sc in self.scores.items() for k, v in sc.get("metrics", {}).items()}

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> Result:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Figure:
    """A reported number with its interval and how the interval was made
    ("wilson", "t", "bootstrap", "paired-t", "newcombe", or "none")."""

    estimate: Estimate
    interval: str

    def to_json(self) -> dict[str, Any]:
        e = self.estimate
        return {"value": _finite(e.value), "low": _finite(e.low), "high": _finite(e.high), "n": e.n,
                "interval": self.interval}  # fmt: skip


def _finite(x: float) -> float | None:
    # JSON has no NaN or infinity; an undefined figure (no data, one value) is null.
    return x if x == x and x not in (float("inf"), float("-inf")) else None


Aggregate = Callable[[Sequence[Result]], dict[str, Figure]]


@dataclass(frozen=True)
class Suite:
    """Samples + named solver variants + scorers (+ a suite-level aggregate), ready to run.

    mode "generate" asks a `Generator`; "loglikelihood" asks a `LogLikelihood` for the log-prob of
    each of a sample's answer options (`correct` + `incorrect`) and needs no solver follow-ups.
    notes: facts about how the samples were read (e.g. rows skipped), copied into the summary.
    """

    name: str
    samples: tuple[Sample, ...]
    solvers: Mapping[str, Solver]
    scorers: tuple[Scorer, ...]
    params: SamplingParams = SamplingParams()
    aggregate: Aggregate | None = None
    mode: Mode = "generate"
    notes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.solvers:
            raise ValueError(f"suite {self.name!r} has no solver")
        if not self.scorers:
            raise ValueError(f"suite {self.name!r} has no scorer")
        ids = [s.id for s in self.samples]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"suite {self.name!r} has two samples with id {dup!r}")
        names = [s.name for s in self.scorers]
        if len(set(names)) != len(names):
            raise ValueError(f"suite {self.name!r} has two scorers named alike: {names}")

    def limited(self, limit: int | None) -> Suite:
        """The suite with at most `limit` samples (the first ones)."""
        if limit is None:
            return self
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        return Suite(self.name, self.samples[:limit], self.solvers, self.scorers, self.params,
                     self.aggregate, self.mode, self.notes)  # fmt: skip


def rule_scorer(name: str, fn: Callable[[Episode], Score]) -> Scorer:
    """A scorer from a per-episode function (rules, patterns): no batching needed."""
    return _RuleScorer(name, fn)


@dataclass(frozen=True)
class _RuleScorer:
    name: str
    fn: Callable[[Episode], Score]

    def __call__(self, episodes: Sequence[Episode]) -> list[Score]:
        return [self.fn(e) for e in episodes]
