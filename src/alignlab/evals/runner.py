"""Run a suite: ask the model, score its answers, write `samples.jsonl` and `summary.json`.

Episodes (sample x solver variant x draw) are processed in chunks. Within a chunk, generation is
batched round by round: every episode's first reply in one `Generator.generate` call (n draws per
prompt), then every episode that has a follow-up gets its next reply, and so on. A generation that
fails (`finish_reason="error"`) makes its episode an error row that is counted and skipped by the
scorers; the run goes on. Each finished chunk is appended to a hidden partial file named by the
run's fingerprint (suite, samples, variants, scorers, sampling), so an interrupted run resumes
where it stopped; at the end `samples.jsonl` and `summary.json` are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from alignlab.data.schema import assistant, user
from alignlab.errors import ConfigError
from alignlab.evals.core import Dialogue, Episode, Result, Sample, Score, Suite, Transcript, episode_key
from alignlab.evals.likelihood import LogLikelihood
from alignlab.evals.summary import SuiteSummary, summarise
from alignlab.generation.base import Completion, Generator, Prompt, SamplingParams
from alignlab.io import append_jsonl, atomic_write_json, atomic_write_jsonl, read_jsonl

SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
Log = Callable[[str], None]


@dataclass(frozen=True)
class _Item:
    """One prompt to ask: a sample under one solver variant (it yields n draws)."""

    sample: Sample
    variant: str
    dialogue: Dialogue


def run_suite(
    suite: Suite,
    model: Generator | LogLikelihood,
    output_dir: str | os.PathLike,
    *,
    params: SamplingParams | None = None,
    chunk_size: int = 64,
    log: Log | None = None,
) -> SuiteSummary:
    """Run `suite` against `model`, writing `output_dir/samples.jsonl` and `output_dir/summary.json`.

    model: a `Generator` for generation suites, a `LogLikelihood` for log-likelihood suites.
    params: sampling (default: the suite's own `params`). chunk_size: prompts asked and scored
    between two saves of progress. A finished run with the same fingerprint is not asked again:
    its summary is recomputed from `samples.jsonl`.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    params = params or suite.params
    _check_model(suite, model)
    if suite.mode == "loglikelihood":
        params = replace(params, n=1)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = [_Item(s, v, solver(s)) for s in suite.samples for v, solver in suite.solvers.items()]
    fingerprint = _fingerprint(suite, items, params)
    finished = _finished_results(out, fingerprint)
    if finished is None:
        finished = _run_items(suite, model, items, params, out, fingerprint, chunk_size, log)
        atomic_write_jsonl(out / SAMPLES_FILE, (r.to_json() for r in finished))
    summary = summarise(suite, finished, params, fingerprint)
    atomic_write_json(out / SUMMARY_FILE, summary.to_json())
    (out / _partial_name(fingerprint)).unlink(missing_ok=True)
    if log:
        log(f"{suite.name}: {summary.n_episodes} episodes, {summary.errors} errors -> {out / SUMMARY_FILE}")
    return summary


def _check_model(suite: Suite, model: object) -> None:
    if suite.mode == "loglikelihood" and not isinstance(model, LogLikelihood):
        raise ConfigError(
            f"suite '{suite.name}' scores answer options by log-likelihood: it needs an in-process model "
            "directory, not an endpoint or a responses file"
        )
    if suite.mode == "generate" and not isinstance(model, Generator):
        raise ConfigError(f"suite '{suite.name}' needs a model that generates (a Generator)")


def _fingerprint(suite: Suite, items: Sequence[_Item], params: SamplingParams) -> str:
    h = hashlib.sha256()
    head = {"suite": suite.name, "mode": suite.mode, "scorers": [s.name for s in suite.scorers],
            "params": params.__dict__}  # fmt: skip
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    for it in items:
        h.update(json.dumps([it.sample.id, it.variant, [m.to_json() for m in it.dialogue.messages],
                             it.dialogue.followups, it.sample.correct,
                             it.sample.incorrect]).encode())  # fmt: skip
    return h.hexdigest()[:16]


def _partial_name(fingerprint: str) -> str:
    return f".{SAMPLES_FILE}.{fingerprint}.partial"


def _finished_results(out: Path, fingerprint: str) -> list[Result] | None:
    """The results of a finished run with this fingerprint, or None."""
    try:
        previous = json.loads((out / SUMMARY_FILE).read_text())
        if previous.get("fingerprint") != fingerprint:
            return None
        return [Result.from_json(r) for r in read_jsonl(out / SAMPLES_FILE)]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_partial(path: Path) -> dict[str, Result]:
    done: dict[str, Result] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:  # the last line may be cut short by a crash: it is simply redone
            r = Result.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError):
            continue
        done[r.key] = r
    return done


