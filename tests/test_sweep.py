"""python -m interp.sweep: spec parsing, the sweep directory, the local runner."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, assert_same_run, run_cli, run_in_process, small_config

from interp.errors import UserError
from interp.files import DirectoryLock
from interp.runs import RESUME_FILE, Run, check_sweep_dir, checkpoint_path, read_sweep
from interp.sweep.__main__ import __doc__ as CLI_DOC
from interp.sweep.runner import plan_sweep
from interp.sweep.spec import load_spec, parse_spec, spec_from_data
from interp.train.loop import TrainOptions, train
from interp.train.sweep import MAX_RUNS

MAIN = "interp.sweep.__main__"

ISSUE_EXAMPLE = """
# python -m interp.sweep liu.toml --out checkpoints/liu-phases
preset = "liu-toy"
[set]
"schedule.epochs" = 20000
[grid]
"optim.lr" = {log = [1e-4, 1e-2], num = 8}
"optim.weight_decay" = [0.0, 0.3, 1.0, 3.0, 10.0]
"model.seed" = "0:3"
"""


# ---------------------------------------------------------------------------------------------
# The spec


def test_issue_example_gives_120_runs_with_log_spaced_rates():
    spec = parse_spec(ISSUE_EXAMPLE, "liu.toml")
    runs, configs = spec.runs(), spec.configs()
    assert len(runs) == len(configs) == 8 * 5 * 3
    rates = [a for a in spec.axes if a.key == "optim.lr"][0]
    assert rates.log and rates.values[0] == 1e-4 and rates.values[-1] == 1e-2
    ratios = [b / a for a, b in zip(rates.values, rates.values[1:], strict=False)]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-5)  # evenly spaced in log
    assert ratios[0] == pytest.approx(100 ** (1 / 7), rel=1e-5)
    assert runs[0].name == "optim.lr=0.0001_optim.weight_decay=0.0_model.seed=0"
    assert runs[1].axes == {"optim.lr": 1e-4, "optim.weight_decay": 0.0, "model.seed": 1}
    assert {c.schedule.epochs for c in configs} == {20000}
    assert configs[-1].optim.lr == 1e-2 and configs[-1].optim.weight_decay == 10.0
    assert configs[-1].model.seed == 2 and configs[-1].preset == "liu-toy"
    assert len({run.name for run in runs}) == 120


def test_cli_doc_example_parses():
    spec = parse_spec(CLI_DOC.split("SPEC is a TOML")[1].split("\n\n")[1])
    assert len(spec.runs()) == 8 * 5 * 3 * 3


def test_axis_forms_lists_ranges_log_linear():
    spec = parse_spec("""
        preset = "tiny"
        [grid]
        "task.frac" = {linear = [0.1, 0.9], num = 5}
        "model.d_mlp" = {linear = [64, 256], num = 4}
        seed = "1:8:3"
        "optim.lr" = {log = [1e-3, 1e-1], num = 3}
        "optim.betas" = [[0.9, 0.98]]
        [zip]
        "optim.name" = ["adamw", "adam"]
        "schedule.epochs" = {log = [10, 1000], num = 2}
    """)
    values = {axis.key: axis.values for axis in spec.axes}
    assert values["task.frac"] == (0.1, 0.3, 0.5, 0.7, 0.9)
    assert values["model.d_mlp"] == (64, 128, 192, 256)  # whole: integers
    assert values["model.seed"] == (1, 4, 7)  # seed means model.seed; end excluded
    assert values["optim.lr"] == (1e-3, 1e-2, 1e-1)
    assert values["schedule.epochs"] == (10, 1000)
    assert [a.log for a in spec.axes] == [False, False, False, True, False, False, True]
    runs = spec.runs()
    assert len(runs) == 5 * 4 * 3 * 3 * 1 * 2
    assert [r.axes["optim.name"] for r in runs[:4]] == ["adamw", "adam", "adamw", "adam"]
    assert [r.axes["schedule.epochs"] for r in runs[:2]] == [10, 1000]  # zipped: together
    config = spec.configs(runs[1:2])[0]
    assert (config.optim.name, config.schedule.epochs, config.optim.betas) == (
        "adam", 1000, (0.9, 0.98))
    assert runs[1].overrides == ("task.frac=0.1", "model.d_mlp=64", "model.seed=1",
                                 "optim.lr=0.001", "optim.betas=[0.9,0.98]", "optim.name=adam",
                                 "schedule.epochs=1000")


LIU_LIKE = """
preset = "liu-toy"
[zip]
"optim.lr" = [1e-05, 7.2e-05, 0.0005179, 0.003728, 0.01]
"model.embedding_lr_factor" = [100.0, 13.89, 1.931, 0.2683, 0.1]
[grid]
"optim.weight_decay" = [0.0, 5.0, 10.0]
"model.seed" = "0:2"
"""


def test_lists_spanning_two_decades_are_log_unless_the_spec_says():
    spec = parse_spec("""
        preset = "tiny"
        [grid]
        "optim.lr" = [1e-5, 1e-4, 1e-3]
        "optim.weight_decay" = [0.0, 1.0, 10.0]
        "task.frac" = [0.01, 0.5]
        "model.d_mlp" = [64, 128, 512]
        "optim.update_noise" = {values = [1e-8, 1e-6], scale = "linear"}
        "optim.weight_noise" = {values = [0.1, 0.2], scale = "log"}
        "schedule.eval_every" = {values = [1, 1000]}
        seed = "1:300:100"
    """)
    assert {a.key: a.log for a in spec.axes} == {
        "optim.lr": True,  # positive, 100x
        "optim.weight_decay": False,  # holds 0
        "task.frac": False,  # 50x: under two decades
        "model.d_mlp": False,  # 8x
        "optim.update_noise": False, "optim.weight_noise": True,  # as the spec says
        "schedule.eval_every": True,  # {values = [...]}: a list
        "model.seed": False}  # a range (1, 101, 201) is evenly spaced
    assert spec.axes[4].values == (1e-8, 1e-6) and len(spec.runs()) == 3 * 3 * 2 * 3 * 2 ** 3 * 3


def test_a_zip_group_is_one_axis_whose_companions_move_with_it():
    spec = parse_spec(LIU_LIKE, "liu.toml")
    assert [(a.key, a.log, a.zip) for a in spec.axes] == [
        ("optim.weight_decay", False, False), ("model.seed", False, False),
        ("optim.lr", True, True), ("model.embedding_lr_factor", True, True)]
    record = spec.record()
    assert record.companions == {"optim.lr": ("model.embedding_lr_factor",)}
    assert [(a.key, a.log, a.zip) for a in record.axes] == [
        (a.key, a.log, a.zip) for a in spec.axes]
    pairs = {(r.axes["optim.lr"], r.axes["model.embedding_lr_factor"]) for r in spec.runs()}
    assert pairs == {(1e-05, 100.0), (7.2e-05, 13.89), (0.0005179, 1.931), (0.003728, 0.2683),
                     (0.01, 0.1)}
    assert len(spec.runs()) == 3 * 2 * 5
    assert parse_spec('preset = "tiny"\n[grid]\nseed = [1]').record().companions == {}


def test_a_format_1_sweep_json_reads_wide_lists_as_log_and_is_the_same_sweep(tmp_path):
    spec = parse_spec(LIU_LIKE, "liu.toml")
    record = spec.record()
    old = record.to_dict()
    assert old["format"] == 2
    old["format"] = 1  # before lists were judged by their span: every list was linear
    for axis in old["axes"]:
        axis["log"] = False
    (tmp_path / "sweep.json").write_text(json.dumps(old))
    stored = read_sweep(tmp_path)
    assert [(a.key, a.log) for a in stored.axes] == [
        ("optim.weight_decay", False), ("model.seed", False), ("optim.lr", True),
        ("model.embedding_lr_factor", True)]
    assert stored.companions == record.companions
    assert check_sweep_dir(tmp_path, record) == stored  # no --force needed to go on with it
    (tmp_path / "sweep.json").write_text(json.dumps({**old, "format": 2}))
    assert not any(a.log for a in read_sweep(tmp_path).axes)  # format 2 is taken at its word


def test_a_spec_built_in_code_is_checked_as_a_file_and_recorded_as_its_toml():
    data = {"preset": "tiny", "set": {"task.p": "7", "objective.centered": True},
            "grid": {"objective.alpha": [0.5, 2.0]}}  # [set] before the axis it allows
    spec = spec_from_data(data, "alpha-sweep", "built in code")
    configs = spec.configs()
    assert [(c.task.p, c.objective.centered, c.objective.alpha) for c in configs] == [
        (7, True, 0.5), (7, True, 2.0)]
    assert spec.source.startswith("# built in code\n") and spec.data == data
    assert parse_spec(spec.source).configs() == configs  # the recorded text is the spec
    with pytest.raises(UserError, match=r"^alpha-sweep: \[grid\] objective.alpha: .*also set "
                       "objective.centered=true"):
        spec_from_data({"preset": "tiny", "grid": {"objective.alpha": [0.5]}}, "alpha-sweep")


@pytest.mark.parametrize(("value", "shown"), [(math.nan, "nan"), (math.inf, "inf"),
                                               (-math.inf, "-inf")])
def test_a_spec_built_in_code_with_a_non_finite_number_names_the_key(value, shown):
    """A figure command's --frac nan or --alphas inf reaches the spec as a float that JSON
    writes as NaN / Infinity, which is not TOML: the error names the key, not the TOML."""
    with pytest.raises(UserError, match=rf"^hu-models: \[set\] task.frac: task.frac must be a "
                                        rf"finite number within .*, got {shown}$"):
        spec_from_data({"preset": "tiny", "set": {"task.frac": value}}, "hu-models")
    with pytest.raises(UserError, match=r"^alpha-sweep: run objective.alpha=.*objective.alpha "
                                        r"must be a finite number"):
        spec_from_data({"preset": "tiny", "set": {"objective.centered": True},
                        "grid": {"objective.alpha": [1.0, value]}}, "alpha-sweep").configs()


def test_set_tables_preset_axis_and_config_file(tmp_path):
    (tmp_path / "base.json").write_text(small_config().to_json())
    spec = parse_spec("""
        config = "base.json"
        [set.optim]
        lr = 0.01
        [grid]
        model.seed = [5, 6]
    """, "s.toml", tmp_path)
    configs = spec.configs()
    assert [c.model.seed for c in configs] == [5, 6]
    assert {c.optim.lr for c in configs} == {0.01} and configs[0].task.p == 23
    presets = parse_spec("""
        [set]
        "task.frac" = 0.4
        [grid]
        preset = ["hu-mlp", "hu-lstm"]
    """)
    kinds = [(c.preset, c.model.kind, c.task.frac) for c in presets.configs()]
    assert kinds == [("hu-mlp", "mlp", 0.4), ("hu-lstm", "lstm", 0.4)]
    assert [r.name for r in presets.runs()] == ["preset=hu-mlp", "preset=hu-lstm"]


def test_shipped_spec_loads_by_name():
    spec = load_spec("tiny-demo")
    assert len(spec.runs()) == 4 and spec.description
    with pytest.raises(UserError, match="no shipped sweep of that name; .*tiny-demo"):
        load_spec("no-such-sweep")


@pytest.mark.parametrize("text, message", [
    ('preset = "tiny"\n[grid]\n"optim.lrr" = [1, 2]', r"\[grid\] optim.lrr: unknown config key"),
    ('preset = "tiny"\n[set]\n"lr" = 1', r"\[set\] lr: not a config key"),
    ('preset = "tiny"\n[grid]\n"optim.lr" = []', r"\[grid\] optim.lr is an empty list"),
    ('preset = "tiny"\n[grid]\n"model.seed" = "3:3"', r"model.seed = '3:3' is an empty range"),
    ('preset = "tiny"\n[grid]\n"model.seed" = "0:3:0"', "step cannot be 0"),
    ('preset = "tiny"\n[grid]\n"optim.name" = "adam"', "not an integer range"),
    ('preset = "tiny"\n[grid]\n"optim.lr" = 0.1', r"optim.lr = 0.1 is not an axis.*\[set\]"),
    ('preset = "tiny"\n[grid]\n"optim.lr" = {log = [], num = 3}', "log must be two numbers"),
    ('preset = "tiny"\n[grid]\n"optim.lr" = {log = ["a", "b"], num = 3}', "two numbers"),
    ('preset = "tiny"\n[grid]\n"optim.lr" = {log = [0, 1], num = 3}', "must be positive"),
    ('preset = "tiny"\n[grid]\n"optim.lr" = {linear = [0, 1], num = 0}', "num must be an"),
    ('preset = "tiny"\n[grid]\n"optim.lr" = {linear = [0, 1], num = 2.5}', "num must be an"),
    ('preset = "tiny"\n[grid]\n"optim.lr" = {log = [1, 2], linear = [1, 2], num = 2}',
     "must be {log"),
    ('preset = "tiny"\n[grid]\n"optim.lr" = {values = [1, 2], scale = "cubic"}',
     r'optim.lr: scale must be "log" or "linear", got \'cubic\''),
    ('preset = "tiny"\n[grid]\n"optim.lr" = {values = [0, 1], scale = "log"}',
     r"optim.lr: a log scale needs positive numbers, got \[0, 1\]"),
    ('preset = "tiny"\n[grid]\n"optim.lr" = {values = [1, 2], log = true}',
     r"optim.lr: unknown key 'log'; a list axis is \{values = \[...\]"),
    ('preset = "tiny"\n[grid]\n"optim.lr" = {values = 1}', "optim.lr: values must be a list"),
    ('preset = "tiny"\n[set]\n"optim.lr" = 0.1\n[grid]\n"optim.lr" = [1, 2]',
     r"optim.lr is both an axis \(\[grid\]\) and a fixed override"),
    ('preset = "tiny"\n[zip]\n"optim.lr" = [1, 2]\n"task.frac" = [0.1, 0.2, 0.3]',
     "equal lengths: optim.lr has 2, task.frac has 3 values"),
    ('preset = "tiny"\n[grid]\n"optim.lr" = [1]\n[zip]\n"optim.lr" = [1]',
     r"\[grid\] and \[zip\] both set optim.lr"),
    ('preset = "tiny"\n[axes]\n"optim.lr" = [1]', "unknown top-level key 'axes'"),
    ('preset = "no-such"\n[grid]\nseed = [1]', "unknown preset 'no-such'"),
    ('[grid]\nseed = [1]', "give exactly one base.*none"),
    ('preset = "tiny"\nconfig = "x.json"', "give exactly one base.*preset, config"),
    ('preset = "tiny"\n[grid]\n"task.frac" = [0.5, 1.5]',
     "run task.frac=1.5: task.frac must lie strictly between"),
    ('preset = "tiny"\n[grid]\nseed = [1, 1]', "gives run 'model.seed=1' twice"),
    ('preset = "tiny"\n[grid]\n"model.seed" = "0:200"\n"optim.lr" = "1:100"',
     f"gives 19800 runs; one sweep holds at most {MAX_RUNS}"),
    ('preset = "tiny"\n[grid\n', "not valid TOML"),
])
def test_bad_spec_is_one_line_naming_the_key(text, message):
    with pytest.raises(UserError, match=message) as caught:
        spec = parse_spec(text, "bad.toml")
        spec.configs()
    assert str(caught.value).startswith("bad.toml: ") and "\n" not in str(caught.value)


def test_bad_spec_on_the_cli_is_error_exit_2_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('preset = "tiny"\n[grid]\n"optim.lr" = {log = [1e-3, 1e-2], num = 0}\n')
    result = run_in_process(MAIN, str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ") and "[grid] optim.lr: num must be" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_stack_too_large_is_split(tmp_path):
    spec = parse_spec('preset = "tiny"\n[grid]\nseed = "0:5"')
    configs = spec.configs()
    names = [run.name for run in spec.runs()]
    plan = plan_sweep(tmp_path / "out", names, configs)
    assert [len(unit.runs) for unit in plan.units] == [5]
    plan = plan_sweep(tmp_path / "out", names, configs, fits=lambda stack: len(stack) <= 2)
    assert [unit.runs for unit in plan.units] == [(0, 1), (2,), (3, 4)]


# ---------------------------------------------------------------------------------------------
# Training a sweep: 2 model widths (2 stacks) x 2 learning rates x 2 seeds of small runs

EPOCHS = 40
SPEC = """
description = "2 x 2 x 2 small transformers"
config = "base.json"
[grid]
"model.d_mlp" = [32, 64]
"optim.lr" = {log = [1e-3, 1e-2], num = 2}
"model.seed" = "0:2"
"""


def _write_spec(directory, text=SPEC):
    directory.mkdir(parents=True, exist_ok=True)
    base = small_config(schedule={"epochs": EPOCHS, "eval_every": 5, "checkpoint_every": 10})
    (directory / "base.json").write_text(base.to_json())
    (directory / "sweep.toml").write_text(text)
    return directory / "sweep.toml"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The spec, its sweep directory trained through the CLI's local runner, and each of its
    runs trained alone."""
    root = tmp_path_factory.mktemp("sweep")
    spec_path = _write_spec(root)
    result = run_in_process(MAIN, str(spec_path), "--out", str(root / "out"), "--quiet",
                            "--device", "cpu")
    assert result.returncode == 0, result.stderr
    spec = load_spec(spec_path)
    for run, config in zip(spec.runs(), spec.configs(), strict=True):
        train(config, root / "alone" / run.name, TrainOptions(device="cpu", quiet=True))
    return spec_path, root / "out", root / "alone"


