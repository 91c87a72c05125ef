"""What every analyzer shares: loading checkpoints one at a time, and per-checkpoint caching.

An analyzer turns a run's checkpoints into a table of measures (one row per checkpoint),
the final checkpoint's tensors for figures, and a few summary entries. Results are cached
per checkpoint in the run's ``AnalysisStore`` under the analyzer's name, keyed by the
parameters they depend on, so a second ``interp.analyze`` computes only what is new.
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
        from interp.runs import RunFileError

        if epoch in self.skipped:
            return None
        try:
            self._model = self.run.model(epoch, self.options.device, into=self._model)
        except RunFileError as err:
            warn(f"skipping checkpoint: {err}")
            self.skipped[epoch] = str(self.run.checkpoint_file(epoch))
            return None
        return self._model


@dataclass
class AnalyzerResult:
    """An analyzer's output over a run: measures per checkpoint and what figures need."""

    measures: pd.DataFrame = field(default_factory=pd.DataFrame)
    final: dict[str, Any] = field(default_factory=dict)
    over_time: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    computed: int = 0


Compute = Callable[[int, torch.nn.Module], tuple[Record, Tensors]]


def cached_points(context: Context, name: str, params: dict[str, Any], epochs: list[int],
                  compute: Compute) -> tuple[list[tuple[int, Record, Tensors]], int]:
    """(epoch, record, tensors) for each of ``epochs``: from the cache when it was computed
    with ``params``, else ``compute(epoch, model)`` (then cached). Damaged checkpoints are
    left out. Returns the points and how many were computed now."""
    points, computed = [], 0
    for epoch in epochs:
        cached = context.store.load(name, epoch, params)
        if cached is None:
            model = context.model(epoch)
            if model is None:
                continue
            record, tensors = compute(epoch, model)
            context.store.save(name, epoch, params, record, tensors)
            computed += 1
            cached = context.store.load(name, epoch, params)
        points.append((epoch, *cached))
    return points, computed
