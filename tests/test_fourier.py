import math

import pytest
import torch

from interp.analysis import fourier, progress


@pytest.mark.parametrize("p", [7, 113, 10])
def test_fourier_basis_is_orthonormal_with_named_rows(p):
    basis = fourier.fourier_basis(p, torch.float64)
    torch.testing.assert_close(basis @ basis.T, torch.eye(p, dtype=torch.float64))
    labels = fourier.basis_labels(p)
    assert len(labels) == p and labels[:3] == ["const", "cos 1", "sin 1"]
    x = torch.arange(p, dtype=torch.float64)
    cos2 = torch.cos(2 * math.pi * 2 * x / p)
    torch.testing.assert_close(basis[labels.index("cos 2")], cos2 / cos2.norm())


def test_pure_wave_embedding_has_that_key_frequency():
    p, d, k = 113, 16, 17
    a = torch.arange(p, dtype=torch.float64)
    rng = torch.Generator().manual_seed(0)
    W_E = torch.zeros(p + 1, d, dtype=torch.float64)
    W_E[:p] = (torch.cos(2 * math.pi * k * a / p)[:, None] * torch.randn(1, d, generator=rng)
               + torch.sin(2 * math.pi * k * a / p)[:, None] * torch.randn(1, d, generator=rng))
    norms = fourier.embedding_frequency_norms(W_E, p)
    assert norms.argmax().item() + 1 == k
    assert norms[k - 1] ** 2 / norms.pow(2).sum() > 0.999
    assert fourier.key_frequencies_from_norms(norms) == [k]
    assert fourier.key_frequencies_from_norms(torch.ones(56)) == []


