"""Kumar et al.'s committee-machine theory beside trained runs: the theory of a run from its
config and epoch-0 weights (``run_theory``), and the figures that overlay the two."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.analysis.committee_theory import (
    CommitteeDynamics,
    LeaveOneOutGap,
    TheoryCurves,
    leave_one_out_gap,
    population_flow,
)
from interp.config import CommitteeModel, PolynomialTask, RunConfig
from interp.errors import UserError
from interp.figures.export import with_caption
from interp.figures.model_curves import series_colour

# the leave-one-out gap costs samples * D^3 per step of the equations: drawn up to this D
GAP_MAX_DIM = 32


@dataclass(frozen=True)
class RunTheory:
    """The theory of one run: its online-limit curves and, for small D, the first-order
    finite-data gap (None above ``GAP_MAX_DIM``)."""

    curves: TheoryCurves
    gap: LeaveOneOutGap | None
    n_train: int


def dynamics_of(config: RunConfig) -> CommitteeDynamics:
    """The theory's constants for a committee-machine run; UserError naming what the theory
    does not cover (it is gradient flow of the degree-2 machine on an index target with
    fewer directions than dimensions, trained full batch by plain sgd: no momentum, warm-up,
    gradient filter, noise or orthogonal gradient; not linearised)."""
    from interp.train.objective import learning_rate_scale, weight_decay_scale

    model, task, optim, objective = config.model, config.task, config.optim, config.objective
    problems = [text for bad, text in (
        (not isinstance(model, CommitteeModel), "model.kind is not committee"),
        (not isinstance(task, PolynomialTask)
         or task.target not in ("single_index", "multi_index"),
         "task.target is not single_index or multi_index"),
        (getattr(model, "degree", 2) != 2, "model.degree is not 2"),
        (optim.name != "sgd", "optim.name is not sgd"),
        (optim.momentum != 0, "optim.momentum is not 0"),
        (optim.batch_size is not None, "optim.batch_size is not full batch"),
        (optim.warmup_steps != 0, "optim.warmup_steps is not 0"),
        (optim.grad_filter is not None, "optim.grad_filter is set"),
        (optim.update_noise != 0 or optim.weight_noise != 0, "optim adds noise"),
        (optim.orthogonal_grad, "optim.orthogonal_grad is set"),
        (isinstance(task, PolynomialTask) and task.target == "multi_index"
         and task.n_directions >= task.dim, "task.n_directions is not below task.dim"),
        (objective.linearized, "objective.linearized is set"),
        (objective.loss != "mse", "objective.loss is not mse")) if bad]
    if problems:
        raise UserError(f"the committee theory does not describe this run: "
                        f"{'; '.join(problems)}")
    return CommitteeDynamics(
        dim=task.dim, width=model.width, eps=model.eps, alpha=objective.alpha,
        centred=objective.centered, label_scale=objective.label_scale,
        lr=optim.lr * learning_rate_scale(objective, optim.name),
        weight_decay=optim.weight_decay * weight_decay_scale(objective, optim.name))


def run_theory(run, gap_samples: int = 1000) -> RunTheory:
    """The theory of ``run`` (an ``interp.Run`` of the committee machine) at its evaluation
    epochs, from its own epoch-0 weights and target directions; UserError for a run the
    theory does not describe (``dynamics_of``) or one that diverged."""
    from interp.analysis.committee import summary_statistics

    dynamics = dynamics_of(run.config)
    losses = run.metrics[["train_loss", "test_loss"]].to_numpy(float)
    if not np.isfinite(losses).all():
        raise UserError(f"{run.path} diverged (its losses are not finite); the theory "
                        "describes stable gradient descent: lower optim.lr")
    v0, M0 = (t.numpy() for t in summary_statistics(run.weights(0)["W"]))
    directions = run.task().info["directions"].double().numpy()
    epochs = run.metrics["epoch"].to_numpy(float)
    curves = population_flow(dynamics, v0, M0, directions, epochs)
    gap = (leave_one_out_gap(dynamics, v0, M0, directions, epochs, samples=gap_samples)
           if dynamics.dim <= GAP_MAX_DIM else None)
    return RunTheory(curves, gap, run.config.task.n_train)


def theory_loss_figure(runs: dict[str, tuple[object, RunTheory]], title: str) -> go.Figure:
    """Train and test loss of each run (solid: test, dotted: train) beside the online
    theory (dashed) and, where computed, the theory's train loss test - gap / P
    (dash-dot). runs: label -> (run, its theory)."""
    figure = go.Figure()
    for index, (label, (run, theory)) in enumerate(runs.items()):
        colour, metrics = series_colour(index), run.metrics
        epochs = metrics["epoch"].clip(lower=1)
        for column, dash, name in (("test_loss", "solid", "test"),
                                   ("train_loss", "dot", "train")):
            figure.add_scatter(x=epochs, y=metrics[column], mode="lines",
                               name=f"{label} {name}", legendgroup=label,
                               line={"color": colour, "dash": dash})
        figure.add_scatter(x=epochs, y=theory.curves.total, mode="lines",
                           name=f"{label} theory (P = infinity)", legendgroup=label,
                           line={"color": colour, "dash": "dash", "width": 3})
        if theory.gap is not None:
            train = theory.curves.total - theory.gap.at(theory.n_train)
            figure.add_scatter(x=epochs, y=np.where(train > 0, train, np.nan), mode="lines",
                               name=f"{label} theory train (first order in 1/P)",
                               legendgroup=label, line={"color": colour, "dash": "dashdot"})
    figure.update_layout(title=title, xaxis_title="epoch", yaxis_title="MSE", height=600)
    figure.update_xaxes(type="log")
    figure.update_yaxes(type="log")
    return with_caption(figure, "Each run's test loss (solid) and train loss (dotted) beside "
                        "the online-limit theory (dashed: gradient flow on the population "
                        "loss from the run's own initial weights, where train = test) and, "
                        f"for D <= {GAP_MAX_DIM}, the theory's train loss at the run's P to "
                        "first order in 1/P (dash-dot; the leave-one-out gap, valid for P "
                        "much larger than D^2 / 2).")


def theory_terms_figure(runs: dict[str, tuple[object, RunTheory]]) -> go.Figure:
    """The exact test-loss terms recorded during training (solid) against the theory's
    (dashed), one panel per term, one colour per run."""
    terms = (("decomp_linear", "linear", "linear power"),
             ("decomp_scale", "scale", "scale (trace)"),
             ("decomp_alignment", "alignment", "alignment"))
    figure = make_subplots(rows=1, cols=3, subplot_titles=[title for *_, title in terms])
    for index, (label, (run, theory)) in enumerate(runs.items()):
        colour, metrics = series_colour(index), run.metrics
        epochs = metrics["epoch"].clip(lower=1)
        for col, (column, field, _) in enumerate(terms, start=1):
            if column in metrics:
                figure.add_scatter(x=epochs, y=metrics[column], mode="lines", name=label,
                                   legendgroup=label, showlegend=col == 1,
                                   line={"color": colour}, row=1, col=col)
            figure.add_scatter(x=epochs, y=getattr(theory.curves, field), mode="lines",
                               name=f"{label} theory", legendgroup=label, showlegend=col == 1,
                               line={"color": colour, "dash": "dash"}, row=1, col=col)
    figure.update_xaxes(type="log", title_text="epoch")
    figure.update_yaxes(type="log")
    figure.update_layout(title="Committee machine: the test-loss terms, trained (solid) and "
                               "theory (dashed)", height=450)
    return with_caption(figure, "The three exact terms of the test loss (Kumar et al. "
                        "appendix 12) of each trained run, from its weights at every "
                        "evaluation, and the online theory's.")


def describe(label: str, run, theory: RunTheory) -> str:
    """One line: when the run's and the theory's test loss halve, and their final values."""
    from interp.analysis.curves import LOSS_FRACTION, format_epoch, fraction_epoch

    metrics = run.metrics.assign(theory=theory.curves.total)
    column = "decomp_total" if "decomp_total" in metrics else "test_loss"
    measured = metrics[column]

    def halved(name: str) -> str:
        return format_epoch(fraction_epoch(metrics, name, LOSS_FRACTION))

    final = theory.curves.total[-1]
    return (f"{label}: test loss halved at epoch {halved(column)} (theory "
            f"{halved('theory')}); final test {measured.iloc[-1]:.3g} (theory "
            f"{final:.3g}), train {metrics['train_loss'].iloc[-1]:.3g}"
            + ("" if theory.gap is None or math.isnan(final) else
               f" (theory {final - theory.gap.at(theory.n_train)[-1]:.3g})"))
