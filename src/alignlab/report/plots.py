"""The report's plots as inline SVG, drawn with matplotlib (imported here only, when a plot is made).

Figures are built as `matplotlib.figure.Figure` objects and saved straight to SVG, so no GUI
backend and no pyplot state is involved. Text is drawn as glyph paths (`svg.fonttype: path`), so a
plot looks the same on every machine whatever fonts it has; labels from the data have `$`
escaped, since matplotlib would read `$...$` as mathtext. Element ids are prefixed per plot, so
several SVGs share one page. Every figure with an interval is drawn with error bars.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
from collections.abc import Sequence
from typing import Any

from alignlab.report.figures import Fig

PALETTE = ("#3b6fb6", "#e07b39", "#3a9e6f", "#c0504d", "#8064a2", "#4bacc6", "#9b8b3a", "#d16ba5")
STYLE: dict[str, Any] = {
    "svg.fonttype": "path",
    "svg.hashsalt": "alignlab-report",  # stable ids: the same run gives the same file
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.8,
    "axes.edgecolor": "#9aa3ad",
    "legend.frameon": False,
    "legend.fontsize": 8,
    "errorbar.capsize": 3,
    "axes.formatter.useoffset": False,
}
_ID = re.compile(r'\bid="([^"]+)"')


def _styled(fn):
    """Run a plot function under the report's style (figures read rcParams when built and saved)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import matplotlib
        from cycler import cycler

        with matplotlib.rc_context({**STYLE, "axes.prop_cycle": cycler(color=PALETTE)}):
            return fn(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def label(text: object, width: int | None = None) -> str:
    """Text from the data as a matplotlib label: `$` escaped (no mathtext), optionally wrapped."""
    out = str(text).replace("$", r"\$")
    return _wrap(out, width) if width else out


def _wrap(text: str, width: int = 18) -> str:
    lines: list[str] = []
    line = ""
    for w in text.split():
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return "\n".join([*lines, line])


def to_svg(fig) -> str:
    """The figure as an `<svg>` element for inline use: no XML prolog, ids unique on the page."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    # A prefix from the content: stable across runs, distinct between different plots.
    prefix = "f" + hashlib.sha256(text.encode()).hexdigest()[:8] + "-"
    ids = set(_ID.findall(text))
    if ids:
        names = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
        pattern = re.compile(r'(id="|href="#|url\(#)(' + names + r')(?=["\)])')
        text = pattern.sub(lambda m: m[1] + prefix + m[2], text)
    return text


def _errorbars(ax, xs: Sequence[float], figs: Sequence[Fig], **kw) -> None:
    ys = [f.value for f in figs]
    errs = [[f.err()[0] for f in figs], [f.err()[1] for f in figs]]
    ax.errorbar(xs, ys, yerr=errs, **kw)


def _integer_steps(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _legend_right(ax, title: str | None = None) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title=title)


# ------------------------------------------------------------------------------------ training


@_styled
def training_curves(panels: dict[str, dict[str, list[tuple[float, float]]]], title: str) -> str:
    """One small plot per panel (loss, accuracy, reward, KL, learning rate, eval), a line per key."""
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig = _figure(3.4 * cols, 2.5 * rows)
    fig.suptitle(label(title), fontsize=10, fontweight="bold")
    for i, (panel, series) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        for key, points in series.items():
            xs, ys = zip(*points, strict=True)
            ax.plot(
                xs,
                ys,
                marker="o" if len(points) < 30 else None,
                markersize=3,
                linewidth=1.4,
                label=label(key),
            )
        ax.set_title(panel)
        ax.set_xlabel("step")
        _integer_steps(ax)
        if panel == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        if len(series) > 1 or next(iter(series)) not in ("loss", "lr", "kl"):
            ax.legend(loc="best")
    return to_svg(fig)


# ------------------------------------------------------------------------------------ behaviour


@_styled
def refusal_plot(sources: dict[str, dict[str, tuple[Fig, dict[str, Fig]]]], order: list[str]) -> str:
    """Refusal of harmful requests against answering benign ones, per checkpoint (top right is best).

    One panel per source; in each, a line through the checkpoints in order per kind of request.
    """
    fig = _figure(min(4.3 * len(sources), 13.0), 4.0)
    markers = ("o", "s", "^", "D")
    for i, (source, points) in enumerate(sources.items()):
        ax = fig.add_subplot(1, len(sources), i + 1)
        ckpts = [c for c in order if c in points]
        whats = list(dict.fromkeys(w for c in ckpts for w in points[c][1]))
        for j, what in enumerate(whats):
            have = [c for c in ckpts if what in points[c][1]]
            xs = [points[c][0] for c in have]
            ys = [points[c][1][what] for c in have]
            ax.errorbar([x.value for x in xs], [y.value for y in ys],
                        xerr=[[x.err()[0] for x in xs], [x.err()[1] for x in xs]],
                        yerr=[[y.err()[0] for y in ys], [y.err()[1] for y in ys]],
                        marker=markers[j % len(markers)], linestyle="-", linewidth=1, alpha=0.9,
                        color=PALETTE[j % len(PALETTE)], label=label(f"{what} refused"))  # fmt: skip
            for c, x, y in zip(have, xs, ys, strict=True):
                ax.annotate(
                    label(c), (x.value, y.value), textcoords="offset points", xytext=(5, 5), fontsize=8
                )
        ax.set_xlim(-0.04, 1.04)
        ax.set_ylim(-0.04, 1.04)
        ax.set_xlabel("benign requests answered")
        ax.set_ylabel("harmful requests refused")
        ax.set_title(label(source, 40))
        ax.legend(loc="lower left")
    return to_svg(fig)


@_styled
def grouped_bars(groups: dict[str, dict[str, Fig]], order: list[str], title: str, ylabel: str, *,
                 ylim: tuple[float, float] | None = (0, 1), legend: str = "checkpoint") -> str:
    """Bars per group (x axis) and checkpoint (colour; or what `legend` names), with error bars."""
    ckpts = [c for c in order if any(c in g for g in groups.values())]
    width = 0.8 / max(len(ckpts), 1)
    fig = _figure(max(5.0, min(2.0 + 0.5 * len(groups) * max(len(ckpts), 1), 11.5)), 3.5)
    ax = fig.add_subplot(1, 1, 1)
    names = list(groups)
    for j, c in enumerate(ckpts):
        xs = [i + (j - (len(ckpts) - 1) / 2) * width for i, g in enumerate(names) if c in groups[g]]
        figs = [groups[g][c] for g in names if c in groups[g]]
        ax.bar(
            xs,
            [f.value or 0.0 for f in figs],
            width * 0.92,
            color=PALETTE[j % len(PALETTE)],
            label=label(c),
            yerr=[[f.err()[0] for f in figs], [f.err()[1] for f in figs]],
            ecolor="#333",
            capsize=2,
        )
    ax.set_xticks(range(len(names)), [label(n, 20) for n in names], fontsize=8)
    ax.grid(axis="x", visible=False)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(label(title, 70))
    _legend_right(ax, legend)
    return to_svg(fig)


@_styled
def checkpoint_lines(sources: dict[str, dict[str, Fig]], order: list[str], title: str, ylabel: str) -> str:
    """A line per source across the checkpoints in order (length drift), with error bars."""
    ckpts = [c for c in order if any(c in s for s in sources.values())]
    fig = _figure(max(6.0, min(3.5 + 1.1 * len(ckpts), 10.0)), 3.3)
    ax = fig.add_subplot(1, 1, 1)
    for j, (source, values) in enumerate(sources.items()):
        have = [i for i, c in enumerate(ckpts) if c in values]
        _errorbars(ax, have, [values[ckpts[i]] for i in have], marker="o", linewidth=1.5,
                   color=PALETTE[j % len(PALETTE)], label=label(source, 34))  # fmt: skip
    ax.set_xticks(range(len(ckpts)), [label(c) for c in ckpts])
    ax.set_xlim(-0.5, len(ckpts) - 0.5)
    ax.set_ylim(bottom=0)
    ax.set_ylabel(ylabel)
    ax.set_title(label(title))
    _legend_right(ax, "source")
    return to_svg(fig)


# ------------------------------------------------------------------------------------ reward model


@_styled
def reliability_plot(bins: list[dict[str, float]], title: str, accuracy: list[Fig]) -> str:
    """Reliability diagram: accuracy against confidence per bin (Wilson intervals), pairs per bin below."""
    fig = _figure(5.0, 4.6)
    grid = fig.add_gridspec(2, 1, height_ratios=(3, 1))
    ax = fig.add_subplot(grid[0])
    hist = fig.add_subplot(grid[1], sharex=ax)
    ax.plot([0.5, 1.0], [0.5, 1.0], linestyle="--", color="#9aa3ad", linewidth=1, label="calibrated")
    _errorbars(ax, [b["confidence"] for b in bins], accuracy, marker="o", linestyle="-", color=PALETTE[0],
               label="reward model")  # fmt: skip
    ax.set_xlim(0.49, 1.01)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("accuracy (chosen preferred)")
    ax.set_title(label(title, 60))
    ax.legend(loc="upper left")
    hist.bar([(b["lower"] + b["upper"]) / 2 for b in bins], [b["count"] for b in bins],
             width=[(b["upper"] - b["lower"]) * 0.9 for b in bins], color=PALETTE[1])  # fmt: skip
    hist.set_xlabel("confidence max(p, 1 − p), p = σ(r_chosen − r_rejected)")
    hist.set_ylabel("pairs")
    return to_svg(fig)


@_styled
def overoptimisation_plot(series: dict[str, list[dict[str, Any]]], proxy_name: str, gold_name: str,
                          x_name: str) -> str:  # fmt: skip
    """Proxy reward (left axis) and gold utility (right axis) against KL, a pair of lines per series."""
    fig = _figure(7.0, 3.9)
    ax = fig.add_subplot(1, 1, 1)
    gold_ax = ax.twinx()
    for j, (name, points) in enumerate(series.items()):
        pts = sorted(points, key=lambda p: p["kl"])
        xs = [p["kl"] for p in pts]
        suffix = f" ({name})" if len(series) > 1 and name else ""
        _errorbars(ax, xs, [p["proxy"] for p in pts], marker="o", linewidth=1.5, color=PALETTE[(2 * j) % 8],
                   label=label(f"{proxy_name}{suffix}"))  # fmt: skip
        _errorbars(gold_ax, xs, [p["gold"] for p in pts], marker="s", linewidth=1.5, linestyle="--",
                   color=PALETTE[(2 * j + 1) % 8], label=label(f"{gold_name}{suffix}"))  # fmt: skip
        for p in pts:
            if p["label"]:
                ax.annotate(label(p["label"]), (p["kl"], p["proxy"].value), textcoords="offset points",
                            xytext=(4, 6), fontsize=7)  # fmt: skip
    ax.set_xlabel(label(x_name))
    ax.set_ylabel(label(proxy_name))
    gold_ax.set_ylabel(label(gold_name))
    gold_ax.spines["right"].set_visible(True)
    gold_ax.grid(False)
    ax.set_title("Reward over-optimisation")
    handles, names = ax.get_legend_handles_labels()
    more_handles, more_names = gold_ax.get_legend_handles_labels()
    ax.legend(handles + more_handles, names + more_names, loc="upper left", bbox_to_anchor=(1.12, 1.0))
    return to_svg(fig)
