"""Many runs in one process (interp.train.ensemble, --sweep): each run equals the run
trained alone, writes a normal run directory, and a killed ensemble resumes."""

import json

import pytest
from conftest import assert_same_run, files_in, run_cli, small_config

from interp.errors import UserError
from interp.runs import RESUME_FILE, Run
from interp.train.ensemble import train_ensemble
from interp.train.loop import TrainOptions, train
from interp.train.sweep import grid, parse_values, read_sweep_file

OPTIONS = TrainOptions(device="cpu", quiet=True)


@pytest.mark.parametrize("sections", [
    [{"model": {"seed": 3}}, {"model": {"seed": 4}, "optim": {"lr": 1e-2, "weight_decay": 0.3}},
     {"task": {"frac": 0.3, "data_seed": 7}}],
    [{"model": {"seed": 3}, "schedule": {"seed": 1}}, {"model": {"seed": 4}},
     {"optim": {"name": "sgd", "lr": 0.5, "warmup_steps": 3}}],
    [{"objective": {"centered": True, "alpha": a}, "model": {"seed": s}}
     for a, s in ((0.5, 3), (1.0, 4), (2.0, 5))],
], ids=["full-batch", "minibatch", "centred-alpha"])
def test_an_ensemble_of_three_equals_three_single_runs(tmp_path, sections):
    minibatch = "schedule" in sections[0]
    common = {"schedule": {"epochs": 30, "eval_every": 5, "checkpoint_every": 10}}
    if minibatch:
        common["optim"] = {"batch_size": 64}
    configs = [small_config(**{**common, **s,
                               "optim": {**common.get("optim", {}), **s.get("optim", {})},
                               "schedule": {**common["schedule"], **s.get("schedule", {})}})
               for s in sections]
    together = train_ensemble(configs, [tmp_path / f"together{i}" for i in range(3)], OPTIONS)
    for i, config in enumerate(configs):
        alone = train(config, tmp_path / f"alone{i}", OPTIONS)
        assert_same_run(Run.load(together[i]), Run.load(alone), exact=False)
        assert Run.load(alone).weights(30)["embed.weight"].ne(
            Run.load(alone).weights(0)["embed.weight"]).any()


class _Killed(Exception):
    """Stands in for a kill right after an epoch's checkpoints and resume states."""


def _kill_at(epoch):
    def on_epoch(done):
        if done == epoch:
            raise _Killed
    return TrainOptions(device="cpu", quiet=True, on_epoch=on_epoch)


def test_a_killed_ensemble_resumes_to_identical_runs_even_if_killed_mid_save(tmp_path):
    configs = [small_config(model={"seed": s}, schedule={"epochs": 60, "checkpoint_every": 20},
                            objective={"centered": True, "alpha": a})
               for s, a in ((1, 1.0), (2, 2.0), (3, 0.5))]
    straight = train_ensemble(configs, [tmp_path / "straight" / str(i) for i in range(3)],
                              OPTIONS)
    dirs = [tmp_path / "killed" / str(i) for i in range(3)]
    with pytest.raises(_Killed):
        train_ensemble(configs, dirs, _kill_at(20))
    saved_at_20 = (dirs[0] / RESUME_FILE).read_bytes()
    with pytest.raises(_Killed):
        train_ensemble(configs, dirs, TrainOptions(device="cpu", quiet=True, resume=True,
                                                   on_epoch=_kill_at(40).on_epoch))
    # The kill came while epoch 40's resume states were written: run 0's is still epoch 20's.
    (dirs[0] / RESUME_FILE).write_bytes(saved_at_20)
    train_ensemble(None, dirs, TrainOptions(device="cpu", quiet=True, resume=True))
    for a, b in zip(straight, dirs, strict=True):
        assert_same_run(Run.load(a), Run.load(b), exact=True)


