"""report.html: one self-contained page (no script, no outside resource) with the measures,
the confusion matrix or PR curves (inline SVG) and the worst images with their boxes."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
figure{display:inline-block;margin:6px;vertical-align:top}figcaption{font-size:12px;max-width:480px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}
"""
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if value < 0 else f"{value:.4f}"
    return "n/a" if value is None else _e(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{_e(h)}</th>' for i, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"l" if i == 0 else ""}">{_number(v)}</td>' for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def confusion_table(classes: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """Rows: true class; columns: predicted; shaded by the share of the row."""
    head = "".join(f"<th>{_e(c)}</th>" for c in classes)
    rows = []
    for name, row in zip(classes, matrix, strict=True):
        total = sum(row) or 1
        cells = "".join(
            f'<td style="background:rgba(31,119,180,{count / total:.2f})">{count}</td>' for count in row
        )
        rows.append(f'<tr><th class="l">{_e(name)}</th>{cells}</tr>')
    return f'<table><tr><th class="l">true \\ predicted</th>{head}</tr>{"".join(rows)}</table>'


def pr_curves_svg(curves: Mapping[str, Sequence[float]], recall_points: Sequence[float]) -> str:
    """Precision (y) against recall (x) per class, 0-1 on both axes."""
    size, pad = 320, 36
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 2 * pad}" height="{size + 2 * pad}">',
        f'<rect x="{pad}" y="{pad}" width="{size}" height="{size}" fill="none" stroke="#999"/>',
    ]
    for tick in (0.0, 0.5, 1.0):
        x, y = pad + tick * size, pad + (1 - tick) * size
        parts.append(
            f'<text x="{x:.0f}" y="{pad + size + 16}" font-size="11" text-anchor="middle">{tick}</text>'
        )
        parts.append(f'<text x="{pad - 6}" y="{y + 4:.0f}" font-size="11" text-anchor="end">{tick}</text>')
    parts.append(
        f'<text x="{pad + size / 2}" y="{pad + size + 32}" font-size="12" text-anchor="middle">recall</text>'
    )
    parts.append(f'<text x="10" y="{pad - 12}" font-size="12">precision</text>')
    for index, (label, precision) in enumerate(curves.items()):
        points = " ".join(
            f"{pad + r * size:.1f},{pad + (1 - p) * size:.1f}"
            for r, p in zip(recall_points, precision, strict=True)
        )
        colour = _COLOURS[index % len(_COLOURS)]
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
            f"<title>{_e(label)}</title></polyline>"
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span style="background:{_COLOURS[i % len(_COLOURS)]}"></span>{_e(label)}'
        for i, label in enumerate(curves)
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def render_page(title: str, summary: dict[str, Any], sections: Sequence[tuple[str, str]]) -> str:
    """``sections``: (heading, HTML already escaped) each."""
    rows = table(["measure", "value"], list(summary.items()))
    body = "".join(f"<h2>{_e(heading)}</h2>{content}" for heading, content in sections)
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>{rows}{body}</body></html>"
    )


def figures(pictures: Sequence[tuple[str, str]]) -> str:
    """``pictures``: (data URI, caption) each."""
    return "".join(
        f'<figure><img src="{_e(uri)}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'
        for uri, caption in pictures
    )
