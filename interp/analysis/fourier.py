"""Fourier structure of the modular-addition transformer (Nanda et al. 2023, sec. 4-5).

Everything works in the orthonormal Fourier basis of Z_p: the constant vector, then for each
frequency k = 1..p//2 the vectors cos(w_k x) and sin(w_k x), w_k = 2 pi k / p, each of unit
norm. Functions take plain tensors (weights, activations over the p x p input grid) and
return tensors or small dataclasses; nothing here touches files or models' internals.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from interp.errors import UserError

NEURON_EXPLAINED_THRESHOLD = 0.85  # Nanda et al.: a neuron "belongs" to a frequency above this
UNEXPLAINED = -1  # cluster label of neurons no single frequency explains


def fourier_basis(p: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The p x p orthonormal Fourier basis of Z_p, one basis vector per row.

    Row 0 is the constant; rows 2k-1 and 2k are cos(w_k x) and sin(w_k x) for
    k = 1..(p-1)//2; for even p the last row is cos(pi x). ``basis @ basis.T`` is the identity.
    Returns [p, p].
    """
    if isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 2:
        raise UserError(f"p = {p!r}: the modulus must be an integer >= 2 (113 in Nanda et al.)")
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, p // 2 + 1):
        angle = 2 * math.pi * k * x / p
        rows.append(torch.cos(angle))
        if 2 * k != p:
            rows.append(torch.sin(angle))
    basis = torch.stack(rows)
    return (basis / basis.norm(dim=1, keepdim=True)).to(dtype)


