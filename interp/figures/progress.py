"""Figures of the progress-measures analysis (Nanda et al. 2023): one builder per figure.

Builders take tables and tensors (from ``interp.analyze`` results) and return ``go.Figure``
with a one-line caption (``figures.export.with_caption``) saying what the plot shows.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from interp.figures.export import with_caption

PHASE_COLOURS = {"memorisation": "rgba(31,119,180,0.08)",
                 "circuit formation": "rgba(255,127,14,0.10)",
                 "clean-up": "rgba(44,160,44,0.10)"}
LABEL_BACKGROUND = "rgba(255,255,255,0.7)"  # behind phase and landmark names, over the curves
LABEL_ROW = 13  # pixels between the rows of staggered labels (font size 10)
TICK_PIXELS = 8  # room per named Fourier component (tick font 8, names vertical on x)
TICK_FONT = 8


def add_phases(fig: go.Figure, phases: dict[str, int | None] | None,
               frame: pd.DataFrame) -> None:
    """Shade memorisation / circuit formation / clean-up behind every subplot; a phase
    still open runs to the last epoch of ``frame`` (the curves drawn). Each phase's name
    has its own row at the top, so short phases' names never print over each other; a
    phase starting right of the middle is named at its right edge, inside the plot."""
    if not phases or phases.get("memorisation_end") is None:
        return
    last_epoch = int(frame["epoch"].max()) if not frame.empty else 0
    bounds = [0, phases["memorisation_end"], phases.get("cleanup_start"),
              phases.get("cleanup_end")]
    for i, name in enumerate(PHASE_COLOURS):
        start, end = bounds[i], bounds[i + 1] if i + 1 < len(bounds) else None
        if start is None:
            break
        end = last_epoch if end is None else end
        fig.add_vrect(x0=start, x1=end, fillcolor=PHASE_COLOURS[name], line_width=0,
                      layer="below", annotation_text=name,
                      annotation_position="top left" if 2 * start <= last_epoch
                      else "top right", annotation_yshift=-LABEL_ROW * i,
                      annotation_font_size=10, annotation_bgcolor=LABEL_BACKGROUND)


def add_landmarks(fig: go.Figure, landmarks: dict[str, int | None] | None) -> None:
    """Dotted vertical lines where train and test accuracy reach 99%, named at the bottom,
    each on its own row."""
    marks = [(key, label) for key, label in (("train_acc_99", "train acc 99%"),
                                             ("test_acc_99", "test acc 99%"))
             if landmarks and landmarks.get(key) is not None]
    for row, (key, label) in enumerate(reversed(marks)):
        fig.add_vline(x=landmarks[key], line_dash="dot", line_color="grey",
                      annotation_text=label, annotation_position="bottom right",
                      annotation_yshift=LABEL_ROW * row, annotation_font_size=10,
                      annotation_bgcolor=LABEL_BACKGROUND)


def add_lines(fig, frame, columns, names, row=None, col=None, secondary_y=None):
    """One line per column of ``frame`` present (against its epoch), named ``names``."""
    for column, name in zip(columns, names, strict=True):
        if column in frame:
            trace = go.Scatter(x=frame["epoch"], y=frame[column], name=name, mode="lines")
            kwargs = {} if row is None else {"row": row, "col": col}
            if secondary_y is not None:
                kwargs["secondary_y"] = secondary_y
            fig.add_trace(trace, **kwargs)


def loss_and_accuracy(metrics: pd.DataFrame, phases=None, landmarks=None,
                      title: str = "Loss and accuracy") -> go.Figure:
    """Train/test loss (log scale) and accuracy over epochs, with phases shaded."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    add_lines(fig, metrics, ["train_loss", "test_loss"], ["train loss", "test loss"], 1, 1)
    add_lines(fig, metrics, ["train_acc", "test_acc"], ["train acc", "test acc"], 1, 2)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(title_text="epoch")
    add_phases(fig, phases, metrics)
    add_landmarks(fig, landmarks)
    fig.update_layout(title=title, height=420)
    return with_caption(fig, "Train and test loss (log scale, left) and accuracy (right) at "
                        "each evaluation" + _marks_caption(phases, landmarks) + ".")


def _marks_caption(phases, landmarks) -> str:
    """What ``add_phases`` and ``add_landmarks`` drew, for a caption."""
    text = ""
    if phases and phases.get("memorisation_end") is not None:
        text += "; shaded: Nanda et al.'s phases"
    if landmarks and any(landmarks.get(k) is not None for k in ("train_acc_99", "test_acc_99")):
        text += "; dotted: where train and test accuracy first reach 99%"
    return text


