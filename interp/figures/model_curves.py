"""Figure builders for the models of the other grokking papers (plotly; data in, figure
out: no training, no science computed here).

Each takes run metrics tables (``Run.metrics``: columns epoch, step, train/test loss and
accuracy, weight_norm and the model-specific measures).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

DECOMPOSITION = {"decomp_linear": "linear power", "decomp_scale": "scale (trace)",
                 "decomp_alignment": "alignment (beta^T M beta)", "decomp_total": "sum"}


def loss_curves_by_alpha(metrics: dict[float, pd.DataFrame]) -> go.Figure:
    """Train (dashed) and test (solid) loss against epoch, one colour per alpha (Kumar et
    al. Fig. 3a: large alpha delays the fall of the test loss, small alpha removes the
    delay). metrics: alpha -> metrics table."""
    figure = go.Figure()
    for index, (alpha, frame) in enumerate(sorted(metrics.items())):
        colour = _colour(index)
        for column, dash in (("train_loss", "dash"), ("test_loss", "solid")):
            figure.add_scatter(x=frame["epoch"].clip(lower=1), y=frame[column], mode="lines",
                               name=f"alpha={alpha:g} {column.split('_')[0]}",
                               line={"color": colour, "dash": dash})
    figure.update_layout(title="Committee machine: loss curves for several alpha",
                         xaxis_title="epoch", yaxis_title="MSE")
    figure.update_xaxes(type="log")
    figure.update_yaxes(type="log")
    return figure


def loss_decomposition(metrics: pd.DataFrame) -> go.Figure:
    """The committee machine's test loss and its exact linear / scale / alignment terms
    against epoch (Kumar et al. appendix 12, Fig. 11)."""
    figure = go.Figure()
    figure.add_scatter(x=metrics["epoch"].clip(lower=1), y=metrics["test_loss"],
                       name="test loss (sample)", mode="lines", line={"color": "black"})
    for column, label in DECOMPOSITION.items():
        figure.add_scatter(x=metrics["epoch"].clip(lower=1), y=metrics[column], name=label,
                           mode="lines", line={"dash": "dot" if column != "decomp_total"
                                               else "solid"})
    figure.update_layout(title="Committee machine: test-loss decomposition",
                         xaxis_title="epoch", yaxis_title="MSE")
    figure.update_xaxes(type="log")
    return figure


def accuracy_and_weight_norm(metrics: pd.DataFrame, title: str) -> go.Figure:
    """Train and test accuracy (left axis) and the weight norm (right axis) against epoch
    (Kumar et al. Fig. 2a: the Gromov network's weight norm grows while it groks)."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    for column, dash in (("train_acc", "dash"), ("test_acc", "solid")):
        figure.add_scatter(x=metrics["epoch"], y=metrics[column], name=column, mode="lines",
                           line={"dash": dash}, secondary_y=False)
    figure.add_scatter(x=metrics["epoch"], y=metrics["weight_norm"], name="weight norm",
                       mode="lines", line={"color": "green"}, secondary_y=True)
    figure.update_layout(title=title, xaxis_title="epoch")
    figure.update_yaxes(title_text="accuracy", secondary_y=False)
    figure.update_yaxes(title_text="weight norm", secondary_y=True)
    return figure


def accuracy_panels(metrics: dict[str, pd.DataFrame], title: str) -> go.Figure:
    """One panel per model: train (dashed) and test (solid) accuracy against epoch (Hu et
    al. Figs. 2-4: the transformer groks, the MLP and LSTM do not)."""
    figure = make_subplots(rows=1, cols=len(metrics), subplot_titles=list(metrics))
    for column, frame in enumerate(metrics.values(), start=1):
        for name, dash, colour in (("train_acc", "dash", "blue"), ("test_acc", "solid", "red")):
            figure.add_scatter(x=frame["epoch"].clip(lower=1), y=frame[name], mode="lines",
                               line={"dash": dash, "color": colour}, name=name,
                               showlegend=column == 1, row=1, col=column)
        figure.update_xaxes(type="log", title_text="epoch", row=1, col=column)
    figure.update_yaxes(title_text="accuracy", row=1, col=1)
    figure.update_layout(title=title)
    return figure


def rqi_and_accuracy(metrics: pd.DataFrame, projection: pd.DataFrame | None = None
                     ) -> go.Figure:
    """Liu et al.'s toy model: RQI and train/test accuracy against step, and (if given) the
    final embeddings' 2D projection (columns x, y, label)."""
    columns = 2 if projection is not None else 1
    figure = make_subplots(rows=1, cols=columns, subplot_titles=(
        "RQI and accuracy", "embeddings (PCA)")[:columns])
    for name, dash in (("rqi", "solid"), ("train_acc", "dash"), ("test_acc", "dot")):
        figure.add_scatter(x=metrics["step"].clip(lower=1), y=metrics[name], name=name,
                           mode="lines", line={"dash": dash}, row=1, col=1)
    figure.update_xaxes(type="log", title_text="step", row=1, col=1)
    if projection is not None:
        figure.add_scatter(x=projection["x"], y=projection["y"], text=projection["label"],
                           mode="markers+text", textposition="top center", name="E_k",
                           row=1, col=2)
    figure.update_layout(title="Toy model: representation quality and accuracy")
    return figure


def _colour(index: int) -> str:
    import plotly.colors

    palette = plotly.colors.qualitative.Plotly
    return palette[index % len(palette)]
