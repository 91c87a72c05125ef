"""Sharpness over a run: the top eigenvalue of its training loss's Hessian at every
checkpoint (``interp.analysis.sharpness``), cached per checkpoint.

The loss is the run's own: its trained output (centred, alpha-scaled or linearised as
configured, ``interp.train.objective``), its ``objective.loss`` in ``objective.loss_dtype``,
on its training split (all of it by default, ``--sharpness-examples`` for a seeded subset),
differentiated with respect to the trainable weights. Weight decay is not part of it.

A checkpoint where a Hessian-vector product is not finite is recorded as missing (NaN), with
one warning naming it; one where Lanczos used every product allowed keeps its estimate,
marked unconverged, with one warning for the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from interp.analyzers.base import AnalyzerResult, Context, Layout, cached_points, numbers
from interp.errors import warn

NAME = "sharpness"
VERSION = 1
MEASURES = ("sharpness", "residual", "matvecs", "converged")


def skip_reason(run) -> str | None:
    """None: every run has a training loss."""
    return None


@dataclass(kw_only=True)
class SharpnessResult(AnalyzerResult):
    """The top Hessian eigenvalue over a run: ``measures`` holds a row per checkpoint
    (epoch, sharpness: NaN where missing, residual, matvecs, converged: bool, and
    ``share/<weight>``: the share of the top eigenvector in each weight); the landmarks
    read from them and the settings they were computed with."""

    settings: Any  # interp.analysis.sharpness.SharpnessSettings
    examples: int  # training examples the loss averaged
    peak_epoch: int | None  # epoch of the largest sharpness (None: every value missing)
    maximum: float | None
    final: float | None  # at the last analysed checkpoint (None: missing there)
    missing_epochs: list[int]  # non-finite Hessian-vector products
    unconverged_epochs: list[int]


def entry_layout(epoch: int) -> Layout:
    """What ``analyze`` caches at every checkpoint: the measures and the eigenvector's share
    per weight (empty where the value is missing)."""
    return Layout({"measures": numbers(*MEASURES), "shares": numbers()})


def analyze(context: Context) -> SharpnessResult | None:
    """The top eigenvalue of the training-loss Hessian (Lanczos) at every selected
    checkpoint."""
    from interp.analysis.lazy_rich import trainable_weights
    from interp.analysis.sharpness import (
        resolve_sharpness,
        top_hessian_eigenvalue,
        training_loss,
        training_subset,
    )
    from interp.train.losses import build_loss
    from interp.train.objective import build_objective

    run, task, device = context.run, context.task, context.options.device
    settings = resolve_sharpness(context.options.sharpness)
    inputs, targets = task.train_inputs, task.train_targets
    subset = training_subset(len(inputs), settings.examples, settings.seed)
    if subset is not None:
        inputs, targets = inputs[subset], targets[subset]
    inputs, targets = inputs.to(device), targets.to(device)
    loss = build_loss(run.config.objective.loss, run.config.objective.loss_dtype)
    params = {**settings.to_dict(), "version": VERSION}
    # theta_0 matters only to a centred or linearised objective: only then is epoch 0 read
    centred = run.config.objective.centered or run.config.objective.linearized
    if centred and not context.read_only and context.weights(0) is None:
        warn(f"{run.path}: sharpness of a centred or linearised objective needs the epoch-0 "
             "checkpoint; skipped")
        return None
    objective = None
    unconverged: list[int] = []  # computed now

    def compute(epoch: int, model) -> tuple[dict[str, Any], dict]:
        nonlocal objective
        if objective is None:  # the model object is reloaded in place: one objective
            initial = (context.weights(0) if centred else
                       {name: w.detach().clone() for name, w in model.state_dict().items()})
            objective = build_objective(run.config, model, initial)
        weights = {name: w.detach() for name, w in trainable_weights(model).items()}
        top = top_hessian_eigenvalue(training_loss(objective, loss, inputs, targets),
                                     weights, settings)
        if top.eigenvalue != top.eigenvalue:  # NaN
            warn(f"sharpness: {run.checkpoint_file(epoch)}: a Hessian-vector product is not "
                 "finite; its sharpness is recorded as missing")
        elif not top.converged:
            unconverged.append(epoch)
        return {"measures": {"sharpness": top.eigenvalue, "residual": top.residual,
                             "matvecs": top.matvecs, "converged": int(top.converged)},
                "shares": top.weight_shares}, {}

    points, computed = cached_points(context, NAME, params, list(context.epochs), compute,
                                     layout=entry_layout)
    if not points:
        return None
    measures = pd.DataFrame([{"epoch": epoch, **record["measures"],
                              **{f"share/{k}": v for k, v in record["shares"].items()}}
                             for epoch, record, _ in points])
    measures["converged"] = measures["converged"].astype(bool)
    if unconverged:
        more = f" and {len(unconverged) - 5} more" if len(unconverged) > 5 else ""
        warn(f"sharpness: {run.path}: Lanczos did not reach --sharpness-tolerance "
             f"{settings.tolerance} within {settings.max_matvecs} products at epochs "
             f"{', '.join(map(str, unconverged[:5]))}{more}; their estimates are kept, marked "
             "unconverged (raise --sharpness-max-matvecs)")
    return _result(measures, settings, len(inputs), computed)


def _result(measures: pd.DataFrame, settings, examples: int, computed: int) -> SharpnessResult:
    """The result and its summary entries from the per-checkpoint measures."""
    from interp.analysis.sharpness import overrides_entry

    values = measures.set_index("epoch")["sharpness"]
    missing = [int(e) for e in values.index[values.isna()]]
    unconverged = [int(e) for e in measures["epoch"][~measures["converged"]]
                   if int(e) not in missing]
    found = values.dropna()
    peak = int(found.idxmax()) if len(found) else None
    maximum = float(found.max()) if len(found) else None
    final = None if values.isna().iloc[-1] else float(values.iloc[-1])
    summary = {"sharpness_peak_epoch": peak, "sharpness_max": maximum,
               "sharpness_final": final, "examples": examples,
               "settings": overrides_entry(settings), "missing_epochs": missing,
               "unconverged_epochs": unconverged}
    return SharpnessResult(measures=measures, summary=summary, computed=computed,
                           settings=settings, examples=examples, peak_epoch=peak,
                           maximum=maximum, final=final, missing_epochs=missing,
                           unconverged_epochs=unconverged)

