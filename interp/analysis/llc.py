"""The local learning coefficient (Lau et al. 2023; devinterp): SGLD chains localised at w*.

    lambda_hat(w*) = n beta (E_w[L_n(w)] - L_n(w*)),  n beta = n / log n by default,

the expectation over SGLD chains started at and localised to w*:

    w <- w - (eps / 2) (n beta grad L_m(w) + gamma (w - w*)) + N(0, eps),

L_m the loss on a random minibatch of the training set at each step, the first ``burn_in``
steps discarded. ``sample_llc`` runs the C chains of K checkpoints together as one stack of
K * C weight vectors [K * C, P], so one forward and backward of a stacked loss
(``StackedLoss``: the trainer's stacked objective, ``interp.analyzers.llc``) serves every
chain; it is seeded, so an estimate is reproducible.

It computes what devinterp 1.3.2's ``estimate_learning_coeff_with_summary`` with its SGLD
computes (same update, the same loss trace: the minibatch loss at the weights before each
step, the mean over the draws after burn-in, the std over chains), except:
- L_n(w*) (``init_loss``) is the full-batch training loss; devinterp averages the
  minibatch losses of ``num_chains`` batches (the same with full batches);
- n beta defaults to n / log n with n the training examples (SPEC); devinterp's default is
  b / log b with b the batch size;
- each step draws its minibatch independently (b of the n rows without replacement);
  devinterp cycles a shuffled DataLoader (every row once per pass);
- a chain whose loss or gradient becomes NaN or infinite is left out (marked diverged)
  where devinterp raises; the noise comes from one generator per checkpoint
  (``seed``), so a checkpoint's chains are the same whether or not it is stacked with others.

Defaults per model kind (``DEFAULTS``), from ``python -m interp.llc_calibration`` on a
checkpoint of each kind (grid of step size x localization, CALIBRATION below):
a default must keep every chain finite, the chains in agreement (``chain_agreement``) and the
post-burn-in trace flat (drift small against the estimate), with the largest step size that
does (the chains then mix fastest), within the time budget (the reference run's 29
checkpoints in 2 minutes on a 2-core CPU: for the transformer 4 chains x 90 steps of 128
rows; the other kinds' models are small enough for 4 x 150 steps of 256).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace

import torch

from interp.errors import UserError

# flat weights [M, P] (a leaf the sampler differentiates), row indices [M, b] of each row's
# minibatch (None: the whole training set) -> each row's mean training loss [M]
StackedLoss = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]

# Chains disagree when their estimates spread more than this many times what their
# within-chain noise allows (``chain_agreement``).
SPREAD_LIMIT = 3.0
_BATCHES = 4  # batch means per chain for the within-chain standard error


@dataclass(frozen=True)
class SGLDSettings:
    """The sampler's settings: step size eps, n beta (None: n / log n), localization gamma,
    chains, draws kept after ``burn_in`` steps, minibatch rows (None: full batch), seed."""

    step_size: float
    nbeta: float | None
    localization: float
    chains: int
    draws: int
    burn_in: int
    batch_size: int | None
    seed: int = 0

    def validate(self) -> None:
        """UserError (one line, naming the flag) for a setting out of range."""
        checks = (("step_size", "--llc-step-size", self.step_size, False),
                  ("nbeta", "--llc-nbeta", self.nbeta, False),
                  ("localization", "--llc-localization", self.localization, True),
                  ("chains", "--llc-chains", self.chains, False),
                  ("draws", "--llc-draws", self.draws, False),
                  ("burn_in", "--llc-burn-in", self.burn_in, True),
                  ("batch_size", "--llc-batch-size", self.batch_size, False))
        for name, flag, value, zero_ok in checks:
            if value is None and name in ("nbeta", "batch_size"):
                continue
            integer = name in ("chains", "draws", "burn_in", "batch_size")
            bad_type = (not isinstance(value, int | float) or isinstance(value, bool)
                        or (integer and not isinstance(value, int)))
            if bad_type or not math.isfinite(value) or value < 0 or (value == 0 and
                                                                     not zero_ok):
                need = ("a whole number" if integer else "a number") + (
                    " >= 0" if zero_ok else " > 0")
                raise UserError(f"{flag} {value!r}: the LLC sampler's {name} must be {need}; "
                                f"pass {flag} with {need}")
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool)
                and 0 <= self.seed < 2 ** 63):
            raise UserError(f"--llc-seed {self.seed!r}: the seed must be a whole number in "
                            "[0, 2^63); pass --llc-seed with one")

    def nbeta_for(self, n: int) -> float:
        """n beta for n training examples: the set value, else n / log n."""
        if self.nbeta is not None:
            return float(self.nbeta)
        return n / math.log(n) if n > 1 else 1.0

    def as_dict(self) -> dict[str, float | int | None]:
        """The settings as a JSON object (cache parameters, summaries)."""
        return asdict(self)


@dataclass(frozen=True)
class SGLDOverrides:
    """A user's changes to the defaults (``interp.analyze``'s ``--llc-*`` flags); None keeps
    the default. ``nbeta`` 0 is not allowed: None means n / log n."""

    step_size: float | None = None
    nbeta: float | None = None
    localization: float | None = None
    chains: int | None = None
    draws: int | None = None
    burn_in: int | None = None
    batch_size: int | None = None
    seed: int | None = None


# Per model kind, from the calibration sweep (module docstring, CALIBRATION).
_COMMON = {"nbeta": None, "chains": 4, "draws": 100, "burn_in": 50, "batch_size": 256}
DEFAULTS: dict[str, SGLDSettings] = {
    # fewer, smaller steps than the others: the time budget (CALIBRATION)
    "transformer": SGLDSettings(step_size=1e-4, localization=100.0, **{
        **_COMMON, "draws": 60, "burn_in": 30, "batch_size": 128}),
    "mlp": SGLDSettings(step_size=1e-3, localization=100.0, **_COMMON),
    "lstm": SGLDSettings(step_size=1e-3, localization=100.0, **_COMMON),  # not swept: mlp's
    "gromov": SGLDSettings(step_size=1.0, localization=1.0, **_COMMON),
    "committee": SGLDSettings(step_size=1e-1, localization=1.0, **_COMMON),
    "toy": SGLDSettings(step_size=1e-3, localization=100.0, **_COMMON),
}
FALLBACK = DEFAULTS["mlp"]  # a kind registered from outside the package

# What ``python -m interp.llc_calibration`` showed (4 chains, 50 burn-in + 100 draws, batch
# 256 or the whole training set if smaller; spread: the chains' spread over their within-chain
# noise; drift: last quarter - first quarter of the draws, LLC units). Measured on a 2-core CPU
# shared with other jobs (load 7-11), so the seconds are several times the unloaded ones.
CALIBRATION = """
transformer, checkpoints/nanda-p113 epoch 10000 (3830 rows, n beta 464, 226k weights):
  eps 1e-5 gamma 100: llc 179 +- 6, spread 0.15, drift 190  (still rising: unconverged)
  eps 1e-4 gamma 100: llc 2560 +- 94, spread 1.00, drift 391 (15%: nearly flat)  <- default
  eps 3e-4 gamma 100: all 4 chains diverged
  epoch 25000 (grokked, tiny weights): eps 1e-4 gamma 100: llc 99 +- 1.9, spread 0.16,
  drift 54 (still rising: the flat directions relax in ~2 / (eps gamma) = 200 steps);
  eps 1e-4 gamma 1000: llc 0.50 +- 0.18, drift 0.22 (the localization, not the loss,
  confines the chains: the estimate collapses), so gamma stays 100
  The largest stable step (the gradient part of a step is stable for eps < 4 / (n beta
  lambda_max): 2.7e-4 at epoch 200, whose Hessian's top eigenvalue is 31). A longer burn-in
  or a stronger localization would flatten the trace further, but the default must sample
  the run's 29 checkpoints in 2 minutes: 4 chains x (30 burn-in + 60 draws) of 128 rows.
  With it (idle CPU): 105 s for the 29 checkpoints, 617 MB peak; epoch 25000 gives 67 (the
  trace still rising at the end: a lower bound, as the report's chain figure shows), the
  peak 3 885 at epoch 2000; one of 4 chains diverged at epoch 15500 (test loss falling
  fastest).
mlp, hu-mlp epoch 300 (2822 rows):
  eps 1e-5: llc 22 (drift 29), 1e-4: llc 324 (drift 181): still rising;
  eps 1e-3 gamma 100: llc 751 +- 14, spread 1.54, drift -4.5 (flat)  <- default
toy, liu-toy epoch 2000 (45 rows, full batch):
  eps 1e-4: llc 4.3 (drift 1.4, rising); eps 1e-3 gamma 100: llc 6.3 +- 0.5, spread 1.09,
  drift 0.47 (flat) <- default; eps 1e-2: llc 58 (spread 2.2: the step, not the model)
gromov, kumar-gromov epoch 2000 (476 rows; a very flat loss in weight units, trained by
  SGD at lr 1000; this checkpoint is still descending, so small steps give slightly
  negative LLCs): eps 1e-4..1e-1 with gamma 1..100: llc -0.015..-0.0004;
  eps 1 gamma 1: llc 0.0018 +- 0.0015, spread 0.84, drift -0.002 <- default;
  eps 1 gamma 10: all chains diverged (eps * gamma must stay below 4)
committee, kumar-committee epoch 1000 (550 rows, SGD at lr 25: flat in weight units):
  eps 1e-4 and 1e-3 gamma 100: llc 0.32 +- 1.1 both (the weights barely move: the minibatch
  noise is all the trace shows). Default (not yet swept) from the stability bound: a run
  trained stably by SGD at lr has Hessian eigenvalues below 2 / lr, and SGLD's gradient
  step (eps / 2) n beta grad L is stable for eps * n beta * lambda_max < 4, so
  eps < 2 lr / n beta (50 / 87 = 0.57; gromov: 2000 / 77 = 26), with eps * gamma < 4 for
  the localization ((eps / 2) gamma < 2): eps 0.1, gamma 1.
lstm: not swept (its short run did not finish in the time); takes mlp's settings.
"""


def check_overrides(overrides: SGLDOverrides) -> None:
    """UserError (one line, naming the flag) if ``overrides`` would put any model kind's
    settings out of range (checked before any run is read)."""
    replace(FALLBACK, **{f.name: getattr(overrides, f.name) for f in fields(overrides)
                         if getattr(overrides, f.name) is not None}).validate()


def resolve_settings(config, overrides: SGLDOverrides = SGLDOverrides()) -> SGLDSettings:
    """The settings for a run (``RunConfig``): its model kind's defaults (``DEFAULTS``; a
    registered kind takes ``FALLBACK``) with ``overrides`` applied, validated (UserError
    naming the flag)."""
    settings = DEFAULTS.get(config.model.kind, FALLBACK)
    changes = {f.name: getattr(overrides, f.name) for f in fields(overrides)
               if getattr(overrides, f.name) is not None}
    settings = replace(settings, **changes)
    settings.validate()
    return settings


@dataclass
class LLCEstimate:
    """One checkpoint's estimate: ``llc`` the mean over the chains that did not diverge
    (NaN if all did), ``llc_std`` their std (NaN below two), ``per_chain`` [chains] (NaN for a
    diverged chain), ``loss_trace`` [chains, burn_in + draws] float64: the minibatch loss of
    every step, burn-in included (the estimate reads ``loss_trace[:, burn_in:]``; NaN from a
    chain's divergence on), ``init_loss`` L_n(w*), ``nbeta`` used, ``diverged`` chains."""

    llc: float
    llc_std: float
    per_chain: torch.Tensor
    loss_trace: torch.Tensor
    init_loss: float
    nbeta: float
    burn_in: int
    diverged: int


def sample_llc(loss: StackedLoss, centers: torch.Tensor, n: int, settings: SGLDSettings
               ) -> list[LLCEstimate]:
    """LLC estimates at K points w* at once: ``centers`` [K, P] (flat trainable weights),
    ``loss`` the stacked training loss (``StackedLoss``) over ``n`` training rows (L_n(w*) is
    ``loss(centers, None)``, the whole training set). Returns K estimates.
    """
    settings.validate()
    k, width = centers.shape
    chains, device = settings.chains, centers.device
    nbeta, eps, gamma = settings.nbeta_for(n), settings.step_size, settings.localization
    batch = settings.batch_size if settings.batch_size and settings.batch_size < n else None
    with torch.no_grad():
        init_losses = loss(centers, None).double().cpu()
    anchor = centers.detach().repeat_interleave(chains, 0)  # row i * chains + c
    weights = anchor.clone()
    generators = [torch.Generator(device).manual_seed(settings.seed) for _ in range(k)]
    steps = settings.burn_in + settings.draws
    trace = torch.empty(k * chains, steps, dtype=torch.float64)
    alive = torch.ones(k * chains, dtype=torch.bool, device=device)
    trace[:] = torch.nan  # the steps not taken once every chain has diverged
    for step in range(steps):
        if not alive.any():
            break
        index = None if batch is None else torch.cat([
            torch.rand(chains, n, generator=g, device=device).argsort(1)[:, :batch]
            for g in generators])
        weights.requires_grad_(True)
        losses = loss(weights, index)
        (grad,) = torch.autograd.grad(losses.sum(), weights)
        with torch.no_grad():
            alive &= torch.isfinite(losses) & torch.isfinite(grad).all(1)
            trace[:, step] = torch.where(alive, losses.detach(), torch.nan).double().cpu()
            noise = torch.cat([torch.randn(chains, width, generator=g, device=device,
                                           dtype=weights.dtype) for g in generators])
            drift = nbeta * grad + gamma * (weights.detach() - anchor)
            weights = weights.detach() - (eps / 2) * drift + math.sqrt(eps) * noise
            weights = torch.where(alive[:, None], weights, anchor)  # diverged: parked at w*
    return [_estimate(trace[i * chains:(i + 1) * chains], float(init_losses[i]), nbeta,
                      settings.burn_in) for i in range(k)]


def _estimate(trace: torch.Tensor, init_loss: float, nbeta: float, burn_in: int
              ) -> LLCEstimate:
    per_chain = nbeta * (trace[:, burn_in:].mean(1) - init_loss)  # NaN for diverged chains
    finite = per_chain[torch.isfinite(per_chain)]
    llc = float(finite.mean()) if len(finite) else math.nan
    std = float(finite.std()) if len(finite) > 1 else math.nan
    return LLCEstimate(llc, std, per_chain, trace, init_loss, nbeta, burn_in,
                       int(len(per_chain) - len(finite)))


@dataclass(frozen=True)
class ChainAgreement:
    """Whether a checkpoint's chains agree. ``spread_ratio``: the std of the chains'
    estimates over the std their within-chain noise predicts (batch means, 4 batches per
    chain, of the post-burn-in trace; about 1 when the chains sample one distribution);
    ``drift``: the chains' mean of n beta (mean of the last quarter of draws - mean of the
    first quarter), in LLC units (near 0 on a flat trace); ``disagree``: spread_ratio >
    ``SPREAD_LIMIT``."""

    spread_ratio: float
    drift: float
    disagree: bool


def chain_agreement(estimate: LLCEstimate) -> ChainAgreement:
    """The agreement of ``estimate``'s non-diverged chains (``ChainAgreement``); with fewer
    than two such chains, or fewer than 4 draws, NaN ratios and no disagreement."""
    draws = estimate.loss_trace[:, estimate.burn_in:]
    draws = draws[torch.isfinite(draws).all(1)]
    if len(draws) < 2 or draws.shape[1] < _BATCHES:
        return ChainAgreement(math.nan, math.nan, False)
    length = draws.shape[1] // _BATCHES
    batch_means = draws[:, :length * _BATCHES].reshape(len(draws), _BATCHES, length).mean(2)
    within = (batch_means.var(1) / _BATCHES).mean().sqrt()  # std error of a chain's mean
    between = draws.mean(1).std()
    ratio = float(between / within) if within > 0 else (0.0 if between == 0 else math.inf)
    quarter = max(1, draws.shape[1] // 4)
    drift = estimate.nbeta * float((draws[:, -quarter:].mean(1)
                                    - draws[:, :quarter].mean(1)).mean())
    return ChainAgreement(ratio, drift, ratio > SPREAD_LIMIT)
