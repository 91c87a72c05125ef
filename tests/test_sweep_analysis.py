"""Sweep analysis (issue 12, item 3): Liu et al.'s phase of a run, the sweep table
(``interp.Sweep``), its figures, ``interp.analyze SWEEP_DIR`` and the figure commands."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_in_process, small_config

import interp
from interp.analysis.curves import landmarks
from interp.analysis.phases import PHASES, learning_phase, majority_phase
from interp.errors import UserError
from interp.figures.sweep import landmark_curves, landmark_heatmap, phase_diagram
from interp.figures.sweep_report import ACCURACY_EPOCHS, LOSS_EPOCHS, sweep_figures
from interp.runs import SWEEP_FILE, Run, SweepAxis, SweepEntry, SweepRecord
from interp.sweep.spec import parse_spec
from interp.sweep_table import (
    Axis,
    frame,
    infer_axes,
    metric_columns,
    phase_cells,
    record_axes,
    select,
)
from interp.train.ensemble import train_ensemble
from interp.train.loop import TrainOptions

NAN = math.nan
STEPS = [0, 500, 1000, 3000, 5000]
GOOD_LOSS = [3.0, 1.0, 0.5, 0.1, 0.1]


def curves(train_acc, test_acc, steps=STEPS, train_loss=GOOD_LOSS, test_loss=GOOD_LOSS):
    """A metrics table as Run.metrics gives it; epochs are steps / 10 (ten steps an epoch)."""
    return pd.DataFrame({"epoch": [s // 10 for s in steps], "step": steps,
                         "train_loss": train_loss, "test_loss": test_loss,
                         "train_acc": train_acc, "test_acc": test_acc})


# ---------------------------------------------------------------------------------------------
# The phase of one run


@pytest.mark.parametrize("metrics, name, train_step, test_step", [
    (curves([0.5, 0.95, 1, 1, 1], [0.1, 0.92, 1, 1, 1]), "comprehension", 500, 500),
    # 500 of the run's 5000 steps late: over a hundredth of the run, grokking by the default
    # rule (comprehension by Liu et al.'s absolute 10^3)
    (curves([0.5, 0.95, 1, 1, 1], [0.1, 0.5, 0.9, 1, 1]), "grokking", 500, 1000),
    (curves([0.5, 0.95, 1, 1, 1], [0.1, 0.1, 0.2, 0.95, 1]), "grokking", 500, 3000),
    (curves([0.5, 0.95, 1, 1, 1], [0.1, 0.1, 0.2, 0.3, 0.3]), "memorisation", 500, None),
    (curves([0.1, 0.2, 0.3, 0.89, 0.89], [0.1, 0.1, 0.2, 0.3, 0.3]), "confusion", None, None),
    # a run that grokked, then its losses became NaN (null in metrics.jsonl)
    (curves([0.5, 0.95, 1, 1, NAN], [0.1, 0.1, 0.2, 0.95, NAN],
            train_loss=[3.0, 1.0, 0.5, 0.1, NAN], test_loss=[3.0, 5.0, 4.0, 0.1, NAN]),
     "diverged", 500, 3000),
    (curves([0.1] * 5, [0.1] * 5, test_loss=[3.0, math.inf, 3.0, 3.0, 3.0]), "diverged",
     None, None),
])
def test_phase_of_hand_made_curves(metrics, name, train_step, test_step):
    phase = learning_phase(metrics)
    assert (phase.name, phase.train_step, phase.test_step) == (name, train_step, test_step)


def test_phase_delay_is_counted_in_steps_against_10_to_the_3():
    """Liu et al.'s absolute rule, kept as an option (max_gap=1000)."""
    at = [0, 100, 1099, 1100]  # train reaches 90% at step 100
    metrics = curves([0.5, 0.9, 1, 1], [0.1, 0.1, 0.9, 1], steps=at,
                     train_loss=GOOD_LOSS[:4], test_loss=GOOD_LOSS[:4])
    assert learning_phase(metrics, max_gap=1000).name == "comprehension"  # 999 steps
    late = curves([0.5, 0.9, 1, 1], [0.1, 0.1, 0.5, 0.9], steps=at,
                  train_loss=GOOD_LOSS[:4], test_loss=GOOD_LOSS[:4])
    phase = learning_phase(late, max_gap=1000)
    assert (phase.name, phase.gap, phase.max_gap) == ("grokking", 1000, 1000)
    # the epoch column (110 epochs apart) is not what is counted
    assert learning_phase(late, max_gap=111, step_column="epoch").name == "comprehension"
    assert learning_phase(late.drop(columns="step"), max_gap=111).name == "comprehension"


