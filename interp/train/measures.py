"""Model-specific measures recorded in metrics.jsonl at every evaluation.

- Kumar et al.'s committee machine (degree 2) on the single- or multi-index polynomial task:
  the exact test-loss decomposition from v and M (``analysis.committee``), of the predictor
  the objective trains (alpha and ``objective.centered`` included) against the target the run
  trains on (B -> s B with ``objective.label_scale`` s): ``decomp_linear``,
  ``decomp_scale``, ``decomp_alignment``, ``decomp_total``.
- Liu et al.'s toy model on (modular) addition: the RQI of its embeddings and the
  effective loss on the training parallelograms (``analysis.representation``): ``rqi``,
  ``effective_loss``.
- Every model on a task with real-valued targets (Kumar et al.'s polynomial, the
  student-teacher task), which has no accuracy of its own: Omnigrok's threshold accuracy
  of the output the objective trains (``analysis.curves.threshold_accuracy``: squared
  error below 1e-3 per example), as ``train_acc`` and ``test_acc``, so that landmarks, Liu
  et al.'s phases and the progress bar read it as these runs' accuracy.
Other models record nothing extra. ``MEASURES`` maps a model kind to the function that builds
its measures for a run (or None where they do not apply); a new kind with measures adds one
entry there (they call pure ``interp.analysis`` functions, which models may not import).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from interp.config import PolynomialTask, RunConfig
from interp.tasks.base import Task

# one run's state dict (unstacked, any device; the names of model.state_dict()) -> metrics
WeightMeasures = Callable[[Mapping[str, torch.Tensor]], dict[str, float]]


def evaluation_measures(config: RunConfig, task: Task) -> WeightMeasures | None:
    """The extra metrics of a run of ``config`` on ``task`` as a function of its weights (one
    run's state dict -> name -> value): its model kind's and, for real-valued targets, the
    threshold accuracy; None for runs that record nothing extra."""
    kind = MEASURES.get(config.model.kind)
    parts = [part for part in (kind(config, task) if kind is not None else None,
                               _threshold_accuracy(config, task)) if part is not None]
    if not parts:
        return None
    return lambda weights: {name: value for part in parts for name, value in part(weights).items()}


def _threshold_accuracy(config: RunConfig, task: Task) -> WeightMeasures | None:
    """``train_acc`` and ``test_acc``: Omnigrok's threshold accuracy of the trained output
    (centred, alpha-scaled, linearised as the objective says) on the run's train and test
    sets, for tasks with real-valued targets (``Task.target_type`` ``real``)."""
    if task.target_type != "real":
        return None
    from interp.analysis.curves import threshold_accuracy
    from interp.models import build_model
    from interp.train.objective import build_objective

    model = build_model(config.model, task)  # theta_0: the seeded init, even on resume
    objective = build_objective(config, model, model.state_dict())
    splits = {"train": (task.train_inputs, task.train_targets),
              "test": (task.test_inputs, task.test_targets)}

    def measure(weights: Mapping[str, torch.Tensor]) -> dict[str, float]:
        params = {name: weights[name].detach().cpu() for name in objective.initial}
        with torch.no_grad():
            return {f"{split}_acc": threshold_accuracy(objective(params, inputs), targets)
                    for split, (inputs, targets) in splits.items()}
    return measure


def _committee_measures(config: RunConfig, task: Task) -> WeightMeasures | None:
    """The loss decomposition, for degree 2 on the single- or multi-index target (the
    decomposition's assumptions), of a run trained as itself (not linearised)."""
    if not (config.model.degree == 2 and isinstance(config.task, PolynomialTask)
            and config.task.target in ("single_index", "multi_index")
            and not config.objective.linearized):
        return None
    from interp.analysis.committee import committee_loss_decomposition, effective_statistics
    from interp.models import build_model

    initial = build_model(config.model, task).W.detach()  # the seeded init, even on resume
    # the run's target s sum_k (beta_k.x)^2 / 2 has B = sum_k (sqrt(s) beta_k)(sqrt(s) beta_k)^T
    directions = task.info["directions"] * config.objective.label_scale ** 0.5
    alpha, centred = config.objective.alpha, config.objective.centered

    def measure(weights: Mapping[str, torch.Tensor]) -> dict[str, float]:
        v, M = effective_statistics(weights["W"].detach().cpu(), initial, alpha, centred)
        return committee_loss_decomposition(v, M, directions, config.model.eps).to_dict(
            "decomp_")
    return measure


def _toy_measures(config: RunConfig, task: Task) -> WeightMeasures | None:
    """RQI and effective loss of the embeddings, on (modular) addition."""
    if not (config.task.kind == "toy_addition"
            or config.task.kind == "modular" and config.task.op == "add"):
        return None
    from interp.analysis.representation import (
        effective_loss,
        parallelograms,
        parallelograms_within,
        rqi,
    )

    n = task.vocab_size  # the numbers 0..n-1, one embedding row each
    modulus = n if config.task.kind == "modular" else None
    grams = parallelograms(n, modulus)
    train_grams = parallelograms_within(grams, task.operands[task.train_idx])

    def measure(weights: Mapping[str, torch.Tensor]) -> dict[str, float]:
        E = weights["embed.weight"].detach().cpu()
        return {"rqi": rqi(E, grams), "effective_loss": effective_loss(E, train_grams)}
    return measure


# model kind -> (config, task) -> its measures as a function of a run's weights, or None
MEASURES: dict[str, Callable[[RunConfig, Task], WeightMeasures | None]] = {
    "committee": _committee_measures,
    "toy": _toy_measures,
}
