"""Learning-curve landmarks: when train and test performance cross their thresholds.

Grokking shows as a large positive gap between the epoch train accuracy reaches 99% and the
epoch test accuracy does (Power et al. 2022). Kumar et al. argue the loss is the better
measure, so the same landmarks are given in loss, with a threshold that fits the loss
(``loss_threshold``):

- cross-entropy: -ln(0.99), the loss of putting 99% probability on the right class;
- mean squared error: 1% of the train loss at the first evaluation (``MSE_LOSS_FRACTION``),
  the loss left once 99% of it is gone. For Kumar et al.'s centred models, whose output
  starts at zero, that first loss is the targets' mean square, so the threshold is a fit
  that explains 99% of it; -ln(0.99) would be a cross-entropy figure with no meaning for
  MSE, and any absolute MSE level would depend on the scale of the targets.

A threshold that suits every loss is relative too: the epoch each loss first falls to half
its value at the first evaluation (``LOSS_FRACTION``), and the train-to-test gap between them.

Accuracy is the task's (``Task.target_type``): argmax for class labels, the rounded output
for integer targets, and for real-valued (regression) targets the threshold accuracy of
Omnigrok (Liu, Michaud, Tegmark 2022) that Kumar et al. use for their student-teacher task
(appendix 8.3.1, 17.2): an example counts as right when its squared error, averaged over
the outputs, is below ``REGRESSION_TOLERANCE`` = 1e-3 (Omnigrok's code, ``threshold =
0.001``; with one output, |f - y| < 0.032). Kumar et al. show such accuracy curves depend on
the tolerance (appendix 17.2): the loss landmarks are the measure to trust there. The
trainer records it as ``train_acc`` / ``test_acc`` (``interp.train.measures``).

An epoch that was never reached is None in the results and "never" in text
(``format_epoch``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import torch

ACCURACY_THRESHOLD = 0.99
LOSS_THRESHOLD = -math.log(ACCURACY_THRESHOLD)  # cross-entropy
MSE_LOSS_FRACTION = 0.01  # of the first train loss: the MSE loss landmarks
LOSS_FRACTION = 0.5  # of the loss at the first evaluation: the relative loss landmarks
REGRESSION_TOLERANCE = 1e-3  # squared error per example: Omnigrok's threshold accuracy
LOSS_RULES = {"cross_entropy": "-ln 0.99", "stablemax": "-ln 0.99",  # both -log p(label)
              "mse": f"{MSE_LOSS_FRACTION:.0%} of the first train loss"}
ACCURACY_RULES = {"class": "argmax is the label", "integer": "rounded output is the label",
                  "real": f"squared error below {REGRESSION_TOLERANCE:g} (Omnigrok; "
                          "Kumar et al. app. 17)"}


def format_epoch(value: int | float | None) -> str:
    """An epoch (or a gap in epochs) as text: "never" for None (a landmark not reached) or
    NaN (None read back from a table), else the integer."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "never"
    return str(int(value))


def threshold_accuracy(outputs: torch.Tensor, targets: torch.Tensor,
                       tolerance: float = REGRESSION_TOLERANCE) -> float:
    """Omnigrok's accuracy of a regression model: the fraction of examples whose squared
    error, averaged over the outputs, is below ``tolerance``. outputs, targets: [n, ...]
    (one row per example); NaN outputs count as wrong."""
    error = (outputs.double() - targets.double()).square().reshape(len(outputs), -1).mean(1)
    return (error < tolerance).double().mean().item()


def loss_threshold(metrics: pd.DataFrame, loss: str = "cross_entropy") -> float | None:
    """The loss the ``*_loss_low`` landmarks wait for (module docstring): -ln 0.99 for
    ``cross_entropy`` and ``stablemax`` (each is -log of the label's probability); for
    ``mse`` ``MSE_LOSS_FRACTION`` of the first finite train loss (None without a positive
    one)."""
    if loss not in LOSS_RULES:
        raise ValueError(f"loss {loss!r} is not one of {sorted(LOSS_RULES)}")
    if loss != "mse":
        return LOSS_THRESHOLD
    first = _first_finite(metrics, "train_loss")
    return MSE_LOSS_FRACTION * first if first is not None and first > 0 else None


