"""The three options of Kumar et al.'s missing experiments: SGD momentum (``optim.momentum``),
the label scale (``objective.label_scale``) and the committee machine's initial mix with the
analytic solution (``model.solution_mix``)."""

import math

import pytest
import torch
from conftest import assert_same_run
from safetensors.torch import load_file

from interp.analysis.committee import committee_loss_decomposition, summary_statistics
from interp.config import CommitteeModel, ConfigError, OptimConfig, PolynomialTask, RunConfig
from interp.models import build_model
from interp.models.committee import aligned_solution
from interp.runs import RESUME_FILE, Run
from interp.tasks import build_task
from interp.train.flat import FlatLayout
from interp.train.loop import TrainOptions, train, train_stack
from interp.train.losses import build_loss
from interp.train.objective import build_objective
from interp.train.optim import RunOptimizer, StackedOptimizer, build_optimizer, learning_rate

OPTIONS = TrainOptions(device="cpu", quiet=True)


def committee(**sections) -> RunConfig:
    """Kumar et al.'s committee machine, small: D = 10, N = 20, P = 50, full-batch sgd."""
    data = {"task": {"kind": "polynomial", "dim": 10, "n_train": 50, "n_test": 100},
            "model": {"kind": "committee", "width": 20, "eps": 0.25},
            "optim": {"name": "sgd", "lr": 5.0, "weight_decay": 0.0},
            "objective": {"loss": "mse", "centered": True},
            "schedule": {"epochs": 40, "eval_every": 10, "checkpoint_every": 20}}
    for name, values in sections.items():
        data[name] = {**data[name], **values}
    return RunConfig.from_dict(data)


def _one_line_error(data: dict, *words: str) -> None:
    with pytest.raises(ConfigError) as error:
        RunConfig.from_dict(data)
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


# ---------------------------------------------------------------------------------------------
# optim.momentum


def test_stacked_sgd_momentum_is_torchs_heavy_ball_and_resumes_from_its_state():
    """Three runs (momentum 0, 0.9, 0.5; own lr, lr scale, warm-up, decay, two groups), 10
    steps of random float64 gradients: each equals torch.optim.SGD(momentum=...) alone to
    1e-12, its state is torch's, and 5 + 5 steps through run_state/load_run_states are the
    10 steps bit for bit."""
    generator = torch.Generator().manual_seed(0)
    shapes = {"a": (4, 3), "b": (5,)}
    layout = FlatLayout(tuple(shapes), tuple(torch.Size(s) for s in shapes.values()))
    configs = [OptimConfig(name="sgd", lr=0.1, weight_decay=0.0, momentum=0.0),
               OptimConfig(name="sgd", lr=0.05, weight_decay=0.3, momentum=0.9, warmup_steps=3),
               OptimConfig(name="sgd", lr=0.2, weight_decay=1.0, momentum=0.5)]
    runs = [RunOptimizer(config, 0.25 * (i + 1), ((("a",), 1.0 + i, config.weight_decay),
                                                  (("b",), 1.0, 0.1 * i)))
            for i, config in enumerate(configs)]
    start = [{k: torch.randn(*shape, generator=generator, dtype=torch.float64)
              for k, shape in shapes.items()} for _ in configs]
    grads = [[{k: torch.randn(*shape, generator=generator, dtype=torch.float64)
               for k, shape in shapes.items()} for _ in configs] for _ in range(10)]

    def stacked_optimizer(weights):
        return StackedOptimizer(layout.stack(weights).requires_grad_(), layout, runs)

    def take(optimizer, steps):
        for step in steps:
            optimizer.flat.grad = layout.stack(grads[step])
            optimizer.step(step)

    straight = stacked_optimizer(start)
    take(straight, range(10))
    for i, (config, run) in enumerate(zip(configs, runs, strict=True)):
        params = {k: v.clone().requires_grad_() for k, v in start[i].items()}
        reference = build_optimizer(config, [
            {"params": [params["a"]], "lr_factor": 1.0 + i},
            {"params": [params["b"]], "lr_factor": 1.0, "weight_decay": 0.1 * i}])
        for step in range(10):
            for group in reference.param_groups:
                group["lr"] = learning_rate(config, step) * run.lr_scale * group["lr_factor"]
            for k, p in params.items():
                p.grad = grads[step][i][k].clone()
            reference.step()
        weights = layout.views(straight.flat.detach())
        for k, p in params.items():
            torch.testing.assert_close(weights[k][i], p.detach(), rtol=0, atol=1e-12)
        mine, theirs = straight.run_state(i, 10), reference.state_dict()
        assert mine["param_groups"] == theirs["param_groups"]
        assert mine["state"].keys() == theirs["state"].keys() == (set() if i == 0 else {0, 1})
        for index, entries in theirs["state"].items():
            torch.testing.assert_close(mine["state"][index]["momentum_buffer"],
                                       entries["momentum_buffer"], rtol=0, atol=1e-12)
    first = stacked_optimizer(start)
    take(first, range(5))
    second = stacked_optimizer([{k: v[i] for k, v in layout.views(first.flat.detach()).items()}
                                for i in range(3)])
    second.load_run_states([first.run_state(i, 5) for i in range(3)])
    take(second, range(5, 10))
    assert torch.equal(second.flat, straight.flat)


