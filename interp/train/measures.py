"""Model-specific measures recorded in metrics.jsonl at every evaluation.

- Kumar et al.'s committee machine (degree 2) on the single- or multi-index polynomial task:
  the exact test-loss decomposition from v and M (``analysis.committee``), of the predictor
  the objective trains (alpha and ``objective.centered`` included): ``decomp_linear``,
  ``decomp_scale``, ``decomp_alignment``, ``decomp_total``.
- Liu et al.'s toy model on (modular) addition: the RQI of its embeddings and the
  effective loss on the training parallelograms (``analysis.representation``): ``rqi``,
  ``effective_loss``.
Other models record nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from interp.config import CommitteeModel, PolynomialTask, RunConfig, ToyModel
from interp.tasks.base import Task

Measures = Callable[[], dict[str, float]]


def evaluation_measures(config: RunConfig, model: torch.nn.Module, task: Task) -> Measures:
    """A function of no arguments giving the extra metrics of ``model``'s current weights."""
    if (isinstance(config.model, CommitteeModel) and config.model.degree == 2
            and isinstance(config.task, PolynomialTask)
            and config.task.target in ("single_index", "multi_index")
            and not config.objective.linearized):
        return _committee_measures(config, model, task)
    if isinstance(config.model, ToyModel) and (config.task.kind == "toy_addition" or (
            config.task.kind == "modular" and config.task.op == "add")):
        return _toy_measures(config, model, task)
    return dict


def _committee_measures(config: RunConfig, model: torch.nn.Module, task: Task) -> Measures:
    from interp.analysis.committee import committee_loss_decomposition, effective_statistics
    from interp.models import build_model

    initial = build_model(config.model, task).W.detach()  # the seeded init, even on resume
    directions = task.info["directions"]
    alpha, centred = config.objective.alpha, config.objective.centered

    def measure() -> dict[str, float]:
        v, M = effective_statistics(model.W.cpu(), initial, alpha, centred)
        return committee_loss_decomposition(v, M, directions, config.model.eps).to_dict(
            "decomp_")
    return measure


def _toy_measures(config: RunConfig, model: torch.nn.Module, task: Task) -> Measures:
    from interp.analysis.representation import (
        effective_loss,
        parallelograms,
        parallelograms_within,
        rqi,
    )

    n = model.embed.weight.shape[0]
    modulus = n if config.task.kind == "modular" else None
    grams = parallelograms(n, modulus)
    train_grams = parallelograms_within(grams, task.operands[task.train_idx])

    def measure() -> dict[str, float]:
        E = model.embed.weight.detach().cpu()
        return {"rqi": rqi(E, grams), "effective_loss": effective_loss(E, train_grams)}
    return measure
