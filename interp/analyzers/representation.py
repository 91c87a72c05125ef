"""Representation quality of embeddings over a run (Liu et al. 2022), cached per checkpoint.

Applies to every model whose kind names an embedding of the numbers (``number_embeddings``
of its ``ModelKind``: Liu et al.'s toy model's E, the transformer's W_E) on addition
(``toy_addition``, or ``modular`` with op add), with parallelograms a + b = c + d (mod p for
modular tasks).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from interp.analyzers.base import AnalyzerResult, Context, Layout, cached_points, number

NAME = "representation"
VERSION = 1


def applies(run) -> bool:
    from interp.models import model_kind

    config = run.config
    task = config.task
    if config.objective.linearized:  # its weights do not compute its function
        return False
    addition = task.kind == "toy_addition" or (task.kind == "modular" and task.op == "add")
    return addition and model_kind(config.model).number_embeddings is not None


def embeddings(model: torch.nn.Module, name: str, n_numbers: int) -> torch.Tensor:
    """The numbers' embedding vectors [n_numbers, d]: the first rows of the state-dict entry
    ``name`` (the kind's ``number_embeddings``)."""
    return model.state_dict()[name][:n_numbers].detach().cpu()


def analyze(context: Context) -> AnalyzerResult:
    """RQI and effective loss at every checkpoint; the final embeddings' PCA projection,
    the ideal accuracy the training set determines and the accuracy the final
    representation predicts."""
    from interp.analysis import representation as rep
    from interp.models import model_kind

    run, task = context.run, context.task
    name = model_kind(run.config.model).number_embeddings
    n = run.config.task.p  # the numbers 0..p-1 (modular or toy addition)
    modulus = n if run.config.task.kind == "modular" else None
    grams = rep.parallelograms(n, modulus)
    train_pairs, test_pairs = task.operands[task.train_idx], task.operands[task.test_idx]
    train_grams = rep.parallelograms_within(grams, train_pairs)

    def compute(epoch: int, model) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        E = embeddings(model, name, n)
        record = {"rqi": rep.rqi(E, grams), "effective_loss": rep.effective_loss(E, train_grams)}
        return record, {"embeddings": E}

    params = {"n": n, "modulus": modulus, "delta": rep.DEFAULT_DELTA, "version": VERSION}
    layout = Layout({"rqi": number, "effective_loss": number},
                    {"embeddings": tuple(embeddings(context.template(), name, n).shape)})
    points, computed = cached_points(context, NAME, params, context.epochs, compute,
                                     layout=lambda epoch: layout)
    if not points:
        return AnalyzerResult(computed=computed)
    measures = pd.DataFrame([{"epoch": e, "rqi": r["rqi"], "effective_loss": r["effective_loss"]}
                             for e, r, _ in points])
    epoch, record, tensors = points[-1]
    final_E = tensors["embeddings"]
    projection = rep.embedding_projection(final_E)
    summary = {
        "final_rqi": record["rqi"], "final_effective_loss": record["effective_loss"],
        "ideal_accuracy": rep.ideal_accuracy(n, train_pairs, test_pairs, modulus),
        "predicted_accuracy": rep.predicted_accuracy(final_E, train_pairs, test_pairs,
                                                     modulus),
    }
    final = {"epoch": epoch, "projection": projection.coordinates,
             "explained_variance_ratio": projection.explained_variance_ratio}
    return AnalyzerResult(measures, final, summary=summary, computed=computed)
