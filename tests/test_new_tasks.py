"""The generated and loaded data sets: polynomial regression (and variants), student-teacher,
digits and toy addition; generated data survive the run directory exactly."""

import math

import pytest
import torch

from interp.config import (
    CommitteeModel,
    DigitsTask,
    PolynomialTask,
    RunConfig,
    TeacherTask,
    ToyAdditionTask,
)
from interp.runs import Run
from interp.tasks import build_task
from interp.tasks.polynomial import hermite, initial_ntk_gram
from interp.train.loop import TrainOptions, train


def test_polynomial_targets_are_half_squared_projections_on_a_unit_beta():
    task = build_task(PolynomialTask(dim=30, n_train=40, n_test=60, data_seed=3))
    beta = task.info["directions"]
    assert beta.shape == (1, 30) and torch.linalg.norm(beta).item() == pytest.approx(1, abs=1e-6)
    torch.testing.assert_close(task.targets[:, 0], (task.inputs @ beta[0]) ** 2 / 2)
    assert len(task.train_idx) == 40 and len(task.test_idx) == 60
    again = build_task(PolynomialTask(dim=30, n_train=40, n_test=60, data_seed=3))
    assert torch.equal(task.inputs, again.inputs)


def test_multi_index_directions_are_orthonormal():
    task = build_task(PolynomialTask(target="multi_index", n_directions=3, dim=20))
    B = task.info["directions"]
    torch.testing.assert_close(B @ B.T, torch.eye(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(task.targets[:, 0], (task.inputs @ B.T).pow(2).sum(1) / 2)


def test_hermite_polynomials_are_orthogonal_with_norm_k_factorial():
    z = torch.randn(400_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert hermite(z, 3).mul(hermite(z, 3)).mean().item() == pytest.approx(6, rel=0.03)
    assert abs(hermite(z, 3).mul(hermite(z, 2)).mean().item()) < 0.03
    torch.testing.assert_close(hermite(z, 4), z**4 - 6 * z**2 + 3)
    task = build_task(PolynomialTask(target="hermite", degree=3, n_train=50, n_test=50))
    projection = task.inputs @ task.info["directions"][0]
    torch.testing.assert_close(task.targets[:, 0], hermite(projection, 3) / math.sqrt(6))


def test_ntk_gram_equals_explicit_jacobian_product():
    task = build_task(PolynomialTask(dim=5, n_train=6, n_test=2))
    from interp.models import build_model

    model = build_model(CommitteeModel(width=3, eps=0.5), task)
    rows = []
    for x in task.inputs:
        model.zero_grad()
        model(x[None]).sum().backward()
        rows.append(model.W.grad.flatten().clone())
    J = torch.stack(rows).double()
    torch.testing.assert_close(initial_ntk_gram(model, task.inputs, chunk=3), J @ J.T,
                               rtol=1e-5, atol=1e-8)


def test_ntk_eigenvector_labels_are_the_kth_eigenvector():
    config = PolynomialTask(target="ntk_eigenvector", eigen_index=2, dim=8, n_train=30,
                            n_test=10)
    model = CommitteeModel(width=4, eps=0.25)
    task = build_task(config, model)
    labels = task.targets[:, 0].double()
    assert labels.pow(2).mean().item() == pytest.approx(1, rel=1e-4)
    from interp.models import build_model

    K = initial_ntk_gram(build_model(model, task), task.inputs)
    K = K - K.mean()
    eigenvalues = torch.linalg.eigvalsh(K)
    rayleigh = labels @ K @ labels / (labels @ labels)
    assert rayleigh.item() == pytest.approx(eigenvalues[-2].item(), rel=1e-4)


def test_teacher_labels_come_from_the_teacher_network():
    task = build_task(TeacherTask(n_train=20, n_test=10))
    assert task.inputs.shape == (30, 5) and task.targets.shape == (30, 5)
    assert task.target_type == "real" and task.targets.std() > 0.01
    other = build_task(TeacherTask(n_train=20, n_test=10, teacher_seed=1))
    assert torch.equal(task.inputs, other.inputs)
    assert not torch.allclose(task.targets, other.targets)


@pytest.mark.parametrize("source, pixels", [("sklearn", 64), ("mnist", 784)])
def test_digits_sources(source, pixels):
    task = build_task(DigitsTask(source=source, n_train=100))
    assert task.inputs.shape[1] == pixels and len(task.train_idx) == 100
    assert 0 <= task.inputs.min() and task.inputs.max() <= 1
    assert set(task.targets.tolist()) == set(range(10)) and task.info["source"] == source


def test_toy_addition_is_unordered_pairs_with_sum_labels():
    task = build_task(ToyAdditionTask(p=10))
    assert len(task.inputs) == 55 and (task.inputs[:, 0] <= task.inputs[:, 1]).all()
    assert torch.equal(task.targets, task.inputs.sum(1)) and task.n_outputs == 19
    scalar = build_task(ToyAdditionTask(p=10, output="scalar"))
    assert scalar.targets.shape == (55, 1) and scalar.target_type == "integer"


def test_generated_data_are_stored_with_the_run(tmp_path):
    config = RunConfig.from_dict({
        "task": {"kind": "polynomial", "dim": 6, "n_train": 20, "n_test": 10},
        "model": {"kind": "committee", "width": 8}, "optim": {"name": "sgd", "lr": 1},
        "objective": {"loss": "mse"}, "schedule": {"epochs": 2, "checkpoint_every": 1}})
    train(config, tmp_path / "run", TrainOptions(device="cpu", quiet=True))
    stored = Run.load(tmp_path / "run").task()
    built = build_task(config.task)
    assert torch.equal(stored.inputs, built.inputs) and torch.equal(stored.targets,
                                                                     built.targets)
    assert torch.equal(stored.info["directions"], built.info["directions"])
    assert math.isclose(stored.targets.sum().item(), built.targets.sum().item())
