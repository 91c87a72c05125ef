"""Losses and accuracy on a model's outputs [batch, n_outputs].

Cross-entropy for class labels; StableMax cross-entropy (Prieto et al. 2025) for class
labels; mean squared error against the targets, or against one-hot vectors for class labels
(Omnigrok, Gromov and Kumar et al. train classification tasks with MSE: ``nn.MSELoss``'s
mean over examples and outputs). ``per_example_loss`` is the one definition of each loss per
example; ``build_loss`` averages it for one run, ``StackedRows`` per run for a stack of M
runs, each on its own rows, with the accuracy ``Task.target_type`` defines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES = ("cross_entropy", "stablemax", "mse")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def stablemax_log_probabilities(outputs: torch.Tensor) -> torch.Tensor:
    """log StableMax(outputs) over the last dim: log(s(x_i) / sum_j s(x_j)) with
    s(x) = x + 1 for x >= 0 and 1 / (1 - x) for x < 0 (Prieto et al. 2025, eq. 6), in the
    outputs' dtype. [..., C] -> [..., C]. Each branch reads its clamped input, so neither
    overflows nor gives a NaN gradient where it is not taken (the authors' code adds 1e-30
    to 1 - x instead; the values agree)."""
    s = torch.where(outputs >= 0, outputs.clamp(min=0) + 1, 1 / (1 - outputs.clamp(max=0)))
    return s.log() - s.sum(-1, keepdim=True).log()


def per_example_loss(outputs: torch.Tensor, targets: torch.Tensor, loss: str,
                     dtype: torch.dtype) -> torch.Tensor:
    """Each example's loss in ``dtype``: outputs [N, C], targets [N] int64 labels (or
    [N, ...] values for ``mse``) -> [N]. ``cross_entropy``: -log softmax(x)_y;
    ``stablemax``: -log StableMax(x)_y (``stablemax_log_probabilities``); ``mse``: the mean
    over outputs of (output - target)^2, int64 class labels compared as one-hot vectors."""
    outputs = outputs.to(dtype)
    if loss == "cross_entropy":
        return F.cross_entropy(outputs, targets, reduction="none")
    if loss == "stablemax":
        log_probabilities = stablemax_log_probabilities(outputs)
        return -log_probabilities.gather(-1, targets[:, None])[:, 0]
    if loss != "mse":
        raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
    if targets.dtype == torch.long:
        targets = F.one_hot(targets, outputs.shape[-1])
    return (outputs - targets.to(dtype)).square().flatten(1).mean(-1)


def build_loss(loss: str, loss_dtype: str) -> LossFn:
    """The mean over examples of the loss an objective config names (``cross_entropy``,
    ``stablemax`` or ``mse``: ``per_example_loss``) in its dtype (Nanda et al. use float64
    to avoid the float32 loss floor that otherwise stalls the clean-up phase)."""
    dtype = _DTYPES[loss_dtype]
    return lambda outputs, targets: per_example_loss(outputs, targets, loss, dtype).mean()


@dataclass
class StackedRows:
    """Each run's own rows (a data split of its own task), padded to one length n.

    inputs [M, n, ...], targets [M, n, ...], weights [M, n] float64 (1 / the run's row count
    on its rows, 0 on padding: each run's loss is its own mean), counts [M]. Padding repeats
    the run's first row, so it is a valid input whose loss is weighted away.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor
    counts: torch.Tensor

    @classmethod
    def gather(cls, splits: Sequence[tuple[torch.Tensor, torch.Tensor]],
               device: torch.device) -> StackedRows:
        """Stack the runs' (inputs, targets) splits, padding the shorter ones."""
        n = max(len(inputs) for inputs, _ in splits)

        def padded(rows: torch.Tensor) -> torch.Tensor:
            return torch.cat([rows, rows[:1].expand(n - len(rows), *rows.shape[1:])])

        counts = torch.tensor([len(inputs) for inputs, _ in splits], dtype=torch.float64)
        weights = (torch.arange(n)[None] < counts[:, None]) / counts[:, None]
        return cls(torch.stack([padded(x) for x, _ in splits]).to(device),
                   torch.stack([padded(y) for _, y in splits]).to(device),
                   weights.to(device), counts.to(device))

    def batch(self, index: torch.Tensor) -> StackedRows:
        """The rows ``index`` [M, b] of each run (no padding: minibatches)."""
        take = torch.arange(len(index), device=index.device)[:, None], index
        return StackedRows(self.inputs[take], self.targets[take],
                           torch.full(index.shape, 1 / index.shape[1], dtype=torch.float64,
                                      device=index.device),
                           torch.full_like(self.counts, index.shape[1]))

    def losses(self, outputs: torch.Tensor, loss: str, dtype: torch.dtype) -> torch.Tensor:
        """[M] each run's mean ``per_example_loss`` over its rows (``loss``
        ``cross_entropy``, ``stablemax`` or ``mse``) in ``dtype``. outputs: [M, n, n_outputs]."""
        per_row = per_example_loss(outputs.flatten(0, 1), self.targets.flatten(0, 1), loss,
                                   dtype).view(self.weights.shape)
        return (per_row * self.weights.to(dtype)).sum(1)

    def accuracies(self, outputs: torch.Tensor, target_type: str) -> torch.Tensor | None:
        """[M] each run's fraction correct over its rows: argmax for ``class`` labels, the
        output rounded to the nearest integer for ``integer`` targets; None for ``real``
        targets (no notion of correct)."""
        if target_type == "class":
            correct = outputs.argmax(-1) == self.targets
        elif target_type == "integer":
            correct = (outputs.round() == self.targets).flatten(2).all(-1)
        else:
            return None
        return (correct & (self.weights > 0)).sum(1) / self.counts