def numeric(metrics: pd.DataFrame, column: str) -> pd.Series:
    """``metrics[column]`` as floats; what is not a number (null, a string) becomes NaN."""
    return pd.to_numeric(metrics[column], errors="coerce").astype(float)


def first_epoch(metrics: pd.DataFrame, column: str, threshold: float, above: bool = True
                ) -> int | None:
    """First epoch at which ``column`` is >= threshold (or <= with above=False); None if never.
    NaN values (a diverged run) never cross."""
    if metrics.empty or column not in metrics:
        return None
    values = numeric(metrics, column)
    hit = values >= threshold if above else values <= threshold
    return int(metrics.loc[hit.idxmax(), "epoch"]) if hit.any() else None


def fraction_epoch(metrics: pd.DataFrame, column: str, fraction: float) -> int | None:
    """First epoch at which ``column`` is <= ``fraction`` times its first finite value
    (None if never, or if that value is not positive)."""
    first = _first_finite(metrics, column)
    if first is None or first <= 0:
        return None
    return first_epoch(metrics, column, fraction * first, above=False)


def _first_finite(metrics: pd.DataFrame, column: str) -> float | None:
    if metrics.empty or column not in metrics:
        return None
    values = numeric(metrics, column)
    finite = values[np.isfinite(values)]
    return float(finite.iloc[0]) if not finite.empty else None


def peak_epoch(metrics: pd.DataFrame, column: str) -> int | None:
    """Epoch of the largest finite value of ``column``; None if it has none."""
    if metrics.empty or column not in metrics:
        return None
    values = numeric(metrics, column)
    values = values[np.isfinite(values)]
    return int(metrics.loc[values.idxmax(), "epoch"]) if not values.empty else None


