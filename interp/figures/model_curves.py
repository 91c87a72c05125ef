"""Figure builders for the models of the other grokking papers (plotly; data in, figure
out: no training, no science computed here).

Each takes run metrics tables (``Run.metrics``: columns epoch, step, train/test loss and
accuracy, weight_norm and the model-specific measures).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from interp.figures.export import with_caption

DECOMPOSITION = {"decomp_linear": "linear power", "decomp_scale": "scale (trace)",
                 "decomp_alignment": "alignment (beta^T M beta)", "decomp_total": "sum"}


def loss_curves_by_alpha(metrics: dict[float, pd.DataFrame], title: str,
                         loss_name: str = "MSE", log_epochs: bool = True) -> go.Figure:
    """Train (dashed) and test (solid) loss against epoch, one colour per output scale alpha
    (Kumar et al. Fig. 3a and 5b: large alpha delays the fall of the test loss, small alpha
    removes the delay). metrics: alpha -> metrics table."""
    figure = go.Figure()
    for index, (alpha, frame) in enumerate(sorted(metrics.items())):
        colour = series_colour(index)
        for column, dash in (("train_loss", "dash"), ("test_loss", "solid")):
            epochs = frame["epoch"].clip(lower=1) if log_epochs else frame["epoch"]
            figure.add_scatter(x=epochs, y=frame[column], mode="lines",
                               name=f"alpha={alpha:g} {column.split('_')[0]}",
                               line={"color": colour, "dash": dash})
    figure.update_layout(title=title, xaxis_title="epoch", yaxis_title=loss_name)
    if log_epochs:
        figure.update_xaxes(type="log")
    figure.update_yaxes(type="log")
    return with_caption(figure, "Train (dashed) and test (solid) loss of one run per output scale"
                                " alpha, over epochs.")


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
    return with_caption(figure, "The committee machine's test loss split into its parts (Kumar et"
                                " al.) at each evaluation.")


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
    return with_caption(figure, "Train and test accuracy beside the weight norm at each "
                                "evaluation.")


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
    return with_caption(figure, "Train and test accuracy over training, one panel per run.")


def representation_quality(rqi: pd.DataFrame, metrics: pd.DataFrame,
                           coordinates: torch.Tensor | None = None, x: str = "epoch",
                           geometry: str = "linear") -> go.Figure:
    """Liu et al.: the embeddings' RQI (``rqi`` table: columns x, rqi) beside train/test
    accuracy (``metrics``), against ``x`` (epoch or step), and, if given, the final
    embeddings' 2D projection (``coordinates`` [n, 2], point k labelled k). ``geometry``:
    the parallelogram test the RQI counts, ``linear`` (Liu et al.'s) or ``circular`` (angle
    addition on the key-frequency circles, for modular addition); the legend and title say
    which."""
    label = {"linear": "RQI", "circular": "circular RQI"}[geometry]
    columns = 2 if coordinates is not None else 1
    figure = make_subplots(rows=1, cols=columns, subplot_titles=(
        f"{label} and accuracy", "embeddings (PCA)")[:columns])
    figure.add_scatter(x=rqi[x].clip(lower=1), y=rqi["rqi"], name=label, mode="lines",
                       row=1, col=1)
    for name, dash in (("train_acc", "dash"), ("test_acc", "dot")):
        if name in metrics:
            figure.add_scatter(x=metrics[x].clip(lower=1), y=metrics[name], name=name,
                               mode="lines", line={"dash": dash}, row=1, col=1)
    figure.update_xaxes(type="log", title_text=x, row=1, col=1)
    if coordinates is not None:
        figure.add_scatter(x=coordinates[:, 0].tolist(), y=coordinates[:, 1].tolist(),
                           text=[str(k) for k in range(len(coordinates))],
                           mode="markers+text", textposition="top center", name="E_k",
                           row=1, col=2)
    test = {"linear": "Liu et al.'s linear parallelograms",
            "circular": "circular parallelograms, after Liu et al."}[geometry]
    figure.update_layout(title=f"Representation quality ({test}) and accuracy")
    return with_caption(figure, "Left: the fraction of parallelograms the embeddings satisfy "
                                "(RQI) beside train and test accuracy; right: the final "
                                "embeddings' 2D PCA projection, each number labelled.")


def series_colour(index: int) -> str:
    """The plotly palette's colour for the index-th series (cycling)."""
    import plotly.colors

    palette = plotly.colors.qualitative.Plotly
    return palette[index % len(palette)]
