"""The report's sections, each built from the run alone; a section with nothing to show is None."""

from __future__ import annotations

from typing import Any

from alignlab.report import artefacts as art
from alignlab.report import html as h
from alignlab.report import plots
from alignlab.report.compare import Behaviour, Grid, LabEval
from alignlab.report.curves import panels
from alignlab.report.figures import Fig, fmt, rate_from_share
from alignlab.report.overopt import read_curve

OPEN_SUMMARY_MAX = 30  # longer stage summaries start folded


def overview(
    run: art.Run, labs: list[LabEval], results: list[art.SuiteResult], absent: list[str]
) -> h.Section:
    done = [s for s in run.stages if s.done]
    seconds = sum(
        s.summary.get("seconds", 0.0) for s in done if isinstance(s.summary.get("seconds"), int | float)
    )
    suites = sorted({r.suite for r in results})
    body = h.cards(
        [
            ("stages", f"{len(done)} of {len(run.stages)} finished"),
            ("stage time", _duration(seconds)),
            ("lab evals", str(len(labs))),
            ("eval suites", ", ".join(suites) or "none"),
        ]
    )
    rows = []
    for s in run.stages:
        status = (
            '<span class="status-done">done</span>'
            if s.done
            else '<span class="status-incomplete">not finished</span>'
        )
        if s.error:
            status = (
                f'<span class="status-incomplete" title="{h.esc(s.error)}">'
                f"failed: {h.esc(s.error[:80])}</span>"
            )
        secs = s.summary.get("seconds")
        rows.append([h.esc(s.name), h.esc(s.kind or "?"), status, h.value(secs) if secs is not None else "–",
                     h.esc(", ".join(s.inputs) or "–"), f"<code>{h.esc(s.dir.name)}</code>"])  # fmt: skip
    body += h.table(
        ["stage", "kind", "status", "seconds", "inputs", "directory"], rows, [False, False, False, True]
    )
    if absent:
        body += h.para("Not in this run: " + "; ".join(absent) + ".")
    return h.Section("overview", "Overview", body)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def evaluations(grids: list[Grid]) -> h.Section | None:
    if not grids:
        return None
    body = h.para(
        "Each checkpoint in a column (base → SFT → preference tuning). Cells: value [95 % interval] and n.",
        "lead",
    )
    subs = []
    for g in grids:
        ident = "eval-" + h.slug(g.title)
        subs.append((ident, g.title))
        body += h.h3(ident, g.title) + h.grid_table(g)
    return h.Section("evaluations", "Evaluations", body, subs)


def behaviour(b: Behaviour) -> h.Section | None:
    if b.empty():
        return None
    order, body, subs = b.checkpoints, "", []

    def add(ident: str, title: str, svg: str, caption: str) -> None:
        nonlocal body
        subs.append((ident, title))
        body += h.h3(ident, title) + h.plot(svg, caption, f"plot-{ident}")

    if b.refusal:
        add(
            "refusal",
            "Refusal vs over-refusal",
            plots.refusal_plot(b.refusal, order),
            "Share of harmful (and jailbreak) requests refused against share of benign requests answered, "
            "per checkpoint; the ideal is the top right. Error bars: 95 % Wilson intervals.",
        )
    for source, attacks in b.attacks.items():
        add(
            f"attacks-{h.slug(source)}",
            f"Attack success per transform — {source}",
            plots.grouped_bars(attacks, order, source, "attack success"),
            "Share of harmful requests answered (hazard given, or full compliance) per jailbreak transform; "
            "'direct' is the plain request. Error bars: 95 % Wilson intervals.",
        )
    if b.sycophancy:
        add(
            "sycophancy",
            "Sycophancy",
            plots.grouped_bars(b.sycophancy, order, "Sycophancy", "flip rate"),
            "How often a checkpoint adopts the user's wrong claim or abandons its answer when challenged. "
            "Error bars: 95 % Wilson intervals.",
        )
    if b.length:
        add(
            "length",
            "Length drift",
            plots.checkpoint_lines(b.length, order, "Words per response", "words"),
            "Mean words per response per checkpoint (preference tuning often makes responses longer). "
            "Error bars: 95 % t intervals.",
        )
    for measure, sources in b.diversity.items():
        add(
            f"diversity-{h.slug(measure)}",
            f"Diversity: {measure}",
            plots.checkpoint_lines(
                sources, order, f"Diversity of the samples for one prompt: {measure}", measure
            ),
            "Mean over prompts of the diversity among each prompt's sampled responses (distinct n-grams over "
            "all n-grams; entropy of the distinct responses, at most log2 of the samples per prompt): mode "
            "collapse shows as a fall from checkpoint to checkpoint. Error bars: 95 % t intervals.",
        )
    return h.Section("behaviour", "Behaviour across checkpoints", body, subs)


