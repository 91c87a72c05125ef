"""Sharpness: the top eigenvalue of the Hessian of the training loss (SPEC.md, "Beyond the
seeds"; the measure of openai/grok, after Keskar et al. 2017 and Cohen et al. 2021).

Hessian-vector products H v come from ``torch.func`` forward-over-reverse (the
Jacobian-vector product of the gradient): one costs about three backward passes and never
forms H. The top eigenvalue is found by Lanczos iteration with full reorthogonalisation from a
seeded start vector, stopped when the Ritz pair (theta, v) has |H v - theta v| <= tolerance *
|theta|: then an eigenvalue of H lies within tolerance * |theta| of theta (exact arithmetic).
It is the *largest algebraic* eigenvalue (the most positive curvature); the Hessian of a
non-convex loss also has negative eigenvalues, which this does not report.

Lanczos in place of ``scipy.sparse.linalg.eigsh``: ARPACK restarts with at least 20 vectors
and counts iterations in restarts, so it cannot stop after the 10-20 products that the top
eigenvalue needs here; this loop checks the residual after every product and stops there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Literal

import torch

from interp.errors import UserError

Params = dict[str, torch.Tensor]
ScalarLoss = Callable[[Params], torch.Tensor]


@dataclass(frozen=True)
class SharpnessSettings:
    """How the top Hessian eigenvalue is found.

    tolerance: Lanczos stops when the Ritz residual |H v - theta v| <= tolerance * |theta|;
    max_matvecs: the most Hessian-vector products per checkpoint (unconverged after them:
    the estimate is kept, marked ``converged = False``); examples: how many training
    examples the loss averages (a seeded subset), None for all of them; seed: the seed of
    the Lanczos start vector and of the subset.

    Defaults, measured on the reference run (nanda-p113, 29 checkpoints): every training
    example (the measure is of the training loss, and one product on all 3 830 costs about
    0.33 s on one core); tolerance 1e-3 converges in 8-22 products per checkpoint (378 in
    all) and agrees with tolerance 1e-6 to 1e-3 relative, while 1e-2 stopped on a lower Ritz
    value at epoch 17000 (4% low); 60 products is about three times the most that needed.
    """

    tolerance: float = 1e-3
    max_matvecs: int = 60
    examples: int | None = None
    seed: int = 0

    def validate(self) -> None:
        """UserError (one line, naming the flag) for a setting out of range."""
        if not (isinstance(self.tolerance, float | int) and 0 < self.tolerance < 1):
            raise UserError(f"--sharpness-tolerance {self.tolerance}: the Lanczos tolerance "
                            "must be a number in (0, 1), e.g. 1e-3")
        if not _is_int(self.max_matvecs) or self.max_matvecs < 2:
            raise UserError(f"--sharpness-max-matvecs {self.max_matvecs}: the most "
                            "Hessian-vector products must be an integer >= 2, e.g. 60")
        if self.examples is not None and (not _is_int(self.examples) or self.examples < 1):
            raise UserError(f"--sharpness-examples {self.examples}: the training examples "
                            "must be a positive integer or 'all'")
        if not _is_int(self.seed) or not 0 <= self.seed < 2 ** 63:
            raise UserError(f"--sharpness-seed {self.seed}: the seed must be an integer >= 0")

    def to_dict(self) -> dict[str, float | int | None]:
        """The settings as JSON values (cache parameters, summary.json)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SharpnessOverrides:
    """What the user set of ``SharpnessSettings`` (``interp.analyze --sharpness-...``); None:
    the default. ``examples="all"`` asks for every training example."""

    tolerance: float | None = None
    max_matvecs: int | None = None
    examples: int | Literal["all"] | None = None
    seed: int | None = None


def resolve_sharpness(overrides: SharpnessOverrides | None = None) -> SharpnessSettings:
    """The settings ``overrides`` gives (defaults where None), validated (UserError)."""
    overrides = overrides or SharpnessOverrides()
    given = {f.name: getattr(overrides, f.name) for f in fields(overrides)
             if getattr(overrides, f.name) is not None}
    if given.get("examples") == "all":
        given["examples"] = None
    settings = SharpnessSettings(**given)
    settings.validate()
    return settings


