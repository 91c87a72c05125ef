"""Representation quality of embeddings (Liu, Kitouni, Nolte, Michaud, Tegmark, Williams,
"Towards understanding grokking: an effective theory of representation learning", NeurIPS
2022, and their code in ejmichaud/grokking-squared, ``toy/train_add.py``).

A parallelogram (a, b, c, d) is two distinct unordered pairs with a + b = c + d (mod p for
modular tasks); a good representation satisfies E_a + E_b = E_c + E_d on it. Pure functions:
embeddings and pairs in, numbers out.

**Circular variant (beyond the seeds).** Liu et al.'s test is linear: it fits their toy
model, whose numbers lie on a line. A network that learns addition mod p puts them on
circles instead (Nanda et al.: W_E holds cos/sin(w_k a) for a few key frequencies k), where
E_a + E_b = E_c + E_d almost never holds, so the linear RQI of a grokked transformer is 0
beside 100% test accuracy. On a circle addition is angle addition: number a sits at angle
theta_k(a) = w_k a + phi on the circle of frequency k, and a parallelogram holds when
theta_k(a) + theta_k(b) = theta_k(c) + theta_k(d) (mod 2 pi). ``circle_angles`` reads each
number's angle off the embeddings: their projection on the plane their cos/sin(w_k) Fourier
components span (the circle Nanda et al. draw), whitened so that an ellipse becomes round.
``circular_errors`` compares the two pairs' sum phasors z_k = exp(i (theta_k(a) +
theta_k(b))) over the circles: the mean over k of |z_k(a, b) - z_k(c, d)|^2. The tolerance
(``circular_delta``) is set by the geometry, not by hand: a quarter of the smallest such
squared distance between the phasors of two different sums, i.e. the pairs agree to within
half the distance that tells sums apart. Liu et al.'s delta = 0.01 is a figure for
standardised linear embeddings and does not carry over.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass

import torch

from interp.analysis.fourier import embedding_frequency_norms, key_frequencies_from_norms

DEFAULT_DELTA = 0.01  # Liu et al.'s threshold_P


def parallelograms(n: int, modulus: int | None = None) -> torch.Tensor:
    """Every parallelogram of the numbers 0..n-1: [K, 4] int64 rows (a, b, c, d) with
    a <= b, c <= d, {a, b} != {c, d} and a + b = c + d (mod ``modulus`` if given); each
    unordered pair of pairs appears once (Liu et al. enumerate i < j <= m < n, i + n = j + m,
    the same set for plain addition)."""
    groups: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for a, b in itertools.combinations_with_replacement(range(n), 2):
        total = a + b if modulus is None else (a + b) % modulus
        groups[total].append((a, b))
    rows = [(*p, *q) for pairs in groups.values() for p, q in itertools.combinations(pairs, 2)]
    return torch.tensor(rows, dtype=torch.long).reshape(-1, 4)


def standardize(embeddings: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit (unbiased) standard deviation per dimension: [n, d] -> [n, d]."""
    E = embeddings.double()
    return (E - E.mean(dim=0)) / E.std(dim=0)


def parallelogram_errors(embeddings: torch.Tensor, grams: torch.Tensor) -> torch.Tensor:
    """Mean over dimensions of (E_a + E_b - E_c - E_d)^2 of the standardised embeddings,
    per parallelogram: embeddings [n, d], grams [K, 4] -> [K]."""
    E = standardize(embeddings)
    gap = E[grams[:, 0]] + E[grams[:, 1]] - E[grams[:, 2]] - E[grams[:, 3]]
    return gap.pow(2).mean(dim=1)


def rqi(embeddings: torch.Tensor, grams: torch.Tensor, delta: float = DEFAULT_DELTA) -> float:
    """Representation quality index: the fraction of parallelograms that the standardised
    embeddings satisfy to within ``delta`` (mean squared gap per dimension, Liu et al.'s
    code; the squared norm |.|^2 / d). embeddings [n, d], grams [K, 4]."""
    return (parallelogram_errors(embeddings, grams) < delta).double().mean().item()


def circle_frequencies(embeddings: torch.Tensor, modulus: int) -> list[int]:
    """The frequencies whose circles ``circular_rqi`` reads: the embeddings' key frequencies
    (``key_frequencies_from_norms`` of their Fourier norms over the numbers 0..modulus-1),
    or the strongest one when none stands out (a random embedding). embeddings [n, d]."""
    norms = embedding_frequency_norms(embeddings.double(), modulus)
    return key_frequencies_from_norms(norms) or [int(norms.argmax()) + 1]


