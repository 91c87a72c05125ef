"""Turning figures into files: a self-contained HTML report, and per-figure HTML/PNG."""

from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go

from interp.runs import atomic_write_text

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 3px 10px;
border-bottom: 1px solid #eee; text-align: left; } .note { color: #666; font-size: 0.9em; }
"""


def html_table(rows: list[tuple[str, object]] | list[dict]) -> str:
    """A small HTML table from (label, value) pairs or from a list of dicts (one per row)."""
    if rows and isinstance(rows[0], dict):
        columns = list(rows[0])
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>"
                                        for c in columns) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


def html_report(title: str, sections: list[tuple[str, list[go.Figure | str]]]) -> str:
    """One self-contained HTML page (plotly.js embedded once) with headed sections.

    Each section is (heading, items); an item is a figure or an HTML snippet.
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    embedded = False
    for heading, items in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for item in items:
            if isinstance(item, go.Figure):
                parts.append(item.to_html(full_html=False,
                                          include_plotlyjs="inline" if not embedded else False))
                embedded = True
            else:
                parts.append(item)
    parts.append("</body></html>")
    return "\n".join(parts)


def png_export_available() -> bool:
    """Whether plotly can write PNGs here (kaleido and a Chromium are installed)."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    try:
        go.Figure().to_image(format="png", width=10, height=10)
    except Exception:  # kaleido present but no usable browser
        return False
    return True


def write_figures(figures: dict[str, go.Figure], out_dir: Path, png: bool | None = None
                  ) -> list[Path]:
    """Write each figure as NAME.html (always) and NAME.png (when possible); return paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = png_export_available() if png is None else png
    written = []
    for name, fig in figures.items():
        path = out_dir / f"{name}.html"
        atomic_write_text(path, fig.to_html(include_plotlyjs=True))
        written.append(path)
        if png:
            fig.write_image(out_dir / f"{name}.png", scale=2)
            written.append(out_dir / f"{name}.png")
    return written