def test_neuron_equal_to_cos_of_the_sum_is_fully_explained_by_its_frequency():
    p, k = 31, 5
    a = torch.arange(p, dtype=torch.float64)
    grid = a[:, None] + a[None, :]
    neurons = torch.stack([torch.cos(2 * math.pi * k * grid / p) + 3.0,  # offset is not variance
                           torch.sin(2 * math.pi * 7 * (grid + 2) / p),
                           torch.randn(p, p, generator=torch.Generator().manual_seed(1))],
                          dim=-1)
    fractions = fourier.neuron_frequency_fractions(neurons, p)
    assert fractions.shape == (p // 2, 3)
    assert fractions[k - 1, 0] == pytest.approx(1.0, abs=1e-9)
    assert fractions[6, 1] == pytest.approx(1.0, abs=1e-9)
    assert fractions[:, 2].max() < 0.5
    clusters = fourier.cluster_neurons(fractions)
    assert clusters.frequency.tolist() == [k, 7, fourier.UNEXPLAINED]
    assert clusters.sizes == {k: 1, 7: 1, fourier.UNEXPLAINED: 1}
    assert clusters.frequencies == [k, 7] or clusters.frequencies == [7, k]


def test_logits_built_from_key_frequencies_are_explained_by_them():
    p = 23
    a = torch.arange(p, dtype=torch.float64)
    phase = 2 * math.pi * (a[:, None, None] + a[None, :, None] - a[None, None, :]) / p
    logits = 5 * torch.cos(3 * phase) + 2 * torch.cos(8 * phase)
    projection = fourier.logit_projection(logits, p, [3, 8])
    assert projection.explained == pytest.approx(1.0, abs=1e-9)
    assert projection.cosine[2] > projection.cosine[7] > 0.3
    assert projection.cosine[0].abs() < 1e-9
    assert fourier.logit_projection(logits, p, [3]).explained < 0.9
    minus = torch.cos(4 * 2 * math.pi * (a[:, None, None] - a[None, :, None]
                                          - a[None, None, :]) / p)
    assert fourier.logit_projection(minus, p, [4], combine="sub").explained == pytest.approx(1.0)
    assert fourier.logit_projection(minus, p, [4], combine="add").explained < 0.01


def test_gini_of_one_hot_is_near_one_and_of_constant_is_zero():
    one_hot = torch.zeros(56)
    one_hot[9] = 4.0
    assert progress.gini(one_hot) == pytest.approx(55 / 56)
    assert progress.gini(torch.full((56,), 2.5)) == pytest.approx(0.0)
    assert 0 < progress.gini(torch.arange(56.0)) < 1


def _key_frequency_model(p: int, key: list[int], d_mlp: int = 64):
    """Neuron activations that are exactly cos/sin(w_k(a+b)) with a W_L that maps them to
    logits sum_k cos(w_k(a + b - c)): a model built only from key-frequency terms."""
    s = progress.sum_combination(p).to(torch.float64)
    c = torch.arange(p, dtype=torch.float64)
    acts, rows = [], []
    for k in key:
        w = 2 * math.pi * k / p
        acts += [torch.cos(w * s), torch.sin(w * s)]
        rows += [torch.cos(w * c), torch.sin(w * c)]  # cos(w(s - c)) = cos cos + sin sin
    neuron_acts = torch.stack(acts, dim=1) * 4.0
    W_L = torch.stack(rows)
    return neuron_acts, neuron_acts @ W_L, W_L


def test_frequency_logit_parts_are_the_projected_activations_through_W_L():
    p, n = 13, 20
    generator = torch.Generator().manual_seed(0)
    acts = torch.randn(p * p, n, generator=generator, dtype=torch.float64)
    W_L = torch.randn(n, p, generator=generator, dtype=torch.float64)
    parts = progress.frequency_logit_parts(acts, W_L, p, [2, 5], "sub")
    for k, part in parts.items():
        directions = progress.frequency_directions(p, k, "sub")  # [2, p * p], orthonormal
        projection = directions.T @ directions  # onto span{cos(w_k (a - b)), sin(...)}
        torch.testing.assert_close(part, projection @ acts @ W_L)
    # nothing of other frequencies is kept: a part's own projection leaves it unchanged
    both = parts[2] + parts[5]
    directions = torch.cat([progress.frequency_directions(p, k, "sub") for k in (2, 5)])
    torch.testing.assert_close(directions.T @ (directions @ both), both)


def test_restricted_loss_of_key_frequency_logits_equals_their_full_loss():
    p, key = 31, [4, 9]
    neuron_acts, logits, W_L = _key_frequency_model(p, key)
    labels = progress.sum_combination(p) % p
    perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(0))
    train_idx, test_idx = perm[:300], perm[300:]
    measures = progress.progress_measures(neuron_acts, logits, W_L, labels, train_idx,
                                          test_idx, p, key)
    full_test = torch.nn.functional.cross_entropy(logits[test_idx], labels[test_idx]).item()
    assert measures.restricted_loss == pytest.approx(full_test, rel=1e-9)
    assert measures.restricted_acc == 1.0
    # removing the key frequencies leaves constant logits: loss log p, chance accuracy
    assert measures.excluded_loss == pytest.approx(math.log(p), rel=1e-9)
    assert set(measures.excluded_loss_per_frequency) == set(key)
    assert all(v > measures.restricted_loss for v in measures.excluded_loss_per_frequency.values())


def test_find_phases_on_a_synthetic_grokking_curve():
    import numpy as np
    import pandas as pd

    epochs = np.arange(0, 20_000, 10)
    test = np.where(epochs < 1500, 4 + epochs / 150,  # rises to 14 while memorising
                    np.where(epochs < 10_000, 14.0,  # plateau: circuit formation
                             np.maximum(14.0 * np.exp(-(epochs - 10_000) / 400), 1e-7)))
    frame = pd.DataFrame({"epoch": epochs, "test_loss": test, "train_loss": 1e-3})
    phases = progress.find_phases(frame)
    assert 1490 <= phases.memorisation_end <= 1500
    assert 10_000 <= phases.cleanup_start <= 11_000
    assert 15_000 <= phases.cleanup_end <= 18_000
    flat = frame.assign(test_loss=np.linspace(5, 4, len(epochs)))
    assert progress.find_phases(flat).cleanup_start is None
