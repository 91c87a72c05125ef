"""Lazy-versus-rich measures, checked against known answers."""

import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, small_config

from interp.analysis.lazy_rich import (
    LazyRichData,
    detached,
    fourier_modes,
    fourier_overlap,
    hidden_activations,
    kernel_alignment,
    kernel_distance,
    kernel_regression,
    label_matrix,
    lazy_rich_curve,
    linear_cka,
    linearisation,
    ntk_gram,
    parameter_movement,
    probe_indices,
    top_eigenvectors,
    trainable_weights,
)
from interp.models import build_model
from interp.runs import Run
from interp.tasks import build_task
from interp.train.loop import TrainOptions, train
from interp.train.objective import build_objective, functional_output

QUIET = TrainOptions(device="cpu", quiet=True)


def _mlp(n_in=4, hidden=6, n_out=3, seed=0):
    torch.manual_seed(seed)  # module init only; every draw in the measures is seeded
    return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.Tanh(),
                               torch.nn.Linear(hidden, n_out))


def _functional(module):
    return lambda params, x: torch.func.functional_call(module, params, (x,))


def _explicit_jacobian(module, inputs):
    """[n, n_outputs, P] by one autograd.grad call per example and output."""
    params = list(module.parameters())
    rows = []
    for x in inputs:
        out = module(x.unsqueeze(0))[0]
        rows.append(torch.stack([
            torch.cat([g.flatten() for g in torch.autograd.grad(out[o], params,
                                                                retain_graph=True)])
            for o in range(len(out))]))
    return torch.stack(rows)


def test_ntk_gram_equals_j_jt_from_an_explicit_per_example_loop():
    mlp = _mlp()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(10, 4, generator=generator)
    y = torch.randint(0, 3, (10,), generator=generator)
    jac = _explicit_jacobian(mlp, x).double()
    kernels = ntk_gram(_functional(mlp), trainable_weights(mlp), x, y, chunk_size=3)
    trace = torch.einsum("iop,jop->ij", jac, jac)
    correct = jac[torch.arange(10), y]
    torch.testing.assert_close(kernels["trace"], trace, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(kernels["correct_class"], correct @ correct.T, rtol=1e-5,
                               atol=1e-6)


def test_transformer_ntk_through_the_fast_path_equals_the_bridge_jacobian():
    """The vmap'd per-example gradients of the fast path give the kernel of the
    TransformerBridge forward, computed example by example with autograd."""
    config = small_config()
    task = build_task(config.task)
    model = build_model(config.model, task)
    x, y = task.inputs[:5], task.targets[:5]
    params = trainable_weights(model)
    kernels = ntk_gram(functional_output(config.model, model, fast=True), params, x, y,
                       chunk_size=2)
    rows = []
    for tokens, label in zip(x, y, strict=True):
        logit = model(tokens.unsqueeze(0))[0, -1, label]
        rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(
            logit, list(params.values()))]))
    jac = torch.stack(rows).double()
    torch.testing.assert_close(kernels["correct_class"], jac @ jac.T, rtol=1e-4, atol=1e-4)


def test_alignment_is_one_for_the_label_kernel_and_near_zero_for_an_unrelated_one():
    generator = torch.Generator().manual_seed(0)
    classes = torch.randint(0, 5, (300,), generator=generator)
    labels = label_matrix(classes, 5)
    assert kernel_alignment(labels @ labels.T, labels) == pytest.approx(1.0, abs=1e-12)
    assert kernel_alignment(7.0 * labels @ labels.T + 2.0, labels) == pytest.approx(1.0)
    z = torch.randn(300, 1, generator=generator, dtype=torch.float64)
    unrelated = torch.exp(-(z - z.T) ** 2)  # a smooth kernel of a feature unrelated to Y
    assert abs(kernel_alignment(unrelated, labels)) < 0.05
    # equal parts (in centred Frobenius norm) of the two: about 1 / sqrt(2)
    centring = torch.eye(300, dtype=torch.float64) - 1 / 300
    label_part, other_part = (centring @ k @ centring for k in (labels @ labels.T, unrelated))
    mixed = label_part / label_part.norm() + other_part / other_part.norm()
    assert kernel_alignment(mixed, labels) == pytest.approx(1 / math.sqrt(2), abs=0.05)


def test_kernel_distance_is_zero_at_initialisation_and_scale_free():
    config = small_config()
    task = build_task(config.task)
    model = build_model(config.model, task)
    f = functional_output(config.model, model)
    params = trainable_weights(model)
    x, y = task.inputs[:16], task.targets[:16]
    first, again = ntk_gram(f, params, x, y), ntk_gram(f, params, x, y)
    for kind in first:
        assert kernel_distance(first[kind], again[kind]) == pytest.approx(0.0, abs=1e-12)
        assert kernel_distance(first[kind], 5 * first[kind]) == pytest.approx(0.0, abs=1e-12)
    moved = {k: v + 0.3 * torch.randn(v.shape, generator=torch.Generator().manual_seed(1))
             for k, v in detached(params).items()}
    later = ntk_gram(f, moved, x, y)
    for kind in first:
        assert kernel_distance(first[kind], later[kind]) > 1e-4, kind


