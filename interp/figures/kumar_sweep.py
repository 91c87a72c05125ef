"""Figures of a sweep of committee-machine (regression) runs, drawn as Kumar et al. 2024 draw
theirs (plotly; data in, figure out: nothing computed here).

- ``loss_curves_by_axis``: train (dashed) and test (solid) loss against epoch on log-log
  axes, one colour per value of a swept axis, one panel per value of a second one (their
  Figs. 1, 3, 6, app. 8.4, 14, 15);
- ``decomposition_panels``: the exact test-loss decomposition of a few runs side by side
  (their appendix 12 and 8.4.1);
- ``delay_against_hardness``: the grokking delay in loss against the task hardness
  y^T K_0^{-1} y of each run.

The final test loss and the delay against the axis are ``interp.figures.sweep``'s
``landmark_curves`` of the sweep table's ``final_test_loss`` and ``loss_half_gap``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.figures.export import with_caption
from interp.figures.model_curves import DECOMPOSITION
from interp.sweep_table import Axis

DELAY = "loss_half_gap"  # the sweep table's grokking delay in loss (interp.analysis.curves)
HARDNESS = "task_hardness"  # the sweep table's y^T K_0^{-1} y (interp.sweep_table)
MAX_COLUMNS = 3  # panels in a row


def _palette() -> list[str]:
    from plotly.colors import qualitative

    return qualitative.Plotly + qualitative.Dark24


def _index(axis: Axis, value: Any) -> int:
    """The position of ``value`` among the axis's values (floats to rounding)."""
    return next(i for i, v in enumerate(axis.values) if axis.label(v) == axis.label(value))


def _grid(n: int) -> tuple[int, int]:
    """(rows, columns) of ``n`` panels, at most ``MAX_COLUMNS`` a row."""
    columns = min(n, MAX_COLUMNS)
    return math.ceil(n / columns), columns


