"""Single neurons and single embeddings of the modular-addition transformer, as Nanda et al.'s
notebook shows them (Nanda et al. 2023, sec. 4 and app. D).

- a neuron's activation over the p x p input grid, fitted by least squares on the 2D Fourier
  terms of one frequency w = 2 pi k / p: the constant, cos(wa), sin(wa), cos(wb), sin(wb)
  and the four products cos(wa) cos(wb), cos(wa) sin(wb), sin(wa) cos(wb), sin(wa) sin(wb),
  which hold cos(w(a+b)) = cos(wa) cos(wb) - sin(wa) sin(wb) and sin(w(a+b)) =
  sin(wa) cos(wb) + cos(wa) sin(wb) expanded (and their w(a-b) twins);
- the number embeddings W_E projected on the d_model directions of a key frequency's cos and
  sin terms: a grokked model puts the p numbers on a circle, a in order of k a mod p.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interp.analysis import fourier
from interp.analysis.modular import check_modular, grid_activations
from interp.errors import UserError

# the 2D Fourier terms of one frequency, in the order of NeuronFit.coefficients
TERMS = ("1", "cos wa", "sin wa", "cos wb", "sin wb",
         "cos wa cos wb", "cos wa sin wb", "sin wa cos wb", "sin wa sin wb")


@torch.no_grad()
def neuron_activations_grid(model: torch.nn.Module, task) -> torch.Tensor:
    """Every MLP neuron's activation (last layer, final position) over the input grid.

    model: the modular-arithmetic transformer (TransformerLens hooks), task: its task
    (``run.task()``, the full p x p grid). Returns [p, p, d_mlp]: entry [a, b, n] is neuron n's
    activation on input (a, b) (``modular.grid_activations`` rows, a-major, reshaped).
    """
    p = check_modular(model, task)
    return grid_activations(model, task.inputs).neuron_acts.reshape(p, p, -1)


def fourier_terms(p: int, frequency: int) -> torch.Tensor:
    """[p, p, 9] float64: the functions of ``TERMS`` for w = 2 pi frequency / p, entry
    [a, b, j] = term j at (a, b)."""
    k = fourier.check_frequencies([frequency], p)[0]
    angle = 2 * math.pi * k * torch.arange(p, dtype=torch.float64) / p
    one, cos, sin = torch.ones(p, dtype=torch.float64), torch.cos(angle), torch.sin(angle)
    pairs = [(one, one), (cos, one), (sin, one), (one, cos), (one, sin),
             (cos, cos), (cos, sin), (sin, cos), (sin, sin)]
    return torch.stack([f_a[:, None] * f_b[None, :] for f_a, f_b in pairs], dim=-1)


@dataclass(frozen=True)
class NeuronFit:
    """Least-squares fit of some neurons' activations on the 2D Fourier terms of one
    frequency (``TERMS``), over the p x p grid.

    ``frequency``: k (w = 2 pi k / p). ``neurons``: the neuron indices fitted, in order.
    ``activations``, ``fitted``: [p, p, n] the activations and the fit's values, entry
    [a, b, i] for neuron ``neurons[i]``. ``coefficients``: [n, 9] float64, one per term of
    ``TERMS`` (activation ~ sum_j coefficients[i, j] term_j). ``explained``: [n] the fraction
    of each neuron's variance over the grid the fit explains, 1 - SS_res / SS_about_mean
    (equal to ``fourier.neuron_frequency_fractions`` of k; 0 for a constant neuron).
    """

    frequency: int
    neurons: list[int]
    activations: torch.Tensor
    fitted: torch.Tensor
    coefficients: torch.Tensor
    explained: torch.Tensor

    @property
    def constant(self) -> torch.Tensor:
        """[n] bool: whether each neuron is constant over the grid (a dead ReLU, say)."""
        flat = self.activations.reshape(-1, len(self.neurons))
        return (flat == flat[:1]).all(dim=0)

    @property
    def sum_terms(self) -> torch.Tensor:
        """[n, 2] the coefficients of cos(w(a+b)) and sin(w(a+b)) in the fit (the product
        terms rewritten in w(a+b) and w(a-b))."""
        c = self.coefficients
        return torch.stack([(c[:, 5] - c[:, 8]) / 2, (c[:, 7] + c[:, 6]) / 2], dim=1)

    @property
    def difference_terms(self) -> torch.Tensor:
        """[n, 2] the coefficients of cos(w(a-b)) and sin(w(a-b)) in the fit."""
        c = self.coefficients
        return torch.stack([(c[:, 5] + c[:, 8]) / 2, (c[:, 7] - c[:, 6]) / 2], dim=1)


def fit_neuron_terms(activations: torch.Tensor, p: int, frequency: int,
                     neurons: Sequence[int] | None = None) -> NeuronFit:
    """Fit neurons' activations over the grid on the 2D Fourier terms of ``frequency``.

    activations: [p, p, d_mlp] (``neuron_activations_grid``); neurons: the columns to fit
    (default all). The least squares run in float64. Returns a ``NeuronFit`` (Nanda et al.:
    a grokked neuron of frequency k is almost all in these terms, > 0.85 of its variance).
    """
    fourier.check_grid(activations, p, "activations")
    d_mlp = activations.shape[2]
    neurons = list(range(d_mlp)) if neurons is None else [int(n) for n in neurons]
    bad = [n for n in neurons if not 0 <= n < d_mlp]
    if not neurons or bad:
        raise UserError(f"neurons {bad or '[]'}: give at least one neuron index in "
                        f"0..{d_mlp - 1} (d_mlp = {d_mlp})")
    design = fourier_terms(p, frequency).reshape(p * p, len(TERMS))
    values = activations[:, :, neurons].double().reshape(p * p, len(neurons))
    coefficients = torch.linalg.lstsq(design, values, driver="gelsd").solution  # [9, n]
    fitted = design @ coefficients
    residual = (values - fitted).pow(2).sum(dim=0)
    total = (values - values.mean(dim=0)).pow(2).sum(dim=0)
    explained = torch.where(total > 0, 1 - residual / total.clamp_min(1e-300),
                            torch.zeros_like(total))
    return NeuronFit(int(frequency), neurons, activations[:, :, neurons],
                     fitted.reshape(p, p, -1).to(activations.dtype), coefficients.T,
                     explained.clamp(0, 1))


def top_cluster_neurons(activations: torch.Tensor, p: int, frequencies: Sequence[int],
                        top: int) -> dict[int, list[int]]:
    """The ``top`` neurons of each frequency's cluster, largest activation variance first.

    activations: [p, p, d_mlp]; clusters by Nanda et al.'s rule (``fourier.cluster_neurons``:
    a neuron belongs to k when k's terms explain > 0.85 of its variance). Returns
    {k: neuron indices} for each k of ``frequencies`` (in that order), a cluster with fewer
    members giving them all, an empty one an empty list.
    """
    key = fourier.check_frequencies(frequencies, p)
    if top < 1:
        raise UserError(f"top = {top}: ask for at least one neuron per cluster")
    clusters = fourier.cluster_neurons(fourier.neuron_frequency_fractions(activations, p))
    variance = activations.double().reshape(p * p, -1).var(dim=0)
    chosen = {}
    for k in key:
        members = torch.nonzero(clusters.frequency == k).flatten()
        order = torch.argsort(variance[members], descending=True, stable=True)
        chosen[k] = members[order][:top].tolist()
    return chosen


@dataclass(frozen=True)
class EmbeddingCircle:
    """The number embeddings projected on one frequency's cos and sin directions.

    ``frequency``: k. ``points``: [p, 2], row a = (x, y) of number a: its embedding's
    component along the unit d_model direction of W_E's cos(w_k a) term, and along its
    sin(w_k a) term. A grokked embedding puts the points on a circle, at angle w_k a.
    """

    frequency: int
    points: torch.Tensor

    @property
    def radius(self) -> torch.Tensor:
        """[p] distance of each number's point from the origin."""
        return self.points.norm(dim=1)

    @property
    def radius_spread(self) -> float:
        """Standard deviation of the radii over their mean: 0 on a perfect circle (NaN when
        every point sits at the origin)."""
        radius = self.radius.double()
        mean = float(radius.mean())
        return float(radius.std()) / mean if mean > 0 else math.nan


