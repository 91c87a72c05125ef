"""Representation quality of embeddings over a run (Liu et al. 2022), cached per checkpoint.

Applies to every model whose kind names an embedding of the numbers (``number_embeddings``
of its ``ModelKind``: Liu et al.'s toy model's E, the transformer's W_E) on addition
(``toy_addition``, or ``modular`` with op add). The test fits the task's geometry
(``geometry``): on plain addition Liu et al.'s linear parallelograms a + b = c + d; mod p the
circular variant (``interp.analysis.representation``), whose circles are the run's key
frequencies (the fourier analysis's, else those of the final checkpoint's embeddings), read
at every checkpoint (as Nanda et al. read every checkpoint with the final key
frequencies). Where it does not apply, ``skip_reason`` says why in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from interp.analyzers.base import AnalyzerResult, Context, Layout, cached_points, number

if TYPE_CHECKING:
    from interp.analysis.representation import Projection

NAME = "representation"
VERSION = 2


def geometry(config) -> str:
    """``circular`` for modular addition (numbers on circles), else ``linear`` (Liu et
    al.'s numbers on a line)."""
    return "circular" if config.task.kind == "modular" else "linear"


def skip_reason(run) -> str | None:
    """Why the representation analysis does not apply to ``run`` (one line for a report),
    or None when it does."""
    from interp.models import model_kind

    config = run.config
    task = config.task
    if config.objective.linearized:
        return ("a linearised run's weights do not compute its function, so its embeddings "
                "represent nothing")
    if not (task.kind == "toy_addition" or (task.kind == "modular" and task.op == "add")):
        return (f"Liu et al.'s parallelograms a + b = c + d need an addition task; this run's "
                f"task is {task.kind}{' op ' + task.op if task.kind == 'modular' else ''}")
    if model_kind(config.model).number_embeddings is None:
        return (f"the {config.model.kind} model has no embedding of the numbers whose "
                "parallelograms could be tested")
    return None


def embeddings(model: torch.nn.Module, name: str, n_numbers: int) -> torch.Tensor:
    """The numbers' embedding vectors [n_numbers, d]: the first rows of the state-dict entry
    ``name`` (the kind's ``number_embeddings``)."""
    return model.state_dict()[name][:n_numbers].detach().cpu()


def _final_embeddings(context: Context, name: str, n: int) -> torch.Tensor | None:
    """The embeddings of the last checkpoint that loads (damaged or diverged ones skipped)."""
    for epoch in reversed(context.epochs):
        weights = context.weights(epoch)
        if weights is not None:
            return weights[name][:n].detach().cpu()
    return None


@dataclass(kw_only=True)
class RepresentationResult(AnalyzerResult):
    """Liu et al.'s measures over a run: ``measures`` holds a row per checkpoint (``rqi``,
    and ``effective_loss`` for the linear test); the test and its parameters; the final
    checkpoint's RQI, the ideal accuracy its training set determines, the accuracy its
    representation predicts and its embeddings' 2D PCA projection."""

    geometry: str  # "linear" (Liu et al.) or "circular" (modular addition)
    test: str  # the test with its parameters, in words (``describe_test``)
    frequencies: list[int] | None  # the circles read (circular); None for linear
    delta: float  # the tolerance on a parallelogram's squared gap
    final_epoch: int
    final_rqi: float
    ideal_accuracy: float
    predicted_accuracy: float
    projection: Projection


def _circle_frequencies(context: Context, final_E: torch.Tensor, p: int) -> list[int]:
    """The circles to read: the run's key frequencies from the fourier analysis when it has
    one (the frequencies every other measure of the report uses; none: no circle, RQI 0),
    else the final embeddings' own (``circle_frequencies``: a model the fourier analysis
    does not fit, or did not analyse)."""
    from interp.analysis.representation import circle_frequencies

    fourier = context.results.get("fourier")
    if fourier is not None:
        return sorted(fourier.key_frequencies)
    return circle_frequencies(final_E, p)


def analyze(context: Context) -> RepresentationResult | None:
    """RQI (linear or circular, ``geometry``) at every checkpoint, with Liu et al.'s
    effective loss for the linear test; the final embeddings' PCA projection, the ideal
    accuracy the training set determines and the accuracy the final representation
    predicts. None if no checkpoint could be analysed (or none is cached when
    ``context.read_only``)."""
    from interp.analysis import representation as rep
    from interp.models import model_kind

    run, task = context.run, context.task
    name = model_kind(run.config.model).number_embeddings
    n = run.config.task.p  # the numbers 0..p-1 (modular or toy addition)
    circular = geometry(run.config) == "circular"
    modulus = n if circular else None
    final_E = _final_embeddings(context, name, n)
    if final_E is None:
        return None
    frequencies = _circle_frequencies(context, final_E, n) if circular else None
    grams = rep.parallelograms(n, modulus)
    train_pairs, test_pairs = task.operands[task.train_idx], task.operands[task.test_idx]
    train_grams = rep.parallelograms_within(grams, train_pairs)

    def compute(epoch: int, model) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        E = embeddings(model, name, n)
        if circular:
            record = {"rqi": rep.circular_rqi(E, grams, frequencies, n)}
        else:
            record = {"rqi": rep.rqi(E, grams),
                      "effective_loss": rep.effective_loss(E, train_grams)}
        return record, {"embeddings": E}

    delta = rep.circular_delta(frequencies, n) if circular else rep.DEFAULT_DELTA
    params = {"n": n, "modulus": modulus, "geometry": geometry(run.config), "delta": delta,
              "frequencies": frequencies, "version": VERSION}
    fields = {"rqi": number} if circular else {"rqi": number, "effective_loss": number}
    layout = Layout(fields, {"embeddings": tuple(embeddings(context.template(), name,
                                                            n).shape)})
    points, computed = cached_points(context, NAME, params, context.epochs, compute,
                                     layout=lambda epoch: layout)
    if not points:
        return None
    measures = pd.DataFrame([{"epoch": e, **{k: r[k] for k in fields}} for e, r, _ in points])
    epoch, record, tensors = points[-1]
    final_E = tensors["embeddings"]
    predicted = (rep.circular_predicted_accuracy(final_E, train_pairs, test_pairs, frequencies,
                                                 n) if circular else
                 rep.predicted_accuracy(final_E, train_pairs, test_pairs, modulus))
    projection = rep.embedding_projection(final_E)
    test = describe_test(circular, frequencies, delta)
    ideal = rep.ideal_accuracy(n, train_pairs, test_pairs, modulus)
    summary = {
        "test": test, "geometry": geometry(run.config), "delta": delta,
        **({"frequencies": frequencies} if circular else {}),
        "final_rqi": record["rqi"],
        **({} if circular else {"final_effective_loss": record["effective_loss"]}),
        "ideal_accuracy": ideal, "predicted_accuracy": predicted,
    }
    return RepresentationResult(
        measures=measures, summary=summary, computed=computed, geometry=geometry(run.config),
        test=test, frequencies=frequencies, delta=delta, final_epoch=epoch,
        final_rqi=record["rqi"], ideal_accuracy=ideal, predicted_accuracy=predicted,
        projection=projection)


def describe_test(circular: bool, frequencies: list[int] | None, delta: float) -> str:
    """The test the RQI counts, with its parameters, in words (for reports)."""
    if circular and not frequencies:
        return ("circular parallelograms: the run has no key frequencies, so no circle to "
                "test (RQI 0)")
    if circular:
        return (f"circular parallelograms: angle addition on the embeddings' circles of "
                f"frequencies {', '.join(map(str, frequencies))} (the run's key "
                f"frequencies), tolerance {delta:.3g} (half the spacing of the sums)")
    return (f"Liu et al.'s linear parallelograms E_a + E_b = E_c + E_d on the standardised "
            f"embeddings, tolerance {delta:g}")