def loss_curves_by_axis(metrics: dict[str, pd.DataFrame], points: dict[str, dict[str, Any]],
                        colour: Axis, panel: Axis | None = None,
                        title: str = "Train (dashed) and test (solid) loss") -> go.Figure:
    """Each run's train (dashed) and test (solid) loss against epoch, both axes log (epoch 0
    left out), coloured by its value of axis ``colour``, in the panel of its value of axis
    ``panel`` (one panel when None; none for a value no run has). metrics: run name -> its
    metrics table; points: run name -> axis key -> value (``Sweep.points``). Two traces a
    run, in the order of ``metrics``; runs at one point (seeds) share a colour."""
    panels = [None]
    if panel is not None:  # the values some run of ``metrics`` has, in the axis's order
        present = {panel.label(points[name][panel.key]) for name in metrics}
        panels = [value for value in panel.values if panel.label(value) in present]
    rows, columns = _grid(len(panels))
    fig = make_subplots(rows=rows, cols=columns, shared_yaxes=True,
                        subplot_titles=[panel.label(v) for v in panels] if panel else None,
                        horizontal_spacing=0.05, vertical_spacing=0.12)
    palette, shown = _palette(), set()
    for name, frame in metrics.items():
        point = points[name]
        index = _index(colour, point[colour.key])
        where = 0 if panel is None else [panel.label(v) for v in panels].index(
            panel.label(point[panel.key]))
        frame = frame[frame["epoch"] > 0]
        label = colour.label(point[colour.key])
        for column in ("test_loss", "train_loss"):
            fig.add_trace(go.Scatter(
                x=frame["epoch"], y=frame[column], mode="lines", name=label,
                legendgroup=label, showlegend=column == "test_loss" and label not in shown,
                line={"color": palette[index % len(palette)],
                      "dash": "dash" if column == "train_loss" else "solid"},
                hovertemplate=f"{name}<br>{column.replace('_', ' ')} %{{y:.4g}} at epoch "
                              "%{x}<extra></extra>"),
                row=where // columns + 1, col=where % columns + 1)
        shown.add(label)
    fig.update_xaxes(type="log", title_text="epoch (log)")
    fig.update_yaxes(type="log")
    fig.update_yaxes(title_text="MSE (log)", col=1)
    fig.update_layout(title=title, height=380 * rows + 70, legend={"title": colour.title})
    return with_caption(fig, "Train (dashed) and test (solid) loss of each run against epoch, "
                        f"both on log scales, one colour per value of {colour.key}"
                        + (f", one panel per value of {panel.key}" if panel else "") + ".")


def decomposition_panels(metrics: dict[str, pd.DataFrame]) -> go.Figure:
    """The committee machine's test loss and its exact parts (Kumar et al. appendix 12: the
    linear power, the scale and the alignment terms, and their sum; the metrics the trainer
    records as ``decomp_*``) against epoch, one panel per run. metrics: panel title (a run)
    -> its metrics table. Five traces a panel."""
    rows, columns = _grid(len(metrics))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(metrics),
                        horizontal_spacing=0.06, vertical_spacing=0.12)
    palette = _palette()
    for where, frame in enumerate(metrics.values()):
        frame = frame[frame["epoch"] > 0]
        cell = {"row": where // columns + 1, "col": where % columns + 1}
        fig.add_trace(go.Scatter(x=frame["epoch"], y=frame["test_loss"], mode="lines",
                                 name="test loss", legendgroup="test", showlegend=where == 0,
                                 line={"color": "black"}), **cell)
        for i, (column, label) in enumerate(DECOMPOSITION.items()):
            fig.add_trace(go.Scatter(
                x=frame["epoch"], y=frame[column], mode="lines", name=label, legendgroup=column,
                showlegend=where == 0, line={"color": palette[i],
                                             "dash": "solid" if column == "decomp_total"
                                             else "dot"}), **cell)
    fig.update_xaxes(type="log", title_text="epoch (log)")
    fig.update_yaxes(title_text="MSE", col=1)
    fig.update_layout(title="Test-loss decomposition (Kumar et al. appendix 12)",
                      height=380 * rows + 70)
    return with_caption(fig, "Each run's test loss (black) and its exact parts: the power in "
                        "linear functions, the scale (trace) and the alignment (beta^T M beta) "
                        "terms, and their sum, against epoch on a log scale.")


def delay_against_hardness(table: pd.DataFrame, colour: Axis) -> go.Figure:
    """The grokking delay in loss (``loss_half_gap``: epochs from the train loss's halving to
    the test loss's) against the task hardness y^T K_0^{-1} y (normalised:
    ``interp.analysis.lazy_rich.task_hardness``) of each run of ``table`` (the sweep table)
    that has both, coloured by axis ``colour``, hardness on a log scale. One trace per value
    of ``colour`` with such runs."""
    palette, fig = _palette(), go.Figure()
    both = table[table[HARDNESS].notna() & table[DELAY].notna()]
    for index, value in enumerate(colour.values):
        runs = both[[colour.label(v) == colour.label(value) for v in both[colour.key]]]
        if runs.empty:
            continue
        fig.add_trace(go.Scatter(
            x=runs[HARDNESS].astype(float), y=runs[DELAY].astype(float), mode="markers",
            name=colour.label(value), text=runs["run"], marker={
                "color": palette[index % len(palette)], "size": 10},
            hovertemplate="%{text}<br>hardness %{x:.3g}<br>delay %{y} epochs<extra></extra>"))
    fig.update_xaxes(type="log", title_text="task hardness y^T K_0^-1 y (normalised, log)")
    fig.update_yaxes(title_text="delay: test minus train loss-halving epoch")
    fig.update_layout(title=f"Grokking delay against task hardness ({len(both)} of {len(table)} "
                            "runs halve both losses)", height=450,
                      legend={"title": colour.title})
    return with_caption(fig, "Each run's epochs from the train loss's halving to the test "
                        "loss's against y^T K_0^-1 y, the task's hardness for the initial NTK "
                        "(mean diagonal and target mean square scaled to 1); runs whose test "
                        "loss never halves are left out.")