def test_linearisation_is_exact_for_a_model_linear_in_its_parameters():
    generator = torch.Generator().manual_seed(0)
    features = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh()).requires_grad_(False)
    head = torch.nn.Linear(8, 3, bias=False)
    model = torch.nn.Sequential(features, head)  # f = W tanh(A x): linear in W
    x, y = torch.randn(30, 4, generator=generator), torch.randint(0, 3, (30,),
                                                                     generator=generator)
    initial = detached(trainable_weights(model))
    assert list(initial) == ["1.weight"]
    far = {"1.weight": initial["1.weight"] + 5 * torch.randn(3, 8, generator=generator)}
    result = linearisation(_functional(model), initial, far, x, y, F.cross_entropy)
    assert result.gap < 1e-6
    assert result.linearised_loss == pytest.approx(result.loss, rel=1e-6)
    # ... and not for a model that is not
    mlp = _mlp(n_in=4)
    start = detached(trainable_weights(mlp))
    moved = {k: v + torch.randn(v.shape, generator=generator) for k, v in start.items()}
    assert linearisation(_functional(mlp), start, moved, x, y, F.cross_entropy).gap > 0.05


def test_parameter_movement_total_and_per_weight():
    initial = {"a": torch.tensor([3.0, 4.0]), "b": torch.tensor([0.0, 0.0, 5.0, 0.0])}
    current = {"a": torch.tensor([3.0, 4.0]) * 1.5, "b": torch.tensor([0.0, 0.0, 5.0, 5.0])}
    movement = parameter_movement(initial, current)
    assert movement.per_weight == pytest.approx({"a": 0.5, "b": 1.0})
    assert movement.total == pytest.approx(math.hypot(2.5, 5.0) / math.hypot(5.0, 5.0))


def test_kernel_regression_is_where_gradient_descent_on_a_linear_model_ends():
    """Gradient descent on MSE from theta_0 for f = phi(x) . theta converges to kernel
    regression with K = phi phi^T, offset by f(theta_0) (Lee et al. 2019)."""
    generator = torch.Generator().manual_seed(0)
    phi_train = torch.randn(12, 40, generator=generator, dtype=torch.float64)
    phi_test = torch.randn(7, 40, generator=generator, dtype=torch.float64)
    targets = torch.randn(12, 2, generator=generator, dtype=torch.float64)
    theta0 = torch.randn(40, 2, generator=generator, dtype=torch.float64)
    theta = theta0.clone()
    kernel = phi_train @ phi_train.T
    lr = 1.0 / torch.linalg.eigvalsh(kernel).max()
    for _ in range(4000):
        theta -= lr * phi_train.T @ (phi_train @ theta - targets)
    predicted = kernel_regression(kernel, phi_test @ phi_train.T, targets,
                                  phi_train @ theta0, phi_test @ theta0)
    torch.testing.assert_close(predicted, phi_test @ theta, rtol=1e-8, atol=1e-8)
    # one output column, centred (f_0 = 0), and a ridge that shrinks towards f_0
    scalar = kernel_regression(kernel, phi_test @ phi_train.T, targets[:, 0])
    assert scalar.shape == (7,)
    assert kernel_regression(kernel, phi_test @ phi_train.T, targets[:, 0], ridge=1e9
                             ).abs().max() < 1e-6


def test_linear_cka_known_answers():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 10, generator=generator)
    rotation, _ = torch.linalg.qr(torch.randn(10, 10, generator=generator))
    assert linear_cka(x, 3 * x @ rotation + 1) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, torch.randn(200, 10, generator=generator)) < 0.1


def test_top_eigenvectors_find_the_fourier_modes_of_a_fourier_kernel():
    p = 23
    generator = torch.Generator().manual_seed(0)
    values = torch.randint(0, p, (150,), generator=generator)
    modes = fourier_modes(values, p, [3])
    kernel = modes @ modes.T + 0.01 * torch.eye(150, dtype=torch.float64)
    top = top_eigenvectors(kernel, 3)
    assert top.values[0] >= top.values[1] >= top.values[2]
    overlap = fourier_overlap(top.vectors, modes)
    assert overlap[:2].min() > 0.999 and overlap[2] < 0.05
    assert fourier_overlap(top.vectors[:, :2], fourier_modes(values, p, [7])).max() < 0.1


def test_probe_indices_are_seeded_distinct_and_capped():
    pool = torch.arange(100, 200)
    a, b = probe_indices(pool, 30, seed=4), probe_indices(pool, 30, seed=4)
    assert torch.equal(a, b) and len(set(a.tolist())) == 30 and a.min() >= 100
    assert not torch.equal(a, probe_indices(pool, 30, seed=5))
    assert len(probe_indices(pool, 1000)) == 100


