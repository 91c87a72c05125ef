"""Liu et al.'s learning phase of a run, from its metrics (Liu, Kitouni, Nolte, Michaud,
Tegmark, Williams, "Towards understanding grokking: an effective theory of representation
learning", NeurIPS 2022, section "Delayed generalization: a phase diagram", Fig. 6; their
code, ejmichaud/grokking-squared ``phase_diagram_plot/``, records the first step at which
train and test accuracy reach 0.9).

The rule counts optimiser steps (the ``step`` column; Liu et al.'s toy model trains full
batch, one step per epoch):

    t_train, t_test = the first steps at which train and test accuracy reach 90%
    comprehension   both are reached and t_test - t_train < 10^3 steps
    grokking        both are reached and t_test - t_train >= 10^3 steps
    memorisation    train accuracy reaches 90%, test accuracy never does
    confusion       train accuracy never reaches 90%

"Never" means within the run's evaluations. One outcome is added to the paper's four:
``diverged``, a run whose train or test loss became NaN or infinite at some evaluation
(written as null; whatever it had learnt before).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.analysis.curves import numeric

PHASES = ("comprehension", "grokking", "memorisation", "confusion", "diverged")
ACCURACY_THRESHOLD = 0.9  # Liu et al.'s 90%
MAX_GAP = 1000  # steps from train to test accuracy within which a run comprehends


@dataclass(frozen=True)
class Phase:
    """Liu et al.'s learning phase of a run and the steps it is read from."""

    name: str  # one of PHASES
    train_step: int | None  # first step train accuracy >= threshold; None: never
    test_step: int | None

    @property
    def gap(self) -> int | None:
        """Steps from train to test accuracy reaching the threshold; None unless both do."""
        if self.train_step is None or self.test_step is None:
            return None
        return self.test_step - self.train_step


def diverged(metrics: pd.DataFrame) -> bool:
    """Whether the train or test loss of ``metrics`` is NaN or infinite at some evaluation
    (``interp.runs.Run.metrics`` reads the null a diverged run writes as NaN)."""
    losses = [numeric(metrics, c) for c in ("train_loss", "test_loss") if c in metrics]
    return any(not bool(np.isfinite(values).all()) for values in losses)


def learning_phase(metrics: pd.DataFrame, threshold: float = ACCURACY_THRESHOLD,
                   max_gap: int = MAX_GAP, step_column: str | None = None) -> Phase | None:
    """The phase of a run (see the module docstring) from its metrics table: one row per
    evaluation with ``train_acc``, ``test_acc``, the losses and ``step_column`` (default
    ``step``, or ``epoch`` where there is no ``step``). None when it is undefined: no
    evaluation yet, or no accuracy (a regression task) in a run that did not diverge.
    Liu et al.: threshold 90%, max_gap 10^3 steps."""
    if metrics.empty:
        return None
    column = step_column or ("step" if "step" in metrics else "epoch")

    def first(name: str) -> int | None:
        hit = numeric(metrics, name) >= threshold
        return int(metrics.loc[hit.idxmax(), column]) if hit.any() else None

    has_accuracy = {"train_acc", "test_acc"} <= set(metrics)
    train, test = (first("train_acc"), first("test_acc")) if has_accuracy else (None, None)
    if diverged(metrics):
        return Phase("diverged", train, test)
    if not has_accuracy:
        return None
    if train is None:
        name = "confusion"
    elif test is None:
        name = "memorisation"
    else:
        name = "comprehension" if test - train < max_gap else "grokking"
    return Phase(name, train, test)


def majority_phase(names: Iterable[str]) -> tuple[str, int]:
    """The most common of ``names`` (phases of several seeds) and how many runs have it;
    a tie goes to the phase first in ``PHASES``. ValueError if ``names`` is empty."""
    counts = Counter(names)
    if not counts:
        raise ValueError("majority_phase of no runs")
    name = max(counts, key=lambda n: (counts[n], -PHASES.index(n)))
    return name, counts[name]
