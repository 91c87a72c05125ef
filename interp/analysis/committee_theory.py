"""Theory curves for Kumar et al.'s committee machine: the online limit (closed equations for
its summary statistics under gradient flow on the population loss, and their reduction to a
few order parameters) and the leading finite-data train-test gap.

Kumar, Bordelon, Gershman, Pehlevan (ICLR 2024), sec. 5.3 and appendix 13. Their equations
were lost from the text we have; everything below is derived here and checked against the
trainer (tests/test_committee_theory.py).

**Setup.** Weights W [N, D] with rows w_i, h_i = w_i.x / sqrt(D), phi(h) = h + (eps/2) h^2,
f(x; W) = (1/N) sum_i phi(h_i) = v.x / sqrt(D) + (eps / 2D) x^T M x with v = mean_i w_i,
M = mean_i w_i w_i^T. The trainer fits F = alpha (f(W) - c f(W_0)) (c = 1 centred, else 0)
to y = s x^T B x / 2, B = sum_k beta_k beta_k^T (k orthonormal target directions, label scale
s), with the loss L = E[(F - y)^2] on x ~ N(0, I_D), by gradient descent with the per-step
learning rate eta (the configured one times 1/alpha^2) and coupled weight decay lambda.

**Error.** F - y = u.x / sqrt(D) + x^T A x with u = alpha (v - c v_0) and
A = (alpha eps / 2D)(M - c M_0) - s B / 2; by Isserlis' theorem the population loss is
L = |u|^2 / D + (tr A)^2 + 2 |A|_F^2 (``interp.analysis.committee``).

**Gradient.** dF/dw_i = (alpha / N)(1 + eps h_i) x / sqrt(D). With E[x x^T] = I, odd moments
zero and E[(x^T A x)(w.x) x] = (tr A) w + 2 A w:

    E[(F - y) x] = u / sqrt(D),   E[(F - y) h_i x] = (tr A w_i + 2 A w_i) / sqrt(D),
    grad_{w_i} L = (2 alpha / N D) (u + eps G w_i),   G = (tr A) I + 2 A.

**The online limit (P -> infinity), closed in (v, M).** Every neuron moves by an affine map of
its own weights with coefficients (u, G) shared by all, so the means close exactly: with
kappa = 2 eta alpha / (N D),

    dv/dt = -kappa (u + eps G v) - eta lambda v,
    dM/dt = -kappa (u v^T + v u^T + eps (G M + M G)) - 2 eta lambda M.

This is exact for any D and N given (v_0, M_0): D + D^2 equations (``population_flow``),
integrated with scipy. For the kumar-committee preset (lr = eta0 N, eta = eta0 N / alpha^2)
kappa = 2 eta0 / (alpha D).

**Order parameters.** On the manifold M = m_perp P_perp + m_par B (P_perp = I - B) and
v = v_par beta (one direction; v = 0 for several) the flow stays on it: A = a_perp P_perp +
a_par B with a = alpha eps / 2D, a_perp = a (m_perp - c m_perp0),
a_par = a (m_par - c m_par0) - s/2, tr A = (D - k) a_perp + k a_par, G_perp = tr A + 2 a_perp,
G_par = tr A + 2 a_par, u_par = alpha (v_par - c v_par0), and

    dv_par/dt  = -kappa (u_par + eps G_par v_par) - eta lambda v_par,
    dm_perp/dt = -2 kappa eps G_perp m_perp - 2 eta lambda m_perp,
    dm_par/dt  = -2 kappa (u_par v_par + eps G_par m_par) - 2 eta lambda m_par,
    L = u_par^2 / D + (tr A)^2 + 2 ((D - k) a_perp^2 + k a_par^2)

(``reduced_flow``). m_par = beta^T M beta is the alignment, m_perp = tr(P_perp M) / (D - k)
the power in the other directions. A random initialisation lies on the manifold up to
M_0's anisotropy (of order sqrt(D / N)) and v_0's other components (|v_0|^2 ~ D / N): the
reduced flow started from the projection of (v_0, M_0) (``ReducedState.project``) is the
leading order in D / N. Early on (centred), A = -s B / 2: m_par grows like
exp((k + 2) kappa eps s t) from m_par0 ~ 1 until alpha eps m_par / 2D reaches s / 2, so the
loss falls after t ~ log(D s / (alpha eps)) / ((k + 2) kappa eps s): later for small eps and,
at fixed eta0, for large alpha (kappa ~ 1 / alpha).

**Finite data: the leave-one-out (influence) gap** (``leave_one_out_gap``). Train on P points
with the mean loss (1/P) sum_nu (F - y_nu)^2. Compare with the run on the other P - 1
points, whose mean loss weighs each of them 1/(P - 1): the full run is that run slowed by
(P - 1)/P plus point mu's own drive, so to first order in 1/P the difference
delta z (z = (v, M)) obeys

    d(delta z)/dt = J(t) delta z - (1/P) dz/dt - (eta / P) sigma_mu(t),

J the Jacobian of the online flow, sigma_mu the pushforward of grad_W (F - y)^2 at x_mu:
(2 e alpha / N sqrt(D)) (p x, x q^T + q x^T) with e = F(x_mu) - y_mu, p = 1 + eps v.x/sqrt(D),
q = v + eps M x / sqrt(D). The slow-down's part is delta z = -(t/P) dz/dt (a shift of time).
Point mu is a fresh test point for the run without it, whose expected test loss is the full
run's up to O(1/P^2), so train = test - gap + O(1/P^2) with

    gap(t) = -2 E_x[e(x, t) delta F_mu(x, t)] + (t / P) dL/dt,
    delta F_mu = alpha (delta v_mu.x / sqrt(D) + (eps / 2D) x^T delta M_mu x),

delta z_mu the drive's part, everything evaluated along the online trajectory (error
O(P^-3/2)), the first term by Monte Carlo over x, dL/dt exactly from the flow. This is not
Kumar et al.'s DMFT (proportional limit P ~ D, all orders in D / P): it is the first order
in (number of summary statistics) / P, so it holds for P >> D^2 / 2 and is only indicative
at the preset's P = 550, D = 100 (tests and README give the measured agreement).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.integrate import solve_ivp

from interp.analysis.committee import committee_loss_decomposition


@dataclass(frozen=True)
class CommitteeDynamics:
    """The constants of a committee-machine run that its theory needs.

    ``lr`` is the learning rate the optimiser applies per step (the configured one already
    divided by alpha^2), ``weight_decay`` the coupled decay lambda (gradient + lambda w),
    ``label_scale`` s the factor on the targets.
    """

    dim: int
    width: int
    eps: float
    lr: float
    alpha: float = 1.0
    centred: bool = True
    weight_decay: float = 0.0
    label_scale: float = 1.0

    @property
    def kappa(self) -> float:
        """2 eta alpha / (N D): the rate the flow's equations carry."""
        return 2 * self.lr * self.alpha / (self.width * self.dim)

    @property
    def shrink(self) -> float:
        """eta lambda: the weight decay's rate."""
        return self.lr * self.weight_decay


