"""Liu et al.'s representation measures: parallelograms, RQI, effective loss, ideal and
predicted accuracy and the 2D projection."""

import pytest
import torch

from interp.analysis.representation import (
    effective_loss,
    embedding_projection,
    ideal_accuracy,
    parallelograms,
    parallelograms_within,
    predicted_accuracy,
    rqi,
)
from interp.tasks.toy import toy_pairs


def test_parallelograms_of_plain_and_modular_addition():
    grams = parallelograms(10)
    assert len(grams) == len({tuple(g) for g in grams.tolist()})
    assert (grams[:, 0] + grams[:, 1] == grams[:, 2] + grams[:, 3]).all()
    # Liu et al.'s enumeration: i < j <= m < n with i + n = j + m
    liu = sum(1 for i in range(10) for j in range(i + 1, 10) for m in range(j, 10)
              for n in range(m + 1, 10) if i + n == j + m)
    assert len(grams) == liu
    modular = parallelograms(7, modulus=7)
    assert ((modular[:, 0] + modular[:, 1] - modular[:, 2] - modular[:, 3]) % 7 == 0).all()
    assert len(modular) > len(parallelograms(7))


def test_rqi_is_one_for_a_line_and_near_zero_for_random_embeddings():
    grams = parallelograms(10)
    u = torch.tensor([0.3, -1.2, 2.0])
    line = torch.arange(10.0)[:, None] * u
    assert rqi(line, grams) == 1.0
    assert rqi(line + 5.0, grams) == 1.0  # translation and scale free
    random = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    assert rqi(random, grams) < 0.05
    assert effective_loss(line, grams) == pytest.approx(0, abs=1e-12)
    assert effective_loss(random, grams) > 1


def test_ideal_accuracy_is_one_with_enough_parallelograms_and_zero_without():
    pairs = toy_pairs(10)
    train = torch.ones(len(pairs), dtype=torch.bool)
    test_ids = torch.tensor([3, 17, 40])
    train[test_ids] = False
    assert ideal_accuracy(10, pairs[train], pairs[test_ids]) == 1.0
    # two training pairs with different sums imply no parallelogram at all
    assert ideal_accuracy(10, pairs[[0, 1]], pairs[[5, 9]]) == 0.0
    grams = parallelograms(10)
    assert len(parallelograms_within(grams, pairs[[0, 1]])) == 0


def test_predicted_accuracy_follows_the_representation():
    pairs = toy_pairs(10)
    train, test = pairs[::2], pairs[1::2]
    line = torch.arange(10.0)[:, None]
    assert predicted_accuracy(line, train, test) == pytest.approx(
        ideal_accuracy(10, train, test))
    random = torch.randn(10, 1, generator=torch.Generator().manual_seed(1))
    assert predicted_accuracy(random, train, test) < 0.3


def test_projection_recovers_a_plane():
    coords = torch.randn(20, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    basis = torch.linalg.qr(torch.randn(5, 2, dtype=torch.float64))[0]
    result = embedding_projection(coords @ basis.T)
    assert result.coordinates.shape == (20, 2)
    assert result.explained_variance_ratio.sum().item() == pytest.approx(1)
    one_d = embedding_projection(torch.arange(5.0)[:, None])
    assert (one_d.coordinates[:, 1] == 0).all()
