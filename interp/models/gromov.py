"""Gromov's (2023) two-layer network with quadratic activation, as Kumar et al. run it
(appendix 8.3), with TransformerLens hook points, and its model kind ``ENTRY``."""

from __future__ import annotations

import torch
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from interp.config import GromovModel
from interp.models.kind import ModelKind
from interp.tasks.base import Task


class GromovNet(HookedRootModule):
    """f(x) = W2 (W1 x)^2 / (D N) on one-hot pairs x [batch, D = 2p]; W1 [N, D], W2 [p, N]
    with N(0, 1) entries, no biases (Gromov 2023; Kumar et al.'s appendix 8.3 notebook).

    Hooks: ``hook_pre`` (W1 x) and ``hook_post`` ((W1 x)^2), both [batch, N].
    """

    def __init__(self, d_in: int, width: int, d_out: int, generator: torch.Generator):
        super().__init__()
        self.W_in = nn.Parameter(torch.randn(width, d_in, generator=generator))
        self.W_out = nn.Parameter(torch.randn(d_out, width, generator=generator))
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()
        self.setup()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.hook_post(self.hook_pre(x @ self.W_in.T).square())
        d_in, width = self.W_in.shape[1], self.W_in.shape[0]
        return hidden @ self.W_out.T / (d_in * width)


def _build(config: GromovModel, task: Task, generator: torch.Generator,
           device: str | torch.device) -> GromovNet:
    return GromovNet(task.inputs.shape[1], config.width, task.n_outputs, generator).to(device)


ENTRY = ModelKind(GromovModel, _build)
