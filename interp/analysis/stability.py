"""Numerical stability of softmax training (Prieto et al. 2025, "Grokking at the edge of
numerical stability"), for a stack of M runs.

Without weight decay, a classifier that has fit its training set keeps lowering its
cross-entropy by scaling its logits (mostly by growing its weights along themselves: *naive
loss minimisation*), until float32 softmax *collapses*: the correct logit absorbs the others
(sum_j exp(x_j - x_max) rounds to exactly 1), the loss of those examples is exactly 0 and
their gradient vanishes, which stops learning before the model generalises.

- ``softmax_collapse``: the fraction of each run's training examples whose float32 softmax
  cross-entropy is exactly 0;
- ``grad_weight_cosine``: cos(grad L, w) over each run's trainable weights (the trainer
  records it for the loss's own gradient, before any orthogonal projection or filter);
- ``orthogonal_gradient``: the authors' perpendicular gradient (their ``OrthoGrad``), which
  removes the naive-loss-minimisation direction from each weight tensor's gradient.

StableMax cross-entropy, the authors' other remedy, is a loss: ``interp.train.losses``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

# Added to |w|^2 and |g_perp| as in the authors' OrthoGrad (a zero tensor or a gradient
# parallel to it then stays finite).
ORTHOGONAL_EPS = 1e-30


def softmax_collapse(outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
                     ) -> torch.Tensor:
    """[M] each run's fraction of training examples whose float32 softmax cross-entropy
    (``F.cross_entropy`` on the outputs cast to float32) is exactly 0 (Prieto et al.: softmax
    collapse). outputs [M, n, C] logits; targets [M, n] int64 labels; weights [M, n] each
    row's weight (``StackedRows.weights``: positive on the run's rows, 0 on padding), so a
    run's fraction counts its own rows only. Float64. It is the softmax's collapse whatever
    loss the run trains (a StableMax run's logits may collapse it while its own loss does
    not)."""
    losses = F.cross_entropy(outputs.float().flatten(0, 1), targets.flatten(),
                             reduction="none").view(weights.shape)
    rows = weights > 0
    return ((losses == 0) & rows).sum(1, dtype=torch.float64) / rows.sum(1)


def grad_weight_cosine(grad: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[M] each run's cos(grad L, w) (SPEC.md): the cosine between its loss gradient and its
    weights, over all its trainable weights (grad, weights: [M, P] flat). Near -1 when a
    descent step mostly grows the weights along themselves (Prieto et al.'s naive loss
    minimisation: the gradient points against the weights), positive when a step shrinks
    them. NaN where the gradient or the weights are all zero (no direction: e.g. a complete
    softmax collapse). Float64."""
    grad, weights = grad.double(), weights.double()
    return (grad * weights).sum(1) / (grad.norm(dim=1) * weights.norm(dim=1))


def orthogonal_gradient(grad: torch.Tensor, weights: torch.Tensor,
                        spans: Sequence[tuple[int, int]], active: torch.Tensor) -> torch.Tensor:
    """The perpendicular gradient (Prieto et al.'s OrthoGrad): per weight tensor (columns
    ``spans`` of the flat [M, P] ``grad`` and ``weights``, one span per tensor), g_perp =
    g - (g.w / (|w|^2 + eps)) w, rescaled to g's norm, g_perp |g| / (|g_perp| + eps), as the
    authors' code does (eps = ``ORTHOGONAL_EPS``), in the weights' dtype. Rows (runs) where
    ``active`` [M] bool is False are returned as they are, bit for bit. [M, P] -> [M, P]."""
    pieces = []
    for start, stop in spans:
        g, w = grad[:, start:stop], weights[:, start:stop]
        along = (g * w).sum(1, keepdim=True) / ((w * w).sum(1, keepdim=True) + ORTHOGONAL_EPS)
        perpendicular = g - along * w
        scale = g.norm(dim=1, keepdim=True) / (perpendicular.norm(dim=1, keepdim=True)
                                              + ORTHOGONAL_EPS)
        pieces.append(perpendicular * scale)
    return torch.where(active[:, None], torch.cat(pieces, dim=1), grad)
