"""Kumar et al.'s polynomial regression on Gaussian inputs, and its variants.

Inputs x ~ N(0, I_D); the P training and the test samples are drawn together from a seeded
generator and stored in the run directory (``Task.stored``), so ``Run.task()`` returns
exactly the trained data. Targets are [N, 1] floats.
"""

from __future__ import annotations

import math

import torch

from interp.config import ModelConfig, PolynomialTask
from interp.errors import UserError
from interp.tasks.base import Task


def target_directions(config: PolynomialTask, generator: torch.Generator) -> torch.Tensor:
    """Orthonormal target directions [k, D]: one unit beta, or ``n_directions`` for the
    multi-index variant (QR of a Gaussian matrix)."""
    k = config.n_directions if config.target == "multi_index" else 1
    gaussian = torch.randn(config.dim, k, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    return (q * torch.sign(torch.diagonal(r))).T.float()


def hermite(t: torch.Tensor, degree: int) -> torch.Tensor:
    """The probabilists' Hermite polynomial He_degree(t) (He_0 = 1, He_1 = t,
    He_{k+1} = t He_k - k He_{k-1}); E[He_k(z)^2] = k! for z ~ N(0, 1)."""
    previous, current = torch.ones_like(t), t
    if degree == 0:
        return previous
    for k in range(1, degree):
        previous, current = current, t * current - k * previous
    return current


def polynomial_targets(inputs: torch.Tensor, directions: torch.Tensor, config: PolynomialTask
                       ) -> torch.Tensor:
    """Targets [N, 1] of the ``single_index``, ``multi_index`` or ``hermite`` variant.

    single/multi index: sum_k (beta_k.x)^2 / 2 (Kumar et al. eq. 3 and appendix 16.1);
    hermite: He_degree(beta.x) / sqrt(degree!), unit variance (appendix 16.2).
    """
    projections = inputs @ directions.T  # [N, k]
    if config.target == "hermite":
        values = hermite(projections[:, 0], config.degree) / math.sqrt(math.factorial(
            config.degree))
    else:
        values = projections.pow(2).sum(dim=1) / 2
    return values[:, None]


def initial_ntk_gram(model: torch.nn.Module, inputs: torch.Tensor, chunk: int = 128
                     ) -> torch.Tensor:
    """The empirical NTK Gram matrix K = J J^T of a scalar-output model at its current
    weights, on ``inputs`` [N, ...]; returns [N, N] float64.

    J [N, n_params] holds the per-example gradients of the output with respect to every
    trainable parameter (torch.func: vmap of grad over functional_call), computed ``chunk``
    examples at a time; memory is N * n_params * 4 bytes for J. A deliberately minimal
    kernel for the NTK-eigenvector labels; the general NTK lives in the analysis layer.
    """
    from torch.func import functional_call, grad, vmap

    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}

    def output(weights, x):
        return functional_call(model, weights, (x[None],)).reshape(())

    per_example = vmap(grad(output), in_dims=(None, 0))
    rows = []
    for block in inputs.split(chunk):
        grads = per_example(params, block)
        rows.append(torch.cat([g.reshape(len(block), -1) for g in grads.values()], dim=1))
    jacobian = torch.cat(rows).double()
    return jacobian @ jacobian.T


def ntk_eigenvector_labels(gram: torch.Tensor, index: int) -> torch.Tensor:
    """The ``index``-th (1-based, by descending eigenvalue) eigenvector of the mean-centred
    Gram matrix [N, N], as labels [N, 1] scaled to unit mean square, sign fixed so that its
    largest-magnitude entry is positive (Kumar et al. appendix 8.4, their notebook's
    ``generate_label_vector``: K - mean(K), eigh, descending)."""
    _, vectors = torch.linalg.eigh(gram - gram.mean())
    vector = vectors[:, -index]
    vector = vector * torch.sign(vector[vector.abs().argmax()])
    return (vector * math.sqrt(len(vector)))[:, None].float()


def polynomial_task(config: PolynomialTask, model: ModelConfig | None = None,
                    stored: dict[str, torch.Tensor] | None = None) -> Task:
    """Draw (or, given ``stored``, restore) the polynomial-regression data set.

    The ``ntk_eigenvector`` variant needs ``model``: its labels come from the initial NTK of
    that model on all train and test inputs.
    """
    n = config.n_train + config.n_test
    if stored is None:
        generator = torch.Generator().manual_seed(config.data_seed)
        directions = target_directions(config, generator)
        inputs = torch.randn(n, config.dim, generator=generator)
        if config.target == "ntk_eigenvector":
            if model is None:
                raise UserError("task.target 'ntk_eigenvector' needs a model to take the NTK "
                                "of; train it through a run config with a model section")
            targets = _ntk_labels(config, model, inputs)
        else:
            targets = polynomial_targets(inputs, directions, config)
        stored = {"inputs": inputs, "targets": targets, "directions": directions}
    train_idx, test_idx = torch.arange(config.n_train), torch.arange(config.n_train, n)
    return Task(stored["inputs"], stored["targets"], train_idx, test_idx, n_outputs=1,
                info={"target": config.target, "directions": stored["directions"]},
                target_type="real", stored=stored)


def _ntk_labels(config: PolynomialTask, model: ModelConfig, inputs: torch.Tensor
                ) -> torch.Tensor:
    from interp.models import build_model

    n = len(inputs)
    unlabelled = Task(inputs, torch.zeros(n, 1), torch.arange(n), torch.arange(0), n_outputs=1,
                      target_type="real")
    network = build_model(model, unlabelled)
    return ntk_eigenvector_labels(initial_ntk_gram(network, inputs), config.eigen_index)