def test_phase_is_undefined_without_accuracy_unless_the_run_diverged():
    regression = pd.DataFrame({"epoch": [0, 10], "step": [0, 10], "train_loss": [1.0, 0.1],
                               "test_loss": [1.0, 0.5]})
    assert learning_phase(regression) is None
    assert learning_phase(regression.iloc[:0]) is None
    regression.loc[1, "test_loss"] = NAN
    assert learning_phase(regression).name == "diverged"


def test_majority_phase_and_its_ties():
    assert majority_phase(["grokking", "memorisation", "grokking"]) == ("grokking", 2)
    assert majority_phase(["memorisation", "grokking"]) == ("grokking", 1)  # PHASES order
    assert majority_phase(["diverged", "confusion"]) == ("confusion", 1)
    with pytest.raises(ValueError):
        majority_phase([])


# ---------------------------------------------------------------------------------------------
# Axes and figures of hand-made tables


def test_axes_inferred_from_configs():
    points = {f"r{i}": {"optim.lr": lr, "optim.weight_decay": wd, "model.seed": seed,
                        "optim.name": name, "task.frac": 0.5, **extra}
              for i, (lr, wd, seed, name, extra) in enumerate([
                  (1e-4, 0.0, 0, "adamw", {"model.width": 3}),
                  (1e-2, 0.3, 1, "adamw", {}),
                  (1e-3, 10.0, 0, "sgd", {}),
              ])}
    axes = infer_axes(points)
    assert [(a.key, a.log, a.values) for a in axes] == [
        ("optim.lr", True, (1e-4, 1e-3, 1e-2)),  # positive, two decades
        ("optim.weight_decay", False, (0.0, 0.3, 10.0)),  # holds 0: linear
        ("model.seed", False, (0, 1)),
        ("optim.name", False, ("adamw", "sgd")),
    ]  # task.frac is the same everywhere; model.width is not in every run
    assert [a.seed for a in axes] == [False, False, True, False]
    assert infer_axes({"a": {"x": 1.0}, "b": {"x": 99.0}})[0].log is False  # under 100x


LR = Axis("optim.lr", True, (1e-4, 1e-3, 1e-2))
WD = Axis("optim.weight_decay", False, (0.0, 1.0))
KNOWN = {(1e-4, 0.0): "confusion", (1e-2, 0.0): "memorisation",
         (1e-3, 1.0): "comprehension", (1e-2, 1.0): "grokking", (1e-3, 0.0): "diverged"}


@pytest.fixture
def hand_made_table():
    """Three seeds per cell of LR x WD (cell (1e-4, 1.0) left empty): two in the cell's
    known phase, the third diverged; a gap of 100 * seed epochs, final test accuracy
    0.5 + 0.1 * seed + lr."""
    rows = []
    for (lr, wd), phase in KNOWN.items():
        for seed in range(3):
            rows.append({"run": f"{lr}-{wd}-{seed}", "optim.lr": lr, "optim.weight_decay": wd,
                         "model.seed": seed, "phase": phase if seed < 2 else "diverged",
                         "accuracy_gap": 100 * seed, "final_test_acc": 0.5 + 0.1 * seed + lr})
    return frame(rows)