def _run_items(
    suite: Suite,
    model: Generator | LogLikelihood,
    items: list[_Item],
    params: SamplingParams,
    out: Path,
    fingerprint: str,
    chunk_size: int,
    log: Log | None,
) -> list[Result]:
    partial = out / _partial_name(fingerprint)
    done = _read_partial(partial)
    draws = range(params.n)
    todo = [it for it in items if any(episode_key(it.sample.id, it.variant, k) not in done for k in draws)]
    if done and log:
        log(f"{suite.name}: resuming, {len(items) - len(todo)} of {len(items)} prompts already done")
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        if suite.mode == "loglikelihood":
            episodes = _rank_options(model, chunk)  # type: ignore[arg-type]
        else:
            episodes = _generate(model, chunk, params)  # type: ignore[arg-type]
        for r in _score(suite, episodes):
            append_jsonl(partial, r.to_json())
            done[r.key] = r
        if log:
            log(f"{suite.name}: {min(start + chunk_size, len(todo))}/{len(todo)} prompts")
    return [done[episode_key(it.sample.id, it.variant, k)] for it in items for k in draws]


# ------------------------------------------------------------------------------------ asking


def _error_completion(message: str) -> Completion:
    return Completion(text="", finish_reason="error", error=message)


@runtime_checkable
class KeyedGenerator(Protocol):
    """A generator that can also be told which (sample id, variant, turn) each prompt is, such as a
    file of existing responses matched by sample id (`alignlab.evals.responses.ResponsesFile`)."""

    def generate_keyed(
        self, keys: Sequence[tuple[str, str, int]], prompts: Sequence[Prompt], params: SamplingParams
    ) -> list[list[Completion]]: ...


def ask(
    model: Generator, keys: Sequence[tuple[str, str, int]], prompts: Sequence[Prompt], params: SamplingParams
) -> list[list[Completion]]:
    """`params.n` completions per prompt from `model`, told the (sample id, variant, turn) keys when it
    is a `KeyedGenerator`; a missing completion becomes an error completion."""
    if not prompts:
        return []
    if isinstance(model, KeyedGenerator):
        outs = model.generate_keyed(keys, prompts, params)
    else:
        outs = model.generate(prompts, params)
    if len(outs) != len(prompts):
        raise RuntimeError(f"the generator returned {len(outs)} results for {len(prompts)} prompts")
    short = f"the generator returned fewer than {params.n} completions"
    return [[*o[: params.n], *[_error_completion(short)] * (params.n - len(o))] for o in outs]


@dataclass
class _Running:
    """One (item, draw) conversation being played: the messages so far and the replies so far."""

    item: _Item
    draw: int
    messages: list
    replies: list[Completion]

    def wants(self, turn: int) -> bool:
        return turn < len(self.item.dialogue.followups) and not self.replies[-1].failed

    def episode(self) -> Episode:
        last = self.replies[-1]
        full = self.messages if last.failed else [*self.messages, assistant(last.text)]
        transcript = Transcript(tuple(full), tuple(self.replies))
        return Episode(self.item.sample, self.item.variant, self.draw, self.item.dialogue, transcript)


