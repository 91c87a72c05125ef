"""Nothing a user owns is ever deleted, two writers never mix, a run directory is created
whole or not at all, and damaged run files are refused in one line (issue 10)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, run_in_process, small_config

from interp.errors import UserError
from interp.files import DirectoryLock, json_text
from interp.runs import (
    Run,
    RunFileError,
    RunWriter,
    checkpoint_path,
    load_tensors,
    lock_analysis,
    save_tensors,
)
from interp.train.loop import TrainOptions, train
from interp.train.sweep import MAX_RUNS, SweepRun, grid

QUICK = ["--preset", "tiny", "--set", "schedule.epochs=2", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small finished run (60 epochs, checkpoints 0, 20, 40, 60) to copy and damage."""
    path = tmp_path_factory.mktemp("safety") / "run"
    train(small_config(), path, TrainOptions(device="cpu", quiet=True))
    return path


@pytest.fixture
def run_copy(trained, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(trained, path)
    return path


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links not followed) -> a hash of its bytes."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            files[str(path.relative_to(root))] = f"link:{os.readlink(path)}"
        elif path.is_file() and path.name != ".lock":
            files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def cli(*args: str, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


# --- 1. --force deletes only what a run owns -------------------------------------------------


def test_force_with_out_dot_in_a_fresh_clone_deletes_nothing(trained, tmp_path):
    clone = tmp_path / "clone"
    (clone / "checkpoints").mkdir(parents=True)
    (clone / "checkpoints" / "README.md").write_text("runs live here\n")
    (clone / "README.md").write_text("readme\n")
    shutil.copytree(trained, clone / "checkpoints" / "nanda-p113")
    before = snapshot(clone)
    result = run_in_process("interp.train", *QUICK, "--out", ".", "--force", cwd=clone)
    assert_one_line_error(result, "not a run", "README.md", "checkpoints/")
    assert snapshot(clone) == before


@pytest.mark.parametrize("layout, named", [
    ({"checkpoints/mine.txt": "mine"}, "checkpoints/mine.txt"),
    ({"run.json": None, "notes.txt": "my notes"}, "notes.txt"),
    ({"run.json": None, "checkpoints/mine.txt": "mine"}, "checkpoints/mine.txt"),
    ({"run.json": None, "analysis/figures/fig.png": "png"}, "analysis/figures/"),
    ({"run.json": None, "resume/state.safetensors.bak": "old"}, "resume/state.safetensors.bak"),
], ids=["user-dir", "run-plus-file", "run-plus-file-in-checkpoints", "run-plus-analysis-dir",
        "run-plus-backup"])
def test_force_refuses_a_directory_holding_anything_a_run_did_not_write(
        trained, tmp_path, layout, named):
    out = tmp_path / "userdir"
    if "run.json" in layout:
        shutil.copytree(trained, out)
    for name, text in layout.items():
        if text is not None:
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_text(text)
    before = snapshot(out)
    result = run_in_process("interp.train", *QUICK, "--out", str(out), "--force")
    assert_one_line_error(result, named)
    assert snapshot(out) == before


def test_force_never_follows_a_link_out_of_the_run(trained, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "0000000.safetensors").parent.mkdir(parents=True)
    (elsewhere / "0000000.safetensors").write_text("the user's")
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    shutil.rmtree(out / "checkpoints")
    (out / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    result = run_in_process("interp.train", *QUICK, "--out", str(out), "--force")
    assert_one_line_error(result, "checkpoints/")
    assert (elsewhere / "0000000.safetensors").read_text() == "the user's"


def test_force_replaces_a_run_removing_exactly_its_files(run_copy):
    analysis = run_copy / "analysis" / "fourier"
    analysis.mkdir(parents=True)
    (analysis / "0000020.json").write_text("{}")
    (run_copy / "analysis" / "summary.json").write_text("{}")
    (run_copy / "checkpoints" / ".0000080.safetensors.x7k2m9q1.tmp").write_bytes(b"torn")
    config = small_config(schedule={"epochs": 10, "checkpoint_every": 5}, optim={"lr": 1e-2})
    train(config, run_copy, TrainOptions(device="cpu", quiet=True, force=True))
    run = Run.load(run_copy)
    assert run.config == config and run.checkpoint_epochs == [0, 5, 10]
    assert not (run_copy / "analysis").exists()
    assert not list((run_copy / "checkpoints").glob(".*.tmp"))
    assert run.metrics["epoch"].tolist() == [0, 5, 10]


def test_an_interrupted_replacement_is_taken_over_by_the_next_run(run_copy):
    (run_copy / ".incomplete").write_bytes(b"")  # --force marks the run, removes run.json...
    (run_copy / "run.json").unlink()  # ...and then the kill came
    assert_one_line_error(run_in_process("interp.train", "--out", str(run_copy), "--resume"),
                          "holds no run to resume")
    result = run_in_process("interp.train", *QUICK, "--out", str(run_copy))
    assert result.returncode == 0, result.stderr
    assert Run.load(run_copy).config.preset == "tiny" and not (run_copy / ".incomplete").exists()


@pytest.mark.parametrize("files", [{"metrics.jsonl": "my experiment log\n"},
                                   {"run.json": '{"name": "my web app"}',
                                    "metrics.jsonl": '{"t": 1}\n'},
                                   {"checkpoints/1.safetensors": "mine"}],
                         ids=["lone-metrics", "run.json-not-a-run", "lone-checkpoint"])
def test_files_named_like_a_runs_are_not_a_run_without_its_run_json(tmp_path, files):
    out = tmp_path / "mine"
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = snapshot(out)
    for extra in ([], ["--force"]):
        result = run_in_process("interp.train", *QUICK, "--out", str(out), *extra)
        assert_one_line_error(result, "not a run", sorted(files)[0].split("/")[0])
    assert snapshot(out) == before


# --- 2. no path comes from a config string ---------------------------------------------------


@pytest.mark.parametrize("preset", ["{escape}", "../../escaped", "a/b", "..", ".hidden", "x" * 200])
def test_a_preset_label_never_becomes_a_path_outside_checkpoints(tmp_path, preset):
    escape = tmp_path / "escaped-here"
    preset = preset.format(escape=escape)
    clone = tmp_path / "clone"
    clone.mkdir()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**small_config(schedule={"epochs": 2}).to_dict(),
                                  "preset": preset}))
    result = run_in_process("interp.train", "--config", str(config), "--quiet", cwd=clone)
    assert_one_line_error(result, "cannot name a directory" if len(preset) < 129
                          else "bytes long")
    assert not escape.exists() and list(clone.iterdir()) == []
    assert not (tmp_path / "escaped").exists()