def circle_angles(embeddings: torch.Tensor, frequency: int, modulus: int) -> torch.Tensor:
    """[n] the angle of each number 0..n-1 on the embeddings' circle of ``frequency`` k: the
    centred embeddings [n, d] projected on the plane spanned by their cos(w_k a) and
    sin(w_k a) Fourier components (w_k = 2 pi k / modulus), whitened in that plane. NaN
    when the plane is degenerate (one-dimensional embeddings, or no such component)."""
    E = embeddings.double() - embeddings.double().mean(dim=0)
    angle = 2 * math.pi * frequency * torch.arange(len(E), dtype=torch.float64) / modulus
    waves = torch.stack([torch.cos(angle), torch.sin(angle)])  # [2, n]
    basis = torch.linalg.qr((waves @ E).T).Q  # [d, 2] (or [d, d] when d < 2)
    plane = E @ basis
    plane = plane - plane.mean(dim=0)
    covariance = plane.T @ plane / len(plane)
    values, vectors = torch.linalg.eigh(covariance)
    if plane.shape[1] < 2 or not values[0] > 1e-12 * values[-1]:
        return torch.full((len(E),), math.nan, dtype=torch.float64)
    white = plane @ vectors / values.sqrt()
    return torch.atan2(white[:, 1], white[:, 0])


def circular_errors(embeddings: torch.Tensor, grams: torch.Tensor, frequencies: list[int],
                    modulus: int) -> torch.Tensor:
    """[K] per parallelogram (a, b, c, d) the mean over ``frequencies`` of |z_k(a, b) -
    z_k(c, d)|^2 = 4 sin^2(delta_k / 2), z_k(a, b) = exp(i (theta_k(a) + theta_k(b))),
    delta_k the angle by which the parallelogram misses on circle k (``circle_angles``);
    0 when it holds on every circle, at most 4 (4 everywhere without frequencies: no circle
    holds anything). embeddings [n, d], grams [K, 4]."""
    if not frequencies:
        return torch.full((len(grams),), 4.0, dtype=torch.float64)
    errors = torch.zeros(len(grams), dtype=torch.float64)
    for k in frequencies:
        theta = circle_angles(embeddings, k, modulus)
        miss = theta[grams[:, 0]] + theta[grams[:, 1]] - theta[grams[:, 2]] - theta[grams[:, 3]]
        errors += 4 * torch.sin(miss / 2).pow(2)
    return errors / len(frequencies)


def circular_delta(frequencies: list[int], modulus: int) -> float:
    """The tolerance of ``circular_rqi``: a quarter of min over m in 1..modulus-1 of
    mean_k |1 - exp(i w_k m)|^2, the smallest squared distance between the sum phasors of
    two sums m apart (0 when some m is invisible on every circle, or there are no circles:
    no sum is pinned)."""
    if not frequencies:
        return 0.0
    k = torch.tensor(frequencies, dtype=torch.float64)[None, :]
    m = torch.arange(1, modulus, dtype=torch.float64)[:, None]
    return (torch.sin(math.pi * k * m / modulus).pow(2).mean(dim=1).min()).item()


def circular_satisfied(embeddings: torch.Tensor, grams: torch.Tensor, frequencies: list[int],
                       modulus: int) -> torch.Tensor:
    """[K] bool: the parallelograms the embeddings' circles satisfy (``circular_errors``
    below ``circular_delta``; NaN angles satisfy none)."""
    return circular_errors(embeddings, grams, frequencies, modulus) < circular_delta(
        frequencies, modulus)


def circular_rqi(embeddings: torch.Tensor, grams: torch.Tensor, frequencies: list[int],
                 modulus: int) -> float:
    """Circular representation quality index (module docstring): the fraction of the
    parallelograms ``grams`` [K, 4] (mod ``modulus``) that the circles of ``frequencies``
    in the embeddings [n, d] satisfy. Near 1 for a grokked modular-addition transformer's
    W_E, near 0 for a random one."""
    return circular_satisfied(embeddings, grams, frequencies, modulus).double().mean().item()


def canonical_pairs(pairs: torch.Tensor) -> torch.Tensor:
    """Unordered pairs as (min, max): [m, 2] -> [m, 2]."""
    return torch.sort(pairs, dim=1).values


