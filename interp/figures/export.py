"""Turning figures into files: a self-contained HTML report, per-figure HTML pages sharing
one plotly.js per folder, and static images (PNG, SVG, PDF) through kaleido and a Chromium.

A figure's caption (``with_caption``) is one line saying what the plot shows; the HTML
report and the per-figure pages print it under the plot.
"""

from __future__ import annotations

import argparse
import html
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from interp.errors import UserError
from interp.files import atomic_write_text

if TYPE_CHECKING:  # plotly is imported where a figure is drawn: --help stays instant
    import plotly.graph_objects as go

FORMATS = ("html", "png", "svg", "pdf")
STATIC_FORMATS = FORMATS[1:]
STATIC_WIDTH = 1100  # layout pixels of a static image whose figure sets no width
PNG_SCALE = 2  # PNG pixels per layout pixel
PLOTLY_JS = "plotly.min.js"  # the one copy of plotly.js in a folder of figure pages
INSTALL_BROWSER = ("install Chromium (Debian/Ubuntu: apt-get install chromium) or set "
                   "BROWSER_PATH to a Chrome or Chromium executable")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 3px 10px;
border-bottom: 1px solid #eee; text-align: left; } .note { color: #666; font-size: 0.9em; }
.caption { color: #444; font-size: 0.9em; margin: 0.2em 0 1.8em 0; }
.wide { overflow-x: auto; } .wide td { white-space: nowrap; }
"""


def with_caption(fig: go.Figure, text: str) -> go.Figure:
    """``fig`` with the one-line caption ``text`` (what the plot shows), kept in
    ``fig.layout.meta["caption"]`` beside any other meta; returns ``fig`` itself."""
    meta = fig.layout.meta
    fig.update_layout(meta={**meta, "caption": text} if isinstance(meta, dict)
                      else {"caption": text})
    return fig


def caption(fig: go.Figure) -> str | None:
    """The caption ``with_caption`` gave ``fig``, or None."""
    meta = fig.layout.meta
    return meta.get("caption") if isinstance(meta, dict) else None


def _figure_html(fig: go.Figure, include_plotlyjs: bool | str) -> str:
    """``fig`` as an HTML fragment followed by its caption, if any."""
    text = caption(fig)
    # auto_play off: a figure with frames (a checkpoint slider) opens where it was built
    return fig.to_html(full_html=False, include_plotlyjs=include_plotlyjs, auto_play=False) + (
        f"<p class='caption'>{html.escape(text)}</p>" if text else "")


def _page(title: str, body: list[str]) -> str:
    return "\n".join([f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
                      f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
                      *body, "</body></html>"])


def html_table(rows: list[tuple[str, object]] | list[dict]) -> str:
    """A small HTML table from (label, value) pairs or from a list of dicts (one per row,
    scrolled sideways when wider than the page).

    Values are escaped; a ``Link`` is drawn as a link."""
    if rows and isinstance(rows[0], dict):
        columns = list(rows[0])
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{_cell_html(r.get(c, ''))}</td>"
                                        for c in columns) + "</tr>" for r in rows)
        return f"<div class='wide'><table><tr>{head}</tr>{body}</table></div>"
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_cell_html(v)}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


@dataclass(frozen=True)
class Link:
    """A table value drawn as a link to ``href`` (a URL, or a path relative to the page)."""

    text: str
    href: str

    def __str__(self) -> str:
        return self.text


def _cell_html(value: object) -> str:
    if isinstance(value, Link):
        return f"<a href='{html.escape(value.href)}'>{html.escape(value.text)}</a>"
    return html.escape(str(value))


def html_report(title: str, sections: list[tuple[str, list[go.Figure | str]]]) -> str:
    """One self-contained HTML page (plotly.js embedded once) with headed sections.

    Each section is (heading, items); an item is a figure (drawn with its caption) or an
    HTML snippet.
    """
    import plotly.graph_objects as go

    parts = [f"<h1>{html.escape(title)}</h1>"]
    embedded = False
    for heading, items in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for item in items:
            if isinstance(item, go.Figure):
                parts.append(_figure_html(item, not embedded))
                embedded = True
            else:
                parts.append(item)
    return _page(title, parts)


def add_format_option(parser: argparse.ArgumentParser) -> None:
    """--format FMT[,FMT...] (repeatable): the file formats a figure command writes."""
    parser.add_argument("--format", dest="formats", action="append", type=_format_list,
                        default=None, metavar="FMT",
                        help=f"file format(s) to write: {', '.join(FORMATS)}; repeat or give "
                             "a comma list, e.g. --format html,png (default: html). PNG, SVG "
                             "and PDF need kaleido and a Chrome or Chromium (see the README)")


def _format_list(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(f"unknown format {', '.join(unknown) or repr(text)}; "
                                         f"choose from {', '.join(FORMATS)}")
    return formats


def chosen_formats(args: argparse.Namespace) -> tuple[str, ...]:
    """The formats --format (``add_format_option``) chose, in ``FORMATS`` order (html when
    none); UserError when one is static and this machine cannot export images
    (``static_export_problem``), so a command can stop before any work."""
    given = {f for group in args.formats or [["html"]] for f in group}
    formats = tuple(f for f in FORMATS if f in given)
    static = [f for f in formats if f in STATIC_FORMATS]
    problem = static_export_problem() if static else None
    if problem:
        raise UserError(f"--format {','.join(static)}: {problem}")
    return formats


def static_export_problem() -> str | None:
    """Why PNG/SVG/PDF export cannot work here (kaleido >= 1 missing, or no Chrome or
    Chromium for it to drive), as a message saying the fix; None when it can."""
    try:
        from importlib.metadata import version

        import kaleido  # noqa: F401
        from choreographer.browsers.chromium import Chromium
    except ImportError:
        return "static export needs kaleido: pip install 'kaleido>=1' (or pip install -e '.[dev]')"
    if int(version("kaleido").split(".")[0]) < 1:
        return f"kaleido {version('kaleido')} is too old: pip install 'kaleido>=1'"
    browser = Chromium.find_browser(skip_local=False)
    if browser is None:
        return f"no Chrome or Chromium found for kaleido: {INSTALL_BROWSER}"
    if not (os.path.isfile(browser) and os.access(browser, os.X_OK)):
        return f"the browser {browser} is not an executable file: {INSTALL_BROWSER}"
    return None


def write_figures(figures: dict[str, go.Figure], out_dir: Path,
                  formats: Iterable[str] = ("html",)) -> list[Path]:
    """Write each figure NAME -> fig as ``out_dir``/NAME.FMT for each of ``formats``
    (``FORMATS``); return the paths written.

    HTML pages load ``out_dir``/plotly.min.js (written once, replaced only when plotly's
    differs) and print the figure's caption; static images are drawn in one browser session
    (kaleido), STATIC_WIDTH pixels wide unless the figure sets its width."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    formats = tuple(formats)
    written = []
    if "html" in formats and figures:
        _write_plotly_js(out_dir)
        for name, fig in figures.items():
            path = out_dir / f"{name}.html"
            atomic_write_text(path, _page(name, [_figure_html(fig, "directory")]))
            written.append(path)
    static = [f for f in formats if f in STATIC_FORMATS]
    if static and figures:
        written += _write_images(figures, out_dir, static)
    return written


def _write_plotly_js(out_dir: Path) -> None:
    from plotly.offline import get_plotlyjs

    path, js = out_dir / PLOTLY_JS, get_plotlyjs()
    if not path.is_file() or path.read_text(encoding="utf-8", errors="replace") != js:
        atomic_write_text(path, js)


def _write_images(figures: dict[str, go.Figure], out_dir: Path, formats: list[str]
                  ) -> list[Path]:
    """Every figure in every static format, drawn into a temporary folder inside ``out_dir``
    and then moved into place (a failed export leaves no half-written image)."""
    import plotly.io as pio

    problem = static_export_problem()
    if problem:
        raise UserError(f"--format {','.join(formats)}: {problem}")
    jobs = [(name, fig, fmt) for name, fig in figures.items() for fmt in formats]
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=".images-"))
    try:
        try:
            pio.write_images(
                [fig for _, fig, _ in jobs], [tmp / f"{name}.{fmt}" for name, _, fmt in jobs],
                format=[fmt for _, _, fmt in jobs],
                width=[fig.layout.width or STATIC_WIDTH for _, fig, _ in jobs],
                height=[fig.layout.height for _, fig, _ in jobs],
                scale=[PNG_SCALE if fmt == "png" else 1 for _, _, fmt in jobs])
        except RuntimeError as err:  # the browser would not start, or crashed
            raise UserError(f"static export (--format {','.join(formats)}) failed: "
                            f"{' '.join(str(err).split())[:300]} ({INSTALL_BROWSER}, and "
                            "check that it starts: chromium --headless --version)") from err
        paths = []
        for name, _, fmt in jobs:
            os.replace(tmp / f"{name}.{fmt}", out_dir / f"{name}.{fmt}")
            paths.append(out_dir / f"{name}.{fmt}")
        return paths
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