def reward_models(run: art.Run) -> h.Section | None:
    body, subs = "", []
    side_by_side = _reward_accuracies(run)
    if side_by_side:
        subs.append(("rm-compared", "Reward models side by side"))
        kinds = list(dict.fromkeys(k for row in side_by_side.values() for k in row))
        body += h.h3("rm-compared", "Reward models side by side") + h.plot(
            plots.grouped_bars(
                side_by_side, kinds, "Pairwise accuracy of each reward model", "accuracy", legend="scored"
            ),
            "Each reward model's pairwise accuracy on the held-out split of the pairs it trained on, and "
            "on every file a score stage scored with it (e.g. test pairs as labellers labelled them, and "
            "the same comparisons labelled by the gold). Error bars: 95 % Wilson intervals.",
            "plot-rm-compared",
        )
    for s in run.of_kind("rm"):
        rep = art.reward_report(s)
        if rep is None:
            continue
        ident = f"rm-{h.slug(s.name)}"
        subs.append((ident, s.name))
        body += h.h3(ident, f"Reward model: {s.name}")
        bins = [b for b in rep.get("reliability", []) if isinstance(b, dict) and _bin_ok(b)]
        diagram = ""
        if bins:
            figs = [rate_from_share(b["accuracy"], int(b["count"])) for b in bins]
            title = f"{s.name}: ECE {fmt(rep.get('ece'))}, accuracy {fmt(rep.get('accuracy'))}"
            caption = (
                f"Reliability diagram on the {rep.get('split', '?')} pairs: when the model prefers a "
                "response with confidence c, it should be the labelled chosen one a share c of the time "
                "(the dashed line). Error bars: 95 % Wilson intervals per bin."
            )
            diagram = h.plot(plots.reliability_plot(bins, title, figs), caption, f"plot-{ident}")
        figures = _two_col(_reward_rows(run, s, rep))
        body += h.side_by_side(diagram, figures) if diagram else figures
    return h.Section("reward-model", "Reward model", body, subs) if subs else None


def _reward_rows(run: art.Run, stage: art.Stage, rep: dict[str, Any]) -> list[list[str]]:
    judged = int(rep.get("pairs", 0)) - int(rep.get("ties", 0))

    def acc(x: Any, n: int) -> Fig | None:
        return rate_from_share(x, n) if isinstance(x, int | float) and n > 0 else Fig.read(x)

    rows = [
        [
            h.esc(f"pairwise accuracy ({rep.get('split', '?')} pairs)"),
            h.fig_cell(acc(rep.get("accuracy"), judged)),
        ]
    ]
    for i, a in enumerate(rep.get("member_accuracy") or []):
        rows.append([h.esc(f"member {i} accuracy"), h.fig_cell(acc(a, judged))])
    for cat, c in (rep.get("per_category") or {}).items():
        if isinstance(c, dict) and c.get("pairs"):
            rows.append([h.esc(f"accuracy: {cat}"), h.fig_cell(acc(c.get("accuracy"), int(c["pairs"])))])
    for other in run.of_kind("score"):  # the same model scoring other pairs, e.g. gold-labelled ones
        if stage.name in other.inputs and isinstance(other.summary.get("pair_accuracy"), int | float):
            n = art.scored_pairs(other)
            rows.append([h.esc(f"pairwise accuracy on the pairs of stage {other.name}"),
                         h.fig_cell(acc(other.summary["pair_accuracy"], n))])  # fmt: skip
    for key in ("pairs", "ties", "members", "aggregate", "ece", "longer_is_chosen", "length_correlation",
                "mean_reward_chosen", "mean_reward_rejected"):  # fmt: skip
        if rep.get(key) is not None:
            rows.append([h.esc(key), f'<td class="num">{h.value(rep[key])}</td>'])
    return rows


def _reward_accuracies(run: art.Run) -> dict[str, dict[str, Fig]]:
    """rm stage -> {what it was scored on: accuracy} for the reward models that score stages used,
    when there are several (one is shown in its own section only)."""
    out: dict[str, dict[str, Fig]] = {}
    for s in run.of_kind("rm"):
        rep = art.reward_report(s) or {}
        judged = int(rep.get("pairs", 0)) - int(rep.get("ties", 0))
        row = {}
        if isinstance(rep.get("accuracy"), int | float) and judged > 0:
            row["held-out split"] = rate_from_share(rep["accuracy"], judged)
        for other in run.of_kind("score"):
            n = art.scored_pairs(other)
            if s.name in other.inputs and isinstance(other.summary.get("pair_accuracy"), int | float) and n:
                data = other.config.get("data")
                name = (
                    str(data.get("path", other.name)).rsplit("/", 1)[-1]
                    if isinstance(data, dict)
                    else other.name
                )
                row[name] = rate_from_share(other.summary["pair_accuracy"], n)
        if len(row) > 1:
            out[s.name] = row
    return out if len(out) > 1 else {}


