"""The local learning coefficient over a run (Lau et al. 2023; devinterp), cached per checkpoint.

Works on every run: the loss the chains sample is the run's own trained loss on its training
split (its ``objective``: centred, alpha-scaled or linearised as configured, its
``objective.loss`` in its ``loss_dtype``), through the trainer's stacked machinery
(``stacked_output_fn``, ``StackedObjective``, ``StackedRows``), so the C chains of a
checkpoint are one stack of C copies of its weights (``interp.analysis.llc.sample_llc``).
The sampler's settings are the model kind's calibrated defaults with the user's
``--llc-*`` changes (``interp.analysis.llc.resolve_settings``). A chain that diverges is left
out with a warning naming the checkpoint; if all do, the checkpoint's LLC is missing (NaN)
and the other checkpoints are analysed; chains that disagree (``chain_agreement``) are
warned about too, and listed in the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from interp.analysis.llc import (
    SPREAD_LIMIT,
    ChainAgreement,
    LLCEstimate,
    SGLDSettings,
    StackedLoss,
    chain_agreement,
    resolve_settings,
    sample_llc,
)
from interp.analyzers.base import AnalyzerResult, Context, Layout, cached_points, number, numbers
from interp.errors import warn

NAME = "llc"
VERSION = 1
_SCALARS = ("llc", "llc_std", "init_loss", "nbeta", "diverged", "spread_ratio", "drift")


def skip_reason(run) -> str | None:
    """None: the LLC applies to every run (it samples the run's own training loss)."""
    return None


class RunLoss:
    """The stacked training loss of one run (``StackedLoss``) around the checkpoints
    ``weights`` (K state dicts): rows i * (M // K) .. of a call's M rows hold checkpoint i's
    frozen weights (buffers, frozen biases), so M = K (the checkpoints) or K * C (chains).

    ``centers`` [K, P] are the checkpoints' trainable weights, flat (``layout``); ``n`` the
    training rows."""

    def __init__(self, config, task, template: torch.nn.Module,
                 weights: list[dict[str, torch.Tensor]], initial: dict[str, torch.Tensor] | None,
                 device: torch.device | str):
        from interp.analysis.lazy_rich import trainable_weights
        from interp.models import stacked_output_fn
        from interp.train.flat import FlatLayout
        from interp.train.loop import vectorizes

        self.config, self.task, self.device = config, task, torch.device(device)
        names = tuple(trainable_weights(template))
        self.layout = FlatLayout(names, tuple(weights[0][name].shape for name in names))
        self.centers = self.layout.stack(weights).to(self.device)
        self.frozen = {name: torch.stack([w[name] for w in weights]).to(self.device)
                       for name in weights[0] if name not in names}
        self.initial = initial
        self.network = stacked_output_fn(config.model, template, fast=True,
                                         vectorized=vectorizes(config, task, self.device))
        self.n = len(task.train_idx)
        self.dtype = getattr(torch, config.objective.loss_dtype)
        self._stacks: dict[int, tuple[Any, Any, dict]] = {}

    def _stack(self, rows_count: int):
        """(objective, rows, live weights) for calls with ``rows_count`` rows, built once."""
        if rows_count not in self._stacks:
            from interp.train.losses import StackedRows
            from interp.train.objective import StackedObjective

            objective = self.config.objective
            rows = StackedRows.gather([(self.task.train_inputs, self.task.train_targets)]
                                      * rows_count, self.device)
            initial = None if self.initial is None else {
                name: value.to(self.device).expand(rows_count, *value.shape)
                for name, value in self.initial.items()}
            live: dict[str, dict[str, torch.Tensor]] = {}
            stacked = StackedObjective(
                objective, self.network, lambda: live["weights"], list(self.layout.names),
                initial, torch.full((rows_count,), objective.alpha, device=self.device),
                fixed_inputs=(rows.inputs,))
            self._stacks[rows_count] = stacked, rows, live
        return self._stacks[rows_count]

    def __call__(self, flat: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        """[M] each row's mean training loss at its weights ``flat`` [M, P], on its rows
        ``index`` [M, b] (None: all of them)."""
        rows_count = flat.shape[0]
        objective, rows, live = self._stack(rows_count)
        repeat = rows_count // self.centers.shape[0]
        live["weights"] = {**self.layout.views(flat),
                           **{name: value.repeat_interleave(repeat, 0)
                              for name, value in self.frozen.items()}}
        batch = rows if index is None else rows.batch(index)
        return batch.losses(objective(batch.inputs), self.config.objective.loss, self.dtype)


def checkpoint_llc(config, task, template: torch.nn.Module,
                   weights: list[dict[str, torch.Tensor]], initial: dict[str, torch.Tensor] | None,
                   settings: SGLDSettings, device: torch.device | str = "cpu"
                   ) -> list[LLCEstimate]:
    """LLC estimates of a run (``config``, ``task``, a model ``template``) at the checkpoints
    ``weights`` (state dicts, sampled together); ``initial`` the epoch-0 state dict (needed
    for centred or linearised objectives, unused otherwise)."""
    loss: StackedLoss = RunLoss(config, task, template, weights, initial, device)
    return sample_llc(loss, loss.centers, loss.n, settings)


def _record(estimate: LLCEstimate, agreement: ChainAgreement
            ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    record = {"llc": estimate.llc, "llc_std": estimate.llc_std,
              "init_loss": estimate.init_loss, "nbeta": estimate.nbeta,
              "diverged": estimate.diverged, "spread_ratio": agreement.spread_ratio,
              "drift": agreement.drift,
              "per_chain": {str(c): float(v) for c, v in enumerate(estimate.per_chain)}}
    return record, {"trace": estimate.loss_trace}


def _layout(settings: SGLDSettings) -> Layout:
    fields = {name: number for name in _SCALARS}
    fields["per_chain"] = numbers(*map(str, range(settings.chains)))
    return Layout(fields, {"trace": (settings.chains, settings.burn_in + settings.draws)})


@dataclass(kw_only=True)
class LLCResult(AnalyzerResult):
    """The LLC over a run: ``measures`` holds a row per checkpoint (``llc``, ``llc_std``,
    ``init_loss``, ``diverged`` chains, ``spread_ratio``, ``drift``); ``traces`` each
    checkpoint's chain loss traces [chains, burn_in + draws] (burn-in included, NaN after a
    chain diverged); ``peak_epoch`` the epoch of the largest LLC (None if none is finite);
    ``final`` the last checkpoint's LLC (NaN if missing); ``disagreed`` the epochs whose
    chains disagree."""

    settings: SGLDSettings
    nbeta: float
    traces: dict[int, torch.Tensor]
    peak_epoch: int | None
    final: float
    disagreed: list[int]

    @property
    def init_losses(self) -> dict[int, float]:
        """Each checkpoint's own training loss L_n(w*), by epoch (the chains' baseline)."""
        return dict(zip(self.measures["epoch"].astype(int), self.measures["init_loss"],
                        strict=True))


def _warn(context: Context, epoch: int, estimate: LLCEstimate, agreement: ChainAgreement
          ) -> None:
    path = context.run.checkpoint_file(epoch)
    chains = len(estimate.per_chain)
    if estimate.diverged == chains:
        warn(f"LLC at {path}: all {chains} SGLD chains diverged (NaN or infinite loss); its "
             "LLC is recorded as missing; lower --llc-step-size or raise --llc-localization")
    elif estimate.diverged:
        warn(f"LLC at {path}: {estimate.diverged} of {chains} SGLD chains diverged (NaN or "
             "infinite loss) and are left out; lower --llc-step-size or raise "
             "--llc-localization")
    if agreement.disagree:
        warn(f"LLC at {path}: the SGLD chains disagree (their estimates spread "
             f"{agreement.spread_ratio:.1f}x their within-chain noise); raise --llc-draws or "
             "--llc-burn-in, or lower --llc-step-size")


def analyze(context: Context) -> LLCResult | None:
    """The LLC at every checkpoint (``sample_llc`` at the resolved settings), with its chain
    loss traces. None if no checkpoint could be analysed (or none is cached when
    ``context.read_only``)."""
    run = context.run
    settings = resolve_settings(run.config, context.options.llc)
    objective = run.config.objective
    needs_initial = objective.centered or objective.linearized

    def compute_batch(epochs: list[int]) -> dict[int, tuple[dict, dict]]:
        loaded = {epoch: context.weights(epoch) for epoch in epochs}
        loaded = {epoch: w for epoch, w in loaded.items() if w is not None}
        if not loaded:
            return {}
        initial = context.weights(0) if needs_initial else None
        if needs_initial and initial is None:
            return {}
        estimates = checkpoint_llc(run.config, context.task, context.template(),
                                   list(loaded.values()), initial, settings,
                                   context.options.device)
        results = {}
        for epoch, estimate in zip(loaded, estimates, strict=True):
            agreement = chain_agreement(estimate)
            _warn(context, epoch, estimate, agreement)
            results[epoch] = _record(estimate, agreement)
        return results

    # the chains' noise and minibatches come from a generator on the analysis device: CPU
    # and CUDA draw different streams, so an entry holds for one kind of device
    params = {**settings.as_dict(), "device": torch.device(context.options.device).type,
              "version": VERSION}
    layout = _layout(settings)
    points, computed = cached_points(context, NAME, params, context.epochs, layout=lambda e: layout,
                                     compute_batch=compute_batch,
                                     batch_size=_batch_size(context, settings))
    if not points:
        return None
    measures = pd.DataFrame([{"epoch": e, **{k: r[k] for k in _SCALARS}} for e, r, _ in points])
    finite = measures[measures["llc"].map(math.isfinite)]
    peak = None if finite.empty else int(finite.loc[finite["llc"].idxmax(), "epoch"])
    disagreed = [int(e) for e, r, _ in points if r["spread_ratio"] > SPREAD_LIMIT]
    final = float(points[-1][1]["llc"])
    nbeta = float(points[-1][1]["nbeta"])
    summary = {"llc_peak_epoch": peak, "llc_final": final, "llc_disagreed_epochs": disagreed,
               "nbeta": nbeta, "settings": settings.as_dict()}
    return LLCResult(measures=measures, summary=summary, computed=computed, settings=settings,
                     nbeta=nbeta, traces={e: t["trace"] for e, _, t in points},
                     peak_epoch=peak, final=final, disagreed=disagreed)


def _batch_size(context: Context, settings: SGLDSettings) -> int:
    """Checkpoints sampled together: one on CPU (stacking more chains measured no faster
    there), on CUDA as many as fit (``Context.batch_size``)."""
    task = context.task
    rows = settings.batch_size or len(task.train_idx)
    per_checkpoint = 3 * settings.chains * rows * context.run.config.model.activation_bytes(
        task.sizes)  # forward activations, their gradients, slack
    return context.batch_size(max(1, per_checkpoint))
