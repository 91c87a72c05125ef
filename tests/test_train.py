import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from conftest import REPO, run_cli, small_config

from interp.analysis.curves import landmarks
from interp.config import RunConfig
from interp.runs import Run, checkpoint_path
from interp.train.loop import TrainOptions, train


def _start_training(config_path, out):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "interp.train", "--config", str(config_path),
                             "--out", str(out), "--quiet"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_after_checkpoint(process, out, epoch, timeout=120):
    deadline = time.monotonic() + timeout
    while not checkpoint_path(out, epoch).exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "training never reached the kill point"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


TOY = {"task": {"kind": "toy_addition", "p": 10}, "model": {"kind": "toy", "d_emb": 2},
       "optim": {"lr": 1e-3, "weight_decay": 0.1, "batch_size": 16, "update_noise": 0.5,
                 "grad_filter": "ma", "filter_window": 7}}


@pytest.mark.parametrize("overrides, kill_at", [
    ({"schedule": {"epochs": 3000, "checkpoint_every": 100}}, 300),
    ({"schedule": {"epochs": 600, "checkpoint_every": 50},
      "optim": {"batch_size": 64, "warmup_steps": 10}}, 150),
    ({"schedule": {"epochs": 300, "checkpoint_every": 50},
      "optim": {"update_noise": 1.0, "weight_noise": 0.01, "grad_filter": "ema"}}, 100),
    ({**TOY, "schedule": {"epochs": 600, "eval_every": 5, "checkpoint_every": 50}}, 150),
], ids=["full-batch", "minibatch-warmup", "noise-ema-filter", "toy-groups-ma-filter"])
def test_sigkilled_run_resumes_to_bit_identical_weights(tmp_path, config_file, overrides,
                                                        kill_at):
    config = (RunConfig.from_dict(overrides) if "model" in overrides
              else small_config(**overrides))
    path = config_file(config)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run_cli("interp.train", "--config", str(path), "--out", str(straight),
                   "--quiet").returncode == 0
    _kill_after_checkpoint(_start_training(path, killed), killed, kill_at)
    assert not Run.load(killed).is_complete
    resumed = run_cli("interp.train", "--out", str(killed), "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    a, b = Run.load(straight), Run.load(killed)
    last = config.schedule.epochs
    assert b.checkpoint_epochs == a.checkpoint_epochs
    for key, value in a.weights(last).items():
        assert torch.equal(value, b.weights(last)[key]), key
    # no duplicated or missing rows either; the values to float32 rounding, as an evaluation's
    # matmul may split its sums differently from one process to another (seen once in ~10
    # suites: 2.911253 against 2.911254 at epoch 0, the weights bit-identical)
    assert a.metrics["epoch"].tolist() == b.metrics["epoch"].tolist()
    pd.testing.assert_frame_equal(a.metrics, b.metrics, check_exact=False, rtol=1e-6)


def test_resume_drops_a_torn_metrics_line(tmp_path):
    out = tmp_path / "run"
    config = small_config(schedule={"epochs": 40, "checkpoint_every": 20})
    train(config, out, TrainOptions(device="cpu", quiet=True))
    reference = Run.load(out).metrics
    metrics = out / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"epoch": 45, "train_lo')  # torn by a kill
    train(None, out, TrainOptions(device="cpu", quiet=True, resume=True))
    assert Run.load(out).metrics.equals(reference)


def test_checkpoint_schedule():
    from interp.config import ScheduleConfig

    def listed(schedule):
        return [e for e in range(schedule.epochs + 1) if schedule.is_checkpoint(e)]

    assert listed(ScheduleConfig(epochs=10, checkpoint_every=4)) == [0, 4, 8, 10]
    log = ScheduleConfig(epochs=1000, checkpoint_every=0, checkpoint_log=4)
    assert listed(log) == [0, 1, 10, 100, 1000] and log.checkpoint_count() == 5


@pytest.mark.parametrize("args, message", [
    (["--preset", "bogus"], "unknown preset 'bogus'"),
    (["--preset", "tiny", "--set", "task.op=pow"], "unknown modular op 'pow'"),
    (["--preset", "tiny", "--set", "task.p=1"], "task.p must be at least 2"),
    (["--preset", "tiny", "--set", "task.op=div", "--set", "task.p=21"], "must be prime"),
    (["--preset", "tiny", "--set", "task.frac=1.5"], "strictly between 0 and 1"),
    (["--preset", "tiny", "--set", "schedule.epochs=0"], "schedule.epochs must be positive"),
    (["--config", "/no/such/file.json"], "no such file"),
    (["--preset", "tiny", "--device", "cuda:0"], "CUDA is not available"),
    ([], "give --preset NAME or --config FILE"),
])
def test_cli_bad_input_is_one_line_exit_2_no_traceback(tmp_path, args, message):
    result = run_cli("interp.train", *args, "--out", str(tmp_path / "run"), "--quiet")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_cli_refuses_to_overwrite_or_resume_a_different_run(tmp_path, config_file):
    out = tmp_path / "run"
    config = small_config(schedule={"epochs": 10, "checkpoint_every": 5})
    train(config, out, TrainOptions(device="cpu", quiet=True))
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    other = config_file(small_config(schedule={"epochs": 10}, optim={"lr": 1e-2}))
    for args, message in [
        (["--config", str(other)], "already holds a run"),
        (["--config", str(other), "--resume"], "holds a different run (config differs in "
                                                "optim.lr"),
        (["--resume", "--force", "--config", str(other)], "not allowed with argument"),
    ]:
        result = run_cli("interp.train", *args, "--out", str(out), "--quiet")
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    after = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before
    bad_config = tmp_path / "bad.json"
    bad_config.write_text(json.dumps({"task": {"p": 1}}))
    result = run_cli("interp.train", "--config", str(bad_config), "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and "task.p must be at least 2" in result.stderr


def test_cli_reports_corrupt_resume_state_in_one_line(tmp_path):
    out = tmp_path / "run"
    train(small_config(schedule={"epochs": 10, "checkpoint_every": 5}), out,
          TrainOptions(device="cpu", quiet=True))
    (out / "resume" / "state.safetensors").write_bytes(b"PK\x03\x04 not a safetensors file")
    result = run_cli("interp.train", "--out", str(out), "--resume", "--quiet")
    assert result.returncode == 2 and "state.safetensors" in result.stderr
    assert "Traceback" not in result.stderr


def test_tiny_preset_groks(tmp_path):
    """The tiny preset memorises first and generalises much later (grokking), on CPU."""
    result = run_cli("interp.train", "--preset", "tiny", "--out", str(tmp_path / "tiny"),
                     "--quiet", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "test acc >= 99% at epoch" in result.stdout
    marks = landmarks(Run.load(tmp_path / "tiny").metrics)
    assert marks.train_acc_99 is not None and marks.test_acc_99 is not None
    assert marks.accuracy_gap > 5 * marks.train_acc_99  # generalises long after memorising
    metrics = Run.load(tmp_path / "tiny").metrics
    assert metrics["test_loss"].max() > 1.5 * metrics["test_loss"].iloc[0]  # memorisation
    assert marks.final_test_acc > 0.95
