"""Kumar et al.'s committee machine: the exact loss decomposition against Monte Carlo, and
the statistics v, M against the network itself."""

import math

import pytest
import torch

from interp.analysis.committee import (
    committee_loss_decomposition,
    effective_statistics,
    summary_statistics,
)
from interp.config import CommitteeModel, PolynomialTask
from interp.models import build_model
from interp.tasks import build_task


def _monte_carlo_mse(model, directions, n, seed):
    """Mean squared error of model against sum_k (beta_k.x)^2/2 on n Gaussian inputs, and
    the standard error of that mean."""
    x = torch.randn(n, directions.shape[1], generator=torch.Generator().manual_seed(seed),
                    dtype=torch.float64)
    with torch.no_grad():
        f = model(x)[:, 0]
    y = (x @ directions.T.double()).pow(2).sum(1) / 2
    errors = (f - y).pow(2)
    return errors.mean().item(), errors.std().item() / math.sqrt(n)


@pytest.mark.parametrize("n_directions, scale", [(1, 1.0), (3, 1.6)])
def test_decomposition_sums_to_the_monte_carlo_test_loss(n_directions, scale):
    D = 12
    task = build_task(PolynomialTask(target="multi_index" if n_directions > 1 else
                                     "single_index", n_directions=n_directions, dim=D,
                                     n_train=4, n_test=4))
    model = build_model(CommitteeModel(width=40, eps=0.7, seed=2), task).double()
    with torch.no_grad():  # move away from init so that every term is sizeable
        model.W.mul_(scale).add_(0.8 * task.info["directions"].double().sum(0))
    v, M = summary_statistics(model.W)
    parts = committee_loss_decomposition(v, M, task.info["directions"], eps=0.7)
    assert min(parts.linear, parts.scale, parts.alignment) > 1e-3
    mse, stderr = _monte_carlo_mse(model, task.info["directions"], 400_000, seed=5)
    assert abs(parts.total - mse) < 4 * stderr, (parts, mse, stderr)
    assert parts.total == pytest.approx(parts.linear + parts.scale + parts.alignment)


def test_statistics_reproduce_the_network_output():
    task = build_task(PolynomialTask(dim=10, n_train=20, n_test=5))
    model = build_model(CommitteeModel(width=30, eps=0.3), task)
    v, M = summary_statistics(model.W)
    x = task.inputs.double()
    predicted = x @ v / math.sqrt(10) + 0.3 / (2 * 10) * ((x @ M) * x).sum(1)
    torch.testing.assert_close(model(task.inputs)[:, 0].double(), predicted, rtol=1e-4,
                               atol=1e-5)


def test_centred_statistics_with_alpha_describe_the_scaled_difference():
    W0 = torch.randn(20, 6, generator=torch.Generator().manual_seed(0))
    W = W0 + 0.3 * torch.randn(20, 6, generator=torch.Generator().manual_seed(1))
    v, M = effective_statistics(W, W0, alpha=4.0, centred=True)
    (v1, M1), (v0, M0) = summary_statistics(W), summary_statistics(W0)
    torch.testing.assert_close(v, 4 * (v1 - v0))
    torch.testing.assert_close(M, 4 * (M1 - M0))
    perfect = committee_loss_decomposition(torch.zeros(6), 6 / 0.5 * torch.outer(
        torch.eye(6)[0], torch.eye(6)[0]), torch.eye(6)[:1], eps=0.5)
    assert perfect.total == pytest.approx(0, abs=1e-12)  # v = 0, eps M / D = B


def _epoch_below(metrics, column, fraction):
    """First epoch at which ``column`` falls below ``fraction`` of its initial value."""
    hit = metrics[metrics[column] < fraction * metrics[column].iloc[0]]
    return None if hit.empty else int(hit["epoch"].iloc[0])


def test_larger_alpha_reaches_low_test_loss_later(tmp_path):
    """Kumar et al. Fig. 3a at test size: the lazier (larger alpha) committee machine lowers
    its test loss later, read from the metrics the trainer records."""
    from interp.config import RunConfig
    from interp.runs import Run
    from interp.train.loop import TrainOptions, train

    epochs = {}
    for alpha in (0.5, 4.0):
        config = RunConfig.from_dict({
            "task": {"kind": "polynomial", "dim": 20, "n_train": 120, "n_test": 400},
            "model": {"kind": "committee", "width": 50, "eps": 0.25},
            "optim": {"name": "sgd", "lr": 50, "weight_decay": 0},
            "objective": {"loss": "mse", "centered": True, "alpha": alpha},
            "schedule": {"epochs": 300, "eval_every": 5, "checkpoint_every": 0}})
        train(config, tmp_path / str(alpha), TrainOptions(device="cpu", quiet=True))
        metrics = Run.load(tmp_path / str(alpha)).metrics
        epochs[alpha] = _epoch_below(metrics, "test_loss", 0.5)
        # the recorded decomposition describes the centred, scaled predictor that trains
        assert abs(metrics["decomp_total"].iloc[-1] - metrics["test_loss"].iloc[-1]) < 0.1
    assert epochs[0.5] is not None and epochs[4.0] is not None
    assert epochs[4.0] > 2 * epochs[0.5], epochs
