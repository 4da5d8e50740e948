"""Checkpoints side by side: eval tables and the series the behaviour plots draw.

Sources are the lab's `lab_eval` stages (gold-judge figures per request family) and eval-suite
results (`summary.json` per suite and checkpoint). Every function here is pure data in, data out
(no plotting), so each figure the report shows is testable on a written run directory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from alignlab.report import artefacts as art
from alignlab.report.figures import Fig, mean, rate, rate_from_share

LAB_NOT_RATES = frozenset({"n", "utility", "utility_se", "words"})
LAB_FIRST = ("followed", "utility", "words")
# Suite metric names (docs/evals.md); a judge's verdict is preferred to string matching when both exist.
SCORERS = ("judge", "refusal_match")
DIRECT = "direct"
# Lab diversity figures (lab.diversity) -> (the plot they go in, their name in its legend).
DIVERSITY = {
    "distinct_1": ("distinct n-grams", "distinct-1"),
    "distinct_2": ("distinct n-grams", "distinct-2"),
    "entropy_bits": ("entropy", "entropy (bits)"),
}


@dataclass(frozen=True)
class Row:
    group: str
    label: str
    cells: dict[str, Fig]


@dataclass(frozen=True)
class Grid:
    """A table of figures: one column per checkpoint, rows grouped (a family, a suite variant)."""

    title: str
    columns: list[str]
    rows: list[Row]
    note: str = ""


@dataclass
class Behaviour:
    """The series behind the behaviour plots, each keyed by source (a lab stage or a suite)."""

    # source -> checkpoint -> (benign answered, {what: refusal rate})
    refusal: dict[str, dict[str, tuple[Fig, dict[str, Fig]]]] = field(default_factory=dict)
    # source -> transform -> checkpoint -> attack success
    attacks: dict[str, dict[str, dict[str, Fig]]] = field(default_factory=dict)
    # measure -> checkpoint -> flip rate
    sycophancy: dict[str, dict[str, Fig]] = field(default_factory=dict)
    # source -> checkpoint -> words per response
    length: dict[str, dict[str, Fig]] = field(default_factory=dict)
    # measure (distinct-n or entropy of a prompt's samples) -> source -> checkpoint -> figure
    diversity: dict[str, dict[str, dict[str, Fig]]] = field(default_factory=dict)
    checkpoints: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.refusal or self.attacks or self.sycophancy or self.length or self.diversity)


# ------------------------------------------------------------------------------------ order


def checkpoint_order(run: art.Run, names: Iterable[str]) -> list[str]:
    """base -> SFT -> DPO / PPO: the order lab_eval and eval configs list models, then the order stages
    ran."""
    canonical: list[str] = []
    for s in run.stages:
        named = (
            art.lab_models(s) if s.kind == "lab_eval" else art.eval_checkpoints(s) if s.kind == "eval" else []
        )
        canonical += [m for m in named if m not in canonical]
    canonical += [s.name for s in run.stages if s.name not in canonical]
    rank = {n: i for i, n in enumerate(canonical)}
    return sorted(set(names), key=lambda n: (rank.get(n, len(rank)), n))


# ------------------------------------------------------------------------------------ the lab


@dataclass(frozen=True)
class LabEval:
    """One lab_eval stage read: its table with intervals, per model in config order."""

    stage: str
    label: str  # the stage and how it decoded
    models: list[str]
    table: dict[str, dict[str, dict[str, Fig]]]  # model -> family -> metric -> figure
    subtypes: dict[str, dict[str, dict[str, Fig]]]  # model -> jailbreak subtype -> metric -> figure
    samples_per_prompt: int = 1


def read_lab_eval(run: art.Run, stage: art.Stage) -> LabEval | None:
    raw = art.lab_scores(stage)
    if raw is None:
        return None
    responses = art.lab_responses(stage)
    subtype_of = art.lab_subtypes(run, stage) if responses else {}
    named = art.lab_models(stage)
    order = [m for m in named if m in raw] + [m for m in raw if m not in named]
    table = {m: _lab_model(raw[m], responses.get(m, [])) for m in order if isinstance(raw[m], dict)}
    subtypes = {m: _by_subtype(responses.get(m, []), subtype_of) for m in table}
    how, k = _decoding(stage.config)
    return LabEval(stage.name, f"lab: {stage.name} ({how})", list(table), table, subtypes, k)


def _decoding(config: dict[str, Any]) -> tuple[str, int]:
    """How a lab_eval stage sampled, in words, and its samples per prompt."""
    t, k = config.get("temperature"), config.get("samples_per_prompt")
    k = int(k) if isinstance(k, int | float) and k >= 1 else 1
    if not isinstance(t, int | float) or t == 0:
        return "greedy", k
    return (f"temperature {t:g}, {k} samples per prompt" if k > 1 else f"temperature {t:g}"), k


def _lab_model(families: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, dict[str, Fig]]:
    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_family[str(r.get("family"))].append(r)
        by_family["all"].append(r)
    out = {}
    for family, metrics in families.items():
        if isinstance(metrics, dict):
            out[family] = _lab_row(metrics, by_family.get(family, []))
    return out


def _lab_row(metrics: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Fig]:
    n_fig = Fig.read(metrics.get("n"))  # a count, or a figure whose n is the count
    n = None if n_fig is None else n_fig.n if n_fig.n is not None else _count(n_fig.value)
    row: dict[str, Fig] = {}
    for key, raw in metrics.items():
        if key in ("n", "utility_se"):
            continue
        fig = Fig.read(raw, n)
        if fig is None:
            continue
        if not fig.has_interval and fig.value is not None:
            fig = _lab_interval(key, fig, n, metrics, rows)
        row[key] = fig
    ordered = [k for k in LAB_FIRST if k in row] + sorted(k for k in row if k not in LAB_FIRST)
    return {k: row[k] for k in ordered}


def _count(x: float | None) -> int | None:
    return int(x) if x is not None else None


def _lab_interval(
    key: str, fig: Fig, n: int | None, metrics: dict[str, Any], rows: list[dict[str, Any]]
) -> Fig:
    """An interval for a plain lab number: Wilson for a rate, t over the responses for a mean."""
    if key not in LAB_NOT_RATES and n:
        return rate_from_share(fig.value, n)  # type: ignore[arg-type]
    values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
    if values and (n is None or len(values) == n):
        return mean(values)
    se = Fig.read(metrics.get(f"{key}_se"))
    if se is not None and se.value is not None:  # the stage's own standard error (normal interval)
        half = 1.96 * se.value
        return Fig(fig.value, fig.value - half, fig.value + half, n, "normal")  # type: ignore[operator]
    return fig


def _by_subtype(rows: list[dict[str, Any]], subtype_of: dict[str, str]) -> dict[str, dict[str, Fig]]:
    """Jailbreak rows per wrapper: leaked (attack success) and refused rates; harmful rows as 'direct'."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("family") == "jailbreak" and str(r.get("id")) in subtype_of:
            groups[subtype_of[str(r["id"])]].append(r)
        elif r.get("family") == "harmful":
            groups[DIRECT].append(r)
    return {
        name: {"leaked_hazard": rate(sum(bool(r.get("leaked_hazard")) for r in rs), len(rs)),
               "refused": rate(sum(bool(r.get("refused")) for r in rs), len(rs))}
        for name, rs in sorted(groups.items(), key=lambda kv: (kv[0] != DIRECT, kv[0]))
    }  # fmt: skip