def test_sweep_cli_writes_one_normal_run_per_value_and_resumes(tmp_path, config_file):
    path = config_file(small_config(schedule={"epochs": 20, "checkpoint_every": 10}))
    out = tmp_path / "sweep"
    result = run_cli("interp.train", "--config", str(path), "--sweep", "seed=5:7",
                     "--sweep", "optim.lr=1e-3,3e-3", "--out", str(out), "--quiet",
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["model.seed=5_optim.lr=0.001", "model.seed=5_optim.lr=0.003",
                     "model.seed=6_optim.lr=0.001", "model.seed=6_optim.lr=0.003"]
    run = Run.load(out / names[3])
    assert (run.config.model.seed, run.config.optim.lr) == (6, 3e-3)
    assert run.is_complete and len(run.metrics) == 5
    assert result.stdout.count("run: ") == 4
    resumed = run_cli("interp.train", "--out", str(out), "--resume", "--quiet", "--device",
                      "cpu")
    assert resumed.returncode == 0, resumed.stderr
    assert Run.load(out / names[3]).metrics.equals(run.metrics)


def test_sweep_file_gives_one_run_per_override_list(tmp_path):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps([["model.seed=1", "optim.lr=1e-3"], ["task.frac=0.4"]]))
    runs = read_sweep_file(path)
    assert [r.overrides for r in runs] == [("model.seed=1", "optim.lr=1e-3"),
                                           ("task.frac=0.4",)]
    assert [r.name for r in runs] == ["model.seed=1_optim.lr=1e-3", "task.frac=0.4"]


def test_sweep_values():
    assert list(parse_values("0:4")) == [0, 1, 2, 3]
    assert list(parse_values("10:0:-5")) == [10, 5]
    assert parse_values("0.2,0.3") == [0.2, 0.3]
    assert parse_values("[0.9,0.98],[0.9,0.99]") == [[0.9, 0.98], [0.9, 0.99]]
    assert parse_values("adam,sgd") == ["adam", "sgd"]
    assert [r.name for r in grid(["seed=0:2", "optim.betas=[0.9,0.98]"])] == [
        "model.seed=0_optim.betas=[0.9,0.98]", "model.seed=1_optim.betas=[0.9,0.98]"]


@pytest.mark.parametrize("args, message", [
    (["--sweep", "model.sed=0:2"], "unknown config key model.sed"),
    (["--sweep", "seed"], "--sweep expects KEY=VALUES"),
    (["--sweep", "seed=1,1"], "names run 'model.seed=1' twice"),
    (["--sweep-file", "/no/such.json"], "no such file"),
])
def test_bad_sweeps_are_one_line_errors_that_write_nothing(tmp_path, config_file, args,
                                                           message):
    path = config_file(small_config())
    result = run_cli("interp.train", "--config", str(path), *args, "--out",
                     str(tmp_path / "sweep"), "--quiet", "--device", "cpu")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "sweep").exists()


def test_ensemble_refuses_to_overwrite_any_existing_run(tmp_path, config_file):
    configs = [small_config(model={"seed": s}, schedule={"epochs": 5}) for s in (1, 2)]
    dirs = [tmp_path / "a", tmp_path / "b"]
    train(configs[1], dirs[1], OPTIONS)
    before = files_in(dirs[1])
    with pytest.raises(UserError, match="already holds a run"):
        train_ensemble(configs, dirs, OPTIONS)
    assert not dirs[0].exists() and files_in(dirs[1]) == before
    result = run_cli("interp.train", "--config", str(config_file(configs[0])), "--sweep",
                     "seed=0:2", "--out", str(dirs[1]), "--quiet")
    assert result.returncode == 2 and "holds a single run" in result.stderr
    assert files_in(dirs[1]) == before


def test_a_run_of_a_killed_ensemble_can_be_resumed_alone(tmp_path):
    configs = [small_config(model={"seed": s}, schedule={"epochs": 40, "checkpoint_every": 20})
               for s in (1, 2)]
    straight = train(configs[1], tmp_path / "straight", OPTIONS)
    dirs = [tmp_path / "killed" / str(i) for i in range(2)]
    with pytest.raises(_Killed):
        train_ensemble(configs, dirs, _kill_at(20))
    train(None, dirs[1], TrainOptions(device="cpu", quiet=True, resume=True))
    assert_same_run(Run.load(straight), Run.load(dirs[1]), exact=False)
