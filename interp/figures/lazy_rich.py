"""Figures of the lazy-versus-rich analysis (Kumar et al. 2024): one builder per figure.

Builders take the table of ``interp.analysis.lazy_rich.lazy_rich_curve`` (one row per
checkpoint), run metrics and landmarks, and return ``go.Figure``; they compute nothing.
Grokking landmarks (train / test accuracy reaching 99%) are dotted vertical lines. The
measures read on the probe set (kernels, alignment, CKA, eigenvector overlap) depend on its
size (the kernel distance of 64 probes stays well below that of 256 on the same run: the
diagonal, which moves little, weighs more in a smaller Gram matrix), so their figures say
how many probes they used when given ``probes``.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.figures.export import with_caption
from interp.figures.progress import add_landmarks


def _columns(frame: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in frame.columns if c.startswith(prefix)]


def _line(fig: go.Figure, frame: pd.DataFrame, column: str, name: str, row: int | None = None,
          col: int | None = None, **style) -> None:
    trace = go.Scatter(x=frame["epoch"], y=frame[column], name=name, mode="lines+markers",
                       marker_size=4, **style)
    fig.add_trace(trace, **({} if row is None else {"row": row, "col": col}))


def _on_probes(probes: int | None) -> str:
    return "" if probes is None else f" on {probes} probes"


def kernel_figure(curve: pd.DataFrame, landmarks: dict | None = None,
                  probes: int | None = None) -> go.Figure:
    """Kernel distance from initialisation and centred kernel-task alignment over epochs,
    one line per kernel kind (correct-class logit, trace over outputs); ``probes``: the
    probe count, in the title."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "kernel distance 1 - cos(K_0, K_t)", "centred kernel-task alignment"))
    for column in _columns(curve, "kernel_distance/"):
        _line(fig, curve, column, f"distance ({column.split('/', 1)[1]})", 1, 1)
    for column in _columns(curve, "alignment/"):
        _line(fig, curve, column, f"alignment ({column.split('/', 1)[1]})", 1, 2)
    fig.update_xaxes(title_text="epoch")
    add_landmarks(fig, landmarks)
    fig.update_layout(title=f"Empirical NTK{_on_probes(probes) or ' on the probe set'}",
                      height=420)
    return with_caption(fig, "Left: how far the empirical NTK has moved from its initial value "
                             "K_0 (1 - cosine); right: how well it aligns with the task's labels "
                             f"(centred), at each analysed checkpoint{_on_probes(probes)}; dotted:"
                             " train and test accuracy 99%.")


def movement_figure(curve: pd.DataFrame, landmarks: dict | None = None) -> go.Figure:
    """Parameter movement |theta_t - theta_0| / |theta_0|, in total and per weight matrix."""
    fig = go.Figure()
    _line(fig, curve, "movement", "all weights", line_width=3)
    for column in _columns(curve, "movement/"):
        _line(fig, curve, column, column.split("/", 1)[1])
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="|theta_t - theta_0| / |theta_0|")
    add_landmarks(fig, landmarks)
    fig.update_layout(title="Parameter movement from initialisation", height=450)
    return with_caption(fig, "Relative distance of the weights from their initial values at each "
                             "analysed checkpoint; dotted: train and test accuracy 99%.")


def linearisation_figure(curve: pd.DataFrame, landmarks: dict | None = None,
                         lazy_metrics: pd.DataFrame | None = None,
                         kernel_regression: dict | None = None) -> go.Figure:
    """Left: the linearisation gap |f - f_lin| / |f - f_0| on train and test data. Right:
    the network's loss beside its linearisation's at the same weights (log scale), and,
    when given, the learning curves of a lazy-baseline run (the model trained linearised)
    and the test loss of kernel regression with K_0 (the lazy limit of MSE training)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "linearisation gap |f - f_lin| / |f - f_0|", "loss: network vs linearised"))
    _line(fig, curve, "lin_gap_train", "gap (train)", 1, 1)
    _line(fig, curve, "lin_gap_test", "gap (test)", 1, 1)
    for column, name, dash in (("train_loss", "network train", None),
                               ("test_loss", "network test", None),
                               ("lin_train_loss", "f_lin(theta_t) train", "dash"),
                               ("lin_test_loss", "f_lin(theta_t) test", "dash")):
        _line(fig, curve, column, name, 1, 2, line_dash=dash)
    if lazy_metrics is not None and not lazy_metrics.empty:
        for column, name in (("train_loss", "lazy baseline train"),
                             ("test_loss", "lazy baseline test")):
            fig.add_trace(go.Scatter(x=lazy_metrics["epoch"], y=lazy_metrics[column],
                                     name=name, mode="lines", line_dash="dot"), row=1, col=2)
    if kernel_regression is not None:
        fig.add_hline(y=kernel_regression["test_loss"], line_dash="dashdot", row=1, col=2,
                      annotation_text="kernel regression with K_0 (test)",
                      annotation_font_size=10)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    add_landmarks(fig, landmarks)
    fig.update_layout(title="Distance from the linearised model", height=420)
    return with_caption(fig, "Train and test loss of the network beside its linearisation around "
                             "the initial weights (and the lazy baseline run, when given); a "
                             "large gap means training left the lazy (kernel) regime.")


def cka_figure(curve: pd.DataFrame, landmarks: dict | None = None,
               probes: int | None = None) -> go.Figure:
    """Linear CKA between each hook's activations at t and at initialisation (on ``probes``
    probe inputs, in the title)."""
    fig = go.Figure()
    for column in _columns(curve, "cka/"):
        _line(fig, curve, column, column.split("/", 1)[1])
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="linear CKA with initialisation", range=[0, 1.05])
    add_landmarks(fig, landmarks)
    fig.update_layout(title=f"Representation change (linear CKA{_on_probes(probes)})",
                      height=420)
    return with_caption(fig, "Linear CKA between each hidden layer's activations now and at "
                             f"initialisation{_on_probes(probes)}: 1 means the representation has "
                             "not changed.")


def fourier_overlap_figure(curve: pd.DataFrame, frequencies: list[int],
                           landmarks: dict | None = None, probes: int | None = None
                           ) -> go.Figure:
    """Share of each top NTK eigenvector in span{cos, sin(w_k (a + b)) : k key} (NTK on
    ``probes`` probe inputs, in the title)."""
    fig = go.Figure()
    for column in _columns(curve, "fourier_overlap/"):
        _, kind, index = column.split("/")
        _line(fig, curve, column, f"eigenvector {int(index) + 1} ({kind})")
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="overlap with key Fourier modes", range=[0, 1.05])
    add_landmarks(fig, landmarks)
    fig.update_layout(title=f"Top NTK eigenvectors{_on_probes(probes)} vs key frequencies "
                            f"{frequencies}", height=420)
    return with_caption(fig, f"Share of each top eigenvector of the NTK{_on_probes(probes)} that "
                             "lies in the key frequencies' Fourier modes cos/sin(w_k(a + b)), at "
                             "each analysed checkpoint.")