def lab_grid(lab: LabEval) -> Grid:
    rows = []
    families = list(dict.fromkeys(f for m in lab.models for f in lab.table[m]))
    for family in families:
        metrics = list(dict.fromkeys(k for m in lab.models for k in lab.table[m].get(family, {})))
        for metric in metrics:
            cells = {
                m: lab.table[m][family][metric] for m in lab.models if metric in lab.table[m].get(family, {})
            }
            rows.append(Row(family, metric, cells))
    note = (
        "Gold-judge figures per request family. Rates with the Wilson 95 % interval; means with a t interval."
    )
    if lab.samples_per_prompt > 1:
        note += (
            f" n counts every response ({lab.samples_per_prompt} per prompt); responses to one prompt are "
            "not independent, so these intervals are narrower than the prompts alone support."
        )
    return Grid(lab.label, lab.models, rows, note)


def lab_subtype_grid(lab: LabEval) -> Grid | None:
    """Jailbreak wrappers of the lab (from each response's prompt subtype): refused and hazard given."""
    rows = []
    names = list(dict.fromkeys(t for m in lab.models for t in lab.subtypes.get(m, {})))
    for name in names:
        for metric in ("refused", "leaked_hazard"):
            cells = {m: lab.subtypes[m][name][metric] for m in lab.models if name in lab.subtypes.get(m, {})}
            rows.append(Row(name, metric, cells))
    if not rows:
        return None
    note = (
        "'direct' is the harmful family asked plainly; the others wrap the same requests. "
        "Wilson 95 % intervals."
    )
    return Grid(f"{lab.label}: jailbreak wrappers", lab.models, rows, note)


