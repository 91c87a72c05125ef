"""Figures of a sweep table (``interp.sweep_table``): Liu et al.'s phase diagram over two
axes, a landmark against one axis (one line per value of another), and a landmark's heatmap
over two axes. Several runs at one point (seeds, or axes not drawn) are summarised by
``interp.sweep_table.phase_cells`` and ``metric_spread``; nothing is computed here. And the
learning curves of several runs side by side, on a log epoch axis, one panel per loss.

Cells of numeric axes are drawn between the midpoints of neighbouring values (geometric
midpoints on a log axis, drawn on a log scale); other axes are categories. An axis's zipped
companions (``Axis.companions``) are named in its title and their values in the hover text
and the legends.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.analysis.phases import PHASES
from interp.figures.export import with_caption
from interp.sweep_table import Axis, metric_spread, phase_cells

PHASE_COLOURS = {"comprehension": "#2ca02c", "grokking": "#1f77b4",
                 "memorisation": "#d62728", "confusion": "#9467bd", "diverged": "#7f7f7f"}
LOSS_NAMES = {"cross_entropy": "cross-entropy", "stablemax": "StableMax cross-entropy",
              "mse": "MSE"}  # objective.loss -> panel name
LOG_SPAN = 10  # a curve's values, all positive, spanning this factor or more: a log y axis


def _numeric(axis: Axis) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in axis.values)


def _scaled(axis: Axis) -> np.ndarray:
    values = np.asarray(axis.values, float)
    return np.log10(values) if axis.log else values


def _even_cells(axis: Axis) -> bool:
    """Whether a heatmap can place ``axis`` on a numeric scale with cells of one size: its
    values are numbers evenly spaced on its scale. Others (0, 0.3, 1, 3, 10) are drawn as
    ordered categories, so that no cell is squashed."""
    if not _numeric(axis):
        return False
    steps = np.diff(_scaled(axis))
    return len(steps) < 2 or bool(np.allclose(steps, steps[0], rtol=0.05))


def _cell_bounds(axis: Axis) -> list:
    """Heatmap coordinates of ``axis``: len(values) + 1 cell edges for a numeric axis
    evenly spaced on its scale, the values as text for any other."""
    if not _even_cells(axis):
        return [_value_text(v) for v in axis.values]
    v = _scaled(axis)
    if len(v) == 1:
        edges = np.array([v[0] - 0.5, v[0] + 0.5])
    else:
        inner = (v[1:] + v[:-1]) / 2
        edges = np.concatenate([[2 * v[0] - inner[0]], inner, [2 * v[-1] - inner[-1]]])
    return (10 ** edges if axis.log else edges).tolist()


def _value_text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _axis_layout(axis: Axis) -> dict:
    """A curve's axis: log, linear or category as the axis is."""
    kind = "log" if axis.log else "linear" if _numeric(axis) else "category"
    return {"title_text": axis.title + (" (log)" if axis.log else ""), "type": kind}


def _cell_axis_layout(axis: Axis) -> dict:
    """A heatmap's axis: as ``_axis_layout``, ticks at the axis's values, but ordered
    categories where the values are not evenly spaced on the axis's scale (``_even_cells``)."""
    if not _numeric(axis):
        return _axis_layout(axis)
    if _even_cells(axis):
        return {**_axis_layout(axis), "tickvals": list(axis.values),
                "ticktext": [_value_text(v) for v in axis.values]}
    return {**_axis_layout(axis), "type": "category", "categoryorder": "array",
            "categoryarray": _cell_bounds(axis)}


def _grid(cells: pd.DataFrame, x: Axis, y: Axis, columns: list[str]) -> dict[str, list]:
    """Per column, a [len(y.values)][len(x.values)] matrix of ``cells``' values (None for a
    point without runs)."""
    index = {(xv, yv): row for row, xv, yv in zip(cells.to_dict("records"), cells[x.key],
                                                  cells[y.key], strict=True)}
    return {column: [[index[(xv, yv)][column] if (xv, yv) in index else None
                      for xv in x.values] for yv in y.values] for column in columns}


def _title_suffix(table: pd.DataFrame) -> str:
    return f" ({len(table)} runs)"


