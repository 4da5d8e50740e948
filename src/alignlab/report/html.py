"""HTML building blocks of the report: every string from the data goes through `esc`.

No templates and no script: small functions that return markup, one page with inline CSS.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from alignlab.report.compare import Grid
from alignlab.report.figures import Fig, fmt


def esc(x: Any) -> str:
    """Text for HTML content or a quoted attribute."""
    return html.escape(str(x), quote=True)


def slug(text: str) -> str:
    """An id from text: lower case, runs of other characters as one dash."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


@dataclass
class Section:
    id: str
    title: str
    body: str
    subsections: list[tuple[str, str]] = field(default_factory=list)  # (id, title) for the contents


def page(title: str, meta: Sequence[str], sections: Sequence[Section]) -> str:
    css = resources.files("alignlab.report").joinpath("report.css").read_text(encoding="utf-8")
    toc = "".join(f"<li>{_link(s.id, s.title)}{_sublist(s.subsections)}</li>" for s in sections)
    body = "".join(f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections)
    meta_html = "".join(f"<span>{esc(m)}</span>" for m in meta)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No request may leave the page: nothing is fetched, and the policy says so to the browser.
        "<meta http-equiv=\"Content-Security-Policy\" "
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{esc(title)}</title><style>{css}</style></head><body>"
        f'<nav class="toc" aria-label="Contents"><div class="brand">alignlab report</div>'
        f'<div class="run">{esc(title)}</div><ol>{toc}</ol></nav>'
        f'<main><header class="top"><h1>{esc(title)}</h1><div class="meta">{meta_html}</div></header>'
        f"{body}</main>"
        "</body></html>\n"
    )


def _link(id_: str, title: str) -> str:
    return f'<a href="#{esc(id_)}">{esc(title)}</a>'


def _sublist(items: Sequence[tuple[str, str]]) -> str:
    return f"<ol>{''.join(f'<li>{_link(i, t)}</li>' for i, t in items)}</ol>" if items else ""


def h3(id_: str, title: str) -> str:
    return f'<h3 id="{esc(id_)}">{esc(title)}</h3>'


def para(text: str, cls: str = "note") -> str:
    return f'<p class="{cls}">{esc(text)}</p>'


def cards(items: Iterable[tuple[str, str]]) -> str:
    inner = "".join(f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div></div>'
                    for k, v in items)  # fmt: skip
    return f'<div class="cards">{inner}</div>'


def fig_cell(f: Fig | None) -> str:
    """A table cell with the value, its interval and n, each in its own span."""
    if f is None or f.value is None:
        return '<td class="num">–</td>'
    ci = f' <span class="ci">[{esc(fmt(f.low))}, {esc(fmt(f.high))}]</span>' if f.has_interval else ""
    n = f'<span class="n">n={esc(fmt(f.n))}</span>' if f.n is not None else ""
    return f'<td class="num">{esc(fmt(f.value))}{ci}{n}</td>'


def grid_table(grid: Grid) -> str:
    """Rows grouped under a heading row per group; one column per checkpoint."""
    head = "<tr><th>metric</th>" + "".join(f'<th class="num">{esc(c)}</th>' for c in grid.columns) + "</tr>"
    body, group = [], None
    for row in grid.rows:
        if row.group != group:
            group = row.group
            body.append(f'<tr class="group"><th colspan="{len(grid.columns) + 1}">{esc(group)}</th></tr>')
        body.append(
            f"<tr><td>{esc(row.label)}</td>"
            + "".join(fig_cell(row.cells.get(c)) for c in grid.columns)
            + "</tr>"
        )
    note = para(grid.note) if grid.note else ""
    return (
        f'<div class="table-wrap"><table><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div>'
        f"{note}"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[bool] = ()) -> str:
    """A plain table; cells are already markup (escape with `esc` or `value`)."""
    num = [' class="num"' if n else "" for n in [*numeric, *[False] * (len(headers) - len(numeric))]]
    head = "".join(f"<th{n}>{esc(h)}</th>" for h, n in zip(headers, num, strict=True))
    body = "".join(
        "<tr>" + "".join(f"<td{n}>{c}</td>" for c, n in zip(r, num, strict=False)) + "</tr>" for r in rows
    )
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def value(x: Any) -> str:
    """A scalar from the data as escaped text (numbers formatted)."""
    return esc(fmt(x))


def kv_grid(mapping: Mapping[str, Any]) -> str:
    """Many key / value pairs in columns that fill the width (a stage's summary)."""
    items = "".join(f'<div><span class="k">{esc(k)}</span><span class="v">{value(v)}</span></div>'
                    for k, v in mapping.items())  # fmt: skip
    return f'<div class="kv">{items}</div>'


def plot(svg: str, caption: str, id_: str | None = None) -> str:
    """An inline SVG from `plots` (matplotlib escapes the text it writes) with an escaped caption."""
    ident = f' id="{esc(id_)}"' if id_ else ""
    return f'<figure class="plot"{ident}>{svg}<figcaption>{esc(caption)}</figcaption></figure>'


def side_by_side(*parts: str) -> str:
    """Blocks next to each other while the page is wide enough (a plot and its table)."""
    return '<div class="row">' + "".join(f"<div>{p}</div>" for p in parts) + "</div>"


def details(summary: str, body: str, open_: bool = False) -> str:
    head = f"<details{' open' if open_ else ''}><summary>{esc(summary)}</summary>"
    return f'{head}<div class="body">{body}</div></details>'


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"
