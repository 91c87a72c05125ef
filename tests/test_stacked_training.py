"""One training loop for a stack of M >= 1 runs (interp.train.loop.train_stack): every model
kind stacks, a stacked run equals the run trained alone, the stacked optimiser is torch's
arithmetic with per-run settings, a killed stack resumes bit for bit, and one diverging run
leaves the others alone."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import REPO, TINY, assert_same_run, small_config

from interp.config import OptimConfig, RunConfig
from interp.errors import UserError
from interp.runs import PREVIOUS_RESUME_FILE, RESUME_FILE, Run
from interp.train.flat import FlatLayout
from interp.train.loop import TrainOptions, train_stack
from interp.train.optim import RunOptimizer, StackedOptimizer, build_optimizer, learning_rate
from interp.train.stacks import check_stackable, group_into_stacks

OPTIONS = TrainOptions(device="cpu", quiet=True)
SCHEDULE = {"epochs": 24, "eval_every": 4, "checkpoint_every": 12}

# Every model kind, with per-run differences that keep the parameter shapes.
KINDS = {
    "transformer": small_config(schedule=SCHEDULE).to_dict(),
    "transformer-2-layer-layernorm": small_config(
        model={"n_layers": 2, "normalization": "LN"},
        schedule=SCHEDULE).to_dict(),
    **{name: {**config, "schedule": SCHEDULE} for name, config in TINY.items()},
}
VARIATIONS = {  # run i of a stack: config overrides beside its own seed
    "transformer": [{}, {"optim.lr": 1e-2, "optim.weight_decay": 0.3},
                    {"task.frac": 0.3, "task.data_seed": 7}],
    "toy": [{}, {"model.embedding_lr_factor": 3.0, "optim.lr": 3e-3},
            {"task.frac": 0.6, "optim.warmup_steps": 5}],
    "committee": [{"objective.centered": True},
                  {"objective.centered": True, "objective.alpha": 2.0},
                  {"objective.centered": True, "task.n_train": 60, "optim.lr": 10}],
    "teacher": [{}, {"task.n_train": 30, "optim.betas": [0.8, 0.9]},
                {"task.teacher_seed": 3, "model.init_scale": 1}],
}


def _configs(kind: str) -> list[RunConfig]:
    base = RunConfig.from_dict(KINDS[kind])
    return [base.with_overrides([f"model.seed={base.model.seed + i}", f"schedule.seed={i}",
                                 *(f"{key}={json.dumps(value)}" for key, value in
                                   variation.items())])
            for i, variation in enumerate(VARIATIONS.get(kind, [{}] * 3))]


@pytest.mark.parametrize("kind", KINDS)
def test_a_stack_of_three_equals_the_three_runs_trained_alone(tmp_path, kind):
    configs = _configs(kind)
    stacked = train_stack(configs, [tmp_path / f"stack{i}" for i in range(3)], OPTIONS)
    assert Run.load(stacked[0]).record["runtime"]["stacked_runs"] == 3
    finals = []
    for i, config in enumerate(configs):
        alone = train_stack([config], [tmp_path / f"alone{i}"], OPTIONS)[0]
        assert_same_run(Run.load(stacked[i]), Run.load(alone), exact=False)
        finals.append(Run.load(alone).weights(SCHEDULE["epochs"]))
        start = Run.load(alone).weights(0)
        assert any(not torch.equal(finals[-1][k], start[k]) for k in start), "it trained"
    assert any(not torch.equal(finals[0][k], finals[1][k]) for k in finals[0]), "runs differ"


def test_the_stacked_optimizer_is_torch_arithmetic_with_each_runs_settings():
    """Three runs with their own lr, decay, betas, warm-up and group factors, 12 steps of
    random gradients: each run's weights and state equal torch.optim's on that run alone."""
    generator = torch.Generator().manual_seed(0)
    shapes = {"embed": (7, 3), "decoder": (5, 3), "bias": (5,)}
    settings = [dict(lr=1e-2, weight_decay=0.5, betas=(0.9, 0.98), warmup_steps=0),
                dict(lr=3e-3, weight_decay=0.0, betas=(0.8, 0.9), warmup_steps=4),
                dict(lr=1e-1, weight_decay=2.0, betas=(0.5, 0.999), warmup_steps=20)]
    for name in ("adamw", "adam", "sgd"):
        configs = [OptimConfig(name=name, **s) for s in settings]
        start = {k: torch.randn(3, *shape, generator=generator) for k, shape in shapes.items()}
        layout = FlatLayout(tuple(shapes), tuple(torch.Size(s) for s in shapes.values()))
        flat = layout.stack([{k: v[i] for k, v in start.items()} for i in range(3)])
        flat.requires_grad_()
        runs, references = [], []
        for i, config in enumerate(configs):
            groups = [{"params": ["embed"], "lr_factor": 1.0 + i, "weight_decay": 0.1 * i},
                      {"params": ["decoder", "bias"], "lr_factor": 1.0}]
            runs.append(RunOptimizer(config, 0.5 + i, tuple(
                (tuple(g["params"]), g["lr_factor"], g.get("weight_decay", config.weight_decay))
                for g in groups)))
            params = {k: start[k][i].clone().requires_grad_() for k in shapes}
            references.append((params, build_optimizer(config, [
                {**g, "params": [params[k] for k in g["params"]]} for g in groups])))
        stacked = StackedOptimizer(flat, layout, runs)
        for step in range(12):
            grads = {k: torch.randn(3, *shape, generator=generator) for k, shape in shapes.items()}
            flat.grad = layout.stack([{k: g[i] for k, g in grads.items()} for i in range(3)])
            stacked.step(step)
            for i, (params, optimizer) in enumerate(references):
                lr = learning_rate(configs[i], step) * runs[i].lr_scale
                for group in optimizer.param_groups:
                    group["lr"] = lr * group["lr_factor"]
                for k, p in params.items():
                    p.grad = grads[k][i].clone()
                optimizer.step()
        weights = layout.views(flat.detach())
        for i, (params, optimizer) in enumerate(references):
            for k, p in params.items():
                torch.testing.assert_close(weights[k][i], p, rtol=1e-6, atol=1e-7,
                                           msg=f"{name} run {i} {k}")
            mine, theirs = stacked.run_state(i, 12), optimizer.state_dict()
            assert mine["param_groups"] == theirs["param_groups"]
            assert mine["state"].keys() == theirs["state"].keys()
            for index, entries in theirs["state"].items():
                for key, value in entries.items():
                    torch.testing.assert_close(mine["state"][index][key], value)


@pytest.mark.parametrize("optim", [
    {"update_noise": 0.5, "weight_noise": 0.01, "grad_filter": "ema"},
    {"update_noise": 0.3, "grad_filter": "ma", "filter_window": 5, "batch_size": 32},
], ids=["noise-ema", "minibatch-ma"])
def test_optimiser_variants_stack_with_each_runs_own_noise(tmp_path, optim):
    base = small_config(optim=optim, schedule=SCHEDULE)
    configs = [base.with_overrides([f"model.seed={s}", f"schedule.seed={s}",
                                    f"optim.update_noise={u}", f"optim.filter_lamb={lamb}"])
               for s, u, lamb in ((1, 0.5, 2.0), (2, 0.0, 1.0), (3, 1.0, 0.5))]
    stacked = train_stack(configs, [tmp_path / f"stack{i}" for i in range(3)], OPTIONS)
    for i, config in enumerate(configs):
        alone = train_stack([config], [tmp_path / f"alone{i}"], OPTIONS)[0]
        assert_same_run(Run.load(stacked[i]), Run.load(alone), exact=False)


def test_linearised_runs_stack(tmp_path):
    base = RunConfig.from_dict({**TINY["committee"], "schedule": SCHEDULE,
                                "objective": {"loss": "mse", "linearized": True,
                                              "centered": True}})
    configs = [base.with_overrides([f"model.seed={s}", f"objective.alpha={a}"])
               for s, a in ((0, 1.0), (1, 4.0))]
    stacked = train_stack(configs, [tmp_path / "s0", tmp_path / "s1"], OPTIONS)
    for i, config in enumerate(configs):
        alone = train_stack([config], [tmp_path / f"alone{i}"], OPTIONS)[0]
        assert_same_run(Run.load(stacked[i]), Run.load(alone), exact=False)


def test_a_diverging_run_leaves_the_others_as_they_are_alone(tmp_path):
    base = RunConfig.from_dict({**TINY["gromov"], "schedule": SCHEDULE})  # SGD on MSE
    configs = [base.with_overrides([f"model.seed={s}", f"optim.lr={lr}"])
               for s, lr in ((0, 1000), (1, 1e9), (2, 300))]
    stacked = train_stack(configs, [tmp_path / f"stack{i}" for i in range(3)], OPTIONS)
    diverged = Run.load(stacked[1]).metrics
    assert diverged["train_loss"].isna().iloc[-1] or not np.isfinite(
        diverged["train_loss"].iloc[-1])
    for i in (0, 2):
        alone = train_stack([configs[i]], [tmp_path / f"alone{i}"], OPTIONS)[0]
        assert_same_run(Run.load(stacked[i]), Run.load(alone), exact=True)
        assert np.isfinite(Run.load(stacked[i]).metrics["train_loss"]).all()


def test_runs_that_cannot_share_a_stack_are_refused_naming_the_key(tmp_path):
    configs = [small_config(), small_config(model={"d_mlp": 32})]
    with pytest.raises(UserError, match=r"run 1 cannot share a stack with run 0: model.d_mlp "
                                        r"is 32, not 64"):
        train_stack(configs, [tmp_path / "a", tmp_path / "b"], OPTIONS)
    assert not (tmp_path / "a").exists()
    with pytest.raises(UserError, match="optim.name"):
        check_stackable([small_config(), small_config(optim={"name": "sgd"})])
    with pytest.raises(UserError, match="task.frac"):  # minibatches: one size of training set
        check_stackable([small_config(optim={"batch_size": 8}),
                         small_config(optim={"batch_size": 8}, task={"frac": 0.3})])


def test_runs_are_grouped_into_as_few_stacks_as_their_shapes_allow():
    configs = [small_config(model={"seed": 1}), small_config(model={"d_mlp": 32}),
               small_config(optim={"lr": 0.1}), small_config(optim={"name": "sgd"}),
               small_config(model={"d_mlp": 32, "seed": 5})]
    assert group_into_stacks(configs) == [[0, 2], [1, 4], [3]]


_KILL_SCRIPT = """
import json
import sys
from interp.config import RunConfig
from interp.train.flat import FlatLayout
from interp.train.loop import TrainOptions, train_stack
configs = [RunConfig.from_dict(json.load(open(path))) for path in sys.argv[3:]]
train_stack(configs, [f"{sys.argv[1]}/{i}" for i in range(len(configs))],
            TrainOptions(device="cpu", quiet=True, resume=sys.argv[2] == "resume",
                         resume_every_s=0.0))
