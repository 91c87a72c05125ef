"""Bounds before allocation: resource estimates, the check that refuses what cannot fit, and
the checkpoint schedule counted without materialising it."""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time

import pytest
from conftest import REPO, run_in_process

import interp.resources as resources
from interp.config import ScheduleConfig
from interp.errors import UserError
from interp.presets import PRESETS, get_preset
from interp.resources import (
    OVERRIDE_FLAG,
    RUNTIME_BYTES,
    check_resources,
    estimate_resources,
    parameter_count,
)

GB = 10**9


@pytest.fixture
def machine(monkeypatch):
    """A machine with 22 GB of free memory (the issue's), 80 GB of free disk, 1 GB of GPU."""
    monkeypatch.setattr(resources, "memory_available", lambda: 22 * GB)
    monkeypatch.setattr(resources, "disk_free", lambda path: (path, 80 * GB))
    monkeypatch.setattr(resources, "device_memory_available", lambda device: 1 * GB)


def _status_bytes(key: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _peak_growth(action) -> tuple[object, int]:
    """(what ``action()`` returned or the UserError it raised, how far it raised this
    process's peak RSS in bytes). The peak is first reset to the current RSS
    (/proc/self/clear_refs) where Linux allows, so an earlier test's higher peak cannot hide
    an allocation; else the growth of ru_maxrss is taken."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        before, peak = _status_bytes("VmRSS"), lambda: _status_bytes("VmHWM")
    except OSError:
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # noqa: E731
        before = peak()
    try:
        outcome = action()
    except UserError as error:
        outcome = error
    return outcome, peak() - before


# (preset, --set overrides, what the one-line error must say): the issue's cases.
ISSUE_CASES = [
    ("tiny", ["task.p=100003"], ["of memory", "task.p=100003", "lower task.p"]),
    ("tiny", ["task.p=20011"], ["of memory", "task.p=20011", "lower task.p"]),
    ("tiny", ["model.d_mlp=1e9"], ["of memory", "model.d_mlp=1000000000",
                                   "lower model.d_mlp"]),
    ("tiny", ["schedule.checkpoint_every=1", "schedule.epochs=1e10"],
     ["of disk space", "1.0e10 checkpoints", "raise schedule.checkpoint_every"]),
    ("nanda", ["model.d_model=100000"], ["of memory", "model.d_model=100000",
                                         "lower model.d_model"]),
    ("kumar-teacher", ["task.hidden=[60000,60000]"], ["of memory",
                                                       "task.hidden=[60000, 60000]"]),
]


@pytest.mark.parametrize("preset, overrides, expected", ISSUE_CASES,
                         ids=[" ".join(case[1]) for case in ISSUE_CASES])
def test_issue_cases_are_refused_at_once_allocating_nothing(machine, tmp_path, preset,
                                                            overrides, expected):
    config = get_preset(preset).with_overrides(overrides)
    start = time.perf_counter()
    error, growth = _peak_growth(lambda: check_resources([config], tmp_path / "run", "cpu"))
    assert time.perf_counter() - start < 2 and growth < 200 * 10**6
    assert isinstance(error, UserError)
    message = str(error)
    assert "\n" not in message and message.startswith("this run needs about ")
    assert f"or pass {OVERRIDE_FLAG} to try anyway" in message
    limit = "22.0 GB available" if "of memory" in message else "80.0 GB free on"
    assert limit in message
    for fragment in expected:
        assert fragment in message


def test_memory_refusal_names_the_estimate_the_limit_and_the_biggest_part(machine, tmp_path):
    config = get_preset("tiny").with_overrides(["task.p=20011"])
    estimate = estimate_resources([config])
    assert config.task.n_examples() == 20011**2
    with pytest.raises(UserError) as info:
        check_resources([config], tmp_path, "cpu")
    biggest = estimate.biggest("memory")
    assert biggest.what == "activations"  # full-batch logits: 2e8 rows x 20011 outputs
    assert biggest.size > 2 * 10**8 * 20011 * 4
    assert str(info.value).startswith(
        f"this run needs about {resources._size(estimate.memory_bytes)} of memory "
        f"(activations: 2.0e08 examples a step")


def test_override_returns_the_refusals_instead_of_raising(machine, tmp_path):
    config = get_preset("tiny").with_overrides(["model.d_mlp=1e9"])
    estimate = check_resources([config], tmp_path, "cpu", override=True)
    memory, disk = estimate.refusals  # 15 TB of activations; 29 checkpoints of 0.5 TB each
    assert "of memory" in memory and "of disk space (checkpoints: 29 checkpoints" in disk
    assert all("; lower model.d_mlp" in message for message in estimate.refusals)
    assert estimate.available == {"memory": 22 * GB, "disk": 80 * GB}
    assert estimate.n_parameters == parameter_count(config) > 2 * 64 * 10**9


def test_a_huge_log_schedule_is_refused_and_a_dense_one_counted(machine, monkeypatch,
                                                                 tmp_path):
    """checkpoint_log=1e9 is refused by the config (at most 100 000 log-spaced points); at
    100 000 on nanda, 19 109 of its 25 001 epochs are checkpoints: 17.5 GB, more than a 10 GB
    disk, found without listing them."""
    from interp.config import ConfigError

    start = time.perf_counter()
    with pytest.raises(ConfigError, match="schedule.checkpoint_log must lie in 0..100000"):
        get_preset("tiny").with_overrides(["schedule.checkpoint_log=1e9"])
    nanda = get_preset("nanda").with_overrides(["schedule.checkpoint_log=100000"])
    monkeypatch.setattr(resources, "disk_free", lambda path: (path, 10 * GB))
    estimate, growth = _peak_growth(
        lambda: check_resources([nanda], tmp_path, "cpu", override=True))
    assert growth < 200 * 10**6 and estimate.n_checkpoints == 19109
    with pytest.raises(UserError, match=r"about 17\.\d GB of disk space \(checkpoints: 19109 "
                       r"checkpoints.*lower schedule.checkpoint_log, or pass"):
        check_resources([nanda], tmp_path, "cpu")
    assert time.perf_counter() - start < 2


def test_metrics_rows_count_towards_disk(machine, tmp_path):
    config = get_preset("tiny").with_overrides(["schedule.epochs=1e12", "schedule.eval_every=1",
                                                "schedule.checkpoint_every=0",
                                                "schedule.checkpoint_log=0"])
    with pytest.raises(UserError, match="metrics: 1.0e12 metrics rows.*raise "
                                        "schedule.eval_every"):
        check_resources([config], tmp_path, "cpu")


def test_gpu_memory_is_checked_on_cuda_and_the_data_set_stays_on_the_host(machine, tmp_path):
    config = get_preset("nanda").with_overrides(["model.d_model=4000"])
    estimate = estimate_resources([config], "cuda")
    assert {n.what for n in estimate.needs if n.where == "memory"} == {
        "runtime", "data set", "model build"}
    assert {n.what for n in estimate.needs if n.where == "device"} == {
        "training rows", "model state", "activations"}
    assert 1 * GB < estimate.device_bytes < 22 * GB and estimate.memory_bytes < 22 * GB
    with pytest.raises(UserError, match=r"of GPU memory \(activations: .*more than the 1.0 GB "
                                        r"free on cuda:0; lower model.d_model"):
        check_resources([config], tmp_path, "cuda:0")
    build = next(n.size for n in estimate.needs if n.what == "model build")
    cpu = check_resources([config], tmp_path, "cpu")
    assert cpu.memory_bytes == estimate.memory_bytes - build + estimate.device_bytes


def test_a_stack_needs_about_its_size_times_one_run(machine, tmp_path):
    base = get_preset("nanda")
    one = estimate_resources([base])
    eight = estimate_resources([base.with_overrides([f"model.seed={s}"]) for s in range(8)])
    for what in ("data set", "model state", "activations", "checkpoints"):
        single = next(n.size for n in one.needs if n.what == what)
        stacked = next(n.size for n in eight.needs if n.what == what)
        assert 8 * single <= stacked <= 9 * single, what
    many = [base.with_overrides([f"model.seed={s}", "model.d_model=20000"]) for s in range(8)]
    with pytest.raises(UserError, match="these 8 runs trained together need about .* x 8 runs"):
        check_resources(many, tmp_path, "cpu")


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_fits_a_22_gb_machine_with_room_to_spare(machine, tmp_path, name):
    estimate = check_resources([get_preset(name)], tmp_path, "cpu")
    assert not estimate.refusals
    assert estimate.memory_bytes < 2 * GB and estimate.disk_bytes < 1 * GB


def test_every_preset_fits_this_machine(tmp_path):
    for name in PRESETS:
        check_resources([get_preset(name)], tmp_path, "cpu")


def test_limits_come_from_the_machine(tmp_path):
    assert 0 < resources.memory_available() <= resources.os.sysconf(
        "SC_PHYS_PAGES") * resources.os.sysconf("SC_PAGE_SIZE")
    place, free = resources.disk_free(tmp_path / "not" / "yet" / "made")
    assert place == tmp_path and free > 0


# ---------------------------------------------------------------------------------------------
# Parameter counts and the checkpoint schedule


PARAMETER_CASES = [
    ("tiny", []), ("power", []), ("tiny", ["model.normalization=RMS", "model.n_layers=2"]),
    ("tiny", ["model.normalization=LNPre", "model.act_fn=gelu", "model.d_head=8"]),
    ("tiny", ["task.kind=permutation", "task.n=4", "task.encoding=power"]),
    ("tiny", ["task.kind=toy_addition", "task.p=9"]),
    ("hu-mlp", ["model.bias=false", "model.hidden=[7, 9, 11]"]),
    ("hu-mlp", ["task.kind=permutation", "task.n=3", "task.encoding=onehot"]),
    ("hu-lstm", ["model.n_layers=3", "model.hidden=5"]), ("kumar-gromov", []),
    ("kumar-committee", []), ("liu-toy", []), ("liu-toy", ["task.output=scalar",
                                                          "objective.loss=mse"]),
    ("kumar-teacher", []), ("omnigrok-digits", ["task.source=sklearn"]),
]


@pytest.mark.parametrize("preset, overrides", PARAMETER_CASES)
def test_parameter_count_is_the_built_models_state_dict_size(preset, overrides):
    from interp.models import build_model
    from interp.tasks import build_task

    config = get_preset(preset).with_overrides(overrides)
    model = build_model(config.model, build_task(config.task, config.model))
    assert parameter_count(config) == sum(v.numel() for v in model.state_dict().values())


def _schedules() -> list[ScheduleConfig]:
    rng = random.Random(0)
    edge = [ScheduleConfig(epochs=e, checkpoint_every=c, checkpoint_log=k)
            for e in (1, 2, 3, 10) for c in (0, 1, 2, 7, 20) for k in (0, 1, 2, 3, 5, 40)]
    return edge + [ScheduleConfig(epochs=rng.randint(1, 3000),
                                  checkpoint_every=rng.choice([0, rng.randint(1, 500)]),
                                  checkpoint_log=rng.choice([0, rng.randint(1, 5000)]))
                   for _ in range(60)]


def _listed_checkpoints(schedule: ScheduleConfig) -> list[int]:
    """The checkpoint epochs, listed one by one (the definition, for small schedules)."""
    import numpy as np

    epochs = {0, schedule.epochs}
    if schedule.checkpoint_every:
        epochs.update(range(0, schedule.epochs + 1, schedule.checkpoint_every))
    if schedule.checkpoint_log:
        epochs.update(int(round(e)) for e in np.geomspace(1, schedule.epochs,
                                                          schedule.checkpoint_log))
    return sorted(epochs)


def test_checkpoint_arithmetic_matches_the_listed_schedule():
    for schedule in _schedules():
        expected = _listed_checkpoints(schedule)
        got = [e for e in range(schedule.epochs + 1) if schedule.is_checkpoint(e)]
        assert got == expected, schedule
        assert schedule.checkpoint_count() == len(expected), schedule


def test_checkpoint_count_of_huge_schedules_is_instant():
    start = time.perf_counter()
    assert ScheduleConfig(epochs=10**10, checkpoint_every=1).checkpoint_count() == 10**10 + 1
    assert ScheduleConfig(epochs=10**10, checkpoint_every=3).checkpoint_count() == 10**10 // 3 + 2
    huge = ScheduleConfig(epochs=10**12, checkpoint_every=0, checkpoint_log=100_000)
    assert huge.checkpoint_count() <= 100_001 and huge.is_checkpoint(1)
    assert huge.is_checkpoint(10**12) and not huge.is_checkpoint(10**12 - 1)
    assert time.perf_counter() - start < 1


# ---------------------------------------------------------------------------------------------
# Estimates against measured peaks

_MEASURE = """
import ctypes, gc, json, sys, tempfile
from pathlib import Path
import transformer_lens.model_bridge  # noqa: F401 (the imports are not the runs')
from interp.presets import get_preset
from interp.train.loop import TrainOptions, train

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

for preset, overrides in json.loads(sys.argv[1]):
    config = get_preset(preset).with_overrides(overrides)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap back to the OS: a fresh start
    open("/proc/self/clear_refs", "w").write("5")  # the peak RSS so far := the current RSS
    baseline = status("VmRSS")
    with tempfile.TemporaryDirectory() as tmp:
        train(config, Path(tmp) / "run", TrainOptions(device="cpu", quiet=True))
    print(status("VmHWM") - baseline)
"""

MEASURED = [
    ("tiny", ["task.p=211", "schedule.epochs=1"]),  # the transformer's fast path, 22k rows
    ("hu-mlp", ["task.p=199", "schedule.epochs=1"]),  # one-hot MLP, 40k rows of 398 floats
]


def test_memory_estimate_is_within_3x_of_the_measured_peak():
    """What training adds to the peak RSS of a process that has done its imports (read from
    /proc/self/status, the peak reset through /proc/self/clear_refs and freed heap returned
    with malloc_trim before each run), against the estimate less its runtime part. The runs'
    own tensors (a few hundred MB each) dominate both, so the ratio tests the formulas."""
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak RSS")
    result = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(MEASURED)], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    for (preset, overrides), measured in zip(MEASURED, result.stdout.split(), strict=True):
        config = get_preset(preset).with_overrides(overrides)
        expected = estimate_resources([config]).memory_bytes - RUNTIME_BYTES
        assert expected > 300 * 10**6
        assert expected / 3 <= int(measured) <= 3 * expected, (preset, int(measured), expected)


@pytest.mark.parametrize("overrides, message", [
    (["--set", "task.p=100003"], "lower task.p"),
    (["--set", "task.p=20011"], "lower task.p"),
    (["--set", "model.d_mlp=1e9"], "lower model.d_mlp"),
    (["--set", "schedule.checkpoint_every=1", "--set", "schedule.epochs=1e10"],
     "raise schedule.checkpoint_every"),
    (["--set", "schedule.checkpoint_log=1e9"], "schedule.checkpoint_log must lie in"),
    (["--set", "task.frac=0.0001"], "leaves no training example"),
    (["--sweep", "seed=0:1000000000"], "one sweep holds at most 10000"),
], ids=["p100003", "p20011", "d_mlp", "checkpoint_every", "checkpoint_log", "frac", "sweep"])
def test_cli_refuses_before_making_the_run_directory(tmp_path, overrides, message):
    """The issue's commands: one error line, within seconds, allocating nothing big and
    leaving no run directory behind."""
    out = tmp_path / "run"
    import interp.train.loop  # noqa: F401  (the imports' memory is not the config's)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = run_in_process("interp.train", "--preset", "tiny", *overrides, "--out", str(out),
                            "--quiet")
    assert time.perf_counter() - start < 5
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 < 200 * 10**6
    assert list(tmp_path.iterdir()) == []


def test_skip_resource_check_trains_anyway_with_a_warning(tmp_path):
    """An override for an estimate that is wrong for this machine: the refusal becomes a
    warning and the run trains."""
    out = tmp_path / "run"
    huge_disk = ["--set", "schedule.checkpoint_every=1", "--set", "schedule.epochs=3"]
    real_free = resources.disk_free
    try:  # pretend the disk is nearly full, so that 4 checkpoints do not fit
        resources.disk_free = lambda path: (real_free(path)[0], 10_000)
        refused = run_in_process("interp.train", "--preset", "tiny", *huge_disk, "--out",
                                 str(out), "--quiet")
        forced = run_in_process("interp.train", "--preset", "tiny", *huge_disk, "--out",
                                str(out), "--quiet", OVERRIDE_FLAG)
    finally:
        resources.disk_free = real_free
    assert refused.returncode == 2 and "of disk space" in refused.stderr
    assert forced.returncode == 0, forced.stderr
    assert "warning: " in forced.stderr and OVERRIDE_FLAG in forced.stderr
    assert len(list((out / "checkpoints").iterdir())) == 4