def basis_labels(p: int) -> list[str]:
    """Names of the rows of ``fourier_basis(p)``: ``const``, ``cos 1``, ``sin 1``, ..."""
    labels = ["const"]
    for k in range(1, p // 2 + 1):
        labels.append(f"cos {k}")
        if 2 * k != p:
            labels.append(f"sin {k}")
    return labels


def n_frequencies(p: int) -> int:
    """Number of non-constant frequencies, p // 2 (frequency k is 1-based)."""
    return p // 2


def component_frequency(p: int) -> torch.Tensor:
    """[p] the frequency of each basis row (0 for the constant)."""
    return torch.tensor([0] + [int(label.split()[1]) for label in basis_labels(p)[1:]])


def check_frequencies(frequencies: Iterable[int], p: int, allow_empty: bool = False
                      ) -> list[int]:
    """The frequencies as a list of ints after checking them: UserError (one line) unless each
    is a distinct integer in 1..p//2, and (unless ``allow_empty``) there is at least one."""
    if isinstance(frequencies, str) or not isinstance(frequencies, Iterable):
        raise UserError(f"key frequencies {frequencies!r} are not a list of integers; pass e.g. "
                        "[9, 10, 30, 36]")
    frequencies = list(frequencies)
    if not frequencies and not allow_empty:
        raise UserError("the key-frequency list is empty; pass the key frequencies of a grokked "
                        "checkpoint, e.g. key_frequencies(run.model(), task) (the final one)")
    checked = [_frequency(k, p) for k in frequencies]
    bad = [k for k, value in zip(frequencies, checked, strict=True) if value is None]
    if bad:
        raise UserError(f"key frequencies {bad} are not integers in 1..{p // 2} (p = {p}); "
                        "frequency k is the 1-based index of cos/sin(2 pi k x / p)")
    if len(set(checked)) != len(checked):
        raise UserError(f"key frequencies {checked} repeat a frequency; give each once")
    return checked


def _frequency(k: object, p: int) -> int | None:
    """``k`` as an int if it is an integer (Python, NumPy or a 0-d integer tensor) in
    1..p//2, else None."""
    if isinstance(k, bool):
        return None
    try:
        value = operator.index(k)
    except TypeError:
        return None
    return value if 1 <= value <= p // 2 else None


def check_grid(tensor: torch.Tensor, p: int, name: str, flat: bool = False) -> None:
    """UserError (one line) unless ``tensor`` is over the p x p input grid: [p, p, ...], or
    [p * p, ...] (a-major rows, a * p + b) when ``flat``; ``name`` is what the message calls it."""
    shape = tuple(tensor.shape)
    if flat and shape[:1] != (p * p,):
        raise UserError(f"{name} has shape {list(shape)}; expected [p * p, ...] = [{p * p}, ...] "
                        f"for p = {p} (one row per input (a, b), row a * p + b); a [p, p, ...] "
                        f"grid becomes one with .reshape({p * p}, -1)")
    if not flat and shape[:2] != (p, p):
        raise UserError(f"{name} has shape {list(shape)}; expected [p, p, ...] = [{p}, {p}, ...] "
                        f"for p = {p} (inputs (a, b) on the first two axes); [p * p, ...] rows "
                        f"become that grid with .reshape({p}, {p}, -1)")


def frequency_norms(component_norms_sq: torch.Tensor, p: int) -> torch.Tensor:
    """Combine per-component squared norms [p, ...] into per-frequency norms [p//2, ...].

    The norm of frequency k is sqrt(|cos k|^2 + |sin k|^2); the constant is dropped.
    """
    freq = component_frequency(p).to(component_norms_sq.device)
    out = torch.zeros((n_frequencies(p), *component_norms_sq.shape[1:]),
                      dtype=component_norms_sq.dtype, device=component_norms_sq.device)
    out.index_add_(0, freq[1:] - 1, component_norms_sq[1:])
    return out.sqrt()


def embedding_fourier_norms(W_E: torch.Tensor, p: int) -> torch.Tensor:
    """Norm of each Fourier component of the number-token embeddings (Nanda et al. Fig. 2).

    W_E: [d_vocab, d_model] (only rows 0..p-1, the numbers, are used). Returns [p]: the norm
    of F @ W_E[:p] per basis row (const, cos 1, sin 1, ...).
    """
    if W_E.dim() != 2 or len(W_E) < p:
        raise UserError(f"W_E has shape {list(W_E.shape)}; expected [d_vocab, d_model] with "
                        f"d_vocab >= p = {p} (one row per number token)")
    basis = fourier_basis(p, W_E.dtype).to(W_E.device)
    return (basis @ W_E[:p]).norm(dim=1)


def embedding_frequency_norms(W_E: torch.Tensor, p: int) -> torch.Tensor:
    """[p//2] norm per frequency k = 1..p//2 of the number embeddings (cos and sin together)."""
    return frequency_norms(embedding_fourier_norms(W_E, p).pow(2), p)


def fourier_2d(grid: torch.Tensor, p: int) -> torch.Tensor:
    """The 2D Fourier transform over the first two axes: F @ grid @ F^T.

    grid: [p, p, ...] (e.g. activations over inputs (a, b)). Returns [p, p, ...] whose entry
    [i, j] is the coefficient of basis_row_i(a) * basis_row_j(b).
    """
    check_grid(grid, p, "grid")
    basis = fourier_basis(p, grid.dtype).to(grid.device)
    over_a = torch.tensordot(basis, grid, dims=([1], [0]))  # [i, b, ...]
    return torch.tensordot(basis, over_a, dims=([1], [1])).transpose(0, 1)  # [i, j, ...]


def neuron_frequency_fractions(activations: torch.Tensor, p: int) -> torch.Tensor:
    """Fraction of each neuron's variance over the p x p grid explained by each frequency.

    activations: [p, p, n_neurons] (final-position activations for inputs (a, b)). For
    frequency k the explained part is every 2D Fourier term built from {const, cos k, sin k}
    on both axes except const x const (Nanda et al.'s grokking analysis); the variance is
    the squared norm of all terms but const x const. Returns [p//2, n_neurons] in [0, 1].
    """
    check_grid(activations, p, "activations")
    coefficients = fourier_2d(activations.double(), p).pow(2)
    coefficients[0, 0] = 0  # the mean: not variance
    total = coefficients.sum(dim=(0, 1)).clamp_min(torch.finfo(torch.float64).tiny)
    freq = component_frequency(p)
    fractions = []
    for k in range(1, n_frequencies(p) + 1):
        rows = torch.nonzero((freq == k) | (freq == 0)).flatten()
        fractions.append(coefficients[rows][:, rows].sum(dim=(0, 1)) / total)
    return torch.stack(fractions).to(activations.dtype)


@dataclass(frozen=True)
class NeuronClusters:
    """Neurons grouped by the frequency that explains them (Nanda et al.'s 0.85 rule).

    ``frequency``: [n_neurons] the explaining frequency (1-based) or UNEXPLAINED (-1).
    ``fraction``: [n_neurons] the fraction of variance that frequency explains.
    ``sizes``: {frequency: number of neurons}, largest first; UNEXPLAINED included.
    """

    frequency: torch.Tensor
    fraction: torch.Tensor
    sizes: dict[int, int]

    @property
    def frequencies(self) -> list[int]:
        """The frequencies that explain at least one neuron, largest cluster first."""
        return [k for k in self.sizes if k != UNEXPLAINED]

    @property
    def explained_fraction(self) -> float:
        """Share of neurons that some single frequency explains."""
        return float((self.frequency != UNEXPLAINED).float().mean())


def cluster_neurons(fractions: torch.Tensor, threshold: float = NEURON_EXPLAINED_THRESHOLD
                    ) -> NeuronClusters:
    """Assign each neuron to the frequency explaining more than ``threshold`` of its variance.

    fractions: [p//2, n_neurons] from ``neuron_frequency_fractions``.
    """
    best_fraction, best = fractions.max(dim=0)
    frequency = torch.where(best_fraction > threshold, best + 1,
                            torch.full_like(best, UNEXPLAINED))
    values, counts = torch.unique(frequency, return_counts=True)
    order = torch.argsort(counts, descending=True, stable=True)
    sizes = {int(values[i]): int(counts[i]) for i in order}
    return NeuronClusters(frequency, best_fraction, sizes)


def key_frequencies_from_neurons(clusters: NeuronClusters, min_share: float = 0.02
                                 ) -> list[int]:
    """Key frequencies: those explaining at least ``min_share`` of all neurons, sorted."""
    n = clusters.frequency.numel()
    return sorted(k for k, size in clusters.sizes.items()
                  if k != UNEXPLAINED and size >= min_share * n)


def key_frequencies_from_norms(norms: torch.Tensor, factor: float = 3.0) -> list[int]:
    """Frequencies whose squared norm exceeds ``factor`` times the uniform share.

    norms: [p//2] per-frequency norms (e.g. of W_E or W_L). A sparse (grokked) embedding puts
    most of its norm on a few frequencies; a random one spreads it evenly and has none.
    """
    energy = norms.double().pow(2)
    share = energy / energy.sum()
    return sorted(int(k) + 1 for k in torch.nonzero(share > factor / len(norms)).flatten())


def unembed_fourier(W_L: torch.Tensor, p: int) -> torch.Tensor:
    """W_L = W_out @ W_U in the Fourier basis over output classes (Nanda et al. sec. 4.2).

    W_L: [d_mlp, p]. Returns [d_mlp, p]: each neuron's output weights expressed in Fourier
    components (const, cos 1, sin 1, ...).
    """
    if W_L.dim() != 2 or W_L.shape[1] != p:
        raise UserError(f"W_L has shape {list(W_L.shape)}; expected [d_mlp, p] = [d_mlp, {p}] "
                        "(W_out @ W_U of the last layer: analysis.W_L(model))")
    return W_L @ fourier_basis(p, W_L.dtype).to(W_L.device).T


@dataclass(frozen=True)
class LogitProjection:
    """Logits over (a, b, c) projected on the directions cos(w_k (a + b - c)).

    ``coefficient``: [p//2] the projection coefficient of each frequency (unit directions).
    ``cosine``: [p//2] cosine similarity of the centred logits with each direction.
    ``explained``: fraction of the centred logits' squared norm that the ``key`` directions
    explain together; ``residual_norm``: norm of what they leave, relative to the whole.
    """

    coefficient: torch.Tensor
    cosine: torch.Tensor
    key: list[int]
    explained: float
    residual_norm: float


def logit_projection(logits: torch.Tensor, p: int, key: list[int],
                     combine: str = "add") -> LogitProjection:
    """Project logits [p, p, p] (inputs a, b; output c) on cos(w_k (a +/- b - c)).

    Nanda et al. show a grokked model's logits are close to sum_k alpha_k cos(w_k(a+b-c)).
    Logits are centred per input (the softmax ignores a constant per (a, b)). The directions
    of distinct frequencies are orthogonal over the cube, so every coefficient comes from one
    3D FFT: sum L cos(w_k(a + b - c)) = Re FFT(L)[-k, -+k, k], and |cos(w_k(...))|^2 = p^3/2
    (p^3 when 2k = p). Shares of centred logits that are all zero, NaN or infinite are NaN.
    """
    if logits.shape != (p, p, p):
        raise UserError(f"logits have shape {list(logits.shape)}; expected [p, p, p] = "
                        f"[{p}, {p}, {p}] (inputs a, b; output c)")
    key = check_frequencies(key, p, allow_empty=True)
    logits = logits.double()
    logits = logits - logits.mean(dim=-1, keepdim=True)
    spectrum = torch.fft.fftn(logits)
    ks = torch.arange(1, n_frequencies(p) + 1)
    b_index = -ks % p if combine == "add" else ks % p
    sums = spectrum[-ks % p, b_index, ks % p].real
    norms = torch.where(2 * ks == p, float(p**3), p**3 / 2).double().sqrt()
    coefficients = sums / norms
    total = logits.pow(2).sum()
    key_energy = sum(float(coefficients[k - 1] ** 2) for k in key)
    residual = max(float(total) - key_energy, 0.0) / float(total) if total > 0 else math.nan
    return LogitProjection(coefficients.float(), (coefficients / total.sqrt()).float(),
                           list(key), 1 - residual, math.sqrt(residual))


def attention_frequency_fractions(pattern: torch.Tensor, p: int) -> torch.Tensor:
    """How periodic each head's attention is: fraction of variance per frequency.

    pattern: [p, p, n_heads] the attention weight from the final position to the first
    operand (a) for each input (a, b). Returns [p//2, n_heads] like
    ``neuron_frequency_fractions`` (Nanda et al.: attention heads read periodic features).
    """
    return neuron_frequency_fractions(pattern, p)