@dataclass(frozen=True)
class TheoryCurves:
    """Test-loss terms and order parameters of the theory at ``epochs`` (arrays [T]).

    ``overlap`` is beta^T M beta (the mean over directions, tr(B M) / k), ``perpendicular``
    tr((I - B) M) / (D - k), ``v_along`` |B v| (v.beta for one direction), ``v_norm2`` |v|^2.
    """

    epochs: np.ndarray
    linear: np.ndarray
    scale: np.ndarray
    alignment: np.ndarray
    overlap: np.ndarray
    perpendicular: np.ndarray
    v_along: np.ndarray
    v_norm2: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """The population (test) loss: the sum of the three terms."""
        return self.linear + self.scale + self.alignment


@dataclass(frozen=True)
class ReducedState:
    """A point of the reduced flow: m_perp, m_par and v_par (see the module docstring)."""

    m_perp: float
    m_par: float
    v_par: float = 0.0

    @classmethod
    def project(cls, v: np.ndarray, M: np.ndarray, directions: np.ndarray) -> ReducedState:
        """The projection of the statistics (v [D], M [D, D]) on the reduced manifold of
        the k directions [k, D]: tr(P_perp M) / (D - k), tr(B M) / k, and v.beta (k = 1; 0
        for several directions, where the manifold has v = 0)."""
        v, M = np.asarray(v, float), np.asarray(M, float)
        directions = np.atleast_2d(np.asarray(directions, float))
        k, D = directions.shape
        if not 1 <= k < D:
            raise ValueError(f"the reduced manifold needs 1 <= k < D directions, got k = {k} "
                             f"with D = {D}")
        B = directions.T @ directions
        m_par = float(np.trace(B @ M)) / k
        m_perp = (float(np.trace(M)) - k * m_par) / (D - k)
        return cls(m_perp, m_par, float(directions[0] @ v) if k == 1 else 0.0)