def _generate(model: Generator, chunk: list[_Item], params: SamplingParams) -> list[Episode]:
    """Every item's n draws, round by round; a failed round ends that episode with its error."""
    keys = [(it.sample.id, it.variant, 0) for it in chunk]
    first = ask(model, keys, [list(it.dialogue.messages) for it in chunk], params)
    running = [_Running(it, k, list(it.dialogue.messages), [first[i][k]])
               for i, it in enumerate(chunk) for k in range(params.n)]  # fmt: skip
    one = replace(params, n=1)  # each draw continues on its own
    for turn in range(max((len(it.dialogue.followups) for it in chunk), default=0)):
        active = [r for r in running if r.wants(turn)]
        for r in active:  # the reply goes back into the conversation, then the next user turn
            r.messages += [assistant(r.replies[-1].text), user(r.item.dialogue.followups[turn])]
        keys = [(r.item.sample.id, r.item.variant, turn + 1) for r in active]
        for r, outs in zip(active, ask(model, keys, [r.messages for r in active], one), strict=True):
            r.replies.append(outs[0])
    return [r.episode() for r in running]


def _rank_options(model: LogLikelihood, chunk: list[_Item]) -> list[Episode]:
    """Log-likelihood of every answer option (correct, then incorrect) of every item."""
    requests = [(it.dialogue.messages, o) for it in chunk for o in (*it.sample.correct, *it.sample.incorrect)]
    logps = model.loglikelihood(requests)
    if len(logps) != len(requests):
        raise RuntimeError(f"the model returned {len(logps)} log-likelihoods for {len(requests)} options")
    episodes, start = [], 0
    for it in chunk:
        stop = start + len(it.sample.correct) + len(it.sample.incorrect)
        transcript = Transcript(it.dialogue.messages, (), tuple(logps[start:stop]))
        episodes.append(Episode(it.sample, it.variant, 0, it.dialogue, transcript))
        start = stop
    return episodes


# ------------------------------------------------------------------------------------ scoring


def _episode_error(e: Episode) -> str | None:
    failed = next((c for c in e.transcript.replies if c.failed), None)
    if failed is None:
        return None
    return failed.error or "generation failed"


def _score(suite: Suite, episodes: list[Episode]) -> list[Result]:
    ok = [e for e in episodes if _episode_error(e) is None]
    scores: dict[str, dict[str, Score]] = {e.key: {} for e in ok}
    for scorer in suite.scorers:
        got = scorer(ok) if ok else []
        if len(got) != len(ok):
            raise RuntimeError(f"scorer {scorer.name!r} returned {len(got)} scores for {len(ok)} episodes")
        for e, s in zip(ok, got, strict=True):
            scores[e.key][scorer.name] = s
    return [_result(e, scores.get(e.key, {}), _episode_error(e)) for e in episodes]


def _best_option(e: Episode) -> str | None:
    opts = (*e.sample.correct, *e.sample.incorrect)
    logps = e.transcript.option_logps
    return opts[max(range(len(logps)), key=logps.__getitem__)] if logps else None


def _result(e: Episode, scores: dict[str, Score], error: str | None) -> Result:
    replies = e.transcript.replies
    first = next(iter(scores.values()), None)
    return Result(
        id=e.sample.id, variant=e.variant, draw=e.draw,
        input=[m.to_json() for m in e.dialogue.messages], followups=list(e.dialogue.followups),
        response=None if error else (e.response if replies else _best_option(e)),
        replies=[c.text for c in replies],
        reply_logps=[sum(c.logprobs) if c.logprobs is not None else None for c in replies],
        reply_tokens=[len(c.token_ids) for c in replies], option_logps=list(e.transcript.option_logps),
        label=first.label if first else None, score=first.value if first else None,
        explanation=first.explanation if first else "",
        scores={k: s.to_json() for k, s in scores.items()}, error=error, metadata=dict(e.sample.metadata),
    )  # fmt: skip
