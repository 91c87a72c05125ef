"""Kumar et al.'s committee machine (ICLR 2024, eq. 3): a two-layer network with its
readout fixed to 1,

    f(x) = (1/N) sum_i phi(w_i . x / sqrt(D)),   phi(h) = h + eps h^k / k!   (k = 2 in the
    paper: h + (eps/2) h^2),   w_i ~ N(0, I_D).

The output scale alpha and the centring f(theta) - f(theta_0) are not part of the model:
the trainer's objective applies them. ``ENTRY`` is its model kind.

``model.solution_mix`` tau (Kumar et al. appendix 8.4.2, "interpolating from random weights
to aligned solution"): the initial weights are (1 - tau) W_random + tau W*, W* the analytic
solution of the degree-2 target sum_k (beta_k.x)^2 / 2 (``aligned_solution``), and then
``model.init_scale`` times that (``build_model``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from interp.config import CommitteeModel
from interp.errors import UserError
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


def aligned_solution(directions: torch.Tensor, width: int, eps: float) -> torch.Tensor:
    """Weights W* [width, D] (float32) at which the degree-2 committee machine is the target
    sum_k (beta_k.x)^2 / 2 exactly: M* = (1/N) sum_i w_i w_i^T = (D / eps) sum_k beta_k
    beta_k^T, so (eps / 2D) x^T M* x is the target; Kumar et al. appendix 8.4.2.

    directions: [k, D], the orthonormal beta_k (``Task.info["directions"]``); needs
    width N >= k. Row i is s_i sqrt(D N / (eps n_j)) beta_j with j = i mod k, n_j the rows
    given direction j (sqrt(D k / eps) when k divides N) and the sign s_i alternating over
    direction j's rows (+, -, +, ...). v* = (1/N) sum_i w_i is 0 when N is a multiple of 2k;
    otherwise each direction with an odd number of rows leaves one row's worth, a linear term
    of test loss |v*|^2 / D = sum of 1 / (eps N n_j) over those directions.
    """
    k, dim = directions.shape
    if width < k:
        raise UserError(f"model.width={width} is fewer than the {k} target directions the "
                        "analytic solution puts on its neurons; widen the model")
    row = torch.arange(width)
    direction = row % k
    sign = 1 - 2 * ((row // k) % 2)
    counts = torch.bincount(direction, minlength=k).double()
    norms = sign * (dim * width / (eps * counts[direction])).sqrt()
    return (norms[:, None] * directions.double()[direction]).float()


def _build(config: CommitteeModel, task: Task, generator: torch.Generator,
           device: str | torch.device) -> CommitteeMachine:
    """The seeded machine; with ``solution_mix`` tau > 0 its random weights (the same draws)
    mixed with the task's ``aligned_solution``: (1 - tau) W + tau W*."""
    machine = CommitteeMachine(task.inputs.shape[1], config.width, config.eps, config.degree,
                               generator)
    tau = config.solution_mix
    if tau:
        directions = task.info.get("directions")
        if directions is None:
            raise UserError(f"model.solution_mix={tau} needs the target directions of a "
                            "polynomial task (task.target single_index or multi_index); set "
                            "model.solution_mix=0")
        solution = aligned_solution(directions, config.width, config.eps)
        with torch.no_grad():
            machine.W.mul_(1 - tau).add_(solution * tau)
    return machine.to(device)


ENTRY = ModelKind(CommitteeModel, _build)
