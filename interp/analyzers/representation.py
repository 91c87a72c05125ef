"""Representation quality of embeddings over a run (Liu et al. 2022), cached per checkpoint.

Applies to Liu et al.'s toy model (its embedding E) and to transformers on modular addition
(the number rows of W_E), with parallelograms a + b = c + d (mod p for modular tasks).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from interp.analyzers.base import AnalyzerResult, Context, Layout, cached_points, number

NAME = "representation"
VERSION = 1


def applies(run) -> bool:
    config = run.config
    task = config.task
    if config.objective.linearized:  # its weights do not compute its function
        return False
    addition = task.kind == "toy_addition" or (task.kind == "modular" and task.op == "add")
    if config.model.kind == "toy":
        return addition
    return (config.model.kind == "transformer" and task.kind == "modular" and task.op == "add"
            and task.encoding in ("nanda", "power"))


def embeddings(model: torch.nn.Module, n_numbers: int) -> torch.Tensor:
    """The numbers' embedding vectors [n_numbers, d]: the toy model's E or W_E's rows."""
    weight = model.W_E if hasattr(model, "W_E") else model.embed.weight
    return weight[:n_numbers].detach().cpu()


def analyze(context: Context) -> AnalyzerResult:
    """RQI and effective loss at every checkpoint; the final embeddings' PCA projection,
    the ideal accuracy the training set determines and the accuracy the final
    representation predicts."""
    from interp.analysis import representation as rep

    run, task = context.run, context.task
    n = task.vocab_size if run.config.model.kind == "toy" else task.n_outputs
    modulus = n if run.config.task.kind == "modular" else None
    grams = rep.parallelograms(n, modulus)
    train_pairs, test_pairs = task.operands[task.train_idx], task.operands[task.test_idx]
    train_grams = rep.parallelograms_within(grams, train_pairs)

    def compute(epoch: int, model) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        E = embeddings(model, n)
        record = {"rqi": rep.rqi(E, grams), "effective_loss": rep.effective_loss(E, train_grams)}
        return record, {"embeddings": E}

    params = {"n": n, "modulus": modulus, "delta": rep.DEFAULT_DELTA, "version": VERSION}
    layout = Layout({"rqi": number, "effective_loss": number},
                    {"embeddings": tuple(embeddings(context.template(), n).shape)})
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
