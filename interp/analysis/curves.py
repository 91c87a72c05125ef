"""Learning-curve landmarks: when train and test performance cross their thresholds.

Grokking shows as a large positive gap between the epoch train accuracy reaches 99% and the
epoch test accuracy does (Power et al. 2022). Kumar et al. argue the loss is the better
measure, so the same landmarks are given in loss: for cross-entropy the threshold is
-ln(0.99), the loss of putting 99% probability on the right class. A threshold that suits
every loss, MSE included, is relative: the epoch each loss first falls to half its value at
the first evaluation (``LOSS_FRACTION``; for Kumar et al.'s centred models, whose output
starts at zero, half the loss of predicting zero), and the train-to-test gap between them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

ACCURACY_THRESHOLD = 0.99
LOSS_THRESHOLD = -math.log(ACCURACY_THRESHOLD)
LOSS_FRACTION = 0.5  # of the loss at the first evaluation: the relative loss landmarks


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
    if metrics.empty or column not in metrics:
        return None
    values = numeric(metrics, column)
    finite = values[np.isfinite(values)]
    if finite.empty or finite.iloc[0] <= 0:
        return None
    return first_epoch(metrics, column, fraction * float(finite.iloc[0]), above=False)


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
    """Epochs at which each curve crosses its threshold, and the train-to-test gaps."""

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

    @property
    def accuracy_gap(self) -> int | None:
        """Epochs from train accuracy 99% to test accuracy 99% (grokking delay)."""
        return _gap(self.train_acc_99, self.test_acc_99)

    @property
    def loss_gap(self) -> int | None:
        """Epochs from train loss to test loss reaching ``LOSS_THRESHOLD``."""
        return _gap(self.train_loss_low, self.test_loss_low)

    @property
    def loss_half_gap(self) -> int | None:
        """Epochs from train loss to test loss falling to half their first values (the
        grokking delay in loss, for any loss)."""
        return _gap(self.train_loss_half, self.test_loss_half)

    def to_dict(self) -> dict:
        return {**asdict(self), "accuracy_gap": self.accuracy_gap, "loss_gap": self.loss_gap,
                "loss_half_gap": self.loss_half_gap}

    def describe(self) -> str:
        """A few human-readable lines for the terminal."""
        def show(value):
            return "never" if value is None else str(value)

        lines = [
            f"train acc >= 99% at epoch {show(self.train_acc_99)}; "
            f"test acc >= 99% at epoch {show(self.test_acc_99)}; "
            f"gap {show(self.accuracy_gap)} epochs",
            f"train loss <= {LOSS_THRESHOLD:.4f} at epoch {show(self.train_loss_low)}; "
            f"test loss at epoch {show(self.test_loss_low)}; gap {show(self.loss_gap)} epochs; "
            f"test loss peaks at epoch {show(self.test_loss_peak)}",
            f"train loss halved at epoch {show(self.train_loss_half)}; test loss at epoch "
            f"{show(self.test_loss_half)}; gap {show(self.loss_half_gap)} epochs",
        ]
        if self.final_epoch is not None and self.final_train_acc is not None:
            lines.append(f"epoch {self.final_epoch}: train acc {self.final_train_acc:.4f}, "
                         f"test acc {self.final_test_acc:.4f}")
        return "\n".join(lines)


def landmarks(metrics: pd.DataFrame) -> Landmarks:
    """Landmarks of a run's metrics table (columns epoch, train/test loss and accuracy;
    regression runs have no accuracy columns, their accuracy landmarks are None). NaN values
    (a diverged run) cross no threshold and make no peak; a final value may be NaN."""
    if metrics.empty:
        return Landmarks(*([None] * 11))
    last = metrics.iloc[-1]
    return Landmarks(
        train_acc_99=first_epoch(metrics, "train_acc", ACCURACY_THRESHOLD),
        test_acc_50=first_epoch(metrics, "test_acc", 0.5),
        test_acc_99=first_epoch(metrics, "test_acc", ACCURACY_THRESHOLD),
        train_loss_low=first_epoch(metrics, "train_loss", LOSS_THRESHOLD, above=False),
        test_loss_low=first_epoch(metrics, "test_loss", LOSS_THRESHOLD, above=False),
        test_loss_peak=peak_epoch(metrics, "test_loss"),
        train_loss_half=fraction_epoch(metrics, "train_loss", LOSS_FRACTION),
        test_loss_half=fraction_epoch(metrics, "test_loss", LOSS_FRACTION),
        final_epoch=int(last["epoch"]),
        final_train_acc=_last(metrics, "train_acc"),
        final_test_acc=_last(metrics, "test_acc"),
    )


def _last(metrics: pd.DataFrame, column: str) -> float | None:
    return float(numeric(metrics, column).iloc[-1]) if column in metrics else None