def embedding_circles(W_E: torch.Tensor, p: int, frequencies: Sequence[int]
                      ) -> list[EmbeddingCircle]:
    """The embedding circle of each frequency (Nanda et al.'s notebook), in the given order.

    W_E: [d_vocab, d_model] (rows 0..p-1, the numbers, are used). For frequency k the
    directions are the rows cos k and sin k of F @ W_E[:p] (F: ``fourier.fourier_basis``),
    each scaled to unit norm; point a is (W_E[a] . u_cos, W_E[a] . u_sin). A zero direction
    (and the sine of k = p/2, which even p lacks) gives zero coordinates.
    """
    key = fourier.check_frequencies(frequencies, p)
    fourier.embedding_fourier_norms(W_E, p)  # the one-line shape check
    numbers = W_E[:p].detach().double()
    components = fourier.fourier_basis(p, torch.float64).to(numbers.device) @ numbers
    circles = []
    for k in key:
        sine = components[2 * k] if 2 * k < p else torch.zeros_like(components[0])  # k = p/2
        directions = torch.stack([components[2 * k - 1], sine])  # [2, d_model]: cos k, sin k
        norms = directions.norm(dim=1, keepdim=True)
        unit = torch.where(norms > 0, directions / norms.clamp_min(1e-300), 0.0)
        circles.append(EmbeddingCircle(k, (numbers @ unit.T).float().cpu()))
    return circles
