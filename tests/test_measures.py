"""The per-evaluation measures as functions of one run's weights: the committee machine's
loss decomposition and the toy model's RQI / effective loss."""

import torch

from interp.config import RunConfig
from interp.models import build_model
from interp.presets import get_preset
from interp.tasks import build_task
from interp.train.measures import evaluation_measures

COMMITTEE = {"task": {"kind": "polynomial", "dim": 20, "n_train": 50, "n_test": 40_000},
             "model": {"kind": "committee", "width": 50, "eps": 0.25, "seed": 4},
             "optim": {"name": "sgd", "lr": 1, "weight_decay": 0},
             "objective": {"loss": "mse", "centered": True, "alpha": 2.0}}


def test_committee_decomposition_of_a_runs_weights_is_its_test_loss():
    config = RunConfig.from_dict(COMMITTEE)
    task = build_task(config.task, config.model)
    measure = evaluation_measures(config, task)
    model = build_model(config.model, task)
    initial = model.W.detach().clone()
    # centred at the seeded initialisation the predictor is 0: the loss is E[y^2] = 3/4
    at_init = measure(model.state_dict())
    assert at_init["decomp_linear"] == 0
    assert abs(at_init["decomp_total"] - 0.75) < 1e-6  # (float32 directions)
    # moved weights (requiring grad, as a slice of a stack would): the decomposition is the
    # Monte Carlo test loss of alpha (f(W) - f(W_0)) on 40 000 Gaussian test inputs
    moved = (initial + 0.3 * torch.randn(initial.shape, generator=torch.Generator()
                                         .manual_seed(0))).requires_grad_()
    parts = measure({"W": moved})
    x, y = task.inputs[task.test_idx], task.targets[task.test_idx]
    with torch.no_grad():
        f0 = model(x)
        model.W.copy_(moved)
        predictions = 2.0 * (model(x) - f0)
    monte_carlo = (predictions.squeeze(1) - y.squeeze()).pow(2).mean().item()
    assert parts["decomp_linear"] > 0
    assert abs(parts["decomp_total"] - monte_carlo) < 0.05 * monte_carlo, (parts, monte_carlo)
    assert abs(sum(parts[f"decomp_{k}"] for k in ("linear", "scale", "alignment"))
               - parts["decomp_total"]) < 1e-9


def test_toy_rqi_and_effective_loss_read_the_embedding_weights():
    config = get_preset("liu-toy")
    task = build_task(config.task, config.model)
    measure = evaluation_measures(config, task)
    weights = build_model(config.model, task).state_dict()
    line = {**weights, "embed.weight": 0.3 * torch.arange(10.0)[:, None] - 1.0}
    exact = measure(line)
    assert exact["rqi"] == 1.0 and abs(exact["effective_loss"]) < 1e-9
    scrambled = {**line, "embed.weight": line["embed.weight"][torch.tensor(
        [3, 0, 7, 1, 9, 2, 5, 8, 4, 6])]}
    result = measure(scrambled)
    assert result["rqi"] < 0.5 and result["effective_loss"] > 0.1


def test_models_without_measures_have_none():
    assert evaluation_measures(get_preset("hu-mlp"), build_task(get_preset("hu-mlp").task)) \
        is None
    # a linearised committee records no decomposition, only its threshold accuracy
    linearised = RunConfig.from_dict({**COMMITTEE, "task": {**COMMITTEE["task"], "n_test": 10},
                                      "objective": {**COMMITTEE["objective"],
                                                    "linearized": True}})
    task = build_task(linearised.task)
    measure = evaluation_measures(linearised, task)
    assert set(measure(build_model(linearised.model, task).state_dict())) == {"train_acc",
                                                                              "test_acc"}