def test_momentum_reaches_the_trainer_with_the_alpha_rescaled_learning_rate(tmp_path):
    """A centred committee run at alpha = 2 with momentum 0.9 and weight decay follows
    torch.optim.SGD(lr / alpha^2, momentum=0.9) on the same objective step for step."""
    config = committee(optim={"momentum": 0.9, "weight_decay": 1e-2},
                       objective={"alpha": 2.0})
    run = Run.load(train(config, tmp_path / "run", OPTIONS))
    task = build_task(config.task, config.model)
    model = build_model(config.model, task)
    objective = build_objective(config, model, model.state_dict())
    W = model.W.detach().clone().requires_grad_()
    optimizer = torch.optim.SGD([W], lr=config.optim.lr / 4, momentum=0.9, weight_decay=1e-2)
    loss = build_loss("mse", "float64")
    for _ in range(config.schedule.epochs):
        optimizer.zero_grad()
        loss(objective({"W": W}, task.train_inputs), task.train_targets).backward()
        optimizer.step()
    final = run.weights(config.schedule.epochs)["W"]
    torch.testing.assert_close(final, W.detach(), rtol=1e-5, atol=1e-6)
    plain = Run.load(train(committee(optim={"weight_decay": 1e-2}, objective={"alpha": 2.0}),
                           tmp_path / "plain", OPTIONS))
    assert (plain.weights(config.schedule.epochs)["W"] - final).abs().max() > 1e-3


def test_a_stack_of_momentum_0_and_0_9_equals_each_run_alone(tmp_path):
    configs = [committee(optim={"momentum": mu}, model={"seed": 1}) for mu in (0.0, 0.9)]
    stacked = train_stack(configs, [tmp_path / "s0", tmp_path / "s1"], OPTIONS)
    for i, config in enumerate(configs):
        alone = train(config, tmp_path / f"alone{i}", OPTIONS)
        assert_same_run(Run.load(stacked[i]), Run.load(alone), exact=False)
    last = [Run.load(path).weights(40)["W"] for path in stacked]
    assert (last[0] - last[1]).abs().max() > 1e-3  # the same init: momentum made the difference


class _Stop(Exception):
    pass


def _stop_at(epoch: int):
    def on_epoch(finished: int) -> None:
        if finished == epoch:
            raise _Stop
    return on_epoch


def test_a_momentum_run_stopped_and_resumed_is_the_straight_run_bit_for_bit(tmp_path):
    config = committee(optim={"momentum": 0.9, "weight_decay": 1e-3})
    straight = Run.load(train(config, tmp_path / "straight", OPTIONS))
    stopped = tmp_path / "stopped"
    with pytest.raises(_Stop):  # after epoch 20's checkpoint and resume state
        train(config, stopped, TrainOptions(device="cpu", quiet=True, on_epoch=_stop_at(20)))
    assert not Run.load(stopped).is_complete
    assert "optim/0/momentum_buffer" in load_file(stopped / RESUME_FILE)
    train(None, stopped, TrainOptions(device="cpu", quiet=True, resume=True))
    resumed = Run.load(stopped)
    assert resumed.checkpoint_epochs == straight.checkpoint_epochs
    assert torch.equal(resumed.weights(40)["W"], straight.weights(40)["W"])
    assert resumed.metrics["epoch"].tolist() == straight.metrics["epoch"].tolist()


@pytest.mark.parametrize("optim, words", [
    ({"name": "sgd", "momentum": -0.1}, ["optim.momentum", "[0, 1)", "-0.1"]),
    ({"name": "sgd", "momentum": 1.0}, ["optim.momentum", "[0, 1)"]),
    ({"name": "adamw", "momentum": 0.9}, ["optim.momentum", "optim.betas", "adamw"]),
    ({"name": "adam", "momentum": 0.5}, ["optim.momentum", "optim.betas", "adam"]),
])
def test_bad_momentum_is_a_one_line_error(optim, words):
    _one_line_error({"optim": optim}, *words)