# ------------------------------------------------------------------------------------ suites


def _by_suite(results: list[art.SuiteResult]) -> dict[str, dict[str, dict[str, Any]]]:
    """suite -> checkpoint -> summary."""
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in results:
        out[r.suite][r.checkpoint] = r.summary
    return out


def _at(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]..., or None where a level is missing."""
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _cells(per_ckpt: dict[str, dict[str, Any]], cols: list[str], *path: str) -> dict[str, Fig]:
    figs = {c: Fig.read(_at(per_ckpt[c], *path)) for c in cols}
    return {c: f for c, f in figs.items() if f is not None}


def _keys(per_ckpt: dict[str, dict[str, Any]], cols: list[str], *path: str) -> list[str]:
    """The keys under `path` in any checkpoint's summary, in first-seen order."""
    return list(dict.fromkeys(k for c in cols for k in (_at(per_ckpt[c], *path) or {})))


def suite_grids(run: art.Run, results: list[art.SuiteResult]) -> list[Grid]:
    """One table per suite: rows variant x metric (then the suite's aggregates), columns checkpoints."""
    grids = []
    for suite, per_ckpt in _by_suite(results).items():
        cols = checkpoint_order(run, per_ckpt)
        rows = [
            Row(v, k, _cells(per_ckpt, cols, "metrics", v, k))
            for v in _keys(per_ckpt, cols, "metrics")
            for k in _keys(per_ckpt, cols, "metrics", v)
        ]
        rows += [Row("aggregates", k, _cells(per_ckpt, cols, "aggregates", k))
                 for k in _keys(per_ckpt, cols, "aggregates")]  # fmt: skip
        rows.append(Row("errors", "generation failed", _cells(per_ckpt, cols, "error_rate")))
        note = ", ".join(f"{c} {per_ckpt[c].get('n_samples')}" for c in cols)
        grids.append(Grid(f"suite: {suite}", cols, rows, f"Samples per checkpoint: {note}. 95 % intervals."))
    return grids


def _suite_metric(summary: dict[str, Any] | None, variant: str, metric: str, scorers=SCORERS) -> Fig | None:
    """`scorer/metric` of a variant, the first scorer's that has it (a judge's before string matching)."""
    for scorer in scorers:
        fig = Fig.read(_at(summary, "metrics", variant, f"{scorer}/{metric}"))
        if fig is not None and fig.value is not None:
            return fig
    return None


# ------------------------------------------------------------------------------------ behaviour


def behaviour(run: art.Run, labs: list[LabEval], results: list[art.SuiteResult]) -> Behaviour:
    b = Behaviour()
    for lab in labs:
        _lab_behaviour(b, lab)
    by_suite = _by_suite(results)
    for add in (_suite_refusal, _suite_attacks, _suite_sycophancy, _suite_length):
        add(b, by_suite)
    for source, attacks in list(b.attacks.items()):  # the direct request first, then transforms by name
        b.attacks[source] = {t: attacks[t] for t in sorted(attacks, key=lambda t: (t != DIRECT, t))}
    diversity = [d for sources in b.diversity.values() for d in sources.values()]
    names = {
        c for d in (*b.refusal.values(), *b.length.values(), *b.sycophancy.values(), *diversity) for c in d
    }
    names |= {c for t in b.attacks.values() for d in t.values() for c in d}
    b.checkpoints = checkpoint_order(run, names)
    return b


def _lab_behaviour(b: Behaviour, lab: LabEval) -> None:
    for m in lab.models:
        fams = lab.table[m]
        benign, harmful = _at(fams, "benign", "refused"), _at(fams, "harmful", "refused")
        if benign is not None and harmful is not None:
            refused = {"harmful": harmful}
            if _at(fams, "jailbreak", "refused") is not None:
                refused["jailbreak"] = fams["jailbreak"]["refused"]
            b.refusal.setdefault(lab.label, {})[m] = (benign.complement(), refused)
        subtypes = lab.subtypes.get(m) or {}
        if not subtypes and _at(fams, "jailbreak", "leaked_hazard") is not None:
            subtypes = {"all wrappers": {"leaked_hazard": fams["jailbreak"]["leaked_hazard"]}}
        for name, figs in subtypes.items():
            b.attacks.setdefault(lab.label, {}).setdefault(name, {})[m] = figs["leaked_hazard"]
        if _at(fams, "sycophancy", "flipped") is not None:
            b.sycophancy.setdefault(f"lab {lab.stage}: adopts the user's wrong claim", {})[m] = fams[
                "sycophancy"
            ]["flipped"]
        if _at(fams, "all", "words") is not None:
            b.length.setdefault(lab.label, {})[m] = fams["all"]["words"]
        for key, (measure, name) in DIVERSITY.items():
            if _at(fams, "all", key) is not None:
                b.diversity.setdefault(measure, {}).setdefault(f"{lab.label}: {name}", {})[m] = (
                    fams["all"][key]
                )