def parallelograms_within(grams: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """The parallelograms whose two pairs are both among ``pairs`` [m, 2] (order within a
    pair ignored): P_0(D) of Liu et al. when ``pairs`` is the training set. [K', 4]."""
    known = {tuple(p) for p in canonical_pairs(pairs).tolist()}
    keep = [(a, b) in known and (c, d) in known for a, b, c, d in grams.tolist()]
    return grams[torch.tensor(keep, dtype=torch.bool)]


def effective_loss(embeddings: torch.Tensor, train_grams: torch.Tensor) -> float:
    """Liu et al.'s effective loss l_eff = sum_{P_0(D)} |E_a + E_b - E_c - E_d|^2 / Z_0,
    Z_0 = sum_k |E_k|^2, on the mean-centred embeddings (their code centres and scales first;
    the ratio is scale-free). embeddings [n, d], train_grams [K, 4]."""
    E = embeddings.double() - embeddings.double().mean(dim=0)
    gap = E[train_grams[:, 0]] + E[train_grams[:, 1]] - E[train_grams[:, 2]] - E[train_grams[:, 3]]
    return (gap.pow(2).sum() / E.pow(2).sum()).item()


def _reachable_fraction(grams: torch.Tensor, train_pairs: torch.Tensor,
                        test_pairs: torch.Tensor) -> float:
    """Fraction of test pairs equal to a training pair or tied to one by a parallelogram."""
    train = {tuple(p) for p in canonical_pairs(train_pairs).tolist()}
    linked = set(train)
    for a, b, c, d in grams.tolist():
        if (a, b) in train:
            linked.add((c, d))
        if (c, d) in train:
            linked.add((a, b))
    test = canonical_pairs(test_pairs).tolist()
    return sum(tuple(p) in linked for p in test) / max(len(test), 1)


def ideal_accuracy(n: int, train_pairs: torch.Tensor, test_pairs: torch.Tensor,
                   modulus: int | None = None) -> float:
    """The test accuracy the training set alone can determine (Liu et al.'s ideal accuracy,
    Acc-bar): the training parallelograms P_0(D) as linear equations on E, plus every
    parallelogram they imply (its equation lies in their row space: orthogonal to their
    null space), P(D); a test pair is determined if some parallelogram in P(D) ties it to a
    training pair. pairs: [m, 2] number pairs."""
    grams = parallelograms(n, modulus)
    equations = _equations(grams, n)
    known = parallelograms_within(grams, train_pairs)
    implied = torch.zeros(len(grams), dtype=torch.bool)
    if len(known):  # the null space always holds the constant vector, so it is never empty
        null = _null_space(_equations(known, n))
        implied = (equations @ null).abs().amax(dim=1) < 1e-8
    return _reachable_fraction(grams[implied], train_pairs, test_pairs)


def predicted_accuracy(embeddings: torch.Tensor, train_pairs: torch.Tensor,
                       test_pairs: torch.Tensor, modulus: int | None = None,
                       delta: float = DEFAULT_DELTA) -> float:
    """The test accuracy the representation predicts (Liu et al.'s Acc from P(R)): test
    pairs tied to a training pair by a parallelogram the embeddings satisfy within
    ``delta``. embeddings [n, d]; pairs [m, 2]."""
    grams = parallelograms(len(embeddings), modulus)
    satisfied = parallelogram_errors(embeddings, grams) < delta
    return _reachable_fraction(grams[satisfied], train_pairs, test_pairs)


def circular_predicted_accuracy(embeddings: torch.Tensor, train_pairs: torch.Tensor,
                                test_pairs: torch.Tensor, frequencies: list[int],
                                modulus: int) -> float:
    """``predicted_accuracy`` of a circular representation: the test pairs tied to a
    training pair by a parallelogram (mod ``modulus``) that the circles of ``frequencies``
    satisfy (``circular_satisfied``). embeddings [n, d]; pairs [m, 2]."""
    grams = parallelograms(len(embeddings), modulus)
    satisfied = circular_satisfied(embeddings, grams, frequencies, modulus)
    return _reachable_fraction(grams[satisfied], train_pairs, test_pairs)


def _equations(grams: torch.Tensor, n: int) -> torch.Tensor:
    """Rows e_a + e_b - e_c - e_d: [K, 4] -> [K, n] float64."""
    rows = torch.zeros(len(grams), n, dtype=torch.float64)
    for column, sign in enumerate((1.0, 1.0, -1.0, -1.0)):
        rows.index_put_((torch.arange(len(grams)), grams[:, column]),
                        torch.full((len(grams),), sign, dtype=torch.float64), accumulate=True)
    return rows


def _null_space(matrix: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of {x : matrix x = 0}: [n, k], from the right singular vectors
    with (numerically) zero singular value. Only the n x n factor is formed: for the Nanda
    task's 46 000 x 113 equations a full SVD's left factor alone would take 17 GB."""
    m, n = matrix.shape
    _, singular, vh = torch.linalg.svd(matrix, full_matrices=m < n)  # vh: [n, n]
    tolerance = max(m, n) * torch.finfo(matrix.dtype).eps * (singular.max() if m else 0)
    rank = int((singular > tolerance).sum())
    return vh[rank:].T


@dataclass(frozen=True)
class Projection:
    """Embeddings projected on their top principal components."""

    coordinates: torch.Tensor  # [n, 2]
    explained_variance_ratio: torch.Tensor  # [2]


def embedding_projection(embeddings: torch.Tensor, n_components: int = 2) -> Projection:
    """PCA of embeddings [n, d]: coordinates on the top ``n_components`` principal axes
    [n, n_components] (zero columns when d is smaller) and the variance each explains; all
    NaN when an embedding is NaN or infinite (a diverged model)."""
    E = embeddings.double() - embeddings.double().mean(dim=0)
    if not bool(torch.isfinite(E).all()):
        return Projection(E.new_full((len(E), n_components), math.nan),
                          E.new_full((n_components,), math.nan))
    _, singular, vh = torch.linalg.svd(E, full_matrices=False)
    k = min(n_components, vh.shape[0])
    coordinates = torch.zeros(len(E), n_components, dtype=torch.float64)
    coordinates[:, :k] = E @ vh[:k].T
    ratio = torch.zeros(n_components, dtype=torch.float64)
    total = singular.pow(2).sum()
    ratio[:k] = singular[:k].pow(2) / total if total > 0 else 0
    return Projection(coordinates, ratio)