def test_sweep_run_names_are_safe_bounded_and_distinct():
    unsafe = SweepRun(("optim.betas=[0.9,0.99]", "task.op=../../x y"))
    assert unsafe.name == "optim.betas=[0.9,0.99]_task.op=----xy"
    long_a = SweepRun((f"task.frac={'3' * 300}1",))
    long_b = SweepRun((f"task.frac={'3' * 300}2",))
    assert len(long_a.name.encode()) <= 128 and long_a.name != long_b.name
    assert SweepRun(("model.seed=3", "optim.lr=0.001")).name == "model.seed=3_optim.lr=0.001"


def test_a_huge_sweep_is_refused_before_anything_is_built():
    start = time.perf_counter()
    with pytest.raises(UserError, match=f"at most {MAX_RUNS}"):
        grid(["seed=0:1000000000"])
    with pytest.raises(UserError, match="1000000000000 runs"):
        grid(["seed=0:1000000", "task.data_seed=0:1000000"])
    assert time.perf_counter() - start < 1.0


def test_a_sweep_run_name_over_255_bytes_trains(tmp_path):
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps([[f"task.frac=0.{'3' * 280}"], ["task.frac=0.5"]]))
    out = tmp_path / "sweep"
    result = run_in_process("interp.train", *QUICK, "--sweep-file", str(sweep), "--out", str(out))
    assert result.returncode == 0, result.stderr
    runs = sorted(p.name for p in out.iterdir())
    assert len(runs) == 2 and all(len(name) <= 128 for name in runs)
    assert {Run.load(out / name).config.task.frac for name in runs} == {0.3333333333333333, 0.5}