def test_phase_diagram_puts_each_known_phase_in_its_cell(hand_made_table):
    fig = phase_diagram(hand_made_table, LR, WD)
    heat = fig.data[0]
    for (lr, wd), phase in KNOWN.items():
        i, j = LR.values.index(lr), WD.values.index(wd)
        assert heat.z[j][i] == PHASES.index(phase), (lr, wd)
        assert heat.customdata[j][i][0] == phase
        count = 3 if phase == "diverged" else 2
        assert heat.text[j][i] == f"100<br>{count}/3"  # median gap of seeds 0, 1, 2
    assert math.isnan(heat.z[1][0]) and heat.text[1][0] == ""  # no run at (1e-4, 1.0)
    assert heat.customdata[0][2][1] == "2 memorisation, 1 diverged"
    # cells between geometric midpoints on a log x axis; arithmetic ones on the linear y axis
    np.testing.assert_allclose(heat.x, [10 ** -4.5, 10 ** -3.5, 10 ** -2.5, 10 ** -1.5])
    np.testing.assert_allclose(heat.y, [-0.5, 0.5, 1.5])
    assert (fig.layout.xaxis.type, fig.layout.yaxis.type) == ("log", "linear")
    assert list(heat.colorbar.ticktext) == list(PHASES)


def test_phase_cells_summarise_the_seeds(hand_made_table):
    cells = phase_cells(hand_made_table, "optim.lr", "optim.weight_decay")
    assert len(cells) == len(KNOWN)
    row = cells[(cells["optim.lr"] == 1e-2) & (cells["optim.weight_decay"] == 1.0)].iloc[0]
    assert (row["phase"], row["count"], row["runs"], row["accuracy_gap"]) == (
        "grokking", 2, 3, 100.0)


def test_landmark_curves_and_heatmap_show_the_seeds_spread(hand_made_table):
    fig = landmark_curves(hand_made_table, LR, "final_test_acc", by=WD)
    lines = {trace.name: trace for trace in fig.data}
    assert set(lines) == {"optim.weight_decay=0.0", "optim.weight_decay=1.0"}
    line = lines["optim.weight_decay=0.0"]
    assert list(line.x) == [1e-4, 1e-3, 1e-2]
    np.testing.assert_allclose(line.y, [0.6 + lr for lr in line.x])  # mean over the seeds
    np.testing.assert_allclose(line.error_y.array, [0.1] * 3)  # max - mean
    np.testing.assert_allclose(line.error_y.arrayminus, [0.1] * 3)  # mean - min
    assert fig.layout.xaxis.type == "log"
    single = landmark_curves(hand_made_table, WD, "accuracy_gap")
    assert len(single.data) == 1 and list(single.data[0].y) == [100.0, 100.0]

    heat = landmark_heatmap(hand_made_table, LR, WD, "final_test_acc").data[0]
    assert heat.z[0][1] == pytest.approx(0.601) and heat.text[0][1] == "0.601"
    assert math.isnan(heat.z[1][0])


# A spec like liu-toy-phases: a [zip] of decoder lr (a list over three decades) and the
# embedding's lr factor, a grid of weight decay and two seeds
LIU_LIKE = """
preset = "liu-toy"
[zip]
"optim.lr" = [1e-05, 1e-04, 1e-03, 1e-02]
"model.embedding_lr_factor" = [100.0, 10.0, 1.0, 0.1]
[grid]
"model.seed" = "0:2"
"optim.weight_decay" = [0.0, 5.0, 10.0]
"""
LIU_PHASES = {1e-05: "comprehension", 1e-04: "grokking", 1e-03: "memorisation"}  # wd < 10


def _liu_like_sweep():
    """The Sweep of LIU_LIKE (no runs: axes and points from its record) and a hand-made
    table of it: the phase by lr (confusion at weight decay 10), seed 1 diverged at lr
    1e-2; a gap of 100 * (seed + 1) epochs, a final test accuracy of 1 - lr * (seed + 1)."""
    record = parse_spec(LIU_LIKE, "liu.toml").record()
    points = {entry.name: dict(entry.axes) for entry in record.runs}
    sweep = interp.Sweep(Path("liu"), [], record_axes(record.axes, points, record.companions),
                         points, record.spec)
    rows = []
    for name, point in points.items():
        lr, wd, seed = point["optim.lr"], point["optim.weight_decay"], point["model.seed"]
        phase = ("confusion" if wd == 10.0 else LIU_PHASES.get(lr, "memorisation")
                 if lr < 1e-2 or seed == 0 else "diverged")
        rows.append({"run": name, **point, "phase": phase, "test_acc_99": None,
                     "accuracy_gap": 100 * (seed + 1), "final_test_acc": 1 - lr * (seed + 1)})
    return sweep, frame(rows)