# ---------------------------------------------------------------------------------------------
# objective.label_scale


def test_label_scale_s_at_alpha_1_is_alpha_1_over_s_on_unscaled_labels(tmp_path):
    """Chizat's rescaling (Kumar et al. Fig. 6): sgd on s y at alpha = 1 and on y at
    alpha = 1/s (the trainer's lr / alpha^2 = s^2 lr; fixed decay: wd / s^2) take the same
    weights; the first's recorded losses and loss decomposition are s^2 the second's."""
    s = 3.0
    base = {"schedule": {"epochs": 300, "eval_every": 20, "checkpoint_every": 100},
            "optim": {"weight_decay": 1e-3, "momentum": 0.5},
            "objective": {"alpha_weight_decay": "fixed"}}
    scaled = committee(**{**base, "objective": {**base["objective"], "label_scale": s}})
    reference = committee(**{**base, "objective": {**base["objective"], "alpha": 1 / s}})
    paths = train_stack([scaled, reference], [tmp_path / "scaled", tmp_path / "ref"], OPTIONS)
    a, b = (Run.load(path) for path in paths)
    final_a, final_b = a.weights(300)["W"], b.weights(300)["W"]
    torch.testing.assert_close(final_a, final_b, rtol=1e-5, atol=1e-5)
    assert (final_a - a.weights(0)["W"]).abs().max() > 0.1  # it trained
    losses = ["train_loss", "test_loss", "decomp_linear", "decomp_scale", "decomp_alignment",
              "decomp_total"]
    torch.testing.assert_close(torch.tensor(a.metrics[losses].values),
                               s**2 * torch.tensor(b.metrics[losses].values), rtol=1e-4, atol=0)
    assert a.metrics["test_loss"].iloc[-1] < 0.5 * a.metrics["test_loss"].iloc[0]  # learnt
    # at initialisation (centred: g = 0) against s y: the test loss is the targets' mean
    # square, the population loss (s tr B / 2)^2 + s^2 |B|_F^2 / 2 = 3 s^2 / 4
    raw = build_task(scaled.task, scaled.model)
    first = a.metrics.iloc[0]
    assert first["test_loss"] == pytest.approx((s * raw.test_targets.double()).square().mean()
                                               .item(), rel=1e-5)
    assert first["decomp_total"] == pytest.approx(0.75 * s**2, rel=1e-5)
    # what analyses read back (Run.task()) is the run's own target s y, the stored data y
    assert torch.equal(a.task().targets, raw.targets * s)
    assert torch.equal(a.stored_data()["targets"], raw.targets)
    assert torch.equal(b.task().targets, raw.targets)


@pytest.mark.parametrize("data, words", [
    ({"objective": {"label_scale": 0.0}, "task": {"kind": "polynomial"},
      "model": {"kind": "committee"}}, ["objective.label_scale", "positive"]),
    ({"objective": {"loss": "mse", "label_scale": -2.0}, "task": {"kind": "polynomial"},
      "model": {"kind": "committee"}}, ["objective.label_scale", "positive"]),
    ({"objective": {"label_scale": 2.0}}, ["objective.label_scale", "cross_entropy"]),
    ({"objective": {"loss": "stablemax", "label_scale": 2.0}},
     ["objective.label_scale", "stablemax"]),
    ({"objective": {"loss": "mse", "label_scale": 2.0}}, ["objective.label_scale", "class"]),
    ({"objective": {"loss": "mse", "label_scale": 2.0},
      "task": {"kind": "toy_addition", "output": "scalar"}, "model": {"kind": "toy"}},
     ["objective.label_scale", "integer"]),
])
def test_bad_label_scale_is_a_one_line_error(data, words):
    _one_line_error(data, *words)


# ---------------------------------------------------------------------------------------------
# model.solution_mix


def _machine(task_config: PolynomialTask, **model) -> tuple[torch.Tensor, object]:
    config = CommitteeModel(**{"width": 12, "eps": 0.25, "seed": 5, **model})
    task = build_task(task_config, config)
    return build_model(config, task).W.detach(), task


SINGLE = PolynomialTask(dim=10, n_train=20, n_test=20)
MULTI = PolynomialTask(target="multi_index", n_directions=3, dim=10, n_train=20, n_test=20)


