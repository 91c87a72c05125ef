"""Progress measures for grokking (Nanda et al. 2023, sec. 5).

- Restricted loss: keep only the parts of the final-position MLP activations that lie in
  span{1, cos(w_k(a+b)), sin(w_k(a+b)) : k key}, map them through W_L = W_out W_U and take
  the loss on the test set. It falls well before the test loss: the generalising circuit
  forms gradually.
- Excluded loss: remove the key-frequency parts from the logits instead and take the loss
  on the training set (in total and one frequency at a time). It rises as the model comes to
  rely on the circuit rather than on memorisation.
- Gini coefficients of the Fourier norms of W_E and W_L (sparsity in the Fourier basis),
  and the sum of squared weights (falls in the clean-up phase).
- Phases: memorisation, circuit formation and clean-up, found from the curves.

Inputs are tensors over the full p x p grid of inputs (a, b), a-major: row a * p + b.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from interp.analysis.curves import numeric
from interp.analysis.fourier import check_frequencies, check_grid
from interp.config import RunConfig
from interp.errors import UserError


def sum_combination(p: int, combine: str = "add") -> torch.Tensor:
    """[p * p] the value a + b (or a - b) for the a-major grid of inputs (a, b)."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return a + b if combine == "add" else a - b


def frequency_directions(p: int, k: int, combine: str = "add",
                         dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """[2, p * p] unit vectors cos(w_k s) and sin(w_k s) over the grid, s = a + b (or a - b)."""
    s = sum_combination(p, combine).to(torch.float64)
    angle = 2 * math.pi * k * s / p
    directions = torch.stack([torch.cos(angle), torch.sin(angle)])
    return (directions / directions.norm(dim=1, keepdim=True)).to(dtype)


def frequency_logit_parts(activations: torch.Tensor, W_L: torch.Tensor, p: int,
                          frequencies: list[int], combine: str = "add"
                          ) -> dict[int, torch.Tensor]:
    """Per frequency k, what the part of activations [p * p, n] in span{cos(w_k s),
    sin(w_k s)} adds to the logits through W_L [n, p]: D_k^T (D_k A) W_L, [p * p, p].

    D_k holds the two unit directions, so D_k^T D_k A is A's projection onto them; the
    product is grouped as D_k^T ((D_k A) W_L), which never forms a [p * p, n] tensor. The
    directions of distinct frequencies are orthogonal, so parts of several frequencies add.
    """
    parts = {}
    for k in frequencies:
        directions = frequency_directions(p, k, combine, activations.dtype).to(
            activations.device)
        parts[k] = directions.T @ ((directions @ activations) @ W_L)
    return parts


def _loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    loss = F.cross_entropy(logits.double(), labels).item()
    return loss, (logits.argmax(-1) == labels).double().mean().item()


@dataclass(frozen=True)
class ProgressMeasures:
    """Restricted and excluded loss (with accuracies) at one checkpoint."""

    restricted_loss: float
    restricted_acc: float
    excluded_loss: float
    excluded_acc: float
    excluded_loss_per_frequency: dict[int, float]


def progress_measures(neuron_acts: torch.Tensor, logits: torch.Tensor, W_L: torch.Tensor,
                      labels: torch.Tensor, train_idx: torch.Tensor, test_idx: torch.Tensor,
                      p: int, key_frequencies: list[int], combine: str = "add"
                      ) -> ProgressMeasures:
    """Restricted loss (test set) and excluded loss (train set) as Nanda et al. define them.

    neuron_acts: [p * p, d_mlp] final-position MLP activations (hook_post) over the grid;
    logits: [p * p, p] final-position logits; W_L: [d_mlp, p] = W_out @ W_U; labels: [p * p].
    Restricted logits = (mean activation + key-frequency parts) @ W_L, shifted so their mean
    over inputs equals that of the real logits (the demo's bias correction, which puts back
    what the direct and attention paths add on average). Excluded logits = logits minus the
    key-frequency parts @ W_L. With no key frequencies the restricted logits are the mean
    ones and the excluded logits the real ones. NaN inputs give NaN losses. UserError (one
    line) when a shape does not fit p or a key frequency is not in 1..p//2.
    """
    key_frequencies = check_frequencies(key_frequencies, p, allow_empty=True)
    for name, tensor in (("neuron_acts", neuron_acts), ("logits", logits), ("labels", labels)):
        check_grid(tensor, p, name, flat=True)
    if W_L.shape != (neuron_acts.shape[-1], p) or logits.shape != (p * p, p):
        raise UserError(f"W_L {list(W_L.shape)} and logits {list(logits.shape)} do not fit "
                        f"neuron_acts {list(neuron_acts.shape)}; expected [d_mlp, p] and "
                        f"[p * p, p] = [{p * p}, {p}]")
    acts = neuron_acts.double()
    W_L = W_L.double()
    logits = logits.double()
    parts = frequency_logit_parts(acts, W_L, p, key_frequencies, combine)
    key_logits = sum(parts.values(), torch.zeros_like(logits))
    restricted = acts.mean(dim=0, keepdim=True) @ W_L + key_logits
    restricted = restricted + logits.mean(dim=0, keepdim=True) - restricted.mean(
        dim=0, keepdim=True)
    restricted_loss, restricted_acc = _loss_and_accuracy(restricted[test_idx], labels[test_idx])
    excluded = logits - key_logits
    excluded_loss, excluded_acc = _loss_and_accuracy(excluded[train_idx], labels[train_idx])
    per_frequency = {k: _loss_and_accuracy((logits - part)[train_idx], labels[train_idx])[0]
                     for k, part in parts.items()}
    return ProgressMeasures(restricted_loss, restricted_acc, excluded_loss, excluded_acc,
                            per_frequency)


def gini(values: torch.Tensor) -> float:
    """Gini coefficient of non-negative values: 0 when all equal, (n-1)/n for one-hot;
    NaN when a value is NaN or infinite.

    G = sum_i (2i - n - 1) x_(i) / (n sum_i x_i) with x sorted ascending, i = 1..n.
    """
    x = torch.sort(values.double().flatten().abs()).values
    n = x.numel()
    if n == 0 or x.sum() == 0:
        return 0.0
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(((2 * i - n - 1) * x).sum() / (n * x.sum()))


def squared_weights(weights: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Sum of squared entries per weight matrix, and their total under ``total``."""
    per = {name: float(w.double().pow(2).sum()) for name, w in weights.items()}
    return {**per, "total": sum(per.values())}


@dataclass(frozen=True)
class Phases:
    """Epoch boundaries of Nanda et al.'s three phases (None when not reached).

    memorisation: [0, memorisation_end); circuit formation: [memorisation_end,
    cleanup_start); clean-up: [cleanup_start, cleanup_end).
    """

    memorisation_end: int | None
    cleanup_start: int | None
    cleanup_end: int | None

    def to_dict(self) -> dict[str, int | None]:
        return {"memorisation_end": self.memorisation_end, "cleanup_start": self.cleanup_start,
                "cleanup_end": self.cleanup_end}


PHASES_NOT_FOR_REGRESSION = (
    "Nanda et al.'s phases (memorisation, circuit formation, clean-up) describe a classifier "
    "that memorises its training labels and then forms a generalising circuit; a regression "
    "run has no such phases: read its loss landmarks instead")


def phases_skip_reason(config: RunConfig) -> str | None:
    """Why ``find_phases`` does not apply to a run of ``config`` (one line for a report), or
    None when it does: Nanda et al.'s phases are those of classification runs (class
    labels, whatever the loss); regression tasks (``config.task.regression``: Kumar et al.'s
    polynomial, the student-teacher task, toy addition with a scalar output) have none."""
    return PHASES_NOT_FOR_REGRESSION if config.task.regression else None


def find_phases(metrics: pd.DataFrame, fall_fraction: float = 0.1) -> Phases:
    """Phase boundaries from the train/test loss curves of a classification run (callers
    check ``phases_skip_reason`` first: a regression run's curves have a peak and a fall
    too, but they are not these phases).

    - memorisation ends when the test loss peaks (train loss has fallen, test loss rose);
    - clean-up starts when the test loss has made ``fall_fraction`` of its fall (in log
      scale) from that peak to its final value: the sharp drop has begun; circuit formation
      is the stretch in between (test loss still high while the circuit forms);
    - clean-up ends when all but ``fall_fraction`` of the log-scale fall is done.
    A run whose test loss never falls by a factor of 10 below its peak has no clean-up.
    Only finite losses count (a diverged run's NaN rows are left out); none: no phases.
    """
    if metrics.empty:
        return Phases(None, None, None)
    losses = numeric(metrics, "test_loss").to_numpy()
    finite = np.isfinite(losses)
    if not finite.any():
        return Phases(None, None, None)
    epochs = metrics["epoch"].to_numpy()[finite]
    log_test = np.log(np.maximum(losses[finite], np.finfo(np.float64).tiny))
    peak = int(np.argmax(log_test))
    fall = log_test[peak] - log_test[-1]
    if fall < math.log(10):
        return Phases(int(epochs[peak]), None, None)
    after = log_test[peak:]
    start = peak + int(np.argmax(after <= log_test[peak] - fall_fraction * fall))
    end = peak + int(np.argmax(after <= log_test[-1] + fall_fraction * fall))
    return Phases(int(epochs[peak]), int(epochs[start]), int(epochs[end]))
