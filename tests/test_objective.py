"""The trainer's objective: output scale alpha, learning-rate rescaling, linearised training."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli, small_config

from interp.analysis.lazy_rich import trainable_weights
from interp.config import ObjectiveConfig
from interp.models import build_model, output_fn
from interp.runs import Run
from interp.tasks import build_task
from interp.train.loop import TrainOptions, train
from interp.train.objective import build_objective, functional_output, learning_rate_scale

QUIET = TrainOptions(device="cpu", quiet=True)


def test_alpha_one_trains_exactly_the_plain_model(tmp_path):
    """alpha = 1 is plain training: a hand-written AdamW loop on output_fn reaches the very
    same weights, bit for bit (no centring, no learning-rate change)."""
    config = small_config(schedule={"epochs": 30, "checkpoint_every": 30})
    train(config, tmp_path / "run", QUIET)
    task = build_task(config.task)
    model = build_model(config.model, task)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = config.optim
    optimizer = torch.optim.AdamW(params, lr=opt.lr, weight_decay=opt.weight_decay,
                                  betas=opt.betas)
    outputs = output_fn(config.model, model)
    for _ in range(config.schedule.epochs):
        loss = F.cross_entropy(outputs(task.train_inputs).double(), task.train_targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    trained = Run.load(tmp_path / "run").weights(30)
    for name, value in model.state_dict().items():
        assert torch.equal(value, trained[name]), name


def test_learning_rate_scale_follows_the_spec():
    assert learning_rate_scale(ObjectiveConfig(alpha=10.0), "sgd") == pytest.approx(1e-2)
    assert learning_rate_scale(ObjectiveConfig(alpha=10.0), "adamw") == pytest.approx(0.1)
    assert learning_rate_scale(ObjectiveConfig(alpha=10.0), "adam") == pytest.approx(0.1)
    assert learning_rate_scale(ObjectiveConfig(alpha=1.0), "sgd") == 1.0
    assert learning_rate_scale(ObjectiveConfig(alpha=0.5), "sgd") == pytest.approx(4.0)


def test_centred_output_is_zero_at_initialisation_and_scaled_by_alpha(tmp_path):
    """Centred, the trained output is alpha (f - f_0): zero logits at epoch 0 (so the
    recorded loss is exactly ln p), and alpha times the weight change's effect later."""
    config = small_config(objective={"centered": True, "alpha": 4.0}, schedule={"epochs": 20})
    train(config, tmp_path / "run", QUIET)
    run = Run.load(tmp_path / "run")
    first = run.metrics.iloc[0]
    assert first["epoch"] == 0
    assert first["train_loss"] == pytest.approx(math.log(23), abs=1e-12)
    assert first["test_loss"] == pytest.approx(math.log(23), abs=1e-12)
    task = run.task()
    objective = build_objective(run.config, run.model(0), run.weights(0))
    final = run.model(20)
    x = task.test_inputs
    with torch.no_grad():
        expected = 4.0 * (output_fn(config.model, final)(x) - output_fn(config.model,
                                                                        run.model(0))(x))
        weights = {k: v for k, v in run.weights(20).items() if k in objective.initial}
        torch.testing.assert_close(objective(weights, x), expected)
    expected_loss = F.cross_entropy(expected.double(), task.test_targets).item()
    assert run.metrics.iloc[-1]["test_loss"] == pytest.approx(expected_loss, rel=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_learning_rate_rescaling_makes_the_first_step_independent_of_alpha(tmp_path, optimizer):
    """The point of the rescaling (Kumar et al. app. 8.1): the output change of the first step
    is the same for every alpha, up to O(1/alpha) curvature terms. Without rescaling it
    would grow like alpha (Adam) or alpha^2 (gradient descent)."""
    changes = {}
    for alpha in (10.0, 100.0):
        config = small_config(objective={"centered": True, "alpha": alpha},
                              optim={"name": optimizer, "lr": 0.1 if optimizer == "sgd" else 1e-3,
                                     "weight_decay": 0.0},
                              schedule={"epochs": 1, "checkpoint_every": 1})
        out = tmp_path / f"{optimizer}-{alpha}"
        train(config, out, QUIET)
        run = Run.load(out)
        objective = build_objective(run.config, run.model(0), run.weights(0))
        weights = {k: v for k, v in run.weights(1).items() if k in objective.initial}
        with torch.no_grad():
            changes[alpha] = objective(weights, run.task().train_inputs)
    scale = changes[100.0].abs().mean().item()
    assert scale > 1e-3  # the step did change the output
    difference = (changes[10.0] - changes[100.0]).abs().mean().item()
    assert difference < 0.1 * scale, (difference, scale)


def test_linearized_run_trains_the_linearisation_at_initialisation(tmp_path):
    """objective.linearized trains f_lin(x; theta) = f(x; theta_0) + J_0(x)(theta - theta_0):
    the recorded losses are those of f_lin, built here from an explicit Jacobian."""
    config = small_config(objective={"linearized": True}, optim={"lr": 1e-2, "weight_decay": 0.0},
                          schedule={"epochs": 40})
    train(config, tmp_path / "run", QUIET)
    run = Run.load(tmp_path / "run")
    assert run.config.objective.linearized and run.checkpoint_epochs == [0, 20, 40]
    task = run.task()
    initial_model = run.model(0)
    theta0 = {k: v.detach().clone() for k, v in trainable_weights(initial_model).items()}
    theta = {k: v for k, v in run.weights(40).items() if k in theta0}
    x = task.test_inputs[:6]
    bridge_forward = functional_output(config.model, initial_model, fast=False)
    jacobian = torch.func.jacrev(lambda p: bridge_forward(p, x))(theta0)
    with torch.no_grad():
        expected = bridge_forward(theta0, x) + sum(
            torch.einsum("bo...,...->bo", jacobian[k], theta[k] - theta0[k]) for k in theta0)
        objective = build_objective(run.config, initial_model, run.weights(0))
        torch.testing.assert_close(objective(theta, x), expected, atol=2e-4, rtol=1e-4)
        assert (run.model(40)(x)[:, -1] - expected).abs().max() > 1e-2  # f != f_lin
        full = objective(theta, task.test_inputs)
    recorded = run.metrics.iloc[-1]
    assert recorded["test_loss"] == pytest.approx(
        F.cross_entropy(full.double(), task.test_targets).item(), rel=1e-5)
    assert recorded["train_loss"] < 0.95 * run.metrics.iloc[0]["train_loss"]  # it learns


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "bridge-forward"])
def test_functional_output_swaps_weights_and_leaves_the_model_intact(fast):
    """f(params, x) equals the model's output with those weights loaded, under jacrev too,
    and the model keeps its own Parameters (functional_call straight on a TransformerBridge
    turns its attention weights into plain tensors; going through output_fn avoids that)."""
    config = small_config()
    task = build_task(config.task)
    model = build_model(config.model, task)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    moved = {k: v.detach() + 0.1 * torch.randn(v.shape, generator=generator)
             for k, v in trainable_weights(model).items()}
    x = task.inputs[:5]
    f = functional_output(config.model, model, fast=fast)
    outputs = f(moved, x)
    torch.func.jacrev(lambda p: f(p, x))(moved)
    assert all(isinstance(v, torch.nn.Parameter)
               for v in model.state_dict(keep_vars=True).values() if v.requires_grad)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with torch.no_grad():
        for name, value in model.state_dict(keep_vars=True).items():
            if name in moved:
                value.copy_(moved[name])
        torch.testing.assert_close(outputs, output_fn(config.model, model, fast=fast)(x))


