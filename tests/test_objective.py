"""The trainer's objective: output scale alpha, learning-rate rescaling, linearised training."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli, small_config
from test_train import _kill_after_checkpoint, _start_training

from interp.config import ObjectiveConfig
from interp.models import build_model, output_fn
from interp.runs import Run
from interp.tasks import build_task
from interp.train.loop import TrainOptions, train
from interp.train.objective import build_objective, learning_rate_scale

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


def test_sigkilled_alpha_run_resumes_to_bit_identical_weights(tmp_path, config_file):
    config = small_config(objective={"centered": True, "alpha": 3.0},
                          schedule={"epochs": 300, "checkpoint_every": 50},
                          optim={"batch_size": 64})
    path = config_file(config)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train(config, straight, QUIET)
    _kill_after_checkpoint(_start_training(path, killed), killed, 100)
    resumed = run_cli("interp.train", "--out", str(killed), "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    a, b = Run.load(straight), Run.load(killed)
    for key, value in a.weights(300).items():
        assert torch.equal(value, b.weights(300)[key]), key
    assert a.metrics.equals(b.metrics)
