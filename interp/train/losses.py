"""Losses and accuracy on a model's outputs [batch, n_outputs].

Cross-entropy for class labels; mean squared error against the targets, or against one-hot
vectors for class labels (Omnigrok, Gromov and Kumar et al. train classification tasks with
MSE: ``nn.MSELoss``'s mean over examples and outputs). ``StackedRows`` computes them per run
for a stack of M runs, each on its own rows, with the accuracy ``Task.target_type`` defines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor, dtype: torch.dtype
                  ) -> torch.Tensor:
    """Mean cross-entropy computed in ``dtype`` (Nanda et al. use float64 to avoid the
    float32 loss floor that otherwise stalls the clean-up phase)."""
    return F.cross_entropy(outputs.to(dtype), targets)


def mean_squared_error(outputs: torch.Tensor, targets: torch.Tensor, dtype: torch.dtype
                       ) -> torch.Tensor:
    """Mean over examples and outputs of (output - target)^2 in ``dtype``; int64 class
    labels [batch] are compared as one-hot vectors [batch, n_outputs]."""
    if targets.dtype == torch.long:
        targets = F.one_hot(targets, outputs.shape[-1])
    return F.mse_loss(outputs.to(dtype), targets.to(dtype))


def build_loss(loss: str, loss_dtype: str) -> LossFn:
    """The loss an objective config names (``cross_entropy`` or ``mse``) in its dtype."""
    dtype = _DTYPES[loss_dtype]
    function = cross_entropy if loss == "cross_entropy" else mean_squared_error
    return lambda outputs, targets: function(outputs, targets, dtype)


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
        """[M] each run's mean loss over its rows: ``loss`` ``cross_entropy`` or ``mse``
        (``mean_squared_error``'s mean over outputs, class labels as one-hot), in ``dtype``.
        outputs: [M, n, n_outputs]."""
        outputs = outputs.to(dtype)
        if loss == "cross_entropy":
            per_row = F.cross_entropy(outputs.flatten(0, 1), self.targets.flatten(),
                                      reduction="none").view(self.weights.shape)
        else:
            targets = self.targets
            if targets.dtype == torch.long:
                targets = F.one_hot(targets, outputs.shape[-1])
            per_row = (outputs - targets.to(dtype)).square().flatten(2).mean(-1)
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
