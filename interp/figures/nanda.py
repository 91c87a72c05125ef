"""Figures of single neurons and of the embedding circles of the modular-addition transformer,
and a view stepping through checkpoints (Nanda et al. 2023, as their notebook and the
TransformerLens grokking demo show them).

Builders are pure: fits and circles (``interp.analysis.neurons``) and norms in, ``go.Figure``
out, each with a one-line caption (``export.with_caption``).
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from interp.analysis.neurons import TERMS, EmbeddingCircle, NeuronFit
from interp.figures.export import with_caption

KEY_COLOUR, OTHER_COLOUR = "#d62728", "#1f77b4"
TERM_COLOURS = ["#7f7f7f"] + ["#1f77b4"] * 4 + ["#ff7f0e"] * 4  # constant, one operand, both
CIRCLE_COLOURS = "HSV"  # cyclic: the angle w_k a around the circle
ROW_HEIGHT = 330  # pixels per neuron
PANEL_WIDTH = 1000  # pixels the panels of a row share


def neuron_fit_figure(fit: NeuronFit, epoch: int, chosen_at: int) -> go.Figure:
    """One row per neuron of ``fit``: its activation over the (a, b) grid, the fit on the
    2D Fourier terms of ``fit.frequency``, and the fitted coefficients.

    ``epoch``: the checkpoint the activations are from; ``chosen_at``: the one whose
    clusters chose the neurons (both only label the figure).
    """
    k, p, n = fit.frequency, fit.activations.shape[0], len(fit.neurons)
    titles = []
    for i, neuron in enumerate(fit.neurons):
        state = ("constant (dead) here" if fit.constant[i]
                 else f"{float(fit.explained[i]):.1%} of variance explained")
        plus, minus = float(fit.sum_terms[i].norm()), float(fit.difference_terms[i].norm())
        titles += [f"neuron {neuron}: activation", f"fit on the k={k} terms: {state}",
                   f"coefficients (w(a+b) amplitude {plus:.2f}, w(a-b) {minus:.2f})"]
    fig = make_subplots(rows=n, cols=3, subplot_titles=titles, column_widths=[0.34, 0.34, 0.32],
                        horizontal_spacing=0.09, vertical_spacing=min(0.3 / n, 0.12))
    for i in range(n):
        pair = torch.stack([fit.activations[:, :, i], fit.fitted[:, :, i]]).float()
        low, high = float(pair.min()), float(pair.max())
        for col in (1, 2):
            x_axis = fig.get_subplot(i + 1, col).xaxis
            colourbar = None
            if col == 2:
                domain = fig.get_subplot(i + 1, 2).yaxis.domain
                colourbar = {"x": x_axis.domain[1] + 0.01, "y": sum(domain) / 2,
                             "len": domain[1] - domain[0], "thickness": 10}
            fig.add_trace(go.Heatmap(z=pair[col - 1].numpy(), zmin=low, zmax=high,
                                     colorscale="RdBu_r", showscale=col == 2, colorbar=colourbar,
                                     hovertemplate="a=%{y}, b=%{x}: %{z:.3f}<extra></extra>"),
                          row=i + 1, col=col)
            fig.update_xaxes(title_text="b", row=i + 1, col=col, constrain="domain")
            fig.update_yaxes(title_text="a", autorange="reversed", row=i + 1, col=col,
                             scaleanchor=x_axis.plotly_name.replace("axis", ""),
                             constrain="domain")
        fig.add_trace(go.Bar(x=list(TERMS), y=fit.coefficients[i].tolist(),
                             marker_color=TERM_COLOURS, showlegend=False,
                             hovertemplate="%{x}: %{y:.3f}<extra></extra>"), row=i + 1, col=3)
        fig.update_xaxes(tickangle=-45, tickfont_size=9, row=i + 1, col=3)
    fig.update_layout(title=f"Neurons of frequency k={k} (w = 2π·{k}/{p}) at epoch {epoch}",
                      height=ROW_HEIGHT * n + 140, showlegend=False, margin={"t": 110})
    return with_caption(fig, (
        f"The {n} neurons of the k={k} cluster with the largest activation variance at epoch "
        f"{chosen_at}: activation at the last position over inputs (a, b) at epoch {epoch}, "
        f"its least-squares fit on 1, cos/sin(wa), cos/sin(wb) and their products (the terms "
        f"of cos(w(a+b)) and sin(w(a+b)) expanded), and the fitted coefficients."))


def neuron_figures(fits: dict[int, NeuronFit | None], epoch: int, chosen_at: int
                   ) -> dict[str, go.Figure]:
    """``neuron_fit_figure`` of each frequency's fit, named ``neurons_k{k}`` (a frequency
    whose fit is None, no neuron, gets none)."""
    return {f"neurons_k{k}": neuron_fit_figure(fit, epoch, chosen_at)
            for k, fit in fits.items() if fit is not None}


def _circle_traces(circle: EmbeddingCircle, labels: bool = True) -> list[go.Scatter]:
    """A grey line through the points in circle order (k a mod p), and the points, coloured
    by their angle w_k a and (``labels``) labelled by a."""
    p, k = len(circle.points), circle.frequency
    angle = [(k * a) % p for a in range(p)]
    order = sorted(range(p), key=angle.__getitem__)
    points = circle.points.tolist()
    line = go.Scatter(x=[points[a][0] for a in order + order[:1]],
                      y=[points[a][1] for a in order + order[:1]], mode="lines",
                      line={"color": "rgba(120,120,120,0.5)", "width": 1}, hoverinfo="skip",
                      showlegend=False)
    dots = go.Scatter(x=[x for x, _ in points], y=[y for _, y in points],
                      mode="markers+text" if labels else "markers",
                      text=[str(a) for a in range(p)], textposition="top center",
                      textfont={"size": 8, "color": "#555"}, showlegend=False,
                      marker={"color": angle, "colorscale": CIRCLE_COLOURS, "cmin": 0,
                              "cmax": p, "size": 7},
                      hovertemplate="a=%{text}: (%{x:.3f}, %{y:.3f})<extra></extra>")
    return [line, dots]


def _circle_axes(fig: go.Figure, cells: list[tuple[int, int]], key: list[int],
                 limits: list[float]) -> None:
    """Square axes, [-limit, limit] on both, for the circle of key[i] at cells[i] (row,
    col)."""
    for (row, col), k, limit in zip(cells, key, limits, strict=True):
        x_axis = fig.get_subplot(row, col).xaxis
        fig.update_xaxes(range=[-limit, limit], title_text=f"cos direction of k={k}",
                         constrain="domain", row=row, col=col)
        fig.update_yaxes(range=[-limit, limit], title_text=f"sin direction of k={k}",
                         scaleanchor=x_axis.plotly_name.replace("axis", ""), constrain="domain",
                         row=row, col=col)


def _limit(circles: list[EmbeddingCircle]) -> float:
    """Half the axis range that shows every point of ``circles`` with a margin."""
    return max(float(c.radius.max()) for c in circles) * 1.15 or 1.0


def embedding_circles_figure(circles: list[EmbeddingCircle], epoch: int) -> go.Figure:
    """One scatter per key frequency: the number embeddings on the frequency's cos and sin
    directions (a circle once the model groks), up to three panels a row (two for four)."""
    n = len(circles)
    cols = n if n <= 3 else math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cells = [(i // cols + 1, i % cols + 1) for i in range(n)]
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.1, vertical_spacing=0.12,
                        subplot_titles=[f"k={c.frequency}: radius spread {c.radius_spread:.0%}"
                                        for c in circles])
    for (row, col), circle in zip(cells, circles, strict=True):
        for trace in _circle_traces(circle):
            fig.add_trace(trace, row=row, col=col)
    _circle_axes(fig, cells, [c.frequency for c in circles], [_limit([c]) for c in circles])
    fig.update_layout(title=f"Embedding circles: W_E on each key frequency's cos/sin directions "
                            f"(epoch {epoch})", height=rows * PANEL_WIDTH // cols + 160)
    return with_caption(fig, (
        "Each number a's embedding projected on the d_model directions of W_E's cos(w_k a) and "
        "sin(w_k a) terms, one panel per key frequency k; colour: the angle w_k a; radius "
        "spread: standard deviation of the radii over their mean (0 on a circle)."))


def _norm_bars(norms: torch.Tensor, key: list[int]) -> go.Bar:
    ks = list(range(1, len(norms) + 1))
    return go.Bar(x=ks, y=norms.tolist(), showlegend=False,
                  marker_color=[KEY_COLOUR if k in key else OTHER_COLOUR for k in ks],
                  hovertemplate="k=%{x}: %{y:.3f}<extra></extra>")


def checkpoint_slider(epochs: list[int], frequency_norms: torch.Tensor,
                      circles: list[list[EmbeddingCircle]], key: list[int]) -> go.Figure:
    """A slider over checkpoints: W_E's norm per frequency (bars, key frequencies red) above
    the embedding circles of the key frequencies (one row, points unlabelled: hover shows a),
    one frame per checkpoint.

    epochs: [n]; frequency_norms: [n, p//2] (``fourier.embedding_frequency_norms`` of each);
    circles: n lists, one ``EmbeddingCircle`` per key frequency each. Axes keep one range
    over all frames; the figure opens on the last checkpoint.
    """
    n_key = len(key)
    circle_height = PANEL_WIDTH // n_key
    fig = make_subplots(rows=2, cols=n_key, vertical_spacing=0.16, horizontal_spacing=0.06,
                        specs=[[{"colspan": n_key}] + [None] * (n_key - 1), [{}] * n_key],
                        row_heights=[300 / (300 + circle_height), circle_height / (
                            300 + circle_height)])

    def frame_data(i: int) -> list[go.Bar | go.Scatter]:
        return [_norm_bars(frequency_norms[i], key)] + [
            trace for circle in circles[i] for trace in _circle_traces(circle, labels=False)]

    last = frame_data(len(epochs) - 1)  # what the figure shows before the slider moves
    fig.add_trace(last[0], row=1, col=1)
    for j, trace in enumerate(last[1:]):
        fig.add_trace(trace, row=2, col=j // 2 + 1)  # two traces (line, points) per circle
    fig.frames = [go.Frame(name=str(epoch), data=frame_data(i), traces=list(range(len(last))),
                           layout={"title.text": _slider_title(epoch, circles[i])})
                  for i, epoch in enumerate(epochs)]
    fig.update_yaxes(range=[0, float(frequency_norms.max()) * 1.05 or 1.0],
                     title_text="norm of W_E's terms", row=1, col=1)
    fig.update_xaxes(title_text="frequency k", dtick=1, tickfont_size=8, row=1, col=1)
    _circle_axes(fig, [(2, col) for col in range(1, n_key + 1)], key,
                 [_limit([step[j] for step in circles]) for j in range(n_key)])
    animate = {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
               "transition": {"duration": 0}}
    play = {**animate, "frame": {"duration": 400, "redraw": True}, "fromcurrent": True}
    fig.update_layout(
        title=_slider_title(epochs[-1], circles[-1]), height=300 + circle_height + 330,
        sliders=[{"active": len(epochs) - 1, "currentvalue": {"prefix": "epoch "},
                  "x": 0.14, "len": 0.86, "pad": {"t": 60},
                  "steps": [{"label": str(epoch), "method": "animate",
                             "args": [[str(epoch)], animate]} for epoch in epochs]}],
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0, "y": 0,
                      "xanchor": "left", "yanchor": "top", "pad": {"t": 75},
                      "showactive": False, "buttons": [
                          {"label": "play", "method": "animate", "args": [None, play]},
                          {"label": "pause", "method": "animate", "args": [[None], animate]}]}])
    return with_caption(fig, (
        "Drag the slider through the checkpoints: the norm of W_E's Fourier terms per "
        "frequency (key frequencies red) and the embedding circles of the key frequencies, "
        "each on its own cos/sin directions at that checkpoint."))


def _slider_title(epoch: int, circles: list[EmbeddingCircle]) -> str:
    spreads = ", ".join(f"k={c.frequency} {c.radius_spread:.0%}" for c in circles)
    return f"W_E over training, epoch {epoch} (circle radius spread: {spreads})"