"""


def test_a_sigkilled_stack_of_toy_models_resumes_bit_for_bit(tmp_path):
    base = RunConfig.from_dict({**TINY["toy"], "schedule": {
        "epochs": 3000, "eval_every": 50, "checkpoint_every": 500}})
    configs = [base.with_overrides([f"model.seed={s}", f"optim.lr={lr}"])
               for s, lr in ((0, 1e-3), (1, 3e-3), (2, 1e-2))]
    paths = []
    for i, config in enumerate(configs):
        paths.append(tmp_path / f"config{i}.json")
        paths[-1].write_text(config.to_json())
    straight = train_stack(configs, [tmp_path / "straight" / str(i) for i in range(3)], OPTIONS)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", _KILL_SCRIPT, str(tmp_path / "killed")]
    process = subprocess.Popen([*command, "new", *map(str, paths)], cwd=REPO, env=env)
    resume = tmp_path / "killed" / "2" / RESUME_FILE
    deadline = time.monotonic() + 120
    while not resume.exists() and time.monotonic() < deadline:  # wait for a saved state
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "killed before the end"
    subprocess.run([*command, "resume", *map(str, paths)], cwd=REPO, env=env, check=True)
    for i, path in enumerate(straight):
        assert_same_run(Run.load(path), Run.load(tmp_path / "killed" / str(i)), exact=True)


class _Killed(Exception):
    """Stands in for a kill right after an epoch's checkpoints and resume states."""


