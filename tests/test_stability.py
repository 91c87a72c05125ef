"""Prieto et al.'s numerical-stability pieces: StableMax cross-entropy, the orthogonal
gradient (alone and in stacks, every optimiser), and the per-evaluation diagnostics
softmax_collapse and grad_weight_cosine."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, TINY, assert_same_run, small_config

from interp.analysis.lazy_rich import trainable_weights
from interp.analysis.stability import grad_weight_cosine, orthogonal_gradient, softmax_collapse
from interp.config import ConfigError, RunConfig
from interp.models import output_fn
from interp.runs import Run
from interp.train.loop import TrainOptions, train, train_stack
from interp.train.losses import StackedRows, build_loss, per_example_loss

OPTIONS = TrainOptions(device="cpu", quiet=True)
SCHEDULE = {"epochs": 8, "eval_every": 2, "checkpoint_every": 4}
COLUMNS = ("train_loss", "test_loss", "train_acc", "test_acc", "weight_norm",
           "softmax_collapse", "grad_weight_cosine")


# --- StableMax -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stablemax_cross_entropy_matches_a_hand_computation(dtype):
    # row 0: s = (3, 1/2, 1), label 0: -log(3 / 4.5) = log 1.5
    # row 1: s = (1/4, 2, 3/2), label 2: -log(1.5 / 3.75) = log 2.5
    outputs = torch.tensor([[2.0, -1.0, 0.0], [-3.0, 1.0, 0.5]])
    labels = torch.tensor([0, 2])
    per_row = per_example_loss(outputs, labels, "stablemax", getattr(torch, dtype))
    assert per_row.dtype == getattr(torch, dtype)
    torch.testing.assert_close(per_row.double(), torch.tensor([math.log(1.5), math.log(2.5)],
                                                              dtype=torch.float64))
    assert build_loss("stablemax", dtype)(outputs, labels).item() == pytest.approx(
        (math.log(1.5) + math.log(2.5)) / 2, rel=1e-6)


def test_stablemax_gradient_has_softmax_signs_and_survives_where_softmax_collapses():
    logits = torch.randn(50, 7, generator=torch.Generator().manual_seed(0)) * 3
    labels = torch.randint(7, (50,), generator=torch.Generator().manual_seed(1))
    grads = {}
    for loss in ("stablemax", "cross_entropy"):
        x = logits.clone().requires_grad_()
        build_loss(loss, "float64")(x, labels).backward()
        grads[loss] = x.grad
    # lowering the loss raises the label's logit and lowers every other one, for both
    assert torch.equal(grads["stablemax"].sign(), grads["cross_entropy"].sign())
    assert (grads["stablemax"].gather(1, labels[:, None]) < 0).all()
    # a logit gap of 200: float32 softmax cross-entropy is exactly 0 with a zero gradient;
    # StableMax's s = (201, 1, 1/2) gives log(202.5 / 201) > 0 and a live gradient
    gap = torch.tensor([[200.0, 0.0, -1.0]], requires_grad=True)
    soft = build_loss("cross_entropy", "float32")(gap, torch.tensor([0]))
    soft.backward()
    assert soft.item() == 0 and torch.count_nonzero(gap.grad) == 0
    gap.grad = None
    stable = build_loss("stablemax", "float32")(gap, torch.tensor([0]))
    stable.backward()
    assert stable.item() == pytest.approx(math.log((201 + 1 + 0.5) / 201), rel=1e-4)
    assert torch.count_nonzero(gap.grad) == 3 and torch.isfinite(gap.grad).all()


def test_stablemax_in_a_stack_equals_each_run_alone():
    generator = torch.Generator().manual_seed(2)
    splits = [(torch.zeros(n, 2, dtype=torch.long), torch.randint(5, (n,), generator=generator))
              for n in (6, 4)]
    rows = StackedRows.gather(splits, torch.device("cpu"))
    outputs = torch.randn(2, 6, 5, generator=generator) * 4
    stacked = rows.losses(outputs, "stablemax", torch.float64)
    for i, (_, labels) in enumerate(splits):
        alone = build_loss("stablemax", "float64")(outputs[i, :len(labels)], labels)
        assert stacked[i].item() == pytest.approx(alone.item(), rel=1e-12)


# --- the orthogonal gradient -----------------------------------------------------------------

def test_orthogonal_gradient_is_perpendicular_per_tensor_keeps_norms_and_skips_masked_runs():
    generator = torch.Generator().manual_seed(3)
    grad, weights = torch.randn(3, 30, generator=generator), torch.randn(3, 30, generator=generator)
    grad[:, :10] += 2 * weights[:, :10]  # a gradient much along its tensor
    spans = [(0, 10), (10, 12), (12, 30)]
    active = torch.tensor([True, False, True])
    projected = orthogonal_gradient(grad, weights, spans, active)
    assert torch.equal(projected[1], grad[1])  # not taking it: untouched, bit for bit
    for run in (0, 2):
        for start, stop in spans:
            g, w, new = grad[run, start:stop], weights[run, start:stop], projected[run, start:stop]
            assert abs(torch.dot(new, w).item()) < 1e-5 * new.norm() * w.norm()
            assert new.norm().item() == pytest.approx(g.norm().item(), rel=1e-5)  # rescaled
            perpendicular = g - torch.dot(g, w) / torch.dot(w, w) * w
            torch.testing.assert_close(new / new.norm(), perpendicular / perpendicular.norm())


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_a_stack_with_mixed_orthogonal_gradient_equals_each_run_alone(tmp_path, name):
    lr = 0.3 if name == "sgd" else 3e-3
    base = small_config(optim={"name": name, "lr": lr, "weight_decay": 0.0},
                        objective={"loss": "stablemax", "loss_dtype": "float32"},
                        schedule=SCHEDULE)
    configs = [base.with_overrides([f"model.seed={seed}", f"optim.orthogonal_grad={flag}"])
               for seed, flag in ((1, "true"), (2, "false"))]
    stacked = train_stack(configs, [tmp_path / "s0", tmp_path / "s1"], OPTIONS)
    for i, config in enumerate(configs):
        alone = train_stack([config], [tmp_path / f"alone{i}"], OPTIONS)[0]
        assert_same_run(Run.load(stacked[i]), Run.load(alone), exact=False, columns=COLUMNS)
    if name == "adamw":  # the projection changed the training: without it a run ends elsewhere
        plain = train(configs[0].with_overrides(["optim.orthogonal_grad=false"]),
                      tmp_path / "plain", OPTIONS)
        ortho, flat = Run.load(stacked[0]).weights(8), Run.load(plain).weights(8)
        assert any((ortho[k] - flat[k]).abs().max() > 1e-4 for k in ortho)


def test_an_orthogonal_gradient_run_resumes_to_the_uninterrupted_weights(tmp_path):
    config = small_config(optim={"orthogonal_grad": True, "weight_decay": 0.0,
                                 "grad_filter": "ema"}, schedule=SCHEDULE)
    straight = train(config, tmp_path / "straight", OPTIONS)

    def stop(epoch):
        if epoch == 4:  # a checkpoint: its resume state is written
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "killed", TrainOptions(device="cpu", quiet=True, on_epoch=stop))
    resumed = train(None, tmp_path / "killed", TrainOptions(device="cpu", quiet=True,
                                                            resume=True))
    a, b = Run.load(straight).weights(8), Run.load(resumed).weights(8)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_files_without_the_key_load_with_it_off():
    config = Run.load(REPO / "checkpoints" / "nanda-p113").config
    assert config.optim.orthogonal_grad is False
    assert RunConfig.from_dict({"optim": {"name": "sgd"}}).optim.orthogonal_grad is False


# --- diagnostics -----------------------------------------------------------------------------

def test_softmax_collapse_counts_each_runs_rows_whose_float32_loss_is_exactly_zero():
    # run 0: gap 200 (collapses in float32), gap 5 (does not), gap 200 on the wrong class
    # run 1: two rows, gap 200 and gap 5, and a collapsed padding row of weight 0
    outputs = torch.zeros(2, 3, 4, dtype=torch.float64)
    outputs[0, 0, 1] = outputs[0, 2, 3] = outputs[1, 0, 1] = outputs[1, 2, 1] = 200
    outputs[0, 1, 1] = outputs[1, 1, 1] = 5
    targets = torch.ones(2, 3, dtype=torch.long)
    weights = torch.tensor([[1 / 3] * 3, [0.5, 0.5, 0.0]], dtype=torch.float64)
    collapse = softmax_collapse(outputs, targets, weights)
    torch.testing.assert_close(collapse, torch.tensor([1 / 3, 0.5], dtype=torch.float64))
    # float64 outputs are cast: at a gap of 40, float64's loss would be 3e-17, float32's is 0
    outputs[0, 1, 1] = 40
    assert softmax_collapse(outputs, targets, weights)[0].item() == pytest.approx(2 / 3)


def test_grad_weight_cosine_is_the_cosine_of_the_gradient_with_the_weights():
    generator = torch.Generator().manual_seed(4)
    grad, weights = torch.randn(2, 40, generator=generator), torch.randn(2, 40, generator=generator)
    expected = F.cosine_similarity(grad.double(), weights.double(), dim=1)
    torch.testing.assert_close(grad_weight_cosine(grad, weights), expected)
    # a gradient against the weights (descent grows them: naive loss minimisation) gives -1
    assert grad_weight_cosine(-3 * weights, weights).tolist() == pytest.approx([-1.0, -1.0])


@pytest.mark.parametrize("batch_size", [None, 64], ids=["full-batch", "minibatch"])
def test_training_records_the_diagnostics_of_its_loss_gradient(tmp_path, batch_size):
    """The recorded cosine is that of the training loss's gradient at the evaluated weights
    (full batch: the step's own gradient; minibatch: a full-batch one computed apart)."""
    config = small_config(optim={"batch_size": batch_size, "weight_decay": 0.0},
                          objective={"loss_dtype": "float32"}, schedule=SCHEDULE)
    run = Run.load(train(config, tmp_path / "run", OPTIONS))
    metrics = run.metrics
    assert metrics["softmax_collapse"].between(0, 1).all()
    assert metrics["grad_weight_cosine"].between(-1, 1).all()
    task = run.task()
    for epoch in (0, 8):
        model = run.model(epoch)
        params = list(trainable_weights(model).values())
        with torch.enable_grad():
            outputs = output_fn(config.model, model)(task.train_inputs)
            loss = build_loss("cross_entropy", "float32")(outputs, task.train_targets)
            grads = torch.autograd.grad(loss, params)
        weights = torch.cat([p.detach().flatten() for p in params])
        expected = grad_weight_cosine(torch.cat([g.flatten() for g in grads])[None],
                                      weights[None]).item()
        row = metrics[metrics["epoch"] == epoch].iloc[0]
        assert row["grad_weight_cosine"] == pytest.approx(expected, rel=1e-3, abs=1e-5)
        assert row["softmax_collapse"] == 0  # a few epochs: far from collapse


def test_regression_runs_record_no_softmax_diagnostics(tmp_path):
    config = RunConfig.from_dict({**TINY["teacher"], "schedule": SCHEDULE})
    metrics = Run.load(train(config, tmp_path / "run", OPTIONS)).metrics
    assert "softmax_collapse" not in metrics and "grad_weight_cosine" not in metrics
    assert "train_loss" in metrics


@pytest.mark.parametrize("batch_size", [None, 64], ids=["full-batch", "minibatch"])
def test_the_diagnostics_do_not_change_training(tmp_path, batch_size):
    """Evaluating (and so taking the diagnostic gradient) every epoch or only at the start
    and end trains the same weights, bit for bit."""
    configs = [small_config(optim={"batch_size": batch_size},
                            schedule={**SCHEDULE, "eval_every": every}) for every in (1, 50)]
    runs = [Run.load(train(c, tmp_path / f"every{i}", OPTIONS)) for i, c in enumerate(configs)]
    assert len(runs[0].metrics) == 9 and len(runs[1].metrics) == 2
    for epoch in (4, 8):
        a, b = runs[0].weights(epoch), runs[1].weights(epoch)
        assert all(torch.equal(a[k], b[k]) for k in a), epoch


@pytest.mark.parametrize("data, message", [
    ({"objective": {"loss": "softmax"}},
     "objective.loss must be 'cross_entropy', 'stablemax' or 'mse', got 'softmax'"),
    ({**TINY["teacher"], "objective": {"loss": "stablemax"}},
     "set objective.loss=mse (stablemax needs class labels)"),
    ({"optim": {"orthogonal_grad": "yes"}}, "optim.orthogonal_grad must be"),
])
def test_bad_stability_settings_are_one_line_config_errors(data, message):
    with pytest.raises(ConfigError) as error:
        RunConfig.from_dict(data)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_stability_figure_draws_each_variants_seed_mean_and_range():
    import pandas as pd

    from interp.figures.stability import stability_curves, variant_label

    def frame(shift):
        return pd.DataFrame({"epoch": [0, 10], "test_acc": [0.1 + shift, 0.5 + shift],
                             "softmax_collapse": [0.0, 0.2 + shift],
                             "grad_weight_cosine": [0.0, 0.6 + shift]})

    name = variant_label("cross_entropy", "float32", True)
    assert name == "softmax CE float32 + ⊥grad"
    figure = stability_curves({name: [frame(0.0), frame(0.2)]}, "t")
    lines = [t for t in figure.data if t.mode == "lines"]
    assert [t.name for t in lines] == [name] * 3 and lines[0].showlegend
    assert list(lines[0].y) == pytest.approx([0.2, 0.6])  # the seeds' mean
    band = figure.data[0]  # test accuracy: max forward, min back
    assert list(band.y) == pytest.approx([0.3, 0.7, 0.5, 0.1])


def test_the_shipped_prieto_sweep_trains_four_variants_without_weight_decay():
    from interp.sweep.spec import load_spec

    spec = load_spec("prieto-stability")
    configs = spec.configs(spec.runs())
    variants = {(c.objective.loss, c.objective.loss_dtype, c.optim.orthogonal_grad)
                for c in configs}
    assert variants == {("cross_entropy", "float32", False), ("cross_entropy", "float64", False),
                        ("stablemax", "float32", False), ("cross_entropy", "float32", True)}
    assert len(configs) == 4 * len({c.model.seed for c in configs}) >= 8
    assert all(c.optim.weight_decay == 0 and c.preset == "tiny" for c in configs)
