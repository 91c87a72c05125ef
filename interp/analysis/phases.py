"""Liu et al.'s learning phase of a run, from its metrics (Liu, Kitouni, Nolte, Michaud,
Tegmark, Williams, "Towards understanding grokking: an effective theory of representation
learning", NeurIPS 2022, section "Delayed generalization: a phase diagram", Fig. 6; their
code, ejmichaud/grokking-squared ``phase_diagram_plot/``, records the first step at which
train and test accuracy reach 0.9).

The rule counts optimiser steps (the ``step`` column; Liu et al.'s toy model trains full
batch, one step per epoch):

    t_train, t_test = the first steps at which train and test accuracy reach 90%
    comprehension   both are reached and t_test - t_train < max_gap
    grokking        both are reached and t_test - t_train >= max_gap
    memorisation    train accuracy reaches 90%, test accuracy never does
    confusion       train accuracy never reaches 90%

Liu et al. set max_gap = 10^3 steps for runs of 10^5 steps (their code: ``compute_budget =
1e5``, ``threshold = 1e3`` in ``phase_diagram_plot/simple_phase_diagram.ipynb``, ``epochs =
[1e5]`` in ``phase_diagram-classification.ipynb``): a hundredth of the run. An absolute 10^3
calls any run shorter than 10^3 steps that generalises at all "comprehension", and so a
2 500-epoch run that generalises 890 epochs after it memorised (the ``tiny`` preset); so by
default max_gap is that hundredth of the run's length
(``GAP_FRACTION`` of the step at its last evaluation, rounded up, at least one step), which
is Liu et al.'s 10^3 on their 10^5-step runs. ``max_gap=1000`` applies their absolute rule.
The result states the max_gap it used (``Phase.max_gap``).

"Never" means within the run's evaluations, so the phase of a run still training is
provisional. One outcome is added to the paper's four: ``diverged``, a run whose train or
test loss became NaN or infinite at some evaluation (written as null; whatever it had
learnt before).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.analysis.curves import numeric

PHASES = ("comprehension", "grokking", "memorisation", "confusion", "diverged")
ACCURACY_THRESHOLD = 0.9  # Liu et al.'s 90%
GAP_FRACTION = 0.01  # of the run's steps: Liu et al.'s 10^3 of 10^5 steps
LIU_MAX_GAP = 1000  # Liu et al.'s absolute threshold, in steps (max_gap=LIU_MAX_GAP)


@dataclass(frozen=True)
class Phase:
    """Liu et al.'s learning phase of a run, the steps it is read from and the largest
    train-to-test delay (``max_gap``, in the same steps) still counted as comprehension."""

    name: str  # one of PHASES
    train_step: int | None  # first step train accuracy >= threshold; None: never
    test_step: int | None
    max_gap: int  # comprehension when gap < max_gap

    @property
    def gap(self) -> int | None:
        """Steps from train to test accuracy reaching the threshold; None unless both do."""
        if self.train_step is None or self.test_step is None:
            return None
        return self.test_step - self.train_step

    def describe(self) -> str:
        """The phase and what it was read from, in words."""
        if self.train_step is None:
            read = "train accuracy never reached the threshold"
        elif self.test_step is None:
            read = "test accuracy never reached the threshold"
        else:
            read = f"test accuracy reached the threshold {self.gap} steps after train's"
        return f"{self.name} ({read}; comprehension under {self.max_gap} steps)"


def diverged(metrics: pd.DataFrame) -> bool:
    """Whether the train or test loss of ``metrics`` is NaN or infinite at some evaluation
    (``interp.runs.Run.metrics`` reads the null a diverged run writes as NaN)."""
    losses = [numeric(metrics, c) for c in ("train_loss", "test_loss") if c in metrics]
    return any(not bool(np.isfinite(values).all()) for values in losses)


def scaled_max_gap(metrics: pd.DataFrame, column: str, fraction: float = GAP_FRACTION) -> int:
    """``fraction`` of the run's length: of the largest finite value of ``column`` (the
    step of the last evaluation), rounded up, at least 1."""
    values = numeric(metrics, column)
    values = values[np.isfinite(values)]
    length = float(values.max()) if not values.empty else 0.0
    return max(1, math.ceil(round(fraction * length, 6)))  # 0.07 * 100 = 7.000000000000001


def learning_phase(metrics: pd.DataFrame, threshold: float = ACCURACY_THRESHOLD,
                   max_gap: int | None = None, step_column: str | None = None,
                   gap_fraction: float = GAP_FRACTION) -> Phase | None:
    """The phase of a run (see the module docstring) from its metrics table: one row per
    evaluation with ``train_acc``, ``test_acc``, the losses and ``step_column`` (default
    ``step``, or ``epoch`` where there is no ``step``). ``max_gap``: the comprehension
    threshold in those steps; None (default) takes ``gap_fraction`` of the run's length
    (``scaled_max_gap``). None when the phase is undefined: no evaluation yet, or no
    accuracy (a regression run) in a run that did not diverge. Liu et al.: threshold 90%,
    max_gap 10^3 of their 10^5 steps."""
    if metrics.empty:
        return None
    column = step_column or ("step" if "step" in metrics else "epoch")
    gap_limit = max_gap if max_gap is not None else scaled_max_gap(metrics, column,
                                                                   gap_fraction)

    def first(name: str) -> int | None:
        hit = numeric(metrics, name) >= threshold
        return int(metrics.loc[hit.idxmax(), column]) if hit.any() else None

    has_accuracy = {"train_acc", "test_acc"} <= set(metrics)
    train, test = (first("train_acc"), first("test_acc")) if has_accuracy else (None, None)
    if diverged(metrics):
        return Phase("diverged", train, test, gap_limit)
    if not has_accuracy:
        return None
    if train is None:
        name = "confusion"
    elif test is None:
        name = "memorisation"
    else:
        name = "comprehension" if test - train < gap_limit else "grokking"
    return Phase(name, train, test, gap_limit)


def majority_phase(names: Iterable[str]) -> tuple[str, int]:
    """The most common of ``names`` (phases of several seeds) and how many runs have it;
    a tie goes to the phase first in ``PHASES``. ValueError if ``names`` is empty."""
    counts = Counter(names)
    if not counts:
        raise ValueError("majority_phase of no runs")
    name = max(counts, key=lambda n: (counts[n], -PHASES.index(n)))
    return name, counts[name]