def _suite_refusal(b: Behaviour, by_suite: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Over-refusal suites give the x (safe prompts answered) and their unsafe prompts a y; AdvBench or
    HarmBench at the same checkpoint another y."""
    for suite in ("xstest", "orbench"):
        for c, s in by_suite.get(suite, {}).items():
            safe = _suite_metric(s, "default", "safe/refusal")
            if safe is None:
                continue
            refused = {}
            unsafe = _suite_metric(s, "default", "unsafe/refusal")
            if unsafe is not None:
                refused[f"{suite} unsafe"] = unsafe
            for harmful in ("advbench", "harmbench"):
                direct = _suite_metric(by_suite.get(harmful, {}).get(c), "default", "refusal")
                if direct is not None:
                    refused[harmful] = direct
            if refused:
                b.refusal.setdefault(f"suite: {suite}", {})[c] = (safe.complement(), refused)


def _suite_attacks(b: Behaviour, by_suite: dict[str, dict[str, dict[str, Any]]]) -> None:
    for c, s in by_suite.get("jailbreak", {}).items():
        for variant in s.get("metrics") or {}:
            fig = _suite_metric(s, variant, "attack_success")
            if fig is not None:
                b.attacks.setdefault("suite: jailbreak", {}).setdefault(variant, {})[c] = fig


def _suite_sycophancy(b: Behaviour, by_suite: dict[str, dict[str, dict[str, Any]]]) -> None:
    measures = (("flipped", "are you sure?: changes its answer"),
                ("flip_from_correct", "are you sure?: abandons a correct answer"))  # fmt: skip
    for c, s in by_suite.get("sycophancy", {}).items():
        for metric, label in measures:
            fig = _suite_metric(s, "are_you_sure", metric, ("sycophancy",))
            if fig is not None:
                b.sycophancy.setdefault(f"suite: {label}", {})[c] = fig


def _suite_length(b: Behaviour, by_suite: dict[str, dict[str, dict[str, Any]]]) -> None:
    for c, s in by_suite.get("diversity", {}).items():
        fig = _suite_metric(s, "default", "words", ("length",))
        if fig is not None:
            b.length.setdefault("suite: diversity", {})[c] = fig


# ------------------------------------------------------------------------------------ differences


def difference_grids(run: art.Run) -> list[Grid]:
    """Per eval stage: each suite's headline figures as paired differences between its checkpoints
    (later minus earlier, on the same samples), one column per pair; from its `results.json`."""
    grids = []
    for s in run.of_kind(art.EVAL_KIND):
        data = art.eval_results(s.dir) or {}
        diffs, order = data.get("differences") or {}, [str(c) for c in data.get("checkpoints") or []]
        pairs = [(later, earlier) for j, later in enumerate(order) for earlier in order[:j]]
        cols = [f"{later} − {earlier}" for later, earlier in pairs]
        rows = []
        for suite, info in (data.get("suites") or {}).items():
            for label in info.get("headline") or []:
                where, _, metric = str(label).partition(":")
                for variant in _variants(where, diffs, pairs, suite):
                    cells = {col: Fig.read(_at(diffs, later, earlier, suite, variant, metric))
                             for col, (later, earlier) in zip(cols, pairs, strict=True)}  # fmt: skip
                    cells = {c: f for c, f in cells.items() if f is not None}
                    if cells:
                        rows.append(Row(suite, f"{variant}:{metric}", cells))
        if rows:
            note = (
                "Later minus earlier checkpoint, paired by sample (the same prompts), "
                "with a t interval and n pairs."
            )
            grids.append(Grid(f"differences between checkpoints: {s.name}", cols, rows, note))
    return grids


def _variants(where: str, diffs: dict[str, Any], pairs: list[tuple[str, str]], suite: str) -> list[str]:
    if where == "aggregate":  # suite-level figures have no per-sample pairs
        return []
    if where != "*":
        return [where]
    found = (_at(diffs, later, earlier, suite) or {} for later, earlier in pairs)
    return list(dict.fromkeys(v for d in found for v in d))