def test_a_zip_group_is_one_axis_and_lists_over_decades_are_log():
    sweep, table = _liu_like_sweep()
    assert [(a.key, a.log, a.companions) for a in sweep.axes] == [
        ("model.seed", False, ()), ("optim.weight_decay", False, ()),
        ("optim.lr", True, ("model.embedding_lr_factor",))]
    lr = sweep.axes[2]
    assert lr.values == (1e-05, 1e-04, 1e-03, 1e-02)
    assert lr.label(1e-3) == "optim.lr=0.001 (model.embedding_lr_factor=1.0)"
    assert [a.key for a in sweep.grid_axes] == ["optim.weight_decay", "optim.lr"]  # no seed
    # the companion is a column of the table, but no axis and no metric
    assert list(table["model.embedding_lr_factor"][:4]) == [100.0, 10.0, 1.0, 0.1]
    assert "model.embedding_lr_factor" not in metric_columns(table, sweep.axes)
    assert "final_test_acc" in metric_columns(table, sweep.axes)
    with pytest.raises(UserError, match="--x 'model.embedding_lr_factor' is zipped with "
                       "optim.lr: they move together as one axis, named optim.lr; give "
                       "optim.lr instead"):
        sweep.axis("model.embedding_lr_factor", "--x")
    with pytest.raises(UserError, match="--where 'model.embedding_lr_factor' is zipped"):
        select(table, sweep.axes, {"model.embedding_lr_factor": 1.0})
    assert len(select(table, sweep.axes, {"optim.lr": 1e-3})) == 2 * 3


def test_the_report_draws_lr_on_a_log_axis_and_pools_the_seeds():
    sweep, table = _liu_like_sweep()
    figures = sweep_figures(sweep, table)
    assert set(figures) == {"phase_diagram", *(
        f"{metric}_against_{key}" for key in ("optim.weight_decay", "optim.lr")
        for metric in ("accuracy_gap", "final_test_acc"))}  # test_acc_99: none has it
    phases = figures["phase_diagram"]
    assert (phases.layout.xaxis.type, phases.layout.yaxis.type) == ("linear", "log")
    assert phases.layout.xaxis.title.text == "optim.weight_decay"
    assert phases.layout.yaxis.title.text == (
        "optim.lr (with model.embedding_lr_factor) (log)")
    heat = phases.data[0]
    np.testing.assert_allclose(heat.y, [10 ** -5.5, 10 ** -4.5, 10 ** -3.5, 10 ** -2.5,
                                        10 ** -1.5])  # log cells: one decade each
    for j, lr in enumerate((1e-05, 1e-04, 1e-03)):
        assert [PHASES[int(z)] for z in heat.z[j]] == [LIU_PHASES[lr]] * 2 + ["confusion"]
    # lr 1e-2 at weight decay 0: one memorisation, one diverged seed: pooled, the tie to
    # the phase listed first
    assert heat.customdata[3][0][:2] == ["memorisation", "1 memorisation, 1 diverged"]
    assert heat.text[3][0] == "150<br>1/2"  # median gap of the two seeds
    assert heat.customdata[2][1][3] == "optim.lr=0.001 (model.embedding_lr_factor=1.0)"
    curves = figures["final_test_acc_against_optim.lr"]
    assert curves.layout.xaxis.type == "log"
    assert [t.name for t in curves.data] == [f"optim.weight_decay={wd}" for wd in (0.0, 5.0,
                                                                                   10.0)]
    line = curves.data[0]  # a line over the four rates, not single points
    assert list(line.x) == [1e-05, 1e-04, 1e-03, 1e-02]
    np.testing.assert_allclose(line.y, [1 - 1.5 * lr for lr in line.x])  # mean of 2 seeds
    np.testing.assert_allclose(line.error_y.array, [0.5 * lr for lr in line.x])
    by_lr = figures["final_test_acc_against_optim.weight_decay"]
    assert by_lr.data[2].name == "optim.lr=0.001 (model.embedding_lr_factor=1.0)"


