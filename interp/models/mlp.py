"""The fully connected network with TransformerLens hook points: the MLP of Hu et al. (and of
Omnigrok's digits and student-teacher runs, and their teacher), and its model kind ``ENTRY``.

Weights are drawn from a seeded ``torch.Generator`` (never the global RNG) with PyTorch's
default ``nn.Linear`` distribution, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and
biases, unless a paper says otherwise.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from interp.config import MLPModel
from interp.models.kind import ModelKind
from interp.tasks.base import Task

ACTIVATION_FNS = {"relu": torch.relu, "tanh": torch.tanh, "quadratic": torch.square}


def default_init_(layer: nn.Linear, generator: torch.Generator) -> nn.Linear:
    """Re-draw ``layer``'s weight and bias as ``nn.Linear`` does, from ``generator``."""
    bound = 1 / math.sqrt(layer.in_features)
    with torch.no_grad():
        for param in layer.parameters():
            param.copy_(torch.rand(param.shape, generator=generator) * 2 * bound - bound)
    return layer


class HiddenLayer(nn.Module):
    """linear -> activation, with hook points ``hook_pre`` and ``hook_post``."""

    def __init__(self, d_in: int, d_out: int, activation: str, bias: bool,
                 generator: torch.Generator):
        super().__init__()
        self.linear = default_init_(nn.Linear(d_in, d_out, bias=bias), generator)
        self.activation = ACTIVATION_FNS[activation]
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hook_post(self.activation(self.hook_pre(self.linear(x))))


class MLP(HookedRootModule):
    """x [batch, d_in] -> hidden layers -> linear readout [batch, d_out].

    Hooks: ``hidden.{i}.hook_pre`` / ``hidden.{i}.hook_post`` for each hidden layer.
    """

    def __init__(self, d_in: int, hidden: tuple[int, ...], d_out: int, activation: str,
                 bias: bool, generator: torch.Generator):
        super().__init__()
        widths = (d_in, *hidden)
        self.hidden = nn.ModuleList(HiddenLayer(a, b, activation, bias, generator)
                                    for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.readout = default_init_(nn.Linear(widths[-1], d_out, bias=bias), generator)
        self.setup()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = layer(x)
        return self.readout(x)


def _build(config: MLPModel, task: Task, generator: torch.Generator, device: str | torch.device
           ) -> MLP:
    return MLP(task.inputs.shape[1], config.hidden, task.n_outputs, config.activation,
               config.bias, generator).to(device)


ENTRY = ModelKind(MLPModel, _build)