def phase_diagram(table: pd.DataFrame, x: Axis, y: Axis, title: str | None = None
                  ) -> go.Figure:
    """Liu et al.'s phase diagram: each (x, y) cell coloured by the majority phase of its
    runs, annotated with the median epochs from train to test accuracy 99% and how many of
    its runs are in that phase. ``table``: ``Sweep.table()`` (or any table with the two
    axis columns, ``phase`` and ``accuracy_gap``)."""
    cells = phase_cells(table, x.key, y.key)
    grid = _grid(cells, x, y, ["phase", "count", "runs", "phases", "accuracy_gap"])
    z = [[math.nan if p is None else PHASES.index(p) for p in row] for row in grid["phase"]]
    text = [[_cell_text(grid["accuracy_gap"][j][i], grid["count"][j][i], grid["runs"][j][i])
             for i in range(len(x.values))] for j in range(len(y.values))]
    n = len(PHASES)
    colours = [stop for i, p in enumerate(PHASES)
               for stop in ((i / n, PHASE_COLOURS[p]), ((i + 1) / n, PHASE_COLOURS[p]))]
    fig = go.Figure(go.Heatmap(
        x=_cell_bounds(x), y=_cell_bounds(y), z=z, zmin=-0.5, zmax=n - 0.5,
        colorscale=colours, text=text, texttemplate="%{text}",
        customdata=[[[grid["phase"][j][i] or "", grid["phases"][j][i] or "", x.label(xv),
                      y.label(yv)]
                     for i, xv in enumerate(x.values)] for j, yv in enumerate(y.values)],
        hovertemplate=("%{customdata[2]}<br>%{customdata[3]}<br>"
                       "%{customdata[0]}<br>runs: %{customdata[1]}<extra></extra>"),
        colorbar={"tickvals": list(range(n)), "ticktext": list(PHASES), "title": "phase"}))
    fig.update_xaxes(**_cell_axis_layout(x))
    fig.update_yaxes(**_cell_axis_layout(y))
    fig.update_layout(title=title or "Phase diagram (Liu et al.): majority phase per cell; "
                      "text: epochs from train to test accuracy 99%, runs in that phase"
                      + _title_suffix(table), height=560)
    return with_caption(fig, f"Each cell of {x.key} and {y.key} coloured by the phase (Liu et "
                        "al.) most of its runs are in, with the median epochs from train to "
                        "test accuracy 99% and how many of its runs are in that phase.")


def _cell_text(gap, count, runs) -> str:
    if runs is None:
        return ""
    share = f"{count}/{runs}"
    return share if gap is None or pd.isna(gap) else f"{gap:.0f}<br>{share}"


def landmark_curves(table: pd.DataFrame, x: Axis, metric: str, by: Axis | None = None,
                    title: str | None = None) -> go.Figure:
    """``metric`` (a column of ``table``) against axis ``x``, one line per value of axis
    ``by`` (one line when None): the mean over the runs at each point (seeds and other axes
    pooled), error bars from their min to their max."""
    keys = [by.key, x.key] if by is not None else [x.key]
    spread = metric_spread(table, keys, metric)
    groups = spread.groupby(by.key, sort=False, dropna=False) if by is not None else [
        (None, spread)]
    fig = go.Figure()
    for value, points in groups:
        mean = points["mean"].to_numpy()
        fig.add_trace(go.Scatter(
            x=[str(v) for v in points[x.key]] if not _numeric(x) else points[x.key].tolist(),
            y=mean, mode="lines+markers", name=metric if by is None else by.label(value),
            error_y={"type": "data", "symmetric": False,
                     "array": points["max"].to_numpy() - mean,
                     "arrayminus": mean - points["min"].to_numpy()},
            customdata=[[n, runs, x.label(v)] for n, runs, v in zip(
                points["n"], points["runs"], points[x.key], strict=True)],
            hovertemplate=("%{customdata[2]}<br>mean %{y:.4g} of %{customdata[0]}/"
                           "%{customdata[1]} runs<extra></extra>")))
    fig.update_xaxes(**_axis_layout(x))
    log = _spans_decades(spread[["mean", "min", "max"]].to_numpy(float))
    fig.update_yaxes(title_text=metric + (" (log)" if log else ""),
                     type="log" if log else "linear")
    fig.update_layout(title=title or f"{metric} against {x.key}: mean over runs, bars from "
                      "min to max" + _title_suffix(table), height=450)
    return with_caption(fig, f"{metric} of the runs at each value of {x.key}"
                        + (f", one line per value of {by.key}" if by is not None else "")
                        + ": the mean over the runs there (seeds and other axes pooled), bars "
                        "from their min to their max" + (", on a log scale" if log else "")
                        + ".")


