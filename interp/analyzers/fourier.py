"""Fourier structure and progress measures over a run (Nanda et al. 2023), cached.

The key frequencies come from the last loadable checkpoint's neuron clusters and are used at
every checkpoint, as Nanda et al. do, so restricted and excluded losses are comparable
across training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from interp.analyzers.base import (
    AnalyzerResult,
    ComputeBatch,
    Context,
    Layout,
    Record,
    Tensors,
    cached_points,
    frequencies,
    numbers,
    per_model,
)

NAME = "fourier"
VERSION = 1  # bump when the stored results change meaning


def skip_reason(run) -> str | None:
    """Why the analysis does not apply to ``run`` (one line), None when it does."""
    from interp.analysis.modular import skip_reason

    return skip_reason(run.config)


def _params(key: list[int]) -> dict[str, Any]:
    return {"key_frequencies": key, "version": VERSION}


def _layout(context: Context) -> Layout:
    """What ``_stored`` writes for this run's p, d_mlp and heads."""
    p, model = context.task.n_outputs, context.run.config.model
    half = p // 2
    return Layout(
        fields={"scalars": numbers("gini_embed", "gini_unembed", "sum_squared_weights",
                                   "neurons_explained", "logits_explained_by_key"),
                "excluded_loss_per_frequency": numbers(),
                "key_frequencies_neurons": frequencies(p),
                "key_frequencies_embedding": frequencies(p)},
        tensors={"embed_component_norms": (p,), "embed_frequency_norms": (half,),
                 "unembed_frequency_norms": (half,), "neuron_fractions": (half, model.d_mlp),
                 "neuron_frequency": (model.d_mlp,),
                 "attention_fractions": (half, model.n_heads), "logit_coefficients": (half,),
                 "logit_cosines": (half,), "logit_fourier_norms": (p, p),
                 "attention_to_a": (model.n_heads, p, p)},
        integer=frozenset({"neuron_frequency"}))


def _stored(result) -> tuple[Record, Tensors]:
    return result.record(), result.tensors()


def _analyse_batch(context: Context, key: list[int] | None) -> ComputeBatch:
    """Analyses of several checkpoints: their grid activations in one stacked evaluation
    when the exact one-layer fast path covers the model, else one model run each."""
    from interp.analysis import modular
    from interp.analysis.lazy_rich import trainable_weights
    from interp.models.transformer import supports_fast_path

    def stacked(epochs: list[int]) -> dict[int, tuple[Record, Tensors]]:
        states = {epoch: context.weights(epoch) for epoch in epochs}
        states = {epoch: state for epoch, state in states.items() if state is not None}
        if not states:
            return {}
        grids = modular.stacked_grid_activations(
            list(states.values()), context.run.config.model,
            list(trainable_weights(context.template())), context.task.inputs)
        return {epoch: _stored(modular.analyse_grid(grid, context.task, key))
                for epoch, grid in zip(states, grids, strict=True)}

    if supports_fast_path(context.run.config.model):
        return stacked
    return per_model(context, lambda epoch, model: _stored(
        modular.analyse_checkpoint(model, context.task, key)))


def _batch_size(context: Context) -> int:
    from interp.analysis.modular import grid_bytes

    return context.batch_size(grid_bytes(context.task.n_outputs, context.task.inputs.shape[1],
                                         context.run.config.model))


def _final_key_frequencies(context: Context) -> tuple[list[int] | None, int]:
    """The last loadable checkpoint's own key frequencies (cached or computed), and whether
    it was computed now (0 or 1)."""
    analyse, layout = _analyse_batch(context, None), _layout(context)
    for epoch in reversed(context.epochs):
        cached = context.cached(NAME, epoch, None, layout)
        if cached is not None and cached[0]["params"].get("version") == VERSION:
            return cached[0]["key_frequencies_neurons"], 0
        if context.read_only:
            continue
        results = analyse([epoch])
        if epoch not in results:
            continue
        record, tensors = results[epoch]
        key = record["key_frequencies_neurons"]
        context.store.save(NAME, epoch, _params(key), record, tensors)
        return key, 1
    return None, 0


@dataclass(kw_only=True)
class FourierResult(AnalyzerResult):
    """Nanda et al.'s measures over a run: ``measures`` holds a row per checkpoint (the
    scalars of ``ModularAnalysis`` and ``excluded_loss/K`` per key frequency K); ``final``
    is the last analysed checkpoint's whole analysis; the W_E and W_L norms per frequency
    over the analysed checkpoints are [n_checkpoints, p // 2]."""

    key_frequencies: list[int]  # used at every checkpoint (the last checkpoint's own)
    final_epoch: int
    final: Any  # interp.analysis.modular.ModularAnalysis
    epochs: list[int]
    embed_frequency_norms: torch.Tensor
    unembed_frequency_norms: torch.Tensor


def analyze(context: Context) -> FourierResult | None:
    """Fourier + progress measures at every selected checkpoint (None if no checkpoint
    could be analysed, or none is cached when ``context.read_only``)."""
    from interp.analysis.curves import first_epoch
    from interp.analysis.modular import ModularAnalysis

    key, computed = _final_key_frequencies(context)
    if key is None:
        return None
    layout = _layout(context)
    points, more = cached_points(context, NAME, _params(key), context.epochs,
                                 layout=lambda epoch: layout,
                                 compute_batch=_analyse_batch(context, key),
                                 batch_size=_batch_size(context))
    if not points:
        return None
    rows = [{"epoch": epoch, **record["scalars"],
             **{f"excluded_loss/{k}": v
                for k, v in record["excluded_loss_per_frequency"].items()}}
            for epoch, record, _ in points]
    measures = pd.DataFrame(rows)
    epoch, record, tensors = points[-1]
    summary: dict[str, Any] = {
        "key_frequencies": {"used": key, "neurons": record["key_frequencies_neurons"],
                            "embedding": record["key_frequencies_embedding"]},
        "final": {"epoch": epoch, **record["scalars"],
                  "excluded_loss_per_frequency": record["excluded_loss_per_frequency"]},
    }
    if "restricted_loss" in measures:
        summary["restricted_loss_below_1"] = first_epoch(measures, "restricted_loss", 1.0,
                                                         above=False)
    return FourierResult(
        measures=measures, summary=summary, computed=computed + more,
        key_frequencies=key, final_epoch=epoch, final=ModularAnalysis.stored(record, tensors),
        epochs=[e for e, _, _ in points],
        embed_frequency_norms=torch.stack([t["embed_frequency_norms"] for _, _, t in points]),
        unembed_frequency_norms=torch.stack([t["unembed_frequency_norms"] for _, _, t in points]))