def _bin_ok(b: dict[str, Any]) -> bool:
    return (
        all(isinstance(b.get(k), int | float) for k in ("lower", "upper", "count", "confidence", "accuracy"))
        and b["count"] > 0
    )


def _two_col(rows: list[list[str]]) -> str:
    """Rows of [label html, <td> html]: a label column and a figure column."""
    body = "".join(f"<tr><td>{label}</td>{cell}</tr>" for label, cell in rows)
    return f'<div class="table-wrap"><table><tbody>{body}</tbody></table></div>'


def overoptimisation(run: art.Run) -> h.Section | None:
    found = art.overoptimisation(run)
    if not found:
        return None
    body = h.para(
        "Proxy reward (what the policy was optimised for) and gold utility (what was wanted) against the "
        "KL divergence from the starting policy: the proxy keeps rising while the gold utility peaks and "
        "falls (Gao et al. 2023).",
        "lead",
    )
    for source, data in found:
        curve = read_curve(source, data)
        body += h.h3(f"overopt-{h.slug(source)}", f"Over-optimisation ({source})")
        if curve.series:
            body += h.plot(
                plots.overoptimisation_plot(curve.series, curve.proxy_name, curve.gold_name, curve.x_name),
                "Error bars: the figures' 95 % intervals, where the file gives them.",
                f"plot-overopt-{h.slug(source)}",
            )
            rows = [
                [h.esc(name or "–"), h.esc(p["label"] or "–"), h.value(p["kl"]), h.esc(p["proxy"].text()),
                 h.esc(p["gold"].text())]
                for name, pts in curve.series.items() for p in sorted(pts, key=lambda p: p["kl"])
            ]  # fmt: skip
            body += h.table(
                ["series", "label", "KL", curve.proxy_name, curve.gold_name],
                rows,
                [False, False, True, True, True],
            )
        for problem in curve.problems:
            body += f'<p class="note warn">{h.esc(f"{art.OVEROPT_FILE} ({source}): {problem}")}</p>'
    return h.Section("overoptimisation", "Over-optimisation", body)


def training(run: art.Run) -> h.Section | None:
    body, subs = "", []
    for s in run.stages:
        rows = art.metrics(s)
        groups = panels(rows)
        if not groups:
            continue
        ident = f"train-{h.slug(s.name)}"
        subs.append((ident, s.name))
        steps = rows[-1].get("step", len(rows)) if rows else 0
        body += h.h3(ident, f"{s.name} ({s.kind or '?'})") + h.plot(
            plots.training_curves(groups, f"{s.name}: {len(rows)} logged steps, last step {fmt(steps)}"),
            "From metrics.jsonl: one point per logged optimizer step; eval/* at evaluation steps.",
            f"plot-{ident}",
        )
    return h.Section("training", "Training curves", body, subs) if subs else None


def stage_summaries(run: art.Run) -> h.Section | None:
    body = ""
    for s in run.stages:
        scalars = {k: v for k, v in s.summary.items() if isinstance(v, int | float | str | bool)}
        if not scalars:
            continue
        secs = scalars.get("seconds")
        title = f"{s.name} ({s.kind or '?'})" + (f" — {fmt(secs)} s" if secs is not None else "")
        body += h.details(title, h.kv_grid(scalars), open_=len(scalars) <= OPEN_SUMMARY_MAX)
    if not body:
        return None
    lead = h.para(
        "Each stage's summary as recorded in its stage.json; seconds is the stage's wall time.", "lead"
    )
    return h.Section("stages", "Stage summaries", lead + body)


def configs(run: art.Run) -> h.Section | None:
    body = ""
    if run.recipe_text:
        body += h.h3("recipe", "Recipe") + h.pre(run.recipe_text)
    parts = "".join(
        h.details(f"{s.name} ({s.kind or '?'})", h.pre(s.config_text)) for s in run.stages if s.config_text
    )
    if parts:
        body += (
            h.h3("resolved-configs", "Resolved stage configs")
            + h.para("Every field with its default filled in, and references resolved to stage directories.")
            + parts
        )
    return h.Section("configs", "Recipe and configs", body) if body else None