def test_cli_linearized_flag_sets_the_objective(tmp_path):
    out = tmp_path / "lazy"
    result = run_cli("interp.train", "--preset", "tiny", "--linearized", "--set",
                     "schedule.epochs=2", "--out", str(out), "--quiet", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert Run.load(out).config.objective.linearized
    result = run_cli("interp.train", "--resume", "--linearized", "--out", str(out), "--quiet")
    assert result.returncode == 2 and "--linearized needs --preset or --config" in result.stderr


class _Crash(Exception):
    pass


@pytest.mark.parametrize("objective", [{"centered": True, "alpha": 3.0}, {"linearized": True}],
                         ids=["alpha", "linearized"])
def test_crashed_run_resumes_to_bit_identical_weights(tmp_path, objective):
    """A run that dies right after a checkpoint and is resumed ends at the very weights of an
    uninterrupted one: theta_0 comes back from the epoch-0 checkpoint. (In-process crash;
    tests/test_train.py does the same with SIGKILL for plain runs.)"""
    config = small_config(objective=objective, schedule={"epochs": 60, "checkpoint_every": 20},
                          optim={"batch_size": 100})  # minibatches: f(theta_0) per batch
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    train(config, straight, QUIET)

    def crash_at_epoch_20(epoch):  # called once epoch 20's checkpoint and state are saved
        if epoch == 20:
            raise _Crash

    with pytest.raises(_Crash):
        train(config, crashed, TrainOptions(device="cpu", quiet=True, on_epoch=crash_at_epoch_20))
    assert Run.load(crashed).checkpoint_epochs == [0, 20]
    train(None, crashed, TrainOptions(device="cpu", quiet=True, resume=True))
    a, b = Run.load(straight), Run.load(crashed)
    for key, value in a.weights(60).items():
        assert torch.equal(value, b.weights(60)[key]), key
    assert a.metrics.equals(b.metrics)