def _spans_decades(values: np.ndarray) -> bool:
    """Whether finite ``values`` are all positive and span ``LOG_SPAN`` or more."""
    values = values[np.isfinite(values)]
    return bool(len(values)) and values.min() > 0 and values.max() >= LOG_SPAN * values.min()


def landmark_heatmap(table: pd.DataFrame, x: Axis, y: Axis, metric: str,
                     title: str | None = None) -> go.Figure:
    """``metric`` over axes ``x`` and ``y``: the mean over the runs in each cell (seeds and
    other axes pooled), annotated with it and, where some runs lack it, how many have it."""
    spread = metric_spread(table, [x.key, y.key], metric)
    grid = _grid(spread, x, y, ["mean", "n", "runs"])
    z = [[math.nan if m is None or pd.isna(m) else m for m in row] for row in grid["mean"]]
    text = [[_mean_text(z[j][i], grid["n"][j][i], grid["runs"][j][i])
             for i in range(len(x.values))] for j in range(len(y.values))]
    fig = go.Figure(go.Heatmap(
        x=_cell_bounds(x), y=_cell_bounds(y), z=z, text=text, texttemplate="%{text}",
        colorscale="Viridis", colorbar={"title": metric},
        customdata=[[[x.label(xv), y.label(yv)] for xv in x.values] for yv in y.values],
        hovertemplate=(f"%{{customdata[0]}}<br>%{{customdata[1]}}<br>{metric} "
                       "%{z:.4g}<extra></extra>")))
    fig.update_xaxes(**_cell_axis_layout(x))
    fig.update_yaxes(**_cell_axis_layout(y))
    fig.update_layout(title=title or f"{metric}: mean over the runs of each cell"
                      + _title_suffix(table), height=560)
    return with_caption(fig, f"{metric} over {x.key} and {y.key}: the mean over the runs of "
                        "each cell (seeds and other axes pooled); n/m: only n of its m runs "
                        "have it.")


def _mean_text(mean: float, n, runs) -> str:
    if runs is None or math.isnan(mean):
        return "" if runs is None else f"0/{runs}"
    return f"{mean:.3g}" + ("" if n == runs else f"<br>{n}/{runs}")


def learning_curves(metrics: dict[str, pd.DataFrame], losses: dict[str, str],
                    title: str = "Learning curves") -> go.Figure:
    """Several runs' learning curves side by side: per loss kind (``losses``: run name ->
    ``objective.loss``) a panel of test (solid) and train (dashed) loss, and a panel of test
    and train accuracy of the runs that have it; epochs on a log axis (epoch 0 left out),
    one colour per run. ``metrics``: run name -> its metrics table."""
    from plotly.colors import qualitative

    kinds = sorted({losses[name] for name in metrics})
    accuracy = [name for name, frame in metrics.items()
                if "test_acc" in frame and frame["test_acc"].notna().any()]
    panels = [f"{LOSS_NAMES.get(k, k)} loss" for k in kinds] + (["accuracy"] if accuracy else [])
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=panels,
                        horizontal_spacing=0.07)
    palette = qualitative.Plotly + qualitative.Dark24
    for i, (name, frame) in enumerate(metrics.items()):
        frame = frame[frame["epoch"] > 0]
        style = {"color": palette[i % len(palette)]}
        columns = [("test_loss", kinds.index(losses[name]) + 1),
                   ("train_loss", kinds.index(losses[name]) + 1)]
        if name in accuracy:
            columns += [("test_acc", len(panels)), ("train_acc", len(panels))]
        for column, col in columns:
            if column not in frame:
                continue
            fig.add_trace(go.Scatter(
                x=frame["epoch"], y=frame[column], mode="lines", legendgroup=name, name=name,
                showlegend=column == "test_loss",
                line={**style, "dash": "dash" if column.startswith("train") else "solid"},
                hovertemplate=f"{name}<br>{column.replace('_', ' ')} %{{y:.4g}} at epoch "
                              "%{x}<extra></extra>"), row=1, col=col)
    fig.update_xaxes(type="log", title_text="epoch (log)")
    fig.update_yaxes(type="log")
    if accuracy:
        fig.update_yaxes(type="linear", range=[0, 1.02], col=len(panels))
    fig.update_layout(title=title, height=450, legend={"title": "run"})
    return with_caption(fig, "Test (solid) and train (dashed) loss of each run, one panel per "
                        "loss (their values are not comparable across panels), and accuracy "
                        "where the run has it, against epoch on a log scale.")
