"""The sweep-report.html ``interp.analyze`` writes for a directory of runs (a sweep, or any
runs side by side): a summary, the runs' learning curves, the phase diagram and landmark
curves of ``figures.sweep`` over the axes that form a grid, and the table of runs, each
linked to its own report."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from interp.figures import sweep as sweep_figs
from interp.figures.export import Link, html_report, html_table

MAX_LINES = 8  # a landmark curve gets one line per value of another axis up to this many
MAX_CURVE_RUNS = 12  # the runs' learning curves are drawn for sweeps of at most this many
CURVE_METRICS = (("test_acc_99", "accuracy_gap", "final_test_acc"),  # classification
                 ("test_loss_half", "loss_half_gap", "final_test_loss"))  # regression: loss
LOSS_VALUED = {"final_train_loss", "final_test_loss"}  # not comparable across loss kinds
# landmark columns: epochs at which a curve crosses a threshold, None when it never does;
# those of accuracy apply to runs that have accuracy only
ACCURACY_EPOCHS = {"train_acc_99", "test_acc_50", "test_acc_99", "accuracy_gap",
                   "phase_train_step", "phase_test_step"}
LOSS_EPOCHS = {"train_loss_low", "test_loss_low", "loss_gap", "train_loss_half",
               "test_loss_half", "loss_half_gap"}


def grid_axes(sweep, table: pd.DataFrame) -> list:
    """The axes of ``sweep`` (seeds aside) along which some runs differ in that axis alone:
    those a landmark can be drawn against. Runs that differ in everything (a directory of
    unrelated runs, whose inferred axes are every config key that differs) have none."""
    axes = sweep.grid_axes
    keys = [a.key for a in axes]
    found = []
    for axis in axes:
        others = [k for k in keys if k != axis.key]
        groups = table.groupby(others, dropna=False)[axis.key] if others else [
            (None, table[axis.key])]
        if any(values.nunique(dropna=False) > 1 for _, values in groups):
            found.append(axis)
    return found


def sweep_figures(sweep, table: pd.DataFrame) -> dict[str, go.Figure]:
    """The figures of a sweep's report: the runs' learning curves (up to ``MAX_CURVE_RUNS``
    runs), the phase diagram over the first two ``grid_axes`` when there are two, and each
    landmark of ``CURVE_METRICS`` against each of them, one line per value of the next when
    that has at most ``MAX_LINES`` values (losses only when all runs share one loss)."""
    losses = {run.name: run.config.objective.loss for run in sweep.runs}
    out = {}
    if 0 < len(sweep.runs) <= MAX_CURVE_RUNS:
        out["learning_curves"] = sweep_figs.learning_curves(
            {run.name: run.metrics for run in sweep.runs}, losses,
            f"Learning curves of the {len(sweep.runs)} runs")
    axes = grid_axes(sweep, table)
    if len(axes) >= 2 and table["phase"].notna().any():
        out["phase_diagram"] = sweep_figs.phase_diagram(table, axes[0], axes[1])
    accuracy = table["final_test_acc"].notna().any()
    metrics = [m for m in CURVE_METRICS[0 if accuracy else 1] if table[m].notna().any()
               and (m not in LOSS_VALUED or len(set(losses.values())) <= 1)]
    for i, axis in enumerate(axes):
        others = [a for a in axes[i + 1:] + axes[:i] if len(a.values) <= MAX_LINES]
        for metric in metrics:
            out[f"{metric}_against_{axis.key}"] = sweep_figs.landmark_curves(
                table, axis, metric, others[0] if others else None)
    return out


def _cell(value, column: str, has_accuracy: bool) -> object:
    """A table value as the report shows it: an epoch landmark never reached is "never"
    (blank where it does not apply: accuracy landmarks of a run without accuracy), any
    other missing value blank, floats to 4 significant digits."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        applies = column in LOSS_EPOCHS or (column in ACCURACY_EPOCHS and has_accuracy)
        return "never" if applies else ""
    return f"{value:.4g}" if isinstance(value, float) else value


def run_report_links(sweep, out: Path, analysis_dir: Path | None = None
                     ) -> dict[str, Link | str]:
    """Per run, a link to its report.html relative to ``out`` (the folder of the sweep's
    report), or "" when the run has no report; reports are read from
    ``analysis_dir``/RUN_NAME when given, else from RUN/analysis."""
    from interp.runs import ANALYSIS_DIR

    links: dict[str, Link | str] = {}
    for run in sweep.runs:
        root = run.path / ANALYSIS_DIR if analysis_dir is None else analysis_dir / run.name
        report = root / "report.html"
        links[run.name] = (Link("report", quote(os.path.relpath(report, out)))
                           if report.is_file() else "")
    return links


def sweep_report(sweep, table: pd.DataFrame, out: Path | None = None,
                 analysis_dir: Path | None = None) -> str:
    """The self-contained sweep-report.html of a sweep (``interp.sweep_table.Sweep``) and
    its table: a summary, the figures of ``sweep_figures``, and the table itself with each
    run linked to its report (``run_report_links``; ``out``: the folder the page is written
    to, by default SWEEP/analysis as ``interp.analyze`` writes it; ``analysis_dir``: where
    the runs' analyses are, as for ``Sweep.table``)."""
    from interp.runs import ANALYSIS_DIR

    phases = table["phase"].value_counts()
    summary = [("sweep", str(sweep.path)), ("runs", len(table)),
               ("axes", "; ".join(f"{a.title}: {len(a.values)} values{', log' if a.log else ''}"
                                  f"{', a seed (pooled)' if a.seed else ''}"
                                  for a in sweep.axes) or "none"),
               ("Liu et al.'s phases", ", ".join(f"{n} {p}" for p, n in phases.items())
                or "none (no accuracy)")]
    figures = sweep_figures(sweep, table)
    sections: list[tuple[str, list]] = [("Summary", [html_table(summary)])]
    if "learning_curves" in figures:
        sections.append(("Learning curves", [figures.pop("learning_curves")]))
    if "phase_diagram" in figures:
        sections.append(("Phase diagram (Liu et al.)", [figures.pop("phase_diagram")]))
    if figures:
        sections.append(("Landmarks against each axis", list(figures.values())))
    links = run_report_links(sweep, Path(sweep.path / ANALYSIS_DIR if out is None else out),
                             analysis_dir)
    rows = []
    for row in table.to_dict("records"):
        has_accuracy = not pd.isna(row.get("final_test_acc"))
        rows.append({"report": links.get(row["run"], ""),
                     **{k: _cell(v, k, has_accuracy) for k, v in row.items()}})
    sections.append(("Runs (never: the landmark was not reached; blank: it does not apply)",
                     [html_table(rows)]))
    return html_report(f"interp sweep: {sweep.path.name}", sections)
