"""The numerical-stability figure (Prieto et al. 2025): test accuracy, softmax collapse and the
gradient-weight cosine against epoch, one colour per training variant (loss, its dtype,
orthogonal gradient), the mean over seeds with their range shaded. Data in, figure out."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import DEFAULT_PLOTLY_COLORS
from plotly.subplots import make_subplots

from interp.figures.export import with_caption

PANELS = {"test_acc": "test accuracy", "softmax_collapse": "softmax collapse",
          "grad_weight_cosine": "cos(grad, w)"}
LOSS_LABELS = {"cross_entropy": "softmax CE", "stablemax": "StableMax CE", "mse": "MSE"}


def variant_label(loss: str, loss_dtype: str, orthogonal_grad: bool) -> str:
    """A legend name: the loss, its dtype and the orthogonal gradient, e.g.
    ``softmax CE float32 + ⊥grad``."""
    return (f"{LOSS_LABELS.get(loss, loss)} {loss_dtype}"
            + (" + ⊥grad" if orthogonal_grad else ""))


def stability_curves(variants: dict[str, list[pd.DataFrame]], title: str) -> go.Figure:
    """Three panels against epoch (``PANELS``): per variant (legend name -> its seeds'
    metrics tables, ``Run.metrics`` with the columns ``interp.analysis.stability`` records) the
    mean over seeds as a line and the seeds' min-max as a band."""
    figure = make_subplots(rows=1, cols=len(PANELS), subplot_titles=list(PANELS.values()),
                           horizontal_spacing=0.07)
    for index, (name, frames) in enumerate(variants.items()):
        colour = DEFAULT_PLOTLY_COLORS[index % len(DEFAULT_PLOTLY_COLORS)]
        for col, column in enumerate(PANELS, start=1):
            values = pd.concat([f.set_index("epoch")[column] for f in frames if column in f],
                               axis=1).apply(pd.to_numeric, errors="coerce")
            if values.empty:
                continue
            epochs = values.index.to_numpy()
            low, high = values.min(axis=1).to_numpy(), values.max(axis=1).to_numpy()
            figure.add_scatter(x=[*epochs, *epochs[::-1]], y=[*high, *low[::-1]], fill="toself",
                               fillcolor=colour.replace("rgb", "rgba").replace(")", ",0.2)"),
                               line={"width": 0}, hoverinfo="skip", showlegend=False,
                               legendgroup=name, row=1, col=col)
            figure.add_scatter(x=epochs, y=values.mean(axis=1), mode="lines", name=name,
                               legendgroup=name, showlegend=col == 1,
                               line={"color": colour}, row=1, col=col)
    figure.update_xaxes(title_text="epoch")
    figure.update_yaxes(range=[-0.02, 1.02], row=1, col=1)
    figure.update_yaxes(range=[-0.02, 1.02], row=1, col=2)
    figure.update_yaxes(range=[-1.02, 1.02], row=1, col=3)
    figure.update_layout(title=title, legend={"orientation": "h", "y": -0.2})
    return with_caption(figure, "Per training variant (mean over seeds, band: their range): "
                                "test accuracy, the fraction of training examples whose float32 "
                                "softmax cross-entropy is exactly 0 (for float64 and StableMax "
                                "runs: of the float32 softmax of their logits, not their own "
                                "loss), and the cosine between the loss gradient and the "
                                "weights (near -1: naive loss minimisation, Prieto et al. "
                                "2025).")