def progress_losses(metrics: pd.DataFrame, measures: pd.DataFrame, phases=None
                    ) -> go.Figure:
    """Restricted loss beside test loss, excluded loss beside train loss (log scale)."""
    fig = go.Figure()
    add_lines(fig, metrics, ["train_loss", "test_loss"], ["train loss", "test loss"])
    add_lines(fig, measures, ["restricted_loss", "excluded_loss"],
           ["restricted loss (test)", "excluded loss (train)"])
    fig.update_yaxes(type="log", title_text="cross-entropy")
    fig.update_xaxes(title_text="epoch")
    add_phases(fig, phases, metrics)
    fig.update_layout(title="Progress measures: restricted and excluded loss", height=450)
    return with_caption(fig, "Restricted loss (test loss from the key frequencies' part of the "
                        "MLP activations alone) and excluded loss (train loss without it) "
                        "beside the train and test loss"
                        + _marks_caption(phases, None) + ".")


def excluded_per_frequency(measures: pd.DataFrame, phases=None) -> go.Figure:
    """Excluded loss with one key frequency removed at a time."""
    fig = go.Figure()
    columns = [c for c in measures if c.startswith("excluded_loss/")]
    add_lines(fig, measures, columns, [f"without k={c.split('/')[1]}" for c in columns])
    add_lines(fig, measures, ["excluded_loss"], ["without all key frequencies"])
    fig.update_yaxes(type="log", title_text="train cross-entropy")
    fig.update_xaxes(title_text="epoch")
    add_phases(fig, phases, measures)
    fig.update_layout(title="Excluded loss per key frequency", height=420)
    return with_caption(fig, "Train loss with one key frequency's part of the MLP "
                        "activations removed at a time, and with all of them removed"
                        + _marks_caption(phases, None) + ".")


def sparsity_and_weights(measures: pd.DataFrame, phases=None) -> go.Figure:
    """Gini coefficients of the W_E and W_L Fourier norms, and the sum of squared weights."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    add_lines(fig, measures, ["gini_embed", "gini_unembed"],
           ["Gini of W_E Fourier norms", "Gini of W_L Fourier norms"], secondary_y=False)
    add_lines(fig, measures, ["sum_squared_weights"], ["sum of squared weights"],
           secondary_y=True)
    fig.update_yaxes(title_text="Gini coefficient", secondary_y=False)
    fig.update_yaxes(title_text="sum of squared weights", secondary_y=True)
    fig.update_xaxes(title_text="epoch")
    add_phases(fig, phases, measures)
    fig.update_layout(title="Fourier sparsity and weight norm", height=420)
    return with_caption(fig, "Gini coefficient of W_E's and W_L's Fourier norms (higher: "
                        "sparser in the Fourier basis) and the sum of squared weights"
                        + _marks_caption(phases, None) + ".")


def embedding_fourier_norms(component_norms: torch.Tensor, labels: list[str],
                            key: list[int], epoch: int) -> go.Figure:
    """Bar chart of the norm of each Fourier component of W_E (Nanda et al. Fig. 2)."""
    colours = ["#d62728" if label != "const" and int(label.split()[1]) in key else "#1f77b4"
               for label in labels]
    fig = go.Figure(go.Bar(x=labels, y=component_norms.tolist(), marker_color=colours))
    fig.update_layout(title=f"W_E in the Fourier basis (epoch {epoch}; key frequencies red)",
                      xaxis_title="Fourier component", yaxis_title="norm", height=440,
                      width=_named_width(labels, 150))
    _name_every_tick(fig.layout.xaxis, labels)
    return with_caption(fig, f"Norm of each Fourier component (const, cos k, sin k) of the "
                        f"number embeddings W_E at epoch {epoch}; red: the key frequencies "
                        f"{', '.join(map(str, key)) or '(none)'}.")


def _name_every_tick(axis, labels: list[str]) -> None:
    """Give every category of ``axis`` its own tick label (plotly would name every other
    one when they are dense, so ``cos k`` would never show), small and vertical on x."""
    axis.update(tickmode="array", tickvals=labels, ticktext=labels,
                tickfont={"size": TICK_FONT})
    if axis.plotly_name.startswith("xaxis"):
        axis.update(tickangle=-90)


def _named_width(labels: list[str], margins: int) -> int | None:
    """A figure width leaving ``TICK_PIXELS`` per label besides ``margins``; None (fit the
    page) when the page's width gives them that room anyway."""
    width = TICK_PIXELS * len(labels) + margins
    return width if width > 900 else None


def frequency_norms_over_time(epochs: list[int], norms: torch.Tensor, title: str
                              ) -> go.Figure:
    """Heatmap: norm per frequency (rows) at each analysed checkpoint (columns)."""
    fig = go.Figure(go.Heatmap(z=norms.T.tolist(), x=[str(e) for e in epochs],
                               y=list(range(1, norms.shape[1] + 1)), colorscale="Blues"))
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="frequency k",
                      height=450)
    return with_caption(fig, f"{title}: the norm of each frequency k (cos and sin together) "
                        "at each analysed checkpoint; key frequencies grow and stay.")