def _killed_at(epoch):
    def on_epoch(done):
        if done == epoch:
            raise _Killed
    return on_epoch


def test_a_stack_killed_between_its_runs_resume_states_resumes_bit_for_bit(tmp_path):
    """A kill while a stack's resume states are written leaves some runs' states an epoch
    ahead of the others'; the runs ahead step back to their previous state and the stack goes
    on whole (a stack of fewer runs does not compute bit for bit what the stack does)."""
    base = RunConfig.from_dict({**TINY["toy"], "schedule": {
        "epochs": 600, "eval_every": 50, "checkpoint_every": 200}})
    configs = [base.with_overrides([f"model.seed={s}", f"optim.lr={lr}"])
               for s, lr in ((0, 1e-3), (1, 3e-3), (2, 1e-2))]
    straight = train_stack(configs, [tmp_path / "straight" / str(i) for i in range(3)], OPTIONS)
    dirs = [tmp_path / "killed" / str(i) for i in range(3)]
    with pytest.raises(_Killed):
        train_stack(configs, dirs, TrainOptions(device="cpu", quiet=True,
                                                on_epoch=_killed_at(400)))
    # The kill came after runs 0 and 1 saved epoch 400's states, before run 2 did.
    (dirs[2] / RESUME_FILE).write_bytes((dirs[2] / PREVIOUS_RESUME_FILE).read_bytes())
    train_stack(configs, dirs, TrainOptions(device="cpu", quiet=True, resume=True))
    for a, b in zip(straight, dirs, strict=True):
        assert_same_run(Run.load(a), Run.load(b), exact=True)


