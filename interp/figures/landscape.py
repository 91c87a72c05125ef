"""Figures of the measures beyond the source papers, over one run: the local learning
coefficient with its SGLD chains (Lau et al. 2023; devinterp), the sharpness of the training
loss (the Hessian's top eigenvalue) and the numerical-stability diagnostics the trainer
records (softmax collapse and the gradient's cosine with the weights; Prieto et al. 2025).

Each is drawn beside the run's train and test loss, with Nanda et al.'s phases shaded and
the accuracy landmarks dotted where the run has them, so a rise or fall reads against
memorisation and generalisation.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from interp.figures.export import with_caption
from interp.figures.progress import add_landmarks, add_lines, add_phases

LOSS_AXIS = "train / test loss (log)"


def _with_losses(measure: go.Figure, metrics: pd.DataFrame) -> None:
    """The run's train and test loss on the right-hand axis (log scale), dotted."""
    for column, name in (("train_loss", "train loss"), ("test_loss", "test loss")):
        if column in metrics:
            measure.add_trace(go.Scatter(x=metrics["epoch"], y=metrics[column], name=name,
                                         mode="lines", line={"dash": "dot", "width": 1}),
                              secondary_y=True)
    measure.update_yaxes(type="log", title_text=LOSS_AXIS, secondary_y=True, dtick=2,
                         exponentformat="power", showgrid=False)  # a tick every 2 decades


def llc_figure(measures: pd.DataFrame, metrics: pd.DataFrame, phases=None, landmarks=None,
               settings: str = "") -> go.Figure:
    """The LLC estimate per checkpoint (mean over chains, error bars one standard deviation
    across chains) beside the train and test loss. ``measures``: epoch, llc, llc_std."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=measures["epoch"], y=measures["llc"], name="LLC",
                             mode="lines+markers",
                             error_y={"type": "data", "array": measures["llc_std"],
                                      "visible": True}),
                  secondary_y=False)
    _with_losses(fig, metrics)
    fig.update_yaxes(title_text="local learning coefficient", secondary_y=False)
    fig.update_xaxes(title_text="epoch")
    add_phases(fig, phases, metrics)
    add_landmarks(fig, landmarks)
    fig.update_layout(title="Local learning coefficient", height=450)
    return with_caption(fig, "The local learning coefficient (SGLD estimate of the effective "
                        "dimension around each checkpoint; bars: one standard deviation "
                        f"across chains{'; ' + settings if settings else ''}) beside the train "
                        "and test loss (dotted, right axis).")


def chain_traces_figure(traces: dict[int, torch.Tensor], init_losses: dict[int, float],
                        burn_in: int = 0) -> go.Figure:
    """Each SGLD chain's loss per step at one checkpoint, a slider through the checkpoints;
    the dashed line is the loss at the checkpoint itself, the first ``burn_in`` steps
    (shaded) are left out of the estimate. traces: epoch -> [chains, steps]."""
    fig = go.Figure()
    epochs = sorted(traces)
    spans = []
    for epoch in epochs:
        trace = traces[epoch].double()
        start = len(fig.data)
        for chain, losses in enumerate(trace):
            fig.add_trace(go.Scatter(y=losses.tolist(), mode="lines", name=f"chain {chain}",
                                     visible=epoch == epochs[-1], legendgroup=str(chain)))
        fig.add_trace(go.Scatter(y=[init_losses[epoch]] * trace.shape[1], mode="lines",
                                 name="loss at the checkpoint", line={"dash": "dash",
                                                                      "color": "black"},
                                 visible=epoch == epochs[-1]))
        spans.append((start, len(fig.data)))
    steps = [{"method": "update", "label": str(epoch),
              "args": [{"visible": [start <= i < stop for i in range(len(fig.data))]},
                       {"title": f"SGLD chains' loss at epoch {epoch}"}]}
             for epoch, (start, stop) in zip(epochs, spans, strict=True)]
    if burn_in:
        fig.add_vrect(x0=0, x1=burn_in, fillcolor="rgba(128,128,128,0.15)", line_width=0,
                      layer="below", annotation_text="burn-in", annotation_position="top left")
    fig.update_layout(title=f"SGLD chains' loss at epoch {epochs[-1]}", height=450,
                      xaxis_title="SGLD step", yaxis_title="training loss (minibatch)",
                      sliders=[{"active": len(epochs) - 1, "steps": steps,
                                "currentvalue": {"prefix": "checkpoint epoch "}}])
    return with_caption(fig, "The minibatch loss of each SGLD chain at every step, per "
                        "checkpoint (slider); the estimate averages the steps after the "
                        "shaded burn-in. Flat, overlapping traces above the dashed checkpoint "
                        "loss are a converged estimate; a trace still rising or falling, or "
                        "one far from the others, is not.")


def sharpness_figure(measures: pd.DataFrame, metrics: pd.DataFrame, phases=None,
                     landmarks=None) -> go.Figure:
    """The top eigenvalue of the training loss's Hessian per checkpoint (log scale when all
    positive) beside the train and test loss. ``measures``: epoch, sharpness."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=measures["epoch"], y=measures["sharpness"],
                             name="top Hessian eigenvalue", mode="lines+markers"),
                  secondary_y=False)
    _with_losses(fig, metrics)
    positive = bool((measures["sharpness"].dropna() > 0).all())
    fig.update_yaxes(title_text="sharpness", type="log" if positive else "linear",
                     secondary_y=False)
    fig.update_xaxes(title_text="epoch")
    add_phases(fig, phases, metrics)
    add_landmarks(fig, landmarks)
    fig.update_layout(title="Sharpness: the top eigenvalue of the training loss's Hessian",
                      height=450)
    return with_caption(fig, "The largest eigenvalue of the Hessian of the training loss at "
                        "each checkpoint (Lanczos on Hessian-vector products) beside the train "
                        "and test loss (dotted, right axis).")


def stability_figure(metrics: pd.DataFrame, phases=None, landmarks=None) -> go.Figure:
    """Softmax collapse and test accuracy (left) and the cosine between the gradient and
    the weights (right) at each evaluation."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "softmax collapse", "cosine(gradient, weights)"))
    add_lines(fig, metrics, ["softmax_collapse", "train_acc", "test_acc"],
              ["training examples with float32 loss 0", "train acc", "test acc"], 1, 1)
    add_lines(fig, metrics, ["grad_weight_cosine"], ["cos(grad, w)"], 1, 2)
    fig.update_yaxes(range=[-0.02, 1.02], row=1, col=1)
    fig.update_xaxes(title_text="epoch")
    add_phases(fig, phases, metrics)
    add_landmarks(fig, landmarks)
    fig.update_layout(title="Numerical stability (Prieto et al. 2025)", height=420)
    return with_caption(fig, "Left: the fraction of training examples whose float32 "
                        "cross-entropy is exactly 0 (softmax collapse: their gradient "
                        "vanishes), with train and test accuracy. Right: the cosine between "
                        "the training loss's gradient and the weights (near -1: a descent step "
                        "mostly scales the weights up, naive loss minimisation). A run that "
                        "trains float64 or StableMax may show a collapse of 1: the float32 "
                        "softmax of its logits, not its own loss.")
