"""What every analyzer shares: loading checkpoints one at a time, and per-checkpoint caching.

An analyzer turns a run's checkpoints into a table of measures (one row per checkpoint),
the final checkpoint's tensors for figures, and a few summary entries. Results are cached
per checkpoint in the run's ``AnalysisStore`` under the analyzer's name, keyed by the
parameters they depend on, so a second ``interp.analyze`` computes only what is new.
Checkpoints still to compute are handed to the analyzer in groups (``cached_points``), so
an analyzer that can evaluate several checkpoints at once (stacked weights) does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

Record = dict[str, Any]
Tensors = dict[str, torch.Tensor]


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@dataclass(frozen=True)
class Options:
    """User choices that shape the analyses (``interp.analyze``'s flags)."""

    device: str = "cpu"
    probes: int = 256
    probe_seed: int = 0
    kernels: tuple[str, ...] = ("correct_class",)
    checkpoint_batch: int | None = None  # checkpoints evaluated together; see batch_size


@dataclass
class Context:
    """One run being analysed: the run, its task, the store, the loader, earlier results."""

    run: Any  # interp.runs.Run
    task: Any  # interp.tasks.Task
    store: Any  # interp.runs.AnalysisStore
    options: Options
    epochs: list[int]
    skipped: dict[int, str] = field(default_factory=dict)
    results: dict[str, AnalyzerResult] = field(default_factory=dict)
    _model: torch.nn.Module | None = None

    def model(self, epoch: int) -> torch.nn.Module | None:
        """The run's model with the weights of ``epoch`` (one object reloaded in place), or
        None, warned once, if that checkpoint is damaged."""
        if epoch in self.skipped:
            return None
        model = self._loaded(epoch, lambda: self.run.model(epoch, self.options.device,
                                                           into=self._model))
        if model is not None:
            self._model = model
        return model

    def weights(self, epoch: int) -> Tensors | None:
        """The state dict of ``epoch`` on the analysis device, checked against the run's
        model, or None, warned once, if that checkpoint is damaged."""
        from interp.runs import check_weights

        def load() -> Tensors:
            weights = self.run.weights(epoch)
            check_weights(self.template().state_dict(), weights,
                          self.run.checkpoint_file(epoch))
            return {name: w.to(self.options.device) for name, w in weights.items()}

        return None if epoch in self.skipped else self._loaded(epoch, load)

    def template(self) -> torch.nn.Module:
        """A model of this run (whatever weights it last held), for names and shapes."""
        if self._model is None:
            from interp.models import build_model

            self._model = build_model(self.run.config.model, self.task, self.options.device)
        return self._model

    def _loaded(self, epoch: int, load: Callable[[], Any]) -> Any:
        from interp.runs import RunFileError

        try:
            loaded = load()
        except RunFileError as err:
            warn(f"skipping checkpoint: {err}")
            self.skipped[epoch] = str(self.run.checkpoint_file(epoch))
            return None
        return loaded

    def batch_size(self, bytes_per_checkpoint: int) -> int:
        """How many checkpoints to evaluate together: ``options.checkpoint_batch`` if set;
        on CUDA as many as fit in half the free memory (one launch sequence for many
        checkpoints); on CPU one, since stacking measured no faster there and takes more
        memory."""
        if self.options.checkpoint_batch is not None:
            return self.options.checkpoint_batch
        device = torch.device(self.options.device)
        if device.type != "cuda":
            return 1
        return max(1, torch.cuda.mem_get_info(device)[0] // 2 // bytes_per_checkpoint)


@dataclass
class AnalyzerResult:
    """An analyzer's output over a run: measures per checkpoint and what figures need."""

    measures: pd.DataFrame = field(default_factory=pd.DataFrame)
    final: dict[str, Any] = field(default_factory=dict)
    over_time: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    computed: int = 0


Compute = Callable[[int, torch.nn.Module], tuple[Record, Tensors]]
ComputeBatch = Callable[[list[int]], dict[int, tuple[Record, Tensors]]]


def per_model(context: Context, compute: Compute) -> ComputeBatch:
    """A batch computation that loads each checkpoint's model in turn and applies
    ``compute(epoch, model)``; damaged checkpoints are left out."""
    def compute_batch(epochs: list[int]) -> dict[int, tuple[Record, Tensors]]:
        results = {}
        for epoch in epochs:
            model = context.model(epoch)
            if model is not None:
                results[epoch] = compute(epoch, model)
        return results

    return compute_batch


def cached_points(context: Context, name: str, params: dict[str, Any], epochs: list[int],
                  compute: Compute | None = None, *, compute_batch: ComputeBatch | None = None,
                  batch_size: int = 1) -> tuple[list[tuple[int, Record, Tensors]], int]:
    """(epoch, record, tensors) for each of ``epochs``: from the cache when it was computed
    with ``params``, else computed (then cached): by ``compute(epoch, model)``, or by
    ``compute_batch(epochs)`` on up to ``batch_size`` checkpoints at a time, which returns
    the results by epoch and leaves damaged checkpoints out. Damaged checkpoints are left
    out of the points. Returns the points and how many were computed now."""
    if compute_batch is None:
        compute_batch = per_model(context, compute)
    results = {epoch: context.store.load(name, epoch, params) for epoch in epochs}
    missing = [epoch for epoch, cached in results.items() if cached is None]
    computed = 0
    for start in range(0, len(missing), batch_size):
        for epoch, (record, tensors) in compute_batch(missing[start:start + batch_size]).items():
            context.store.save(name, epoch, params, record, tensors)
            results[epoch] = context.store.load(name, epoch, params)  # as a later call reads it
            computed += 1
    return [(epoch, *cached) for epoch, cached in results.items() if cached is not None], computed