def population_flow(dynamics: CommitteeDynamics, v0: np.ndarray, M0: np.ndarray,
                    directions: np.ndarray, epochs: np.ndarray, rtol: float = 1e-8
                    ) -> TheoryCurves:
    """The online limit: integrate the exact equations for (v, M) from the initial statistics
    v0 [D], M0 [D, D] (``interp.analysis.committee.summary_statistics`` of the epoch-0
    weights), target directions [k, D], and return the theory at ``epochs`` [T] (steps of
    full-batch gradient descent, read as gradient-flow time)."""
    v0, M0, directions = _checked(dynamics, v0, M0, directions)
    D = dynamics.dim
    rhs = _flow(dynamics, v0, M0, directions.T @ directions)
    solution = _integrate(lambda t, y: np.concatenate(rhs(y[:D], y[D:].reshape(D, D))),
                          np.concatenate([v0, M0.ravel()]), epochs, rtol)
    states = [(y[:D], y[D:].reshape(D, D)) for y in solution.T]
    return _curves(dynamics, epochs, states, v0, M0, directions)


def reduced_flow(dynamics: CommitteeDynamics, start: ReducedState, n_directions: int,
                 epochs: np.ndarray, rtol: float = 1e-10) -> TheoryCurves:
    """The order-parameter equations (module docstring) from ``start`` (its own initial
    value: the centring subtracts it), for ``n_directions`` orthonormal target directions;
    v_par must be 0 for several directions."""
    if n_directions > 1 and start.v_par != 0:
        raise ValueError("the reduced flow keeps v = 0 for several target directions")
    if not 1 <= n_directions < dynamics.dim:
        raise ValueError(f"the reduced flow needs 1 <= k < D directions, got k = "
                         f"{n_directions} with D = {dynamics.dim}")
    D, k, eps, s = dynamics.dim, n_directions, dynamics.eps, dynamics.label_scale
    a, c = dynamics.alpha * eps / (2 * D), 1.0 if dynamics.centred else 0.0
    kappa, shrink = dynamics.kappa, dynamics.shrink

    def terms(m_perp, m_par, v_par):
        a_perp = a * (m_perp - c * start.m_perp)
        a_par = a * (m_par - c * start.m_par) - s / 2
        trace = (D - k) * a_perp + k * a_par
        u_par = dynamics.alpha * (v_par - c * start.v_par)
        return a_perp, a_par, trace, u_par

    def rhs(t, y):
        m_perp, m_par, v_par = y
        a_perp, a_par, trace, u_par = terms(m_perp, m_par, v_par)
        g_perp, g_par = trace + 2 * a_perp, trace + 2 * a_par
        return [-2 * kappa * eps * g_perp * m_perp - 2 * shrink * m_perp,
                -2 * kappa * (u_par * v_par + eps * g_par * m_par) - 2 * shrink * m_par,
                -kappa * (u_par + eps * g_par * v_par) - shrink * v_par]

    epochs = np.asarray(epochs, float)
    m_perp, m_par, v_par = _integrate(
        rhs, np.array([start.m_perp, start.m_par, start.v_par]), epochs, rtol)
    a_perp, a_par, trace, u_par = terms(m_perp, m_par, v_par)
    return TheoryCurves(np.asarray(epochs, float), u_par ** 2 / D, trace ** 2,
                        2 * ((D - k) * a_perp ** 2 + k * a_par ** 2), m_par, m_perp,
                        np.abs(v_par), v_par ** 2)


