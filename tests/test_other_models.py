"""The models of the other grokking papers: each builds with hook points, trains on a tiny
config (its train loss falls) and refuses task pairs it cannot read in one line."""

import pytest
import torch
from conftest import TINY

from interp.config import RunConfig
from interp.errors import UserError
from interp.runs import Run
from interp.train.loop import TrainOptions, train


@pytest.mark.parametrize("name", TINY)
def test_every_model_trains_and_its_train_loss_falls(tmp_path, name):
    config = RunConfig.from_dict({**TINY[name], "schedule": {
        "epochs": 120, "eval_every": 20, "checkpoint_every": 60}})
    train(config, tmp_path / name, TrainOptions(device="cpu", quiet=True))
    run = Run.load(tmp_path / name)
    metrics = run.metrics
    assert metrics["train_loss"].iloc[-1] < 0.7 * metrics["train_loss"].iloc[0]
    # the run directory rebuilds the very model and data that were trained
    model, task = run.model(120), run.task()
    with torch.no_grad():
        outputs = model(task.train_inputs[:4])
    assert outputs.shape[0] == 4
    _, cache = model.run_with_cache(task.train_inputs[:4])
    assert len(cache) >= 1 and all(k.startswith(("hidden", "hook", "decoder")) for k in cache)
    # and every model goes through interp.analyze (torch.func: vmap, grad, jvp)
    from interp.analyzers import Options
    from interp.run_analysis import analyse_run

    result = analyse_run(tmp_path / name, options=Options(probes=8))
    lazy = result.measures("lazy_rich")
    assert len(lazy) == 3 and lazy["movement"].iloc[0] == 0 and lazy["movement"].iloc[-1] > 0
    assert (result.run.path / "analysis" / "report.html").is_file()


def test_lstm_computes_what_torch_lstm_computes():
    from interp.models.lstm import LSTMClassifier

    model = LSTMClassifier(10, 20, 2, 7, torch.Generator().manual_seed(0))
    tokens = torch.randint(0, 10, (5, 3), generator=torch.Generator().manual_seed(1))
    hidden, _ = model.lstm(torch.eye(10)[tokens])
    torch.testing.assert_close(model(tokens), model.readout(hidden[:, -1]))


@pytest.mark.parametrize("model, task, message", [
    ({"kind": "committee"}, {"kind": "digits"}, "model.kind 'committee' cannot read task.kind "
                                                "'digits'"),
    ({"kind": "toy"}, {"kind": "modular", "encoding": "nanda"}, "cannot read task.kind "
                                                                "'modular' with encoding 'nanda'"),
    ({"kind": "lstm"}, {"kind": "teacher"}, "it needs token inputs"),
    ({"kind": "transformer"}, {"kind": "polynomial"}, "needs token inputs"),
    ({"kind": "mlp", "hidden": [64, -3]}, {"kind": "digits"}, "model.hidden widths must be "
                                                              "positive"),
    ({"kind": "committee", "width": -5}, {"kind": "polynomial"}, "model.width must be "
                                                                 "positive, got -5"),
    ({"kind": "committee"}, {"kind": "polynomial", "target": "hermite", "degree": 0},
     "task.degree (Hermite degree) must lie in 1..170"),
    ({"kind": "mlp"}, {"kind": "digits", "n_train": 6000}, "task.n_train must lie in 1..4999"),
])
def test_bad_model_and_task_configs_are_one_line_errors(model, task, message):
    with pytest.raises(UserError) as info:
        RunConfig.from_dict({"task": task, "model": model, "objective": {"loss": "mse"}})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_regression_tasks_need_mse():
    with pytest.raises(UserError, match="set objective.loss=mse"):
        RunConfig.from_dict({"task": {"kind": "polynomial"}, "model": {"kind": "committee"}})


def test_init_scale_multiplies_every_initial_parameter():
    from interp.models import build_model
    from interp.tasks import build_task

    config = RunConfig.from_dict(TINY["hu-mlp"])
    task = build_task(config.task)
    base = build_model(config.model, task)
    scaled = build_model(config.with_overrides(["model.init_scale=8"]).model, task)
    for (name, a), (_, b) in zip(base.named_parameters(), scaled.named_parameters(),
                                 strict=True):
        torch.testing.assert_close(8 * a, b, msg=name)


def test_toy_model_trains_embeddings_with_their_own_learning_rate_and_decay():
    from interp.models import build_model, parameter_groups
    from interp.tasks import build_task
    from interp.train.optim import RunOptimizer, learning_rate

    config = RunConfig.from_dict({**TINY["toy"], "optim": {"lr": 1e-4, "weight_decay": 0.3}})
    model = build_model(config.model, build_task(config.task))
    name_of = {id(v): k for k, v in model.state_dict(keep_vars=True).items()}
    run = RunOptimizer.of(config.optim, 1.0, parameter_groups(config.model, model), name_of)
    (embedding, embedding_factor, embedding_decay), (_, decoder_factor, decoder_decay) = (
        run.groups)  # what the trainer's StackedOptimizer reads
    lr = learning_rate(config.optim, 0)
    assert embedding == ("embed.weight",)
    assert lr * embedding_factor == pytest.approx(1e-3) and embedding_decay == 0.0
    assert lr * decoder_factor == pytest.approx(1e-4) and decoder_decay == 0.3
