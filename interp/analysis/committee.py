"""The exact test loss of Kumar et al.'s committee machine from its summary statistics.

Kumar, Bordelon, Gershman, Pehlevan (ICLR 2024), sec. 5 and appendix 12. For the degree-2
committee machine f(x) = (1/N) sum_i phi(w_i.x / sqrt(D)), phi(h) = h + (eps/2) h^2, the
predictor depends on the weights only through v = (1/N) sum_i w_i and
M = (1/N) sum_i w_i w_i^T:

    f(x) = v.x / sqrt(D) + (eps / 2D) x^T M x.

Trained as alpha (f(theta) - c f(theta_0)) (c = 1 when the objective centres the output),
the predictor has the same form with the *effective* statistics
v_eff = alpha (v - c v_0), M_eff = alpha (M - c M_0).

Derivation of the decomposition. Take x ~ N(0, I_D) and the target y(x) = x^T B x / 2 with
B = sum_k beta_k beta_k^T (one unit beta: Kumar et al.'s (beta.x)^2 / 2; several orthonormal
ones: the multi-index variant). The error is

    e(x) = v.x / sqrt(D) + x^T A x,     A = (eps / 2D) M - B / 2   (symmetric).

E[e^2] = |v|^2 / D + E[(x^T A x)^2] + 2 E[(v.x)(x^T A x)] / sqrt(D). The cross term is an odd
moment of a centred Gaussian, so it vanishes; Isserlis' theorem gives
E[(x^T A x)^2] = (tr A)^2 + 2 tr(A^2). Hence the test MSE is exactly

    linear    = |v|^2 / D                                  (power in linear functions)
    scale     = (eps tr(M) / 2D - tr(B) / 2)^2             (variance / trace)
    alignment = 2 |A|_F^2 = (1/2) |eps M / D - B|_F^2
              = eps^2 |M|_F^2 / 2D^2 - (eps / D) sum_k beta_k^T M beta_k + |B|_F^2 / 2

(the terms of their eq. 22: scale, alignment through beta^T M beta, linear power). The test
loss is minimised by v = 0, eps M / D = B.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class CommitteeLoss:
    """The expected test MSE on Gaussian inputs and its three terms (they sum to it)."""

    linear: float
    scale: float
    alignment: float

    @property
    def total(self) -> float:
        return self.linear + self.scale + self.alignment

    def to_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": v for k, v in {**asdict(self), "total": self.total}.items()}


def summary_statistics(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """v = (1/N) sum_i w_i [D] and M = (1/N) sum_i w_i w_i^T [D, D] of weights W [N, D]
    (float64)."""
    W = W.detach().double()
    return W.mean(dim=0), W.T @ W / W.shape[0]


def effective_statistics(W: torch.Tensor, W0: torch.Tensor, alpha: float, centred: bool
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """The statistics of the trained predictor alpha (f(W) - c f(W0)), c = 1 if centred:
    (alpha (v - c v0) [D], alpha (M - c M0) [D, D])."""
    v, M = summary_statistics(W)
    if centred:
        v0, M0 = summary_statistics(W0)
        v, M = v - v0, M - M0
    return alpha * v, alpha * M


def committee_loss_decomposition(v: torch.Tensor, M: torch.Tensor, directions: torch.Tensor,
                                 eps: float) -> CommitteeLoss:
    """The exact expected test MSE of f(x) = v.x/sqrt(D) + (eps/2D) x^T M x against
    sum_k (beta_k.x)^2 / 2 for x ~ N(0, I_D), split into linear, scale and alignment terms
    (derivation in the module docstring).

    v: [D]; M: [D, D] symmetric; directions: [k, D], the beta_k (rows).
    """
    v, M = v.double(), M.double()
    D = v.shape[0]
    B = directions.double().T @ directions.double()
    A = eps * M / (2 * D) - B / 2
    return CommitteeLoss(linear=(v @ v / D).item(), scale=torch.trace(A).pow(2).item(),
                         alignment=(2 * A.pow(2).sum()).item())