def _checked(dynamics: CommitteeDynamics, v0, M0, directions
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """v0 [D], M0 [D, D] and directions [k, D] as float arrays; ValueError unless their
    shapes fit ``dynamics.dim`` and k < D (the reduced quantities divide by D - k)."""
    v0, M0 = np.asarray(v0, float), np.asarray(M0, float)
    directions = np.atleast_2d(np.asarray(directions, float))
    D = dynamics.dim
    if v0.shape != (D,) or M0.shape != (D, D) or directions.shape[1] != D:
        raise ValueError(f"the theory needs v0 [{D}], M0 [{D}, {D}] and directions [k, {D}]; "
                         f"got {list(v0.shape)}, {list(M0.shape)}, {list(directions.shape)}")
    if not 1 <= len(directions) < D:
        raise ValueError(f"the theory needs 1 <= k < D target directions, got k = "
                         f"{len(directions)} with D = {D}")
    return v0, M0, directions


def _error_terms(dynamics: CommitteeDynamics, v: np.ndarray, M: np.ndarray, v0: np.ndarray,
                 M0: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """u = alpha (v - c v0) [D] and A = (alpha eps / 2D)(M - c M0) - s B / 2 [D, D], the
    error F(x) - y(x) = u.x / sqrt(D) + x^T A x (module docstring)."""
    c = 1.0 if dynamics.centred else 0.0
    a = dynamics.alpha * dynamics.eps / (2 * dynamics.dim)
    return (dynamics.alpha * (v - c * v0),
            a * (M - c * M0) - dynamics.label_scale * B / 2)


def _gradient_matrix(A: np.ndarray) -> np.ndarray:
    """G = tr(A) I + 2 A: the population gradient of neuron i is (2 alpha / N D)(u + eps G w_i)."""
    G = 2 * A
    G[np.diag_indices(len(A))] += np.trace(A)
    return G


def _flow(dynamics: CommitteeDynamics, v0: np.ndarray, M0: np.ndarray, B: np.ndarray):
    """The right-hand side (v, M) -> (dv/dt, dM/dt) of the online flow."""
    eps, kappa, shrink = dynamics.eps, dynamics.kappa, dynamics.shrink

    def rhs(v: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, A = _error_terms(dynamics, v, M, v0, M0, B)
        G = _gradient_matrix(A)
        GM = G @ M
        dv = -kappa * (u + eps * G @ v) - shrink * v
        uv = np.outer(u, v)
        dM = -kappa * (uv + uv.T + eps * (GM + GM.T)) - 2 * shrink * M
        return dv, dM.ravel()
    return rhs


def _integrate(rhs, start: np.ndarray, epochs: np.ndarray, rtol: float) -> np.ndarray:
    """solve_ivp (explicit Runge-Kutta 8(5,3)) of ``rhs`` from ``start`` at t = 0, values at
    the sorted ``epochs`` [T] -> [len(start), T]; a failed integration raises."""
    epochs = np.asarray(epochs, float)
    if epochs.ndim != 1 or epochs.size == 0 or epochs[0] < 0 or np.any(np.diff(epochs) <= 0):
        raise ValueError("epochs must be a non-empty increasing list of non-negative numbers")
    if epochs[-1] == 0:
        return start[:, None]
    solution = solve_ivp(rhs, (0.0, float(epochs[-1])), start, method="DOP853",
                         t_eval=epochs, rtol=rtol, atol=rtol * 1e-3)
    if not solution.success:
        raise RuntimeError(f"the theory's integration failed: {solution.message}")
    return solution.y


def _curves(dynamics: CommitteeDynamics, epochs: np.ndarray, states, v0: np.ndarray,
            M0: np.ndarray, directions: np.ndarray) -> TheoryCurves:
    """TheoryCurves of the (v, M) states, the loss terms from the exact decomposition."""
    alpha, s = dynamics.alpha, dynamics.label_scale
    c = 1.0 if dynamics.centred else 0.0
    B = directions.T @ directions
    k, D = directions.shape
    unit = torch.from_numpy(directions)
    rows = []
    for v, M in states:
        # the decomposition is for the label scale 1: L(u, X; s) = s^2 L(u / s, X / s; 1)
        loss = committee_loss_decomposition(torch.from_numpy(alpha * (v - c * v0) / s),
                                            torch.from_numpy(alpha * (M - c * M0) / s), unit,
                                            dynamics.eps)
        overlap = np.trace(B @ M) / k
        rows.append((s * s * loss.linear, s * s * loss.scale, s * s * loss.alignment, overlap,
                     (np.trace(M) - k * overlap) / (D - k), np.linalg.norm(B @ v), v @ v))
    columns = np.array(rows).T
    return TheoryCurves(np.asarray(epochs, float), *columns)


@dataclass(frozen=True)
class LeaveOneOutGap:
    """The leading finite-data gap test - train = ``scaled`` / P at ``epochs`` (arrays [T]),
    with the Monte Carlo standard error of ``scaled`` over the sampled points."""

    epochs: np.ndarray
    scaled: np.ndarray
    standard_error: np.ndarray

    def at(self, n_train: int) -> np.ndarray:
        """The gap test loss - train loss for ``n_train`` training points."""
        return self.scaled / n_train


def leave_one_out_gap(dynamics: CommitteeDynamics, v0: np.ndarray, M0: np.ndarray,
                      directions: np.ndarray, epochs: np.ndarray, samples: int = 1000,
                      seed: int = 0, rtol: float = 1e-6) -> LeaveOneOutGap:
    """P times the leave-one-out gap test - train at first order in 1/P (module docstring:
the point's own drive, by Monte Carlo, plus t dL/dt from the rescaled time),
    along the online trajectory from (v0 [D], M0 [D, D]) for the directions [k, D], by
    Monte Carlo over ``samples`` Gaussian points (seeded). Its cost grows as samples * D^3
    per evaluation of the equations: meant for D up to a few tens."""
    v0, M0, directions = _checked(dynamics, v0, M0, directions)
    D, K = dynamics.dim, samples
    alpha, eps, kappa, shrink = dynamics.alpha, dynamics.eps, dynamics.kappa, dynamics.shrink
    a = alpha * eps / (2 * D)
    B = directions.T @ directions
    x = np.random.default_rng(seed).standard_normal((K, D))
    flow = _flow(dynamics, v0, M0, B)
    sizes = (D, D * D, K * D, K * D * D)
    eye = np.eye(D)

    def unpack(state):
        v, M, dv, dM = np.split(state, np.cumsum(sizes)[:-1])
        return v, M.reshape(D, D), dv.reshape(K, D), dM.reshape(K, D, D)

    def errors(v, M):  # F(x_k) - y_k [K]
        u, A = _error_terms(dynamics, v, M, v0, M0, B)
        return x @ u / np.sqrt(D) + np.einsum("kd,de,ke->k", x, A, x)

    def response(dv, dM):
        return alpha * (np.einsum("kd,kd->k", dv, x) / np.sqrt(D)
                        + eps / (2 * D) * np.einsum("kd,kde,ke->k", x, dM, x))

    def rhs(t, state):
        v, M, dv, dM = unpack(state)
        v_dot, M_dot = flow(v, M)
        u, A = _error_terms(dynamics, v, M, v0, M0, B)
        G = _gradient_matrix(A)
        du = alpha * dv
        dG = 2 * a * dM + a * np.trace(dM, axis1=1, axis2=2)[:, None, None] * eye
        dv_dot = -kappa * (du + eps * (dG @ v + dv @ G)) - shrink * dv
        cross = du[:, :, None] * v + u[:, None] * dv[:, None, :]
        GdM = G @ dM + dG @ M
        dM_dot = (-kappa * (cross + cross.transpose(0, 2, 1) + eps * (GdM + GdM.transpose(0, 2, 1)))
                  - 2 * shrink * dM)
        # the point's own gradient, pushed forward to (v, M)
        drive = 2 * errors(v, M) * alpha / (dynamics.width * np.sqrt(D)) * dynamics.lr
        p = 1 + eps * x @ v / np.sqrt(D)
        q = v + eps * x @ M / np.sqrt(D)
        outer = x[:, :, None] * q[:, None, :]
        dv_dot -= (drive * p)[:, None] * x
        dM_dot -= drive[:, None, None] * (outer + outer.transpose(0, 2, 1))
        return np.concatenate([v_dot, M_dot, dv_dot.ravel(), dM_dot.ravel()])

    start = np.concatenate([v0, M0.ravel(), np.zeros(K * D + K * D * D)])
    epochs = np.asarray(epochs, float)
    solution = _integrate(rhs, start, epochs, rtol)
    contributions, slowdown = [], []
    for t, state in zip(epochs, solution.T, strict=True):
        v, M, dv, dM = unpack(state)
        contributions.append(-2 * errors(v, M) * response(dv, dM))
        v_dot, M_dot = flow(v, M)
        slowdown.append(t * _loss_rate(dynamics, v, M, v_dot, M_dot.reshape(D, D), v0, M0, B))
    contributions = np.array(contributions)  # [T, K]
    return LeaveOneOutGap(epochs, contributions.mean(1) + np.array(slowdown),
                          contributions.std(1, ddof=1) / np.sqrt(K))


def _loss_rate(dynamics: CommitteeDynamics, v, M, v_dot, M_dot, v0, M0, B) -> float:
    """dL/dt of the population loss |u|^2 / D + (tr A)^2 + 2 |A|_F^2 along the flow."""
    D, alpha = dynamics.dim, dynamics.alpha
    u, A = _error_terms(dynamics, v, M, v0, M0, B)
    A_dot = alpha * dynamics.eps / (2 * D) * M_dot
    return float(2 * alpha * u @ v_dot / D + 2 * np.trace(A) * np.trace(A_dot)
                 + 4 * np.sum(A * A_dot))