# ---------------------------------------------------------------------------------------------
# A small real sweep: 2 x 2 runs of a p = 13 transformer


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """optim.lr x optim.weight_decay, 80 epochs each, trained as one stack (seconds)."""
    root = tmp_path_factory.mktemp("sweep") / "sweep"
    configs = {f"lr{lr}_wd{wd}": small_config(
        task={"p": 13}, optim={"lr": lr, "weight_decay": wd},
        schedule={"epochs": 80, "eval_every": 5, "checkpoint_every": 40})
        for lr in (1e-3, 1e-2) for wd in (0.0, 1.0)}
    train_ensemble(list(configs.values()), [root / name for name in configs],
                   TrainOptions(device="cpu", quiet=True))
    return root


@pytest.fixture
def sweep_copy(sweep_dir, tmp_path):
    path = tmp_path / "sweep"
    shutil.copytree(sweep_dir, path)
    return path


LANDMARKS = ["train_acc_99", "test_acc_99", "accuracy_gap", "train_loss_low", "test_loss_low",
             "loss_gap", "train_loss_half", "test_loss_half", "loss_half_gap",
             "test_loss_peak", "test_acc_50", "final_epoch", "final_train_acc",
             "final_test_acc"]


def _value(value):
    return None if value is None or pd.isna(value) else value


def test_sweep_table_holds_each_runs_landmarks_and_phase(sweep_dir):
    sweep = interp.Sweep.load(sweep_dir)
    assert [(a.key, a.log, a.values) for a in sweep.axes] == [
        ("optim.lr", False, (1e-3, 1e-2)), ("optim.weight_decay", False, (0.0, 1.0))]
    table = sweep.table()
    assert sorted(table["run"]) == sorted(run.name for run in sweep.runs) and len(table) == 4
    reached = 0
    for row in table.to_dict("records"):
        run = Run.load(sweep_dir / row["run"])
        metrics = run.metrics
        marks = landmarks(metrics).to_dict()
        assert {k: _value(row[k]) for k in LANDMARKS} == {k: marks[k] for k in LANDMARKS}
        reached += marks["train_acc_99"] is not None
        assert row["phase"] == learning_phase(metrics).name
        assert row["final_test_loss"] == metrics["test_loss"].iloc[-1]
        assert (row["optim.lr"], row["optim.weight_decay"]) == (
            run.config.optim.lr, run.config.optim.weight_decay)
        assert (row["model.seed"], row["task.data_seed"]) == (3, 1)
        assert row["complete"] and row["epochs"] == 80
    assert reached >= 2  # the landmarks compared are numbers, not only Nones
    assert set(table["phase"]) <= set(PHASES)


def test_sweep_json_gives_the_axes_and_unreadable_runs_are_left_out(sweep_copy, capsys):
    names = sorted(p.name for p in sweep_copy.iterdir())
    record = SweepRecord(
        {"preset": "tiny"}, "by hand",
        (SweepAxis("optim.lr", log=True), SweepAxis("optim.weight_decay")),
        tuple(SweepEntry(name, (), {"optim.lr": float(name[2:name.index("_")]),
                                    "optim.weight_decay": float(name.split("_wd")[1])})
              for name in [*names, "lr0.1_wd0.0"])).to_dict()
    (sweep_copy / SWEEP_FILE).write_text(json.dumps(record))
    (sweep_copy / names[0] / "run.json").write_text("{not json")
    metrics = sweep_copy / names[1] / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    last = {**json.loads(lines[-1]), "train_loss": None, "test_loss": None}
    metrics.write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")

    sweep = interp.Sweep.load(sweep_copy)
    err = capsys.readouterr().err
    assert f"skipping run {sweep_copy / names[0]}" in err
    assert "1 of its runs have no run directory yet (lr0.1_wd0.0)" in err
    assert sweep.spec == {"preset": "tiny"}
    assert [(a.key, a.log) for a in sweep.axes] == [("optim.lr", True),
                                                    ("optim.weight_decay", False)]
    table = sweep.table().set_index("run")
    assert list(table.index) == names[1:]
    assert table.loc[names[1], "phase"] == "diverged"
    assert math.isnan(table.loc[names[1], "final_test_loss"])

    (sweep_copy / SWEEP_FILE).write_text(json.dumps({**record, "axes": [{"key": 1}]}))
    with pytest.raises(UserError, match="sweep.json: .*it is damaged"):
        interp.Sweep.load(sweep_copy)
    with pytest.raises(UserError, match="is a run, not a sweep"):
        interp.Sweep.load(sweep_copy / names[1])