def test_solution_mix_0_draws_exactly_todays_weights():
    W, _ = _machine(SINGLE, solution_mix=0.0)
    assert torch.equal(W, torch.randn(12, 10, generator=torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("task_config", [SINGLE, MULTI], ids=["single", "multi"])
def test_solution_mix_1_is_the_target_exactly(task_config):
    """tau = 1 (width 12, a multiple of 2k): eps M / D = B, v = 0, and the uncentred
    population loss is 0."""
    W, task = _machine(task_config, solution_mix=1.0)
    directions = task.info["directions"]
    B = directions.double().T @ directions.double()
    v, M = summary_statistics(W)
    torch.testing.assert_close(0.25 * M / 10, B, rtol=0, atol=1e-5)
    torch.testing.assert_close(v, torch.zeros(10, dtype=torch.float64), rtol=0, atol=1e-6)
    assert committee_loss_decomposition(v, M, directions, 0.25).total < 1e-10
    predictor = (task.inputs.double() @ M @ task.inputs.double().T).diagonal() * 0.25 / 20
    torch.testing.assert_close(predictor[:, None], task.targets.double(), rtol=1e-4, atol=1e-5)


def test_solution_mix_with_an_odd_count_of_rows_keeps_m_and_leaves_the_documented_v():
    """Width 7 on k = 2 directions (4 and 3 rows): eps M / D = B still; v is the one
    unpaired row of each odd direction, its linear loss sum 1 / (eps N n_j)."""
    W, task = _machine(PolynomialTask(target="multi_index", n_directions=2, dim=10,
                                      n_train=20, n_test=20), width=7, solution_mix=1.0)
    directions = task.info["directions"]
    v, M = summary_statistics(W)
    torch.testing.assert_close(0.25 * M / 10, directions.double().T @ directions.double(),
                               rtol=0, atol=1e-5)
    loss = committee_loss_decomposition(v, M, directions, 0.25)
    assert loss.linear == pytest.approx(1 / (0.25 * 7 * 3), rel=1e-5)  # direction 1: 3 rows
    assert loss.scale + loss.alignment < 1e-10


def test_solution_mix_between_is_the_linear_mix_and_init_scale_scales_it():
    random, _ = _machine(MULTI)
    solution, task = _machine(MULTI, solution_mix=1.0)
    torch.testing.assert_close(solution, aligned_solution(task.info["directions"], 12, 0.25))
    mixed, _ = _machine(MULTI, solution_mix=0.3)
    torch.testing.assert_close(mixed, 0.7 * random + 0.3 * solution, rtol=1e-6, atol=1e-6)
    scaled, _ = _machine(MULTI, solution_mix=0.3, init_scale=2.0)
    torch.testing.assert_close(scaled, 2 * mixed, rtol=0, atol=0)


@pytest.mark.parametrize("data, words", [
    ({"model": {"solution_mix": 1.5}}, ["model.solution_mix", "[0, 1]"]),
    ({"model": {"solution_mix": -0.1}}, ["model.solution_mix", "[0, 1]"]),
    ({"model": {"solution_mix": 0.5}, "task": {"target": "hermite"}},
     ["model.solution_mix", "single_index"]),
    ({"model": {"solution_mix": 0.5, "degree": 3}}, ["model.solution_mix", "model.degree=2"]),
    ({"model": {"solution_mix": 0.5, "width": 2},
      "task": {"target": "multi_index", "n_directions": 3}}, ["model.solution_mix", "width"]),
])
def test_bad_solution_mix_is_a_one_line_error(data, words):
    base = {"task": {"kind": "polynomial"}, "model": {"kind": "committee"},
            "objective": {"loss": "mse"}}
    _one_line_error({**base, **{k: {**base.get(k, {}), **v} for k, v in data.items()}}, *words)


def test_a_committee_run_with_a_solution_mix_starts_from_it(tmp_path):
    """The trainer's epoch-0 checkpoint is the mixed initialisation, and a run started at the
    solution (uncentred) records a population loss of ~0 from the start."""
    config = committee(model={"solution_mix": 1.0, "width": 20},
                       objective={"centered": False}, schedule={"epochs": 10})
    run = Run.load(train(config, tmp_path / "run", OPTIONS))
    task = build_task(config.task, config.model)
    assert torch.equal(run.weights(0)["W"], build_model(config.model, task).W.detach())
    assert run.metrics["decomp_total"].iloc[0] < 1e-9
    assert math.isclose(run.metrics["test_loss"].iloc[0], 0, abs_tol=1e-8)