# --- 3. one writer per run directory ----------------------------------------------------------


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_second_writer_is_refused_naming_the_first_and_a_kill_frees_the_run(
        tmp_path, config_file):
    config = config_file(small_config(schedule={"epochs": 300, "checkpoint_every": 20}))
    out = tmp_path / "run"
    first = _start(["interp.train", "--config", str(config), "--out", str(out), "--quiet"])
    try:
        deadline = time.monotonic() + 120
        while not checkpoint_path(out, 20).exists():
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)  # paused mid-run, still holding the lock
        other = config_file(small_config(schedule={"epochs": 100}, optim={"lr": 0.01}),
                            "other.json")
        for args in (["--config", str(other), "--force"], ["--resume"]):
            second = run_in_process("interp.train", *args, "--out", str(out), "--quiet")
            assert_one_line_error(second, "being written by another process",
                                  f"PID {first.pid}")
        assert Run.load(out).config.optim.lr == small_config().optim.lr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    resumed = run_in_process("interp.train", "--out", str(out), "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr  # the kernel dropped the dead holder's lock
    metrics = Run.load(out).metrics
    assert metrics["epoch"].is_unique and metrics["epoch"].iloc[-1] == 300


def test_two_analyses_of_one_run_never_interleave(run_copy):
    with lock_analysis(run_copy / "analysis"):
        result = cli("interp.analyze", str(run_copy), "--only", "fourier")
    assert_one_line_error(result, "being analysed by another process", f"PID {os.getpid()}")


def test_force_touches_nothing_while_the_run_is_being_analysed(run_copy):
    (run_copy / "analysis").mkdir()
    before = snapshot(run_copy)
    with lock_analysis(run_copy / "analysis"):
        result = run_in_process("interp.train", *QUICK, "--out", str(run_copy), "--force")
    assert_one_line_error(result, "being analysed")
    assert snapshot(run_copy) == before and Run.load(run_copy).is_complete


def test_a_refused_sweep_force_replaces_none_of_its_runs(tmp_path):
    out = tmp_path / "sweep"
    sweep = ["--preset", "tiny", "--set", "schedule.epochs=2", "--sweep", "seed=0:3", "--quiet",
             "--out", str(out)]
    assert run_in_process("interp.train", *sweep).returncode == 0
    before = snapshot(out)
    with DirectoryLock.acquire(out / "model.seed=2"):  # another process writes the last run
        result = run_in_process("interp.train", *sweep, "--force")
    assert_one_line_error(result, "model.seed=2 is being written")
    assert snapshot(out) == before


def test_analyze_out_never_overwrites_a_users_files(run_copy, tmp_path):
    mine = tmp_path / "userdir"
    mine.mkdir()
    (mine / "summary.json").write_text('{"mine": true}')
    before = snapshot(mine)
    run_files = snapshot(run_copy)
    for out, message in ((mine, "is not a directory interp.analyze made"),
                         (run_copy, "holds files interp.analyze does not write")):
        result = run_in_process("interp.analyze", str(run_copy), "--only", "fourier", "--out",
                                str(out))
        assert_one_line_error(result, message)
    assert snapshot(mine) == before and snapshot(run_copy) == run_files
    fresh = tmp_path / "fresh"
    assert run_in_process("interp.analyze", str(run_copy), "--only", "fourier", "--out",
                          str(fresh)).returncode == 0
    again = run_in_process("interp.analyze", str(run_copy), "--only", "fourier", "--out",
                           str(fresh))  # its own directory: reused
    assert again.returncode == 0, again.stderr


def test_the_lock_is_per_process_and_released_by_close(tmp_path):
    lock = DirectoryLock.acquire(tmp_path)
    with pytest.raises(UserError, match=f"PID {os.getpid()}"):
        DirectoryLock.acquire(tmp_path)
    lock.release()
    DirectoryLock.acquire(tmp_path).release()


# --- 6. atomic creation, stale temporary files, standard JSON ---------------------------------


_KILLED_CREATION = """
import os, signal, sys, torch
import interp.runs as runs
from conftest import small_config
real = runs.atomic_write_bytes
def write(path, data):
    real(path, data)
    if path.name == "split.safetensors":
        os.kill(os.getpid(), signal.SIGKILL)  # between the folder and its run.json
runs.atomic_write_bytes = write
runs.RunWriter.create(sys.argv[1], small_config(), torch.arange(264), torch.arange(264, 529))
"""


def test_a_kill_during_creation_leaves_a_folder_the_rerun_takes_over(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"}
    killed = subprocess.run([sys.executable, "-c", _KILLED_CREATION, str(out)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert sorted(p.name for p in out.iterdir()) == [".incomplete", ".lock", "split.safetensors"]
    with pytest.raises(RunFileError, match="not a run directory"):
        Run.load(out)
    result = run_in_process("interp.train", *QUICK, "--out", str(out))  # no --force needed
    assert result.returncode == 0, result.stderr
    assert Run.load(out).config.preset == "tiny" and not (out / ".incomplete").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_failed_creation_leaves_a_folder_the_rerun_takes_over(tmp_path, monkeypatch):
    import interp.runs as runs

    real = runs.atomic_write_bytes

    def fail(path, data):
        if path.name == "split.safetensors":
            raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(runs, "atomic_write_bytes", fail)
    with pytest.raises(OSError):
        RunWriter.create(tmp_path / "run", small_config(), torch.arange(264),
                         torch.arange(264, 529))
    monkeypatch.setattr(runs, "atomic_write_bytes", real)
    RunWriter.create(tmp_path / "run", small_config(), torch.arange(264),
                     torch.arange(264, 529)).close()
    assert Run.load(tmp_path / "run").config == small_config()


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_lock_file_that_is_a_link_is_refused_and_its_target_untouched(run_copy, tmp_path,
                                                                       link):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (run_copy / ".lock").unlink()
    if link == "symlink":
        (run_copy / ".lock").symlink_to(victim)
    else:
        os.link(victim, run_copy / ".lock")
    for args, message in ((["--resume"], ".lock is a link"),
                          ([*QUICK, "--force"], "also holds .lock")):
        result = run_in_process("interp.train", *args, "--out", str(run_copy))
        assert_one_line_error(result, message)
    (run_copy / "analysis").mkdir()
    (run_copy / "analysis" / ".lock").symlink_to(victim)
    assert_one_line_error(run_in_process("interp.analyze", str(run_copy), "--only", "fourier"),
                          ".lock is a link")
    assert victim.read_text() == "precious"


def test_hidden_neighbours_of_a_new_run_are_left_alone(trained, tmp_path):
    shutil.copytree(trained, tmp_path / ".myrun.backup-2024.tmp")
    (tmp_path / ".myrun.backup-2024.tmp" / ".lock").unlink()
    (tmp_path / ".myrun.keep.tmp").mkdir()
    before = snapshot(tmp_path)
    result = run_in_process("interp.train", *QUICK, "--out", str(tmp_path / "myrun"))
    assert result.returncode == 0, result.stderr
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("myrun")}
    assert after == before and (tmp_path / ".myrun.keep.tmp").is_dir()


@pytest.mark.parametrize("kind", ["symlink-to-empty-dir", "empty-dir"])
def test_out_may_be_an_existing_empty_directory_or_a_link_to_one(tmp_path, kind):
    real = tmp_path / "real"
    real.mkdir()
    out = real if kind == "empty-dir" else tmp_path / "link"
    if kind != "empty-dir":
        out.symlink_to(real, target_is_directory=True)
    result = run_in_process("interp.train", *QUICK, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert Run.load(real).is_complete


def test_stale_temporary_files_of_the_run_are_removed_on_resume(run_copy):
    planted = [run_copy / "checkpoints" / ".0000080.safetensors.k3j4h5g6.tmp",
               run_copy / "resume" / ".state.safetensors.abcd1234.tmp",
               run_copy / ".metrics.jsonl.q1w2e3r4.tmp"]
    users = run_copy / ".notes.abcd1234.tmp"
    for path in [*planted, users]:
        path.write_bytes(b"half written")
    result = run_in_process("interp.train", "--out", str(run_copy), "--resume", "--quiet")
    assert result.returncode == 0, result.stderr
    assert not any(p.exists() for p in planted)
    assert users.read_bytes() == b"half written"  # not a run file's: the user's


def test_metrics_are_standard_json(tmp_path):
    writer = RunWriter.create(tmp_path / "run", small_config(), torch.arange(3),
                              torch.arange(3, 529))
    with writer:
        writer.append_metrics({"epoch": 0, "train_loss": math.nan, "test_loss": math.inf,
                               "acc": torch.tensor(0.5)})
    line = (tmp_path / "run" / "metrics.jsonl").read_text().strip()

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    assert json.loads(line, parse_constant=refuse) == {
        "epoch": 0, "train_loss": None, "test_loss": None, "acc": 0.5}
    assert math.isnan(Run.load(tmp_path / "run").metrics["train_loss"].iloc[0])
    assert json_text({"x": [1.0, -math.inf]}) == '{"x": [1.0, null]}'


def test_metrics_rows_that_are_not_evaluations_are_skipped_with_a_warning(run_copy, capsys):
    metrics = run_copy / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    junk = ["[1, 2]", '{"train_loss": 1.0}', '{"epoch": "3"}', "5", '{"epoch": -1}', "GARBAGE",
            '{"epoch": true}']
    metrics.write_text("\n".join(lines[:2] + junk + lines[2:]) + "\n")
    frame = Run.load(run_copy).metrics
    assert frame["epoch"].tolist() == list(range(0, 61, 5))
    err = capsys.readouterr().err
    assert "warning:" in err and "lines 3, 4, 5, 6, 7 and 1 more" in err and "line 8" in err
    result = run_in_process("interp.train", "--out", str(run_copy), "--resume", "--quiet")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


# --- 4. damaged resume states, splits, checkpoints: refused in one line ----------------------


def _edit_resume(path: Path, edit) -> None:
    """Rewrite the run's resume state with ``edit(tensors, meta)`` applied (it edits the
    tensors in place and returns the metadata to write)."""
    file = path / "resume" / "state.safetensors"
    tensors, metadata = load_tensors(file)
    meta = edit(tensors, json.loads(metadata["meta"]))
    save_tensors(file, tensors, {"meta": json.dumps(meta)})


def _first(tensors, prefix):
    return next(k for k in sorted(tensors) if k.startswith(prefix))


def _without(mapping, key):
    mapping.pop(key)
    return mapping


def _set(mapping, key, value):
    mapping[key] = value
    return mapping


RESUME_DAMAGE = {
    "meta-not-an-object": lambda t, m: [m],
    "epoch-missing": lambda t, m: _without(m, "epoch"),
    "epoch-beyond-schedule": lambda t, m: _set(m, "epoch", 10**6),
    "step-not-an-integer": lambda t, m: _set(m, "step", "12"),
    "model-tensor-missing": lambda t, m: _without(t, _first(t, "model/")) and m,
    "model-tensor-wrong-shape": lambda t, m: _set(t, _first(t, "model/"), torch.zeros(2)) and m,
    "model-tensor-wrong-dtype": lambda t, m: _set(t, _first(t, "model/"),
                                                  t[_first(t, "model/")].long()) and m,
    "optimizer-moment-wrong-shape": lambda t, m: _set(t, _first(t, "optim/0/exp_avg"),
                                                      torch.zeros(3)) and m,
    "optimizer-moment-missing": lambda t, m: _without(t, _first(t, "optim/0/exp_avg_sq")) and m,
    "optimizer-setting-wrong-type": lambda t, m: _set(m["optim_groups"][0], "lr", "fast") and m,
    "optimizer-groups-wrong": lambda t, m: m["optim_groups"].append({"params": []}) or m,
    "rng-state-wrong-size": lambda t, m: _set(t, "rng/generator",
                                              torch.zeros(7, dtype=torch.uint8)) and m,
    "rng-state-all-zeros": lambda t, m: _set(t, "rng/generator",
                                             torch.zeros_like(t["rng/generator"])) and m,
}


@pytest.mark.parametrize("damage", list(RESUME_DAMAGE), ids=list(RESUME_DAMAGE))
def test_a_damaged_resume_state_is_refused_in_one_line(trained, tmp_path, damage):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    (out / "checkpoints" / "0000060.safetensors").unlink()  # so that there is work to resume
    _edit_resume(out, RESUME_DAMAGE[damage])
    before = snapshot(out)
    result = run_in_process("interp.train", "--out", str(out), "--resume", "--quiet")
    assert_one_line_error(result, "state.safetensors", "resume state")
    assert snapshot(out) == before


def test_a_damaged_resume_state_of_a_sweep_run_is_refused_in_one_line(tmp_path):
    out = tmp_path / "sweep"
    result = run_in_process("interp.train", "--preset", "tiny", "--set", "schedule.epochs=3",
                 "--set", "schedule.checkpoint_every=1", "--sweep", "seed=0:2", "--out", str(out),
                 "--quiet")
    assert result.returncode == 0, result.stderr
    run = out / "model.seed=1"
    (run / "checkpoints" / "0000003.safetensors").unlink()
    _edit_resume(run, RESUME_DAMAGE["optimizer-moment-wrong-shape"])
    result = run_in_process("interp.train", "--out", str(out), "--resume", "--quiet")
    assert_one_line_error(result, str(run / "resume" / "state.safetensors"))


SPLIT_DAMAGE = {
    "out-of-range": lambda train, test: (torch.cat([train[:-1], torch.tensor([10_000])]), test),
    "negative": lambda train, test: (torch.cat([train[:-1], torch.tensor([-1])]), test),
    "float": lambda train, test: (train.double(), test),
    "duplicate": lambda train, test: (torch.cat([train[:-1], train[:1]]), test),
    "overlapping": lambda train, test: (train, torch.cat([test[:-1], train[:1]])),
    "empty-train": lambda train, test: (train[:0], torch.cat([train, test])),
    "two-dimensional": lambda train, test: (train[None], test),
    "train-and-test-swapped": lambda train, test: (test, train),
}


@pytest.mark.parametrize("damage", list(SPLIT_DAMAGE), ids=list(SPLIT_DAMAGE))
def test_a_damaged_split_is_refused_at_load(run_copy, damage):
    split = run_copy / "split.safetensors"
    tensors, metadata = load_tensors(split)
    tensors["train_idx"], tensors["test_idx"] = SPLIT_DAMAGE[damage](tensors["train_idx"],
                                                                     tensors["test_idx"])
    save_tensors(split, tensors, metadata)
    with pytest.raises(RunFileError, match="split.safetensors"):
        Run.load(run_copy).task()
    (run_copy / "checkpoints" / "0000060.safetensors").unlink()
    result = run_in_process("interp.train", "--out", str(run_copy), "--resume", "--quiet")
    assert_one_line_error(result, "split.safetensors")


@pytest.mark.parametrize("damage", ["int64", "bool", "zeros"])
def test_checkpoints_of_the_wrong_dtype_or_all_zeros_are_refused_by_name(run_copy, damage):
    file = checkpoint_path(run_copy, 20)
    tensors, metadata = load_tensors(file)
    changed = {"int64": lambda v: v.long(), "bool": lambda v: v > 0,
               "zeros": torch.zeros_like}[damage]
    save_tensors(file, {k: changed(v) for k, v in tensors.items()}, metadata)
    with pytest.raises(RunFileError, match="0000020.safetensors"):
        Run.load(run_copy).model(20)
    Run.load(run_copy).model(40)  # the others still load


def test_a_config_or_sweep_file_that_is_a_directory_is_one_line(tmp_path):
    assert_one_line_error(run_in_process("interp.train", "--config", str(tmp_path), "--quiet"),
                          "is a directory")
    assert_one_line_error(run_in_process("interp.train", "--preset", "tiny", "--sweep-file",
                              str(tmp_path), "--quiet"), "is a directory")


# --- property: random damage to any run file never gives a traceback -------------------------

_JSON_SHAPES = ["[]", "{}", "1", '"text"', "null", '{"config": 1}', '{"format": 1, "config": '
                '{"task": []}}', '{"epoch": 5}', "[" * 5000, '{"config": {"task": {"p": -3}}}']
_RUN_FILES = ["run.json", "split.safetensors", "metrics.jsonl",
              "checkpoints/0000020.safetensors", "resume/state.safetensors"]


def _damages(seed: int, original: bytes) -> list[bytes]:
    """Random bytes, the file cut short, random valid-JSON shapes, the file with bytes
    flipped: what a failing disk or a careless edit leaves."""
    import random

    rng = random.Random(seed)
    flipped = bytearray(original)
    for _ in range(8):
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
    return [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))),
            original[: rng.randrange(len(original))], rng.choice(_JSON_SHAPES).encode(),
            bytes(flipped)]


@pytest.mark.parametrize("name", _RUN_FILES)
def test_random_damage_to_a_run_file_is_used_or_refused_in_one_line(trained, tmp_path, name):
    original = (trained / name).read_bytes()
    for case, damage in enumerate(_damages(_RUN_FILES.index(name), original)):
        run = tmp_path / f"case{case}"
        shutil.copytree(trained, run)
        (run / "checkpoints" / "0000060.safetensors").unlink()  # leave work to resume
        (run / name).write_bytes(damage)
        try:
            frame = Run.load(run).metrics
            assert frame.empty or frame["epoch"].is_monotonic_increasing
            Run.load(run).task()
            Run.load(run).model(20)
        except UserError as err:
            assert "\n" not in str(err)
        before = snapshot(run)
        for argv in (["interp.train", "--out", str(run), "--resume", "--quiet"],
                     ["interp.analyze", str(run), "--only", "fourier"]):
            result = run_in_process(*argv)  # an exception escaping run_main fails the test
            status, err = result.returncode, result.stderr
            errors = [line for line in err.splitlines() if line.startswith("error: ")]
            assert status in (0, 2) and "Traceback" not in err, err
            assert len(errors) == (status == 2), err
            if status == 2:  # refused: nothing of the run was touched
                assert {k: v for k, v in snapshot(run).items() if not k.startswith("analysis")
                        } == {k: v for k, v in before.items() if not k.startswith("analysis")}
        for kept in ("run.json", "split.safetensors", "checkpoints/0000040.safetensors"):
            if kept != name:
                assert (run / kept).read_bytes() == (trained / kept).read_bytes()


# --- the adversarial review's cases -------------------------------------------------------------


@pytest.mark.parametrize("damage", ["checkpoints-is-a-file", "resume-is-a-file",
                                    "state-is-a-directory", "metrics-is-a-directory"])
def test_resume_checks_the_layout_before_writing_anything(run_copy, damage):
    target = {"checkpoints-is-a-file": "checkpoints", "resume-is-a-file": "resume",
              "state-is-a-directory": "resume/state.safetensors",
              "metrics-is-a-directory": "metrics.jsonl"}[damage]
    shutil.rmtree(run_copy / target) if (run_copy / target).is_dir() else (
        run_copy / target).unlink()
    if damage.endswith("a-file"):
        (run_copy / target).write_text("not what interp wrote")
    else:
        (run_copy / target).mkdir()
    before = snapshot(run_copy)
    result = run_in_process("interp.train", "--out", str(run_copy), "--resume", "--quiet")
    assert_one_line_error(result, f"{run_copy / target}: should be a")
    assert snapshot(run_copy) == before


def test_a_lost_resume_state_restarts_with_a_warning(run_copy):
    shutil.rmtree(run_copy / "resume")
    (run_copy / "checkpoints" / "0000060.safetensors").unlink()
    result = run_in_process("interp.train", "--out", str(run_copy), "--resume", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "no resume state" in result.stderr and "restarts from epoch 0" in result.stderr


@pytest.mark.parametrize("edit, message", [
    ({"task": {"p": 20011}}, "task.p=20011"),
    ({"schedule": {"epochs": 10**15}}, "of disk space"),
], ids=["huge-task", "huge-schedule"])
def test_an_edited_run_json_cannot_make_resume_or_analyze_allocate_without_bound(
        run_copy, edit, message):
    record = json.loads((run_copy / "run.json").read_text())
    for section, values in edit.items():
        record["config"][section].update(values)
    (run_copy / "run.json").write_text(json.dumps(record))
    (run_copy / "checkpoints" / "0000060.safetensors").unlink()
    start = time.perf_counter()
    assert_one_line_error(run_in_process("interp.train", "--out", str(run_copy), "--resume",
                                         "--quiet"), message)
    if "task" in edit:
        assert_one_line_error(run_in_process("interp.analyze", str(run_copy)),
                              "building its task (task.p=20011) needs about")
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_checkpoint_that_is_not_a_regular_file_is_skipped_not_read(run_copy, kind):
    file = checkpoint_path(run_copy, 20)
    file.unlink()
    if kind == "fifo":
        os.mkfifo(file)
    else:
        file.symlink_to("/dev/zero")
    with pytest.raises(RunFileError, match="not a regular file"):
        Run.load(run_copy).weights(20)
    result = run_in_process("interp.analyze", str(run_copy), "--only", "fourier")
    assert result.returncode == 0 and "skipping checkpoint" in result.stderr, result.stderr


def _read_as_another_user(trained: Path, unreadable: str, code: str
                          ) -> subprocess.CompletedProcess:
    """Run ``code`` (``RUN`` stands for the run's path) on a copy of ``trained`` whose file
    ``unreadable`` has mode 000, as another user when we are root (root reads anything)."""
    import tempfile

    with tempfile.TemporaryDirectory(dir="/tmp") as scratch:  # reachable by another user
        run = Path(scratch) / "run"
        shutil.copytree(trained, run)
        for path in (Path(scratch), run, *[p for p in run.rglob("*") if p.is_dir()]):
            path.chmod(0o755)
        (run / unreadable).chmod(0o000)
        command = [sys.executable, "-c", code.replace("RUN", repr(str(run)))]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO)})


