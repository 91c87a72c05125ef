"""Model-specific measures recorded in metrics.jsonl at every evaluation.

- Kumar et al.'s committee machine (degree 2) on the single- or multi-index polynomial task:
  the exact test-loss decomposition from v and M (``analysis.committee``), of the predictor
  the objective trains (alpha and ``objective.centered`` included): ``decomp_linear``,
  ``decomp_scale``, ``decomp_alignment``, ``decomp_total``.
- Liu et al.'s toy model on (modular) addition: the RQI of its embeddings and the
  effective loss on the training parallelograms (``analysis.representation``): ``rqi``,
  ``effective_loss``.
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
    run's state dict -> name -> value); None for models that record nothing extra."""
    measures = MEASURES.get(config.model.kind)
    return measures(config, task) if measures is not None else None


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
    directions = task.info["directions"]
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