def _curve(run_dir, n_probes=24, hooks=("blocks.0.mlp.hook_post",), kinds=("correct_class",
                                                                          "trace")):
    run = Run.load(run_dir)
    task = run.task()
    objective = build_objective(run.config, run.model(0), run.weights(0))
    probes = probe_indices(task.test_idx, n_probes)
    data = LazyRichData(task.inputs[probes], task.targets[probes], task.train_inputs,
                        task.train_targets, task.test_inputs, task.test_targets,
                        lambda out, y: F.cross_entropy(out.double(), y), task.n_outputs)
    return lazy_rich_curve(objective, run.iter_models(), data, kinds=kinds, hook_names=hooks)


def test_lazy_rich_curve_over_a_run(tmp_path):
    config = small_config(schedule={"epochs": 60, "checkpoint_every": 30})
    train(config, tmp_path / "run", QUIET)
    curve = _curve(tmp_path / "run")
    assert list(curve["epoch"]) == [0, 30, 60]
    start, end = curve.iloc[0], curve.iloc[-1]
    for column in ("kernel_distance/trace", "kernel_distance/correct_class", "movement",
                   "movement/blocks.0.mlp.in.weight", "lin_gap_train"):
        assert start[column] == pytest.approx(0.0, abs=1e-9), column
        assert end[column] > 1e-3, column
    assert start["cka/blocks.0.mlp.hook_post"] == pytest.approx(1.0)
    assert end["cka/blocks.0.mlp.hook_post"] < 1.0
    metrics = Run.load(tmp_path / "run").metrics.set_index("epoch")
    assert end["test_loss"] == pytest.approx(metrics.loc[60, "test_loss"], rel=1e-5)
    assert start["lin_test_loss"] == pytest.approx(start["test_loss"])
    assert -1 <= end["alignment/trace"] <= 1


def test_large_alpha_keeps_the_network_closer_to_its_linearisation(tmp_path):
    """Kumar et al. sec. 5.1 / Chizat et al.: the same training with a large output scale
    stays lazy (small linearisation gap, kernel barely moves); alpha = 1 does not."""
    ends = {}
    for alpha in (1.0, 30.0):
        config = small_config(objective={"centered": True, "alpha": alpha},
                              schedule={"epochs": 150, "checkpoint_every": 150})
        train(config, tmp_path / str(alpha), QUIET)
        ends[alpha] = _curve(tmp_path / str(alpha), hooks=(), kinds=("correct_class",)
                             ).iloc[-1]
    lazy, rich = ends[30.0], ends[1.0]
    # both learn (the lazy one slowly: 3.14 -> 2.83 here, the rich one to 0.04) ...
    assert rich["train_loss"] < 0.5 * math.log(23) and lazy["train_loss"] < 0.95 * math.log(23)
    # ... but only the rich one leaves its tangent space (gap 0.23 vs 0.98 when written)
    assert lazy["lin_gap_train"] < 0.3 * rich["lin_gap_train"], (lazy, rich)
    assert lazy["kernel_distance/correct_class"] < 0.3 * rich["kernel_distance/correct_class"]
    assert lazy["movement"] < 0.3 * rich["movement"]


_MEMORY_SCRIPT = """
import json, resource, torch
from interp.analysis.lazy_rich import ntk_gram, probe_indices, trainable_weights
from interp.config import ModularTask, TransformerModel
from interp.models import build_model
from interp.tasks import build_task
from interp.train.objective import functional_output
task = build_task(ModularTask())
model = build_model(TransformerModel(), task)
f = functional_output(TransformerModel(), model)
probes = probe_indices(torch.arange(len(task.inputs)), 512)
x, y = task.inputs[probes], task.targets[probes]
with torch.no_grad():
    f(trainable_weights(model), x)  # warm up allocator and caches
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kernel = ntk_gram(f, trainable_weights(model), x, y, kinds=("correct_class",))["correct_class"]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_increase_mb": (after - before) / 1024, "shape": list(kernel.shape),
                  "symmetric": bool(torch.allclose(kernel, kernel.T)),
                  "parameters": sum(v.numel() for v in trainable_weights(model).values())}))
"""


def test_nanda_model_ntk_on_512_probes_stays_within_its_stated_memory():
    """ntk_gram's docstring: 463 MB for J + 58 MB per chunk, under 1 GB above the model's
    footprint for the Nanda model on 512 probes. Peak RSS in a fresh process."""
    result = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT], cwd=REPO, text=True,
                            capture_output=True, timeout=600,
                            env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                                 "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["parameters"] == 226_048 and report["shape"] == [512, 512]
    assert report["symmetric"]
    # The bound of the docstring. (No lower bound: the peak-RSS increase can stay below J's
    # 463 MB when the allocator reuses pages the warm-up already touched.)
    assert report["peak_increase_mb"] < 1024, report


def test_hidden_activations_take_the_last_position():
    config = small_config()
    task = build_task(config.task)
    model = build_model(config.model, task)
    acts = hidden_activations(model, task.inputs[:7], ["blocks.0.mlp.hook_post"])
    assert acts["blocks.0.mlp.hook_post"].shape == (7, 64)
    every = hidden_activations(model, task.inputs[:7], ["blocks.0.mlp.hook_post"],
                               position=None)
    assert every["blocks.0.mlp.hook_post"].shape == (7, 3 * 64)