AS_ANOTHER_USER = pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                                     reason="as root, only another user (setpriv) is refused")


@AS_ANOTHER_USER
def test_an_unreadable_checkpoint_says_permission_denied(trained):
    result = _read_as_another_user(trained, "checkpoints/0000020.safetensors",
                                   "import interp; interp.Run.load(RUN).weights(20)")
    assert "0000020.safetensors: permission denied" in result.stderr, result.stderr
    assert "no such file" not in result.stderr


@AS_ANOTHER_USER
def test_unreadable_metrics_are_left_out_with_a_warning(trained):
    result = _read_as_another_user(trained, "metrics.jsonl",
                                   "import interp; print(len(interp.Run.load(RUN).metrics))")
    assert result.stdout.strip() == "0" and "permission denied" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_only_ascii_digits_name_a_checkpoint(run_copy):
    shutil.copy(checkpoint_path(run_copy, 20), run_copy / "checkpoints" /
                "\u0660\u0660\u0660\u0660\u0660\u0665\u0660.safetensors")
    assert Run.load(run_copy).checkpoint_epochs == [0, 20, 40, 60]


@pytest.mark.parametrize("command, alphas, message", [
    ("alpha-sweep", ["1", "1.0"], "--alphas 1 1 gives an alpha twice"),
    ("committee-alpha", ["1", "1.0000001"], "name the same run twice (alpha1, alpha1)"),
])
def test_alphas_that_would_share_a_run_are_refused(tmp_path, command, alphas, message):
    result = run_in_process("interp.figures", command, "--epochs", "2", "--alphas", *alphas,
                            "--runs-dir", str(tmp_path / "runs"), "--out",
                            str(tmp_path / "figs"))
    assert_one_line_error(result, message)
    assert not (tmp_path / "runs").exists()


def test_analysis_probes_that_cannot_fit_are_refused(run_copy, monkeypatch):
    import interp.resources as resources

    monkeypatch.setattr(resources, "memory_available", lambda: 5 * 10**6)  # 5 MB free
    result = run_in_process("interp.analyze", str(run_copy), "--only", "lazy_rich",
                            "--probes", "200")
    assert_one_line_error(result, "--probes 200: the NTK's Jacobian on 200 probes",
                          "lower --probes")
