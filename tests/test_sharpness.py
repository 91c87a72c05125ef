"""Sharpness (top Hessian eigenvalue of the training loss), checked against exact Hessians."""

import pytest
import torch
import torch.nn.functional as F
from conftest import small_config

from interp.analysis.lazy_rich import trainable_weights
from interp.analysis.sharpness import (
    SharpnessOverrides,
    SharpnessSettings,
    hessian_vector_product,
    overrides_entry,
    resolve_sharpness,
    top_hessian_eigenvalue,
    training_loss,
    training_subset,
)
from interp.analyzers import Context, Options
from interp.analyzers import sharpness as analyzer
from interp.errors import UserError
from interp.models import build_model
from interp.run_analysis import recorded_settings
from interp.runs import AnalysisStore, Run, checkpoint_path, save_tensors
from interp.tasks import build_task
from interp.train.loop import TrainOptions, train
from interp.train.losses import build_loss
from interp.train.objective import build_objective

SHAPES = {"w1": (5, 3), "b1": (5,), "w2": (3, 5)}
SIZES = [torch.Size(shape).numel() for shape in SHAPES.values()]


def _mlp_loss(seed: int = 1):
    """A tanh MLP's cross-entropy on 20 random examples (float64), as a function of a dict of
    weights and of the flat vector of them, and a random point theta [38]. At seed 1 its
    Hessian's eigenvalues run from -3.79 to 1.68: the most negative is the largest in size."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(20, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (20,), generator=g)

    def loss(p):
        return F.cross_entropy(torch.tanh(x @ p["w1"].T + p["b1"]) @ p["w2"].T, y)

    def unflat(v):
        return {n: p.view(s) for (n, s), p in zip(SHAPES.items(), v.split(SIZES), strict=True)}

    theta = 2 * torch.randn(sum(SIZES), generator=g, dtype=torch.float64)
    return loss, unflat, theta


def _exact_hessian(seed: int = 1):
    loss, unflat, theta = _mlp_loss(seed)
    return torch.autograd.functional.hessian(lambda v: loss(unflat(v)), theta)


def test_hessian_vector_product_equals_the_exact_hessian_times_the_vector():
    loss, unflat, theta = _mlp_loss()
    vector = torch.randn(len(theta), generator=torch.Generator().manual_seed(5),
                         dtype=torch.float64)
    product = hessian_vector_product(loss, unflat(theta))(unflat(vector))
    flat = torch.cat([product[name].reshape(-1) for name in SHAPES])
    torch.testing.assert_close(flat, _exact_hessian() @ vector, rtol=1e-10, atol=1e-12)


def test_top_eigenvalue_is_the_largest_algebraic_eigenvalue_of_an_indefinite_hessian():
    eigenvalues = torch.linalg.eigvalsh(_exact_hessian())
    # negative curvature larger in size than the top: power iteration on H would find -3.79
    assert eigenvalues[0] < -2 * eigenvalues[-1] < 0
    loss, unflat, theta = _mlp_loss()
    top = top_hessian_eigenvalue(loss, unflat(theta), SharpnessSettings(tolerance=1e-8))
    assert top.converged and top.residual <= 1e-8
    assert top.eigenvalue == pytest.approx(float(eigenvalues[-1]), rel=1e-8)
    assert 2 <= top.matvecs <= len(theta)
    assert sum(top.weight_shares.values()) == pytest.approx(1.0)
    # the shares are those of the exact top eigenvector
    vector = torch.linalg.eigh(_exact_hessian())[1][:, -1]
    exact = [float(piece.square().sum()) for piece in vector.split(SIZES)]
    assert list(top.weight_shares.values()) == pytest.approx(exact, abs=1e-6)


def test_default_tolerance_bounds_the_eigenvalue_error():
    top_exact = float(torch.linalg.eigvalsh(_exact_hessian(8))[-1])
    loss, unflat, theta = _mlp_loss(8)
    top = top_hessian_eigenvalue(loss, unflat(theta))
    assert top.converged
    assert abs(top.eigenvalue - top_exact) <= SharpnessSettings().tolerance * top_exact


def test_lanczos_is_seeded_and_stops_at_max_matvecs():
    loss, unflat, theta = _mlp_loss()
    params = unflat(theta)
    first, again = (top_hessian_eigenvalue(loss, params, SharpnessSettings(seed=3))
                    for _ in range(2))
    assert first == again  # bitwise: same start vector, same products
    other = top_hessian_eigenvalue(loss, params, SharpnessSettings(seed=4))
    assert other.eigenvalue == pytest.approx(first.eigenvalue, rel=1e-3)
    assert other.eigenvalue != first.eigenvalue
    capped = top_hessian_eigenvalue(loss, params, SharpnessSettings(tolerance=1e-12,
                                                                     max_matvecs=3))
    assert capped.matvecs == 3 and not capped.converged and capped.residual > 1e-12


def test_non_finite_products_give_a_missing_value():
    top = top_hessian_eigenvalue(lambda p: (p["w"] ** 2).sum() * float("nan"),
                                 {"w": torch.ones(4)})
    assert top.eigenvalue != top.eigenvalue and not top.converged and top.matvecs == 1


def test_transformer_hessian_vector_product_through_the_fast_path_equals_double_backward():
    """The objective of the transformer (its stateless fast path) composes with
    forward-over-reverse: H v equals reverse-over-reverse autograd on the bridge."""
    config = small_config()
    task = build_task(config.task)
    model = build_model(config.model, task, "cpu")
    objective = build_objective(config, model, model.state_dict())
    loss = training_loss(objective, build_loss("cross_entropy", "float64"),
                         task.train_inputs[:64], task.train_targets[:64])
    weights = trainable_weights(model)
    g = torch.Generator().manual_seed(0)
    vector = {name: torch.randn(w.shape, generator=g) for name, w in weights.items()}
    fast = hessian_vector_product(loss, {n: w.detach() for n, w in weights.items()})(vector)
    outputs = model(task.train_inputs[:64])[:, -1]
    gradient = torch.autograd.grad(F.cross_entropy(outputs.double(), task.train_targets[:64]),
                                   list(weights.values()), create_graph=True)
    slow = torch.autograd.grad(sum((a * vector[n]).sum() for a, n in zip(gradient, weights,
                                                                          strict=True)),
                               list(weights.values()))
    for name, expected in zip(weights, slow, strict=True):
        torch.testing.assert_close(fast[name], expected, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize(("overrides", "flag"), [
    (SharpnessOverrides(tolerance=0), "--sharpness-tolerance 0:"),
    (SharpnessOverrides(tolerance=1.5), "--sharpness-tolerance 1.5:"),
    (SharpnessOverrides(max_matvecs=1), "--sharpness-max-matvecs 1:"),
    (SharpnessOverrides(max_matvecs=2.5), "--sharpness-max-matvecs 2.5:"),
    (SharpnessOverrides(examples=0), "--sharpness-examples 0:"),
    (SharpnessOverrides(examples="some"), "--sharpness-examples some:"),
    (SharpnessOverrides(seed=-1), "--sharpness-seed -1:"),
])
def test_settings_out_of_range_name_their_flag_on_one_line(overrides, flag):
    with pytest.raises(UserError) as err:
        resolve_sharpness(overrides)
    assert str(err.value).startswith(flag) and "\n" not in str(err.value)


def test_overrides_resolve_and_round_trip_through_the_summary():
    assert resolve_sharpness() == SharpnessSettings()
    assert SharpnessSettings().examples is None  # the default: the whole training loss
    settings = resolve_sharpness(SharpnessOverrides(examples=100, tolerance=1e-4))
    assert (settings.examples, settings.tolerance, settings.max_matvecs) == (100, 1e-4, 60)
    assert resolve_sharpness(SharpnessOverrides(examples="all")).examples is None
    for settings in (SharpnessSettings(), SharpnessSettings(examples=7, seed=2)):
        recorded = recorded_settings("sharpness", overrides_entry(settings))
        assert resolve_sharpness(recorded) == settings
    assert recorded_settings("sharpness", {"tolerance": 2}) is None
    assert recorded_settings("sharpness",
                             {**overrides_entry(SharpnessSettings()), "seed": -1}) is None
    assert training_subset(10, None, 0) is None and training_subset(10, 10, 0) is None
    subset = training_subset(10, 4, 0)
    assert len(set(subset.tolist())) == 4 and torch.equal(subset, training_subset(10, 4, 0))


def _context(run_dir, epochs=None, **overrides) -> Context:
    run = Run.load(run_dir)
    return Context(run, run.task(), AnalysisStore(run_dir / "analysis"),
                   Options(sharpness=SharpnessOverrides(**overrides)),
                   epochs or run.checkpoint_epochs, quiet=True)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("sharpness") / "run"
    train(small_config(schedule={"epochs": 60, "checkpoint_every": 30}), path,
          TrainOptions(device="cpu", quiet=True))
    return path


def test_analyzer_over_a_run_is_cached_per_checkpoint(short_run):
    result = analyzer.analyze(_context(short_run))
    assert result.computed == 3 and list(result.measures["epoch"]) == [0, 30, 60]
    assert result.measures["converged"].all() and (result.measures["sharpness"] > 0).all()
    assert result.examples == len(Run.load(short_run).task().train_idx)
    assert result.summary["sharpness_max"] == result.measures["sharpness"].max()
    assert result.measures.set_index("epoch")["sharpness"][result.peak_epoch] == result.maximum
    assert result.final == result.measures["sharpness"].iloc[-1]
    assert result.summary["settings"] == overrides_entry(SharpnessSettings())
    # the value at epoch 60 is the top eigenvalue of the run's own training loss there
    run = Run.load(short_run)
    task = run.task()
    model = build_model(run.config.model, task, "cpu")
    model.load_state_dict(run.weights(60))
    loss = training_loss(build_objective(run.config, model, run.weights(0)),
                         build_loss("cross_entropy", run.config.objective.loss_dtype),
                         task.train_inputs, task.train_targets)
    direct = top_hessian_eigenvalue(
        loss, {n: w.detach() for n, w in trainable_weights(model).items()})
    assert result.final == pytest.approx(direct.eigenvalue, rel=1e-6)

    again = analyzer.analyze(_context(short_run))
    assert again.computed == 0
    assert again.measures.equals(result.measures)
    subset = analyzer.analyze(_context(short_run, [60], examples=50))  # other settings
    assert subset.computed == 1 and subset.examples == 50
    assert subset.final != pytest.approx(result.final, rel=1e-3)


def test_a_checkpoint_with_non_finite_products_is_missing_and_warned(short_run, tmp_path,
                                                                     capsys):
    import shutil

    path = tmp_path / "run"
    shutil.copytree(short_run, path, ignore=shutil.ignore_patterns("analysis"))
    run = Run.load(path)
    # finite weights whose logits overflow float32: the loss and its products are NaN
    save_tensors(checkpoint_path(path, 30),
                 {n: torch.full_like(w, 3e38) if n == "unembed.weight" else w
                  for n, w in run.weights(30).items()},
                 {"epoch": "30", "format": "1"})
    result = analyzer.analyze(_context(path, [30, 60]))
    assert result.missing_epochs == [30] and result.computed == 2
    values = result.measures.set_index("epoch")["sharpness"]
    assert values.isna().tolist() == [True, False]
    assert result.peak_epoch == 60 and result.final == values[60]
    err = capsys.readouterr().err
    assert err.count("warning: sharpness:") == 1 and "0000030.safetensors" in err


def test_an_unconverged_checkpoint_keeps_its_estimate_with_one_warning(short_run, tmp_path,
                                                                       capsys):
    import shutil

    path = tmp_path / "run"
    shutil.copytree(short_run, path, ignore=shutil.ignore_patterns("analysis"))
    result = analyzer.analyze(_context(path, [30, 60], tolerance=1e-9, max_matvecs=2))
    assert result.unconverged_epochs == [30, 60] and not result.missing_epochs
    assert (result.measures["matvecs"] == 2).all() and (result.measures["sharpness"] > 0).all()
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "--sharpness-max-matvecs" in err


def test_sharpness_of_a_linearised_run_is_that_of_its_linearised_loss():
    """The linearised objective f_lin is linear in theta: with MSE its loss is quadratic and
    its Hessian 2/(n C) J_0^T J_0, whose top eigenvalue is the NTK Gram's top eigenvalue."""
    config = small_config(objective={"loss": "mse", "linearized": True})
    task = build_task(config.task)
    model = build_model(config.model, task, "cpu")
    objective = build_objective(config, model, model.state_dict())
    inputs, targets = task.train_inputs[:16], task.train_targets[:16]
    loss = training_loss(objective, build_loss("mse", "float64"), inputs, targets)
    weights = {n: w.detach() for n, w in trainable_weights(model).items()}
    top = top_hessian_eigenvalue(loss, weights, SharpnessSettings(tolerance=1e-6,
                                                                  max_matvecs=200))
    jacobian = torch.func.jacrev(lambda p: objective(p, inputs))(weights)  # [n, C, ...]
    flat = torch.cat([j.flatten(2) for j in jacobian.values()], -1).flatten(0, 1).double()
    gram = flat @ flat.T * 2 / flat.shape[0]
    assert top.converged
    assert top.eigenvalue == pytest.approx(float(torch.linalg.eigvalsh(gram)[-1]), rel=1e-3)
