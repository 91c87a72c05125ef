"""Kumar et al.'s committee machine (ICLR 2024, eq. 3): a two-layer network with its
readout fixed to 1,

    f(x) = (1/N) sum_i phi(w_i . x / sqrt(D)),   phi(h) = h + eps h^k / k!   (k = 2 in the
    paper: h + (eps/2) h^2),   w_i ~ N(0, I_D).

The output scale alpha and the centring f(theta) - f(theta_0) are not part of the model:
the trainer's objective applies them. ``ENTRY`` is its model kind.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from interp.config import CommitteeModel
from interp.models.kind import ModelKind
from interp.tasks.base import Task


class CommitteeMachine(HookedRootModule):
    """x [batch, D] -> f(x) [batch, 1]. Weights ``W`` [N, D], one row w_i per neuron.

    Hooks: ``hook_pre`` (h = W x / sqrt(D)) and ``hook_post`` (phi(h)), both [batch, N].
    """

    def __init__(self, dim: int, width: int, eps: float, degree: int,
                 generator: torch.Generator):
        super().__init__()
        self.W = nn.Parameter(torch.randn(width, dim, generator=generator))
        self.eps, self.degree = eps, degree
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()
        self.setup()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hook_pre(x @ self.W.T / math.sqrt(self.W.shape[1]))
        phi = self.hook_post(h + self.eps * h.pow(self.degree) / math.factorial(self.degree))
        return phi.mean(dim=1, keepdim=True)


def _build(config: CommitteeModel, task: Task, generator: torch.Generator,
           device: str | torch.device) -> CommitteeMachine:
    return CommitteeMachine(task.inputs.shape[1], config.width, config.eps, config.degree,
                            generator).to(device)


ENTRY = ModelKind(CommitteeModel, _build)
