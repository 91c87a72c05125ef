"""How the weight decay follows the output scale alpha (objective.alpha_weight_decay):
``scaled`` (the decay applied with the rescaled learning rate, as before the choice existed)
or ``fixed`` (lr * wd per step as at alpha = 1)."""

import pytest
import torch
from conftest import TINY, assert_same_run

from interp.config import ConfigError, ObjectiveConfig, OptimConfig, RunConfig
from interp.runs import Run
from interp.train.flat import FlatLayout
from interp.train.loop import TrainOptions, train, train_stack
from interp.train.objective import learning_rate_scale, weight_decay_scale
from interp.train.optim import ADAM_EPS, RunOptimizer, StackedOptimizer

QUIET = TrainOptions(device="cpu", quiet=True)


def centred(name: str, alpha: float, choice: str, weight_decay: float) -> RunConfig:
    """A TINY config trained centred at ``alpha`` for 20 epochs."""
    data = {section: dict(values) for section, values in TINY[name].items()}
    data["optim"]["weight_decay"] = weight_decay
    data["objective"] = {**data.get("objective", {}), "centered": True, "alpha": alpha,
                         "alpha_weight_decay": choice}
    data["schedule"] = {"epochs": 20, "eval_every": 5, "checkpoint_every": 20}
    return RunConfig.from_dict(data)


def test_the_decay_factor_is_one_or_the_inverse_of_the_learning_rate_factor():
    for optimizer, power in (("adamw", 1), ("adam", 1), ("sgd", 2)):
        scaled = ObjectiveConfig(centered=True, alpha=4.0)
        fixed = ObjectiveConfig(centered=True, alpha=4.0, alpha_weight_decay="fixed")
        assert weight_decay_scale(scaled, optimizer) == 1.0
        assert weight_decay_scale(fixed, optimizer) == 4.0 ** power
        assert learning_rate_scale(fixed, optimizer) == 4.0 ** -power


def test_an_unknown_choice_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"^objective.alpha_weight_decay must be 'scaled' or "
                                          r"'fixed', got 'lr'$"):
        RunConfig.from_dict({"objective": {"centered": True, "alpha_weight_decay": "lr"}})


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
@pytest.mark.parametrize("choice", ["scaled", "fixed"])
def test_one_step_is_the_hand_computed_update(optimizer, choice):
    """alpha = 4, lr 0.1, wd 0.5, one step on a known gradient (one entry zero: there only
    the decay moves the weight)."""
    alpha, lr, wd = 4.0, 0.1, 0.5
    objective = ObjectiveConfig(centered=True, alpha=alpha, alpha_weight_decay=choice)
    param = torch.nn.Parameter(torch.zeros(3))
    run = RunOptimizer.of(OptimConfig(name=optimizer, lr=lr, weight_decay=wd),
                          learning_rate_scale(objective, optimizer), [{"params": [param]}],
                          {id(param): "w"}, weight_decay_scale(objective, optimizer))
    w0 = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    g = torch.tensor([[0.3, 0.0, -4.0]], dtype=torch.float64)
    flat = w0.clone().requires_grad_()
    flat.grad = g.clone()
    StackedOptimizer(flat, FlatLayout(("w",), (torch.Size([3]),)), [run]).step(0)

    power = 2 if optimizer == "sgd" else 1
    step_lr = lr / alpha**power
    step_wd = wd * alpha**power if choice == "fixed" else wd
    if optimizer == "adamw":  # decoupled: w (1 - lr wd), then Adam's first step g / |g|
        expected = w0 * (1 - step_lr * step_wd) - step_lr * g / (g.abs() + ADAM_EPS)
    elif optimizer == "adam":  # coupled: wd w joins the gradient, then g / |g|
        total = g + step_wd * w0
        expected = w0 - step_lr * total / (total.abs() + ADAM_EPS)
    else:
        expected = w0 - step_lr * (g + step_wd * w0)
    torch.testing.assert_close(flat.detach(), expected, rtol=1e-12, atol=0)
    if optimizer != "adam":  # the decay alone (zero gradient): lr wd at alpha = 1 when fixed
        shrink = lr * wd if choice == "fixed" else lr * wd / alpha**power
        assert flat[0, 1].item() == pytest.approx(-2.0 * (1 - shrink), rel=1e-14)


# The final (train loss, test loss, weight norm) of these runs (alpha = 2, 20 epochs),
# trained by the code before objective.alpha_weight_decay existed.
BEFORE = {
    ("toy", 1.0): (2.54608517491803, 4.088325261458547, 14.36343895023006),  # AdamW
    ("committee", 0.1): (0.9746916724857231, 1.0566191239250902, 0.5536476589778734),  # SGD
    ("hu-mlp", 0.1): (2.3697477716050783, 2.4273757917933785, 6.299055507503053),  # Adam
}


@pytest.mark.parametrize(("name", "weight_decay"), BEFORE)
def test_scaled_trains_the_runs_made_before_the_choice_existed(tmp_path, name,
                                                               weight_decay):
    path = train(centred(name, 2.0, "scaled", weight_decay), tmp_path / "run", QUIET)
    last = Run.load(path).metrics.iloc[-1]
    # to float rounding: another CPU's kernels may sum in another order
    assert (last["train_loss"], last["test_loss"], last["weight_norm"]) == \
        pytest.approx(BEFORE[name, weight_decay], rel=1e-6)


@pytest.mark.parametrize(("name", "weight_decay", "alpha"),
                         [("toy", 0.25, 4.0), ("committee", 0.025, 2.0)])
def test_fixed_is_scaled_with_the_decay_multiplied_by_the_inverse_factor(tmp_path, name,
                                                                        weight_decay, alpha):
    """The trainer reads the choice: "fixed" at alpha (AdamW: wd x alpha; SGD: wd x alpha^2)
    trains bit for bit what "scaled" trains with that larger weight decay."""
    power = 2 if name == "committee" else 1
    fixed = train(centred(name, alpha, "fixed", weight_decay), tmp_path / "fixed", QUIET)
    scaled = train(centred(name, alpha, "scaled", weight_decay * alpha**power),
                   tmp_path / "scaled", QUIET)
    a, b = Run.load(fixed), Run.load(scaled)
    for key, value in a.weights(20).items():
        assert torch.equal(value, b.weights(20)[key]), key
    assert a.metrics["train_loss"].tolist() == b.metrics["train_loss"].tolist()


def test_the_two_choices_share_a_stack_and_each_run_keeps_its_own(tmp_path):
    configs = [centred("toy", 4.0, choice, 1.0) for choice in ("scaled", "fixed")]
    stacked = train_stack(configs, [tmp_path / "scaled", tmp_path / "fixed"], QUIET)
    for config, path in zip(configs, stacked, strict=True):
        alone = train(config, tmp_path / f"alone-{config.objective.alpha_weight_decay}", QUIET)
        assert_same_run(Run.load(path), Run.load(alone), exact=False)
    norms = [Run.load(path).metrics["weight_norm"].iloc[-1] for path in stacked]
    assert norms[1] < norms[0]  # four times the decay per step shrinks the weights more