def test_figure_commands_take_a_zip_group_as_one_axis(sweep_copy, tmp_path):
    """sweep.json of the 2 x 2 runs as a seed axis, a grid of weight decay and a zip of lr
    with a companion (by hand: its values are the record's, not the runs' configs)."""
    names = sorted(p.name for p in sweep_copy.iterdir())
    lr = {name: float(name[2:name.index("_")]) for name in names}
    record = SweepRecord(
        {"preset": "tiny"}, "by hand",
        (SweepAxis("model.seed"), SweepAxis("optim.weight_decay"),
         SweepAxis("optim.lr", zip=True), SweepAxis("optim.warmup_steps", zip=True)),
        tuple(SweepEntry(name, (), {"model.seed": 3, "optim.lr": lr[name],
                                    "optim.weight_decay": float(name.split("_wd")[1]),
                                    "optim.warmup_steps": int(lr[name] * 1e4)})
              for name in names))
    (sweep_copy / SWEEP_FILE).write_text(json.dumps(record.to_dict()))
    sweep = interp.Sweep.load(sweep_copy)
    assert [a.key for a in sweep.axes] == ["model.seed", "optim.weight_decay", "optim.lr"]
    assert sweep.axes[2].companion_values == ("optim.warmup_steps=10",
                                              "optim.warmup_steps=100")
    table = sweep.table()
    assert sorted(zip(table["optim.lr"], table["optim.warmup_steps"], strict=True)) == [
        (1e-3, 10), (1e-3, 10), (1e-2, 100), (1e-2, 100)]
    out = tmp_path / "phases.html"
    result = run_in_process("interp.figures", "phase-diagram", str(sweep_copy), "--out",
                            str(out))  # by default: weight decay across, lr up (no seed)
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert '"xaxis":{"title":{"text":"optim.weight_decay"},"type":"linear"' in page
    assert '"yaxis":{"title":{"text":"optim.lr (with optim.warmup_steps)"},"type":"linear"' in (
        page)
    result = run_in_process("interp.figures", "sweep-curves", str(sweep_copy), "--by",
                            "optim.warmup_steps", "--out", str(tmp_path / "bad.html"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--by 'optim.warmup_steps' is zipped with optim.lr" in result.stderr


def test_analyze_sweep_dir_writes_the_table_and_the_report(sweep_copy):
    result = run_in_process("interp.analyze", str(sweep_copy), "--only", "fourier",
                            "--every", "3")
    assert result.returncode == 0, result.stderr
    csv = sweep_copy / "analysis" / "sweep.csv"
    assert f"table: {csv}" in result.stdout
    table = pd.read_csv(csv)
    assert len(table) == 4 and table["run"].tolist() == sorted(table["run"])
    assert table["optim.lr"].tolist() == [1e-3, 1e-3, 1e-2, 1e-2]
    # the runs' own analyses (fourier: key frequencies, phases from summary.json)
    assert table["fourier.key_frequencies.used"].notna().all()
    assert "phases.memorisation_end" in table
    expected = interp.Sweep.load(sweep_copy).table()
    np.testing.assert_allclose(table["final_test_loss"], expected["final_test_loss"])
    page = (sweep_copy / "analysis" / "sweep-report.html").read_text()
    assert "Phase diagram (Liu et al.)" in page and "final_test_acc against optim.lr" in page
    assert all(run in page for run in table["run"])
    assert (sweep_copy / table["run"][0] / "analysis" / "report.html").is_file()


def test_analyze_table_only_with_out_and_foreign_files(sweep_copy, tmp_path):
    out = tmp_path / "out"
    result = run_in_process("interp.analyze", str(sweep_copy), "--table-only", "--out",
                            str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["sweep-report.html", "sweep.csv"]
    assert not any((run / "analysis").exists() for run in sweep_copy.iterdir())
    (sweep_copy / "analysis").mkdir()
    (sweep_copy / "analysis" / "notes.txt").write_text("mine")
    refused = run_in_process("interp.analyze", str(sweep_copy), "--table-only")
    assert refused.returncode == 2 and "notes.txt" in refused.stderr
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("error: ")


def test_figure_commands_write_html_and_refuse_bad_names(sweep_dir, tmp_path):
    for command, extra in (("phase-diagram", []), ("sweep-curves", ["--metric", "test_loss_peak"]),
                           ("sweep-heatmap", ["--metric", "final_test_acc", "--where",
                                              "optim.lr=0.01"])):
        out = tmp_path / f"{command}.html"
        result = run_in_process("interp.figures", command, str(sweep_dir), "--out", str(out),
                                *extra)
        assert result.returncode == 0, result.stderr
        assert out.stat().st_size > 5_000 and str(out) in result.stdout
        assert 'src="plotly.min.js"' in out.read_text()  # one plotly.js beside the pages
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "phase-diagram.html", "plotly.min.js", "sweep-curves.html", "sweep-heatmap.html"]
    wrong = run_in_process("interp.figures", "phase-diagram", str(sweep_dir), "--out",
                           str(tmp_path / "phases.txt"))
    assert wrong.returncode == 2 and "must name a file ending in .html, .png, .svg, .pdf" in (
        wrong.stderr)
    for args, message in (
            (["phase-diagram", "--x", "optim.foo"], "--x 'optim.foo' is not an axis of the "
             "sweep"),
            (["sweep-curves", "--by", "seed"], "its axes: optim.lr, optim.weight_decay"),
            (["sweep-heatmap", "--metric", "nope"], "choose one of train_acc_99, test_acc_99, "
             "accuracy_gap"),
            (["sweep-curves", "--x", "optim.lr", "--by", "optim.lr"], "the same axis"),
            (["sweep-curves", "--where", "optim.lr=0.5"], "its values: 0.001, 0.01")):
        result = run_in_process("interp.figures", args[0], str(sweep_dir), *args[1:],
                                "--out", str(tmp_path / "bad.html"))
        assert result.returncode == 2, args
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert message in result.stderr, result.stderr
    assert not (tmp_path / "bad.html").exists()


def test_a_zip_group_led_by_a_seed_but_moving_a_fraction_is_a_real_axis():
    spec = parse_spec('preset = "liu-toy"\n[zip]\n"model.seed" = [0, 1]\n'
                      '"task.frac" = [0.6, 0.8]\n[grid]\n"optim.lr" = [1e-3, 1e-2]\n', "z.toml")
    record = spec.record()
    points = {entry.name: dict(entry.axes) for entry in record.runs}
    sweep = interp.Sweep(Path("z"), [], record_axes(record.axes, points, record.companions),
                         points, record.spec)
    assert sorted(a.key for a in sweep.grid_axes) == ["model.seed", "optim.lr"]
    assert not next(a for a in sweep.axes if a.key == "model.seed").seed


def test_uneven_values_make_cells_of_one_size_and_geometric_lists_are_log():
    """A decay axis 0, 0.3, 1, 3, 10 (not evenly spaced on any scale) is drawn as ordered
    categories, so no cell is squashed; alpha 0.25 ... 4 is geometric, so log."""
    from interp.runs import is_log_spaced

    assert is_log_spaced([0.25, 0.5, 1.0, 2.0, 4.0]) and is_log_spaced([1e-5, 1e-3])
    assert not is_log_spaced([0.0, 0.3, 1.0, 3.0, 10.0])  # a zero: no log scale
    assert not is_log_spaced([1.0, 2.0, 3.0, 4.0]) and not is_log_spaced([1.0, 3.0])
    wd = Axis("optim.weight_decay", False, (0.0, 0.3, 1.0, 3.0, 10.0))
    rows = [{"run": f"{lr}-{d}", "optim.lr": lr, "optim.weight_decay": d,
             "phase": "grokking" if d else "memorisation", "accuracy_gap": 10.0}
            for lr in LR.values for d in wd.values]
    fig = phase_diagram(frame(rows), LR, wd)
    assert list(fig.data[0].y) == ["0", "0.3", "1", "3", "10"]
    assert fig.layout.yaxis.type == "category"
    assert list(fig.layout.yaxis.categoryarray) == ["0", "0.3", "1", "3", "10"]
    assert fig.data[0].z[0][0] == PHASES.index("memorisation")
    assert fig.layout.xaxis.type == "log"  # 1e-4, 1e-3, 1e-2: even on its log scale


# ---------------------------------------------------------------------------------------------
# A directory of unrelated runs: a transformer (cross-entropy) and a committee machine (MSE)


@pytest.fixture(scope="module")
def mixed_dir(sweep_dir, tmp_path_factory):
    """A transformer of the sweep above and a 10-epoch MSE committee machine side by side,
    the first with a report (a stand-in page) in its analysis directory."""
    from conftest import TINY

    from interp.config import RunConfig
    from interp.train.loop import train

    root = tmp_path_factory.mktemp("mixed") / "runs"
    shutil.copytree(sweep_dir / "lr0.001_wd0.0", root / "transformer")
    train(RunConfig.from_dict({**TINY["committee"], "schedule": {
        "epochs": 10, "eval_every": 2, "checkpoint_every": 10}}), root / "committee",
        TrainOptions(device="cpu", quiet=True))
    (root / "transformer" / "analysis").mkdir()
    (root / "transformer" / "analysis" / "report.html").write_text("<p>report</p>")
    return root


def test_a_report_of_unrelated_runs_compares_curves_per_loss_and_links_reports(mixed_dir):
    from interp.figures.sweep_report import sweep_report

    sweep = interp.Sweep.load(mixed_dir)
    table = sweep.table()
    assert len(sweep.grid_axes) > 2  # every config key that differs is an inferred axis
    figures = sweep_figures(sweep, table)
    assert list(figures) == ["learning_curves"]  # no axis varies alone: no landmark curves
    curves = figures["learning_curves"]
    assert [a.text for a in curves.layout.annotations] == [
        "cross-entropy loss", "MSE loss", "accuracy"]
    assert {curves.layout[f"xaxis{i}"].type for i in ("", "2", "3")} == {"log"}
    panels = {(t.name, t.xaxis, t.line.dash) for t in curves.data}
    assert panels == {(run, axis, dash) for run, axes in (("transformer", ("x", "x3")),
                                                          ("committee", ("x2", "x3")))
                      for axis in axes for dash in ("solid", "dash")}  # MSE: threshold acc
    assert all(min(t.x) > 0 for t in curves.data)  # epoch 0 has no place on a log axis
    out = mixed_dir.parent / "elsewhere"  # the folder the page would be written to
    page = sweep_report(sweep, table, out=out)
    href = "../runs/transformer/analysis/report.html"
    assert f"<a href='{href}'>report</a>" in page  # relative to the page's folder
    assert (out / href).resolve() == (mixed_dir / "transformer/analysis/report.html").resolve()
    rows = {row["run"]: row for row in _html_rows(page)}
    assert rows["transformer"]["report"] == f"<a href='{href}'>report</a>"
    assert rows["committee"]["report"] == ""  # no report to link
    shown = set()
    table.loc[table["run"] == "committee", "final_test_acc"] = math.nan  # as if it had none
    rows = {row["run"]: row for row in _html_rows(sweep_report(sweep, table, out=out))}
    for record in table.to_dict("records"):
        has_accuracy = not pd.isna(record["final_test_acc"])
        for column in ACCURACY_EPOCHS | LOSS_EPOCHS:
            if pd.isna(record[column]):  # a landmark never reached, or not applying
                expected = "never" if column in LOSS_EPOCHS or has_accuracy else ""
                assert rows[record["run"]][column] == expected, (record["run"], column)
                shown.add(expected)
    assert shown == {"never", ""}  # the MSE run has no accuracy landmarks
    assert not any(v in ("None", "nan", "<NA>") for row in rows.values() for v in row.values())


def _html_rows(page: str) -> list[dict[str, str]]:
    """The rows of the last table of an HTML page: column header -> cell HTML."""
    import re

    table = page[page.rindex("<table>"):page.rindex("</table>")]
    header, *rows = table.split("</tr>")[:-1]
    columns = re.findall(r"<th>(.*?)</th>", header)
    return [dict(zip(columns, re.findall(r"<td>(.*?)</td>", row), strict=True))
            for row in rows]
