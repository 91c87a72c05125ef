"""What the trainer differentiates: the model's outputs as the ``objective`` section defines.

**Output scale alpha** (Chizat, Oyallon, Bach 2019; Kumar et al. 2024, sec. 4.1 and 6): with
``objective.centered`` train

    g(x; theta) = alpha * (f(x; theta) - f(x; theta_0))

so the output is zero at initialisation whatever alpha is, and a large alpha makes training
lazy (the network stays near its linearisation) while a small alpha makes it rich. The
learning rate is divided by alpha^2 for plain gradient descent and by alpha for Adam-family
optimisers, which normalise the gradient (SPEC.md; Kumar et al. appendix 8.1: the rescaling
keeps the initial rate of change of the output independent of alpha). The weight decay is
applied with that rescaled learning rate (``objective.alpha_weight_decay = "scaled"``, the
default), so its shrink per step falls with alpha too; ``"fixed"`` multiplies the decay by
the inverse factor, holding lr * wd at its alpha = 1 value, so that a grokking delay against
alpha can be told apart from one against the effective weight decay.

Without ``centered`` (the default, Nanda et al.'s setup) g = f and alpha must be 1; those
runs are computed exactly as before the objective existed. An alpha sweep sets
``centered`` for every alpha, 1 included, so all its runs train the same family.

**Linearised (lazy) baseline** (``objective.linearized``; Lee et al. 2019; Kumar et al. eq. 1):
f is replaced by f_lin(x; theta) = f(x; theta_0) + J_0(x) (theta - theta_0), computed by a
Jacobian-vector product; centred, the trained output is alpha * J_0(x) (theta - theta_0).
The parameters theta are the model's own, so checkpoints store theta as for any run.

``Objective`` is g for one model (the analyses read it); ``StackedObjective`` the same
definitions for a stack of runs, each with its own alpha and theta_0 (the trainer and its
metrics read it), so all of them see the same centred, scaled output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interp.analysis.lazy_rich import (
    FunctionalOutput,
    Params,
    linearised_outputs,
    state_dict_functional,
    trainable_weights,
)
from interp.config import ModelConfig, ObjectiveConfig, RunConfig
from interp.models import output_fn

# Optimisers that follow the raw gradient (learning rate / alpha^2); every other optimiser in
# interp.train.optim is Adam-family (normalises the gradient: learning rate / alpha).
PLAIN_GRADIENT_OPTIMIZERS = frozenset({"sgd"})


def learning_rate_scale(objective: ObjectiveConfig, optimizer: str) -> float:
    """The factor the configured learning rate is multiplied by: 1/alpha^2 for plain gradient
    descent, 1/alpha for Adam-family optimisers (SPEC.md, "Output scale alpha"); 1 at
    alpha = 1."""
    return objective.alpha ** -_alpha_power(optimizer)


def weight_decay_scale(objective: ObjectiveConfig, optimizer: str) -> float:
    """The factor the configured weight decay is multiplied by: 1 with
    ``objective.alpha_weight_decay = "scaled"`` (the decay per step lr * wd then shrinks with
    the learning rate), alpha^2 (sgd) or alpha (Adam family) with ``"fixed"``: 1 /
    ``learning_rate_scale``, so lr * wd per step is that of alpha = 1."""
    if objective.alpha_weight_decay == "scaled":
        return 1.0
    return objective.alpha ** _alpha_power(optimizer)


def _alpha_power(optimizer: str) -> int:
    return 2 if optimizer in PLAIN_GRADIENT_OPTIMIZERS else 1


class _OutputModule(torch.nn.Module):
    """``output_fn(config, model)`` as a module's forward, so functional_call can swap weights.

    The output function is rebuilt on every call: the transformer's fast path captures the
    model's state dict when it is built, which must be the swapped one.
    """

    def __init__(self, config: ModelConfig, model: torch.nn.Module, fast: bool):
        super().__init__()
        self.model = model
        self.config, self.fast = config, fast

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return output_fn(self.config, self.model, fast=self.fast)(inputs)


def functional_output(config: ModelConfig, model: torch.nn.Module, fast: bool = True
                      ) -> FunctionalOutput:
    """f(params, inputs): the model's output function with its trainable weights replaced.

    params: state-dict name -> tensor (the names of ``trainable_weights(model)``; a subset is
    fine, the rest keep the model's values). inputs: the task's inputs [batch, ...]. Returns
    [batch, n_outputs], what ``output_fn`` returns, through ``torch.func.functional_call``, so
    it composes with ``torch.func`` transforms (jvp, vmap, jacrev).
    """
    return state_dict_functional(_OutputModule(config, model, fast), model)


class Objective:
    """The trained output g(params, inputs) of a model under an ``objective`` config.

    f: the model's functional output; initial: theta_0, its trainable weights at
    initialisation (state-dict names). ``g(params, inputs)`` -> [batch, n_outputs]:
    f (not centred), alpha * (f - f_0) (centred), f_lin or alpha * (f_lin - f_0) (linearised).
    """

    def __init__(self, objective: ObjectiveConfig, f: FunctionalOutput, initial: Params):
        self.alpha, self.linearized = objective.alpha, objective.linearized
        self._centred = objective.centered
        self.f, self.initial = f, initial

    @property
    def centred(self) -> bool:
        """Whether f(theta_0) is subtracted (``objective.centered``)."""
        return self._centred

    @torch.no_grad()
    def initial_outputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """f(inputs; theta_0): [batch, n_outputs], without gradient."""
        return self.f(self.initial, inputs)

    def __call__(self, params: Params, inputs: torch.Tensor) -> torch.Tensor:
        """g(params, inputs): [batch, n_outputs]."""
        if self.linearized:
            start, change = linearised_outputs(self.f, self.initial, params, inputs)
            return self.alpha * change if self.centred else start + change
        outputs = self.f(params, inputs)
        return self.centre(outputs, self.initial_outputs(inputs) if self.centred else None)

    def centre(self, outputs: torch.Tensor, initial_outputs: torch.Tensor | None
               ) -> torch.Tensor:
        """g from f's outputs and f(theta_0)'s on the same inputs (unused, may be None, when
        not centred): alpha * (outputs - initial_outputs), or outputs itself."""
        return self.alpha * (outputs - initial_outputs) if self.centred else outputs


def build_objective(config: RunConfig, model: torch.nn.Module, initial: Params,
                    fast: bool = True) -> Objective:
    """The Objective of ``config`` for ``model`` with theta_0 = ``initial`` (a state dict of
    the model, e.g. its epoch-0 checkpoint; only the trainable entries are used)."""
    names = trainable_weights(model)
    return Objective(config.objective, functional_output(config.model, model, fast),
                     {name: initial[name] for name in names})


class StackedObjective:
    """What a stack of M runs trains: g for every run at once, [M, n, ...] -> [M, n, C].

    network: the stacked stateless forward (``interp.models.stacked_output_fn``); weights:
    a function giving the live stacked state dict (name -> [M, ...]); trainable: the names
    trained; initial: theta_0 stacked (every state-dict name), None unless the objective is
    centred or linearised; alpha: [M] each run's output scale; fixed_inputs: the tensors
    (train and test inputs) whose f(theta_0) is computed once.
    """

    def __init__(self, objective: ObjectiveConfig, network, weights, trainable: list[str],
                 initial: Params | None, alpha: torch.Tensor,
                 fixed_inputs: Sequence[torch.Tensor] = ()):
        self.network, self.weights, self.trainable = network, weights, trainable
        self.centred, self.linearized = objective.centered, objective.linearized
        self.initial = initial
        self.alpha = alpha
        self.known = ([(x, self.initial_outputs(x)) for x in fixed_inputs]
                      if self.centred and not self.linearized else [])

    @torch.no_grad()
    def initial_outputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """f(theta_0) of every run on its ``inputs``: [M, n, C]."""
        return self.network(self.initial, inputs)

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """g(theta; inputs) of every run: f, alpha * (f - f_0), f_lin or alpha * (f_lin - f_0)
        (``Objective``'s definitions, each run with its own alpha and theta_0)."""
        weights = self.weights()
        if self.linearized:
            initial = {name: self.initial[name] for name in self.trainable}
            tangent = {name: weights[name] - initial[name] for name in self.trainable}
            start, change = torch.func.jvp(
                lambda params: self.network({**self.initial, **params}, inputs),
                (initial,), (tangent,))
            return self._scaled(change) if self.centred else start + change
        outputs = self.network(weights, inputs)
        if not self.centred:
            return outputs
        initial = next((f0 for x, f0 in self.known if x is inputs), None)
        return self._scaled(outputs - (self.initial_outputs(inputs) if initial is None
                                       else initial))

    def _scaled(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.alpha.to(outputs.dtype).view(-1, *[1] * (outputs.dim() - 1)) * outputs
