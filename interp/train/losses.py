"""Losses and accuracy on a model's outputs [batch, n_outputs].

Cross-entropy for class labels; mean squared error against the targets, or against one-hot
vectors for class labels (Omnigrok, Gromov and Kumar et al. train classification tasks with
MSE: ``nn.MSELoss``'s mean over examples and outputs). Accuracy follows ``Task.target_type``.
"""

from __future__ import annotations

from collections.abc import Callable

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


def accuracy(outputs: torch.Tensor, targets: torch.Tensor, target_type: str) -> float | None:
    """Fraction correct: argmax for ``class`` labels, the output rounded to the nearest
    integer for ``integer`` targets; None for ``real`` targets (no notion of correct)."""
    if target_type == "class":
        return (outputs.argmax(dim=-1) == targets).float().mean().item()
    if target_type == "integer":
        return (outputs.round() == targets).all(dim=-1).float().mean().item()
    return None
