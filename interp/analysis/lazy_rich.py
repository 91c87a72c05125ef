"""Lazy versus rich training: how far a network moves from its linearisation at initialisation.

Kumar, Bordelon, Gershman, Pehlevan, "Grokking as the transition from lazy to rich training
dynamics" (ICLR 2024) explain grokking as a network that first fits its training set like a
kernel method with its initial neural tangent kernel (NTK; Jacot et al. 2018), and only later
learns features. The measures here make that visible at any checkpoint (SPEC.md, "Lazy versus
rich"):

- the linearisation f_lin(x; theta) = f(x; theta_0) + J_0(x) (theta - theta_0), by a
  Jacobian-vector product (Lee et al. 2019);

Everything works on any model through a *functional output*: a callable
``f(params, inputs) -> [batch, n_outputs]`` where ``params`` maps state-dict names (e.g.
``blocks.0.mlp.in.weight``) to tensors, as ``interp.train.objective.functional_output`` builds
it with ``torch.func.functional_call``. No function here knows which model it is looking at.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Params = dict[str, torch.Tensor]
FunctionalOutput = Callable[[Params, torch.Tensor], torch.Tensor]


def trainable_weights(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The model's trainable parameters by state-dict name (frozen ones, buffers left out).

    The state-dict names (``blocks.0.attn.q.weight``) are the ones checkpoints use; for a
    TransformerBridge they differ from ``named_parameters`` names, so parameters are matched
    by identity. Returns the live parameters (not copies), in state-dict order.
    """
    return {name: value for name, value in model.state_dict(keep_vars=True).items()
            if isinstance(value, torch.nn.Parameter) and value.requires_grad}


def linearised_outputs(f: FunctionalOutput, initial: Params, params: Params,
                       inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(x; theta_0), J_0(x) (theta - theta_0)) by one forward-mode Jacobian-vector product.

    f: functional output; initial: theta_0; params: theta (same names; may require grad, and
    gradients flow back to it through the tangent); inputs: [batch, ...].
    Returns two [batch, n_outputs] tensors; their sum is the linearised model f_lin(x; theta)
    of Lee et al. 2019 (Kumar et al. 2024, eq. 1). The first does not depend on theta.
    """
    tangent = {name: params[name] - initial[name] for name in initial}
    return torch.func.jvp(lambda p: f(p, inputs), (initial,), (tangent,))