def _mtimes(directory):
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns for p in directory.rglob("*")
            if p.is_file() and p.name != ".lock"}


def test_sweep_equals_each_run_trained_alone(swept):
    spec_path, out, alone = swept
    record = read_sweep(out)
    names = [entry.name for entry in record.runs]
    assert len(names) == 8 and sorted(p.name for p in alone.iterdir()) == sorted(names)
    assert [(a.key, a.log) for a in record.axes] == [("model.d_mlp", False), ("optim.lr", True),
                                                     ("model.seed", False)]
    assert record.source == spec_path.read_text() and record.spec["config"] == "base.json"
    assert record.runs[3].axes == {"model.d_mlp": 32, "optim.lr": 0.01, "model.seed": 1}
    assert record.runs[3].overrides == ("model.d_mlp=32", "optim.lr=0.01", "model.seed=1")
    stacked = {Run.load(out / name).record["runtime"].get("stacked_runs") for name in names}
    assert stacked == {4}  # two stacks of four
    for name in names:
        run = Run.load(out / name)
        assert run.is_complete and run.checkpoint_epochs == [0, 10, 20, 30, 40]
        assert_same_run(run, Run.load(alone / name), exact=False)


def test_rerun_of_a_finished_sweep_trains_nothing(swept):
    spec_path, out, _ = swept
    before = _mtimes(out)
    result = run_in_process(MAIN, str(spec_path), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "all finished: nothing to train" in result.stdout
    assert _mtimes(out) == before


def test_dry_run_lists_runs_and_stacks_and_writes_nothing(swept, tmp_path):
    spec_path, out, _ = swept
    result = run_in_process(MAIN, str(spec_path), "--out", str(tmp_path / "new"), "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("0 finished, 0 to resume, 8 to create, in 2 stacks")
    assert lines[1] == "stack 1: 4 runs (create)" and lines[6] == "stack 2: 4 runs (create)"
    assert lines[2].strip() == "model.d_mlp=32_optim.lr=0.001_model.seed=0"
    assert not (tmp_path / "new").exists()
    before = _mtimes(out)
    result = run_in_process(MAIN, str(spec_path), "--out", str(out), "--dry-run")
    assert "8 finished, 0 to resume, 0 to create, in 0 stacks" in result.stdout
    assert _mtimes(out) == before


def test_killed_sweep_resumes_every_run_to_the_uninterrupted_result(swept, tmp_path):
    spec_path, reference, _ = swept
    out = tmp_path / "killed"
    names = [entry.name for entry in read_sweep(reference).runs]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "interp.sweep", str(spec_path), "--out",
                                str(out), "--quiet", "--device", "cpu"], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not all(checkpoint_path(out / name, 10).exists() and (out / name / RESUME_FILE).exists()
                  for name in names[4:]):  # the second stack has saved its first resume states
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the sweep never reached the kill point"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    starts = {name: checkpoint_path(out / name, 0).stat() for name in names}
    unfinished = [name for name in names if not Run.load(out / name).is_complete]
    assert unfinished == names[4:]  # the first stack finished, the second was cut
    before = _mtimes(out / names[0])
    result = run_in_process(MAIN, str(spec_path), "--out", str(out), "--quiet", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "4 trained in 1 stack(s)" in result.stdout
    assert _mtimes(out / names[0]) == before  # a finished run is left alone
    for name in names:
        start = checkpoint_path(out / name, 0).stat()  # none restarted from scratch
        assert (start.st_ino, start.st_mtime_ns) == (starts[name].st_ino,
                                                     starts[name].st_mtime_ns)
        assert_same_run(Run.load(out / name), Run.load(reference / name), exact=False)


def test_two_workers_give_the_results_of_one(swept, tmp_path):
    spec_path, reference, _ = swept
    result = run_cli("interp.sweep", str(spec_path), "--out", str(tmp_path / "two"),
                     "--workers", "2", "--quiet", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "8 trained in 2 stack(s)" in result.stdout
    for entry in read_sweep(reference).runs:
        assert_same_run(Run.load(tmp_path / "two" / entry.name),
                        Run.load(reference / entry.name), exact=False)


def test_a_different_spec_is_refused_unless_forced(tmp_path):
    small = 'config = "base.json"\n[set]\n"schedule.epochs" = 10\n[grid]\nseed = "0:2"\n'
    spec_path = _write_spec(tmp_path, small)
    out = tmp_path / "out"
    assert run_in_process(MAIN, str(spec_path), "--out", str(out), "--quiet").returncode == 0
    (out / "notes.txt").write_text("mine")
    kept = {name: _mtimes(out / name) for name in ("model.seed=0", "model.seed=1")}
    before = (out / "sweep.json").read_text()
    spec_path.write_text(small.replace('"0:2"', '"0:3"'))
    result = run_in_process(MAIN, str(spec_path), "--out", str(out), "--quiet")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "holds a different sweep (its spec differs in grid.seed)" in result.stderr
    assert (out / "sweep.json").read_text() == before and not (out / "model.seed=2").exists()
    result = run_in_process(MAIN, str(spec_path), "--out", str(out), "--quiet", "--force")
    assert result.returncode == 0, result.stderr
    assert "3 runs; 1 trained" in result.stdout  # the two runs of equal config are kept
    assert {name: _mtimes(out / name) for name in kept} == kept
    assert Run.load(out / "model.seed=2").is_complete and (out / "notes.txt").read_text() == "mine"
    assert len(read_sweep(out).runs) == 3


def test_a_second_sweep_process_on_one_directory_is_refused(tmp_path):
    spec_path = _write_spec(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with DirectoryLock.acquire(out):  # as a running sweep holds it
        result = run_in_process(MAIN, str(spec_path), "--out", str(out), "--quiet")
    assert result.returncode == 2 and "is being written by another process" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_out_holding_other_files_or_a_run_is_refused(tmp_path):
    spec_path = _write_spec(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "data.csv").write_text("x")
    result = run_in_process(MAIN, str(spec_path), "--out", str(tmp_path / "full"))
    assert result.returncode == 2 and "holds no sweep (no sweep.json; it holds data.csv)" in (
        result.stderr)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "sweep.json").write_text(json.dumps({"format": 1}))
    result = run_in_process(MAIN, str(spec_path), "--out", str(damaged))
    assert result.returncode == 2 and "not written by python -m interp.sweep" in result.stderr