def overrides_entry(settings: SharpnessSettings) -> dict[str, float | int | str]:
    """``settings`` as the JSON object summary.json records (``examples`` "all" for None),
    which ``interp.run_analysis.recorded_settings`` reads back."""
    entry = settings.to_dict()
    return {**entry, "examples": "all" if entry["examples"] is None else entry["examples"]}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class TopEigenvalue:
    """The top (largest algebraic) Hessian eigenvalue Lanczos found.

    eigenvalue: theta (NaN if a product was not finite); residual: |H v - theta v| / |theta|
    at the end; matvecs: Hessian-vector products used; converged: residual <= tolerance;
    weight_shares: name -> the share of the top eigenvector's squared norm in that weight
    (sums to 1): where the sharpest direction lives.
    """

    eigenvalue: float
    residual: float
    matvecs: int
    converged: bool
    weight_shares: dict[str, float]


def hessian_vector_product(loss: ScalarLoss, params: Params) -> Callable[[Params], Params]:
    """v -> H v, H the Hessian of ``loss`` at ``params`` (name -> tensor; v the same names and
    shapes), by forward-over-reverse: ``torch.func.jvp`` of ``torch.func.grad``."""
    gradient = torch.func.grad(loss)

    def product(vector: Params) -> Params:
        return torch.func.jvp(gradient, (params,), (vector,))[1]

    return product


def top_hessian_eigenvalue(loss: ScalarLoss, params: Params,
                           settings: SharpnessSettings = SharpnessSettings()) -> TopEigenvalue:
    """The largest algebraic eigenvalue of the Hessian of ``loss`` at ``params`` by Lanczos.

    loss: params -> scalar tensor; params: name -> tensor (the weights differentiated). The
    Lanczos vectors are float64 [P] (P = the number of weights; at most ``max_matvecs`` of
    them are kept); the products run in the weights' dtype. Seeded by ``settings.seed``.
    """
    product = hessian_vector_product(loss, {n: p.detach() for n, p in params.items()})
    names = list(params)
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]
    dtype, device = params[names[0]].dtype, params[names[0]].device

    def matvec(vector: torch.Tensor) -> torch.Tensor:
        pieces = vector.to(dtype).split(sizes)
        result = product({n: piece.view(shape)
                          for n, piece, shape in zip(names, pieces, shapes, strict=True)})
        return torch.cat([result[n].reshape(-1) for n in names]).to(torch.float64)

    generator = torch.Generator().manual_seed(settings.seed)
    start = torch.randn(sum(sizes), generator=generator, dtype=torch.float64).to(device)
    basis = [start / start.norm()]
    alphas: list[float] = []
    betas: list[float] = []
    theta, residual, ritz = math.nan, math.inf, None
    for _ in range(settings.max_matvecs):
        w = matvec(basis[-1])
        if not bool(torch.isfinite(w).all()):
            return TopEigenvalue(math.nan, math.nan, len(alphas) + 1, False, {})
        alphas.append(float(basis[-1] @ w))
        stacked = torch.stack(basis)
        for _ in range(2):  # full reorthogonalisation, twice is enough (Parlett)
            w = w - stacked.T @ (stacked @ w)
        beta = float(w.norm())
        tridiagonal = (torch.diag(torch.tensor(alphas, dtype=torch.float64))
                       + torch.diag(torch.tensor(betas, dtype=torch.float64), 1)
                       + torch.diag(torch.tensor(betas, dtype=torch.float64), -1))
        values, vectors = torch.linalg.eigh(tridiagonal)
        theta, ritz = float(values[-1]), vectors[:, -1]
        residual = beta * abs(float(ritz[-1])) / max(abs(theta), 1e-300)
        if residual <= settings.tolerance or beta <= 1e-12 * max(abs(theta), 1.0):
            break
        betas.append(beta)
        basis.append(w / beta)
    eigenvector = torch.stack(basis[:len(ritz)]).T @ ritz.to(device)
    squares = [float(piece.square().sum()) for piece in eigenvector.split(sizes)]
    total = sum(squares)
    return TopEigenvalue(theta, residual, len(alphas), residual <= settings.tolerance,
                         {n: s / total for n, s in zip(names, squares, strict=True)})


def training_subset(n_train: int, examples: int | None, seed: int) -> torch.Tensor | None:
    """The indices [examples] of a seeded subset of the ``n_train`` training rows, or None
    (use them all) when ``examples`` is None or not below ``n_train``."""
    if examples is None or examples >= n_train:
        return None
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
    return order[:examples].sort().values


def training_loss(objective: Callable[[Params, torch.Tensor], torch.Tensor],
                  loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                  inputs: torch.Tensor, targets: torch.Tensor) -> ScalarLoss:
    """params -> loss(objective(params, inputs), targets): a run's training loss as a
    function of its weights (objective: ``interp.train.objective.Objective`` or any
    functional output [batch, n_outputs]; loss: ``interp.train.losses.build_loss``'s)."""
    return lambda params: loss(objective(params, inputs), targets)