def test_on_cpu_large_activations_step_run_by_run_with_the_same_results(tmp_path, monkeypatch):
    """Past CPU_VECTORIZE_LIMIT the stacked forward goes run by run (a CPU's caches hold one
    run's activations, not M runs'): the stack still equals its runs trained alone."""
    from interp.presets import get_preset
    from interp.tasks import build_task
    from interp.train import loop

    cpu = torch.device("cpu")
    for preset, vectorized in (("kumar-committee", False), ("liu-toy", True)):
        config = get_preset(preset)
        assert loop.vectorizes(config, build_task(config.task), cpu) is vectorized
        assert loop.vectorizes(config, build_task(config.task), torch.device("cuda"))
    monkeypatch.setattr(loop, "CPU_VECTORIZE_LIMIT", 0)
    configs = _configs("committee")
    stacked = train_stack(configs, [tmp_path / f"stack{i}" for i in range(3)], OPTIONS)
    for i, config in enumerate(configs):
        alone = train_stack([config], [tmp_path / f"alone{i}"], OPTIONS)[0]
        assert_same_run(Run.load(stacked[i]), Run.load(alone), exact=False)


def test_the_cli_trains_a_liu_toy_grid_of_twelve_runs_as_one_stack(tmp_path):
    from conftest import run_in_process

    out = tmp_path / "grid"
    result = run_in_process("interp.train", "--preset", "liu-toy", "--set",
                            "schedule.epochs=3", "--set", "schedule.checkpoint_log=0",
                            "--sweep", "optim.lr=1e-4,3e-4,1e-3", "--sweep", "seed=0:4",
                            "--out", str(out), "--quiet", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    runs = [Run.load(path) for path in sorted(out.iterdir())]
    assert len(runs) == 12
    assert {run.record["runtime"]["stacked_runs"] for run in runs} == {12}
    assert {(run.config.optim.lr, run.config.model.seed) for run in runs} == {
        (lr, seed) for lr in (1e-4, 3e-4, 1e-3) for seed in range(4)}
    # optimiser kinds cannot share a stack: one stack each, both trained
    result = run_in_process("interp.train", "--preset", "hu-mlp", "--set", "schedule.epochs=2",
                            "--set", "task.p=11", "--sweep", "optim.name=adamw,sgd",
                            "--out", str(tmp_path / "kinds"), "--quiet", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    kinds = [Run.load(path) for path in sorted((tmp_path / "kinds").iterdir())]
    assert [run.config.optim.name for run in kinds] == ["adamw", "sgd"]
    assert all("stacked_runs" not in run.record["runtime"] for run in kinds)
    assert all(len(run.metrics) > 0 for run in kinds)