def _gap(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else b - a


@dataclass(frozen=True)
class Landmarks:
    """Epochs at which each curve crosses its threshold (None: never), the train-to-test
    gaps, and the parameters they were read with: ``loss`` (``cross_entropy`` or ``mse``),
    ``loss_threshold`` (the value the ``*_loss_low`` landmarks wait for; None when it has
    none: an MSE run without a first loss) and ``accuracy_rule`` (what counts as right; None
    when the metrics have no accuracy, whose landmarks are then None too)."""

    train_acc_99: int | None
    test_acc_50: int | None
    test_acc_99: int | None
    train_loss_low: int | None
    test_loss_low: int | None
    test_loss_peak: int | None
    train_loss_half: int | None
    test_loss_half: int | None
    final_epoch: int | None
    final_train_acc: float | None
    final_test_acc: float | None
    loss: str = "cross_entropy"
    loss_threshold: float | None = LOSS_THRESHOLD
    accuracy_rule: str | None = None

    @property
    def accuracy_gap(self) -> int | None:
        """Epochs from train accuracy 99% to test accuracy 99% (grokking delay)."""
        return _gap(self.train_acc_99, self.test_acc_99)

    @property
    def loss_gap(self) -> int | None:
        """Epochs from train loss to test loss reaching ``loss_threshold``."""
        return _gap(self.train_loss_low, self.test_loss_low)

    @property
    def loss_half_gap(self) -> int | None:
        """Epochs from train loss to test loss falling to half their first values (the
        grokking delay in loss, for any loss)."""
        return _gap(self.train_loss_half, self.test_loss_half)

    @property
    def loss_rule(self) -> str:
        """How ``loss_threshold`` was chosen, in words (``LOSS_RULES``)."""
        return LOSS_RULES[self.loss]

    def to_dict(self) -> dict:
        return {**asdict(self), "accuracy_gap": self.accuracy_gap, "loss_gap": self.loss_gap,
                "loss_half_gap": self.loss_half_gap, "loss_rule": self.loss_rule}

    def describe(self) -> str:
        """A few human-readable lines for the terminal: the accuracy landmarks only where
        there is an accuracy, each threshold with the rule that set it, "never" for a
        landmark not reached."""
        show = format_epoch
        lines = []
        if self.accuracy_rule is not None:
            lines.append(f"train acc >= 99% at epoch {show(self.train_acc_99)}; test acc >= "
                         f"99% at epoch {show(self.test_acc_99)}{_gap_text(self.accuracy_gap)}"
                         f" (accuracy: {self.accuracy_rule})")
        threshold = ("none" if self.loss_threshold is None
                     else f"{self.loss_threshold:.3g}")
        lines += [
            f"train loss <= {threshold} ({self.loss_rule}) at epoch "
            f"{show(self.train_loss_low)}; test loss at epoch {show(self.test_loss_low)}"
            f"{_gap_text(self.loss_gap)}; test loss peaks at epoch {show(self.test_loss_peak)}",
            f"train loss halved at epoch {show(self.train_loss_half)}; test loss at epoch "
            f"{show(self.test_loss_half)}{_gap_text(self.loss_half_gap)}",
        ]
        if self.final_epoch is not None and self.accuracy_rule is not None:
            lines.append(f"epoch {self.final_epoch}: train acc {self.final_train_acc:.4f}, "
                         f"test acc {self.final_test_acc:.4f}")
        return "\n".join(lines)


def _gap_text(gap: int | None) -> str:
    return "" if gap is None else f"; gap {gap} epochs"


def landmarks(metrics: pd.DataFrame, loss: str = "cross_entropy", target_type: str = "class"
              ) -> Landmarks:
    """Landmarks of a run's metrics table (columns epoch, train/test loss and accuracy),
    trained on ``loss`` (``objective.loss``: sets the loss threshold) for targets of
    ``target_type`` (``Task.target_type``: names the accuracy rule). Without accuracy
    columns (a regression run recorded before its threshold accuracy was) the accuracy
    landmarks are None and ``accuracy_rule`` is None. NaN values (a diverged run) cross no
    threshold and make no peak; a final value may be NaN."""
    threshold = loss_threshold(metrics, loss)
    has_accuracy = not metrics.empty and {"train_acc", "test_acc"} <= set(metrics)
    rule = ACCURACY_RULES[target_type] if has_accuracy else None
    if metrics.empty:
        return Landmarks(*([None] * 11), loss=loss, loss_threshold=threshold,
                         accuracy_rule=rule)
    last = metrics.iloc[-1]

    def low(column: str) -> int | None:
        if threshold is None:
            return None
        return first_epoch(metrics, column, threshold, above=False)

    return Landmarks(
        train_acc_99=first_epoch(metrics, "train_acc", ACCURACY_THRESHOLD),
        test_acc_50=first_epoch(metrics, "test_acc", 0.5),
        test_acc_99=first_epoch(metrics, "test_acc", ACCURACY_THRESHOLD),
        train_loss_low=low("train_loss"),
        test_loss_low=low("test_loss"),
        test_loss_peak=peak_epoch(metrics, "test_loss"),
        train_loss_half=fraction_epoch(metrics, "train_loss", LOSS_FRACTION),
        test_loss_half=fraction_epoch(metrics, "test_loss", LOSS_FRACTION),
        final_epoch=int(last["epoch"]),
        final_train_acc=_last(metrics, "train_acc"),
        final_test_acc=_last(metrics, "test_acc"),
        loss=loss, loss_threshold=threshold, accuracy_rule=rule,
    )


def _last(metrics: pd.DataFrame, column: str) -> float | None:
    return float(numeric(metrics, column).iloc[-1]) if column in metrics else None