def neuron_clusters(fractions: torch.Tensor, frequency: torch.Tensor, epoch: int
                    ) -> go.Figure:
    """Neurons sorted by cluster: fraction of variance each frequency explains, and sizes."""
    order = torch.argsort(frequency * 10_000 - fractions.max(dim=0).values, stable=True)
    order = torch.cat([order[frequency[order] != -1], order[frequency[order] == -1]])
    values, counts = torch.unique(frequency, return_counts=True)
    names = ["unexplained" if v == -1 else f"k={int(v)}" for v in values]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.72, 0.28], horizontal_spacing=0.12,
                        subplot_titles=("variance explained per frequency", "cluster sizes"))
    fig.add_trace(go.Heatmap(z=fractions[:, order].tolist(), colorscale="Viridis",
                             y=list(range(1, fractions.shape[0] + 1)), zmin=0, zmax=1,
                             colorbar={"x": 0.645, "thickness": 12, "len": 0.9}),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=counts.tolist(), showlegend=False), row=1, col=2)
    fig.update_xaxes(title_text="neuron (sorted by cluster)", row=1, col=1)
    fig.update_yaxes(title_text="frequency k", row=1, col=1)
    fig.update_layout(title=f"MLP neurons clustered by frequency (epoch {epoch}; 0.85 rule)",
                      height=450)
    return with_caption(fig, f"Left: fraction of each MLP neuron's variance over the (a, b) "
                        f"grid that each frequency explains, at epoch {epoch}; right: how many "
                        "neurons one frequency explains above 85% (Nanda et al.'s clusters).")


def logit_fourier_heatmap(norms: torch.Tensor, labels: list[str], epoch: int) -> go.Figure:
    """Norm (over outputs) of the logits' 2D Fourier transform over inputs (a, b)."""
    fig = go.Figure(go.Heatmap(z=norms.tolist(), x=labels, y=labels, colorscale="Blues"))
    side = TICK_PIXELS * len(labels)
    fig.update_layout(title=f"Logits in the 2D Fourier basis over (a, b) (epoch {epoch})",
                      xaxis_title="component of b", yaxis_title="component of a",
                      height=max(side, 460) + 170, width=max(side, 460) + 220,
                      yaxis_autorange="reversed")
    _name_every_tick(fig.layout.xaxis, labels)
    _name_every_tick(fig.layout.yaxis, labels)
    return with_caption(fig, f"Norm over output classes of the logits' 2D Fourier transform "
                        f"over the inputs (a, b) at epoch {epoch}; a generalising model's lies "
                        "on the key frequencies.")


def logit_frequency_cosines(cosines: torch.Tensor, key: list[int], epoch: int) -> go.Figure:
    """Cosine similarity of the logits with cos(w_k (a + b - c)) for each frequency."""
    ks = list(range(1, len(cosines) + 1))
    colours = ["#d62728" if k in key else "#1f77b4" for k in ks]
    fig = go.Figure(go.Bar(x=ks, y=cosines.tolist(), marker_color=colours))
    fig.update_layout(title=f"Logits projected on cos(w_k(a+b-c)) (epoch {epoch})",
                      xaxis_title="frequency k", yaxis_title="cosine similarity", height=380)
    return with_caption(fig, f"Cosine similarity of the logits over (a, b, c) with "
                        f"cos(w_k(a+b-c)) for each frequency k at epoch {epoch}; red: the key "
                        "frequencies (Nanda et al.'s logit identity).")


def attention_patterns(attention: torch.Tensor, fractions: torch.Tensor, epoch: int
                       ) -> go.Figure:
    """Attention from the final position to a, over inputs (a, b), one panel per head."""
    n_heads = attention.shape[0]
    top = fractions.max(dim=0)
    titles = [f"head {h}: k={int(top.indices[h]) + 1} explains {float(top.values[h]):.0%}"
              for h in range(n_heads)]
    fig = make_subplots(rows=1, cols=n_heads, subplot_titles=titles)
    for h in range(n_heads):
        fig.add_trace(go.Heatmap(z=attention[h].tolist(), coloraxis="coloraxis"),
                      row=1, col=h + 1)
        fig.update_xaxes(title_text="b", row=1, col=h + 1)
        fig.update_yaxes(title_text="a", autorange="reversed", row=1, col=h + 1)
    fig.update_layout(title=f"Attention from '=' to a (epoch {epoch})", height=380,
                      coloraxis={"colorscale": "Viridis"})
    return with_caption(fig, f"Each head's attention weight from the final position to the "
                        f"token a over the (a, b) grid at epoch {epoch}, titled with the "
                        "frequency that explains most of its variance.")
