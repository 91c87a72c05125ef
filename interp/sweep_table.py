"""A sweep: many runs over a grid of hyperparameters, read as one table.

    >>> sweep = interp.Sweep.load("checkpoints/liu-phases")
    >>> sweep.axes         # [Axis(key='optim.lr', log=True, values=(0.0001, ...)), ...]
    >>> sweep.table()      # a DataFrame, one row per run

A sweep directory written by ``python -m interp.sweep`` holds ``sweep.json`` (read by
``interp.runs.read_sweep``): its ``axes`` name the swept config keys (and whether each is
drawn on a log scale), its ``runs`` each run's name and axis values, and each run is a run
directory beside it. Zipped keys move together, so they are one axis, named by the first
(``SweepRecord.companions``): the others are its companions, columns of the table and part
of its labels, but no axis of their own. A directory of runs without sweep.json
(``python -m interp.train --sweep``) is read too: its axes are the config keys whose values
differ between the runs, log-scaled when all are positive and span two decades or more.
An axis that is a seed (``is_seed``) repeats the others' points: figures pool over it.

The table's row of a run: its name, axis values, seeds, Liu et al.'s phase
(``interp.analysis.phases``), the learning-curve landmarks (``interp.analysis.curves``),
final losses and accuracies, the final value of each stability diagnostic the trainer
recorded (``RECORDED_COLUMNS``), for a regression run with one output its ``task_hardness``
(``task_hardness_of``: y^T K_0^{-1} y, computed from its epoch-0 checkpoint), and every
scalar of the run's ``analysis/summary.json`` when ``interp.analyze`` wrote one
(``llc.llc_peak_epoch``, ``sharpness.sharpness_max``, ...). A run that cannot be read is
skipped with a warning; a run that diverged is a row like any other, of phase ``diverged``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from interp.errors import UserError, warn

if TYPE_CHECKING:
    from interp.runs import SweepAxis

LANDMARK_COLUMNS = ("train_acc_99", "test_acc_99", "accuracy_gap", "train_loss_low",
                    "test_loss_low", "loss_gap", "train_loss_half", "test_loss_half",
                    "loss_half_gap", "test_loss_peak", "test_acc_50", "loss_threshold",
                    "final_epoch", "final_train_loss", "final_test_loss", "final_train_acc",
                    "final_test_acc")
# metrics the trainer records for some runs (numerical stability, classification): the
# table holds each one's final value as final_NAME, where runs have it
RECORDED_COLUMNS = ("softmax_collapse", "grad_weight_cosine")
# summary.json entries the table already holds (computed from the metrics) or that are
# bookkeeping, not results
_SUMMARY_SKIPPED = {"run", "path", "preset", "complete", "landmarks", "learning_phase",
                    "checkpoints_analysed", "skipped_checkpoints", "diverged_checkpoints"}


def is_seed(key: str) -> bool:
    """Whether the config key ``key`` (``section.name``) is a seed."""
    name = key.rpartition(".")[2]
    return name == "seed" or name.endswith("_seed")


def flat_config(config) -> dict[str, Any]:
    """A ``RunConfig`` as ``section.name`` -> value; lists (``model.hidden``) as JSON text,
    so that every value can be compared and grouped."""
    return {key: _plain(value) for key, value in config.flat().items()}


def _plain(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _order(value: Any) -> tuple:
    """Sort key: numbers in order, then text, then None."""
    if _is_number(value):
        return (0, float(value), "")
    return (2, 0.0, "") if value is None else (1, 0.0, str(value))


@dataclass(frozen=True)
class Axis:
    """A swept config key, its distinct values in order, whether it is drawn on a log
    scale, and the zipped keys that move with it (``companions``; at each of ``values``,
    ``companion_values`` gives theirs as text, ``key=value, ...``)."""

    key: str
    log: bool
    values: tuple
    companions: tuple[str, ...] = ()
    companion_values: tuple[str, ...] = ()

    @property
    def seed(self) -> bool:
        """Whether the axis is a seed (its runs repeat the others' points): its key and every
        companion are seeds (a zip of seed and training fraction is a real axis)."""
        return all(map(is_seed, (self.key, *self.companions)))

    @property
    def title(self) -> str:
        """The key, with its companions: ``optim.lr (with model.embedding_lr_factor)``."""
        return self.key + (f" (with {', '.join(self.companions)})" if self.companions else "")

    def label(self, value: Any) -> str:
        """``key=value`` as figures label a point, with its companions' values after it."""
        text = f"{self.key}={value}"
        match = [i for i, v in enumerate(self.values) if _same(v, value)]
        return text + (f" ({self.companion_values[match[0]]})"
                       if self.companions and match else "")


def record_axes(axes: Sequence[SweepAxis], points: dict[str, dict[str, Any]],
                companions: dict[str, tuple[str, ...]]) -> list[Axis]:
    """The axes of a sweep.json (``axes``: its ``SweepAxis``es, ``companions`` its
    ``SweepRecord.companions``) over the runs' ``points`` (run name -> key -> value): one
    per axis that is no other's companion."""
    following = {key for keys in companions.values() for key in keys}
    result = []
    for axis in axes:
        if axis.key in following:
            continue
        values = tuple(sorted({p[axis.key] for p in points.values()}, key=_order))
        keys = companions.get(axis.key, ())
        texts = tuple(" | ".join(sorted({", ".join(f"{k}={p[k]}" for k in keys)
                                         for p in points.values() if _same(p[axis.key], v)}))
                      for v in values) if keys else ()
        result.append(Axis(axis.key, axis.log, values, keys, texts))
    return result


def infer_axes(points: dict[str, dict[str, Any]]) -> list[Axis]:
    """The axes of runs without a sweep.json: the keys present in every run's flat config
    (``points``: run name -> ``flat_config``) whose values differ, in config order."""
    from interp.runs import is_log_spaced

    configs = list(points.values())
    keys = [k for k in configs[0] if all(k in c for c in configs)]
    axes = []
    for key in keys:
        values = sorted({c[key] for c in configs}, key=_order)
        if len(values) > 1:
            axes.append(Axis(key, is_log_spaced(values), tuple(values)))
    return axes


@dataclass
class Sweep:
    """The runs of a sweep directory and their axes (``Sweep.load``)."""

    path: Path
    runs: list  # interp.runs.Run, in the sweep's order
    axes: list[Axis]
    points: dict[str, dict[str, Any]]  # run name -> axis key -> value
    spec: dict[str, Any] | None = None  # sweep.json's spec; None for a plain directory

    @classmethod
    def load(cls, path: str | os.PathLike) -> Sweep:
        """Open a sweep directory (with or without sweep.json); UserError if it is a single
        run or holds no readable run. Runs that cannot be read, or that sweep.json lists
        but are not there yet, are left out with a warning."""
        from interp.runs import (
            SWEEP_FILE,
            Run,
            RunFileError,
            find_run_dirs,
            is_run_dir,
            is_sweep_dir,
            listed,
            read_sweep,
        )

        path = Path(path)
        if is_run_dir(path):
            raise UserError(f"{path} is a run, not a sweep; give the directory that holds the "
                            "sweep's runs (one run opens with interp.Run.load)")
        if not path.is_dir():
            raise UserError(f"{path}: no such sweep directory")
        record = read_sweep(path) if is_sweep_dir(path) else None
        if record is None:
            names = [p.name for p in find_run_dirs(path)]
        else:
            names = [entry.name for entry in record.runs]
        runs, missing = [], []
        for name in names:
            if not is_run_dir(path / name):
                missing.append(name)
                continue
            try:
                runs.append(Run.load(path / name))
            except RunFileError as err:
                warn(f"skipping run {path / name}: {err}")
        if missing:
            warn(f"{path / SWEEP_FILE}: {len(missing)} of its runs have no run directory yet "
                 f"({listed(missing)}); they are left out")
        if not runs:
            raise UserError(f"{path} holds no readable run; give a directory of runs made by "
                            "python -m interp.sweep or python -m interp.train --sweep")
        if record is None:
            points = {run.name: flat_config(run.config) for run in runs}
            axes = infer_axes(points)
            points = {name: {a.key: point[a.key] for a in axes}
                      for name, point in points.items()}
            return cls(path, runs, axes, points)
        given = {entry.name: entry.axes for entry in record.runs}
        points = {run.name: {a.key: _plain(given[run.name][a.key]) for a in record.axes}
                  for run in runs}
        return cls(path, runs, record_axes(record.axes, points, record.companions), points,
                   record.spec)

    def __repr__(self) -> str:
        return (f"Sweep({str(self.path)!r}, runs={len(self.runs)}, "
                f"axes={[a.key for a in self.axes]})")

    @property
    def grid_axes(self) -> list[Axis]:
        """The axes that are not seeds: the coordinates of the sweep's figures (a zip
        group's companions are no axes, so never among them)."""
        return [a for a in self.axes if not a.seed]

    def axis(self, key: str, option: str = "axis") -> Axis:
        """The axis ``key``; UserError naming ``option`` and the valid keys if none (and
        the axis it moves with, if ``key`` is a companion)."""
        return find_axis(self.axes, key, option, f" of the sweep {self.path}")

    def table(self, analysis_dir: Path | None = None) -> pd.DataFrame:
        """One row per run (see the module docstring). The runs' analyses are read from
        ``analysis_dir/RUN_NAME/summary.json`` when given (``interp.analyze --out``), else
        from ``RUN/analysis/summary.json``."""
        from interp.runs import ANALYSIS_DIR

        rows = []
        for run in self.runs:
            root = run.path / ANALYSIS_DIR if analysis_dir is None else analysis_dir / run.name
            rows.append(run_row(run, self.points[run.name], _read_summary(root / "summary.json")))
        return frame(rows)


def run_row(run, point: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The table row of one run: name, axis values ``point``, seeds, phase, landmarks,
    final losses and accuracies, the task hardness of a regression run, and the scalars of
    its analysis ``summary``."""
    from interp.analysis.curves import landmarks, numeric
    from interp.analysis.phases import learning_phase

    metrics = run.metrics
    marks = landmarks(metrics, run.config.objective.loss).to_dict()
    for column in ("train_loss", "test_loss"):
        marks[f"final_{column}"] = (float(numeric(metrics, column).iloc[-1])
                                    if column in metrics and not metrics.empty else None)
    recorded = {f"final_{column}": float(numeric(metrics, column).iloc[-1])
                for column in RECORDED_COLUMNS if column in metrics and not metrics.empty}
    hardness = task_hardness_of(run)
    if hardness is not None:
        recorded["task_hardness"] = hardness
    phase = learning_phase(metrics)
    seeds = {k: v for k, v in flat_config(run.config).items() if is_seed(k) and k not in point}
    return {"run": run.name, **point, **seeds,
            "phase": phase.name if phase is not None else None,
            **{column: marks[column] for column in LANDMARK_COLUMNS}, **recorded,
            "phase_train_step": phase.train_step if phase is not None else None,
            "phase_test_step": phase.test_step if phase is not None else None,
            "phase_max_gap": phase.max_gap if phase is not None else None,
            "epochs": run.config.schedule.epochs, "complete": run.is_complete,
            **_flatten({k: v for k, v in summary.items() if k not in _SUMMARY_SKIPPED})}


def task_hardness_of(run) -> float | None:
    """The task hardness of a regression run with one output
    (``interp.analysis.lazy_rich.task_hardness``): the NTK of its model at the epoch-0
    checkpoint on the training inputs, against what training had to fit, the training
    targets (times ``objective.label_scale``) less the initial outputs (less nothing for a
    centred output, which starts at zero), in float64. Computed afresh on each call, about
    two seconds for the kumar-committee preset at P = 550 on a CPU (the Jacobian [P, N D]
    holds 8 P N D bytes). None for other runs; None, warned, without a readable epoch-0
    checkpoint, when the Jacobian would take more than half the free memory, or when the
    value is not finite."""
    if not run.config.task.regression:
        return None
    if 0 not in run.checkpoint_epochs:
        warn(f"{run.path}: no epoch-0 checkpoint; the run's task hardness is left out of the "
             "sweep table")
        return None
    import math

    import torch

    from interp.analysis.lazy_rich import last_position, ntk, task_hardness
    from interp.resources import memory_available

    try:
        task = run.task()
        if task.target_type != "real" or task.n_outputs != 1:
            return None
        model = run.model(0).double()  # a float32 kernel can be numerically indefinite
    except UserError as err:
        warn(f"{err}; the run's task hardness is left out of the sweep table")
        return None
    inputs = task.train_inputs.double()
    need = 8 * len(inputs) * sum(p.numel() for p in model.parameters() if p.requires_grad)
    if need > memory_available() // 2:
        warn(f"{run.path}: the NTK's Jacobian on {len(inputs)} training inputs needs about "
             f"{need / 1e9:.1f} GB, more than half the free memory; the run's task hardness "
             "is left out of the sweep table")
        return None
    residual = task.train_targets.double()
    if not run.config.objective.centered:
        with torch.no_grad():
            residual = residual - last_position(model(inputs)).double()
    hardness = task_hardness(ntk(model, inputs), residual)
    if math.isnan(hardness):
        warn(f"{run.path}: the task hardness is not finite (a kernel that is not finite or "
             "not positive definite even with jitter, or targets all zero); left out")
        return None
    return hardness


def _read_summary(path: Path) -> dict[str, Any]:
    """A run's analysis summary.json; empty when there is none, or (warned) when damaged."""
    from interp.runs import RunFileError, read_json

    if not path.exists():
        return {}
    try:
        summary = read_json(path)
    except RunFileError as err:
        warn(f"{err}; the run's analyses are left out of the sweep table")
        return {}
    if not isinstance(summary, dict):
        warn(f"{path}: is not a JSON object; the run's analyses are left out of the sweep "
             "table")
        return {}
    return summary


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested JSON objects as ``a.b.c`` -> scalar; lists of scalars as JSON text; other
    lists left out."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            if all(v is None or isinstance(v, int | float | str | bool) for v in value):
                flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``rows`` as a DataFrame whose columns of whole numbers and None (epochs that may
    never come) are pandas' nullable Int64, so that they print and save as integers, and
    whose columns of None alone are NaN (numbers none of the runs has)."""
    table = pd.DataFrame(rows)
    for column in table.columns:
        values = [row[column] for row in rows if row.get(column) is not None]
        if not values:
            table[column] = math.nan
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            table[column] = pd.array([row.get(column) for row in rows], dtype="Int64")
    return table


def find_axis(axes: list[Axis], key: str, option: str, where: str = "") -> Axis:
    """The axis of ``axes`` named ``key``; UserError naming ``option`` and the valid keys
    (``where``: which sweep) if none, pointing at the axis it moves with if ``key`` is a
    companion."""
    for axis in axes:
        if axis.key == key:
            return axis
        if key in axis.companions:
            raise UserError(f"{option} {key!r} is zipped with {axis.key}: they move together "
                            f"as one axis, named {axis.key}; give {axis.key} instead")
    valid = ", ".join(a.key for a in axes) or "none (every run has the same config)"
    raise UserError(f"{option} {key!r} is not an axis{where}; its axes: {valid}")


def metric_columns(table: pd.DataFrame, axes: list[Axis]) -> list[str]:
    """The table's numeric columns other than the axes, their companions and seeds: what
    figures can plot."""
    keys = {key for a in axes for key in (a.key, *a.companions)}
    return [c for c in table.columns
            if c not in keys and not is_seed(c) and c != "complete"
            and pd.api.types.is_numeric_dtype(table[c])
            and not pd.api.types.is_bool_dtype(table[c])]


def check_metric(table: pd.DataFrame, axes: list[Axis], metric: str) -> None:
    """UserError naming the valid metrics unless ``metric`` is one of the table's."""
    valid = metric_columns(table, axes)
    if metric not in valid:
        raise UserError(f"--metric {metric!r} is not a metric of the sweep table; choose one "
                        f"of {', '.join(valid)}")


def select(table: pd.DataFrame, axes: list[Axis], where: dict[str, Any]) -> pd.DataFrame:
    """The rows whose axis ``key`` equals ``value`` for each of ``where`` (floats to
    rounding); UserError if a key is not an axis or a value not one of its values."""
    for key, value in where.items():
        axis = find_axis(axes, key, "--where", " of the sweep")
        match = next((v for v in axis.values if _same(v, value)), None)
        if match is None:
            raise UserError(f"--where {key}={value} is not a value of that axis; its values: "
                            f"{', '.join(map(str, axis.values))}")
        table = table[[_same(v, match) for v in table[key]]]
    return table


def _same(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return math.isclose(a, b, rel_tol=1e-9)
    return str(a) == str(b)


def phase_cells(table: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Liu et al.'s phase diagram as data: per (x, y) cell of the runs in ``table`` (seeds
    and any other axes pooled), the majority ``phase``, how many runs have it (``count``)
    out of ``runs``, every phase's count (``phases``, text) and the median train-to-test
    generalisation gap in epochs (``accuracy_gap``, of the runs that reach both). Cells
    whose runs have no phase (regression tasks) are left out."""
    from interp.analysis.phases import majority_phase

    rows = []
    for (xv, yv), cell in table[table["phase"].notna()].groupby([x, y], sort=False,
                                                                dropna=False):
        phase, count = majority_phase(cell["phase"])
        gaps = pd.to_numeric(cell["accuracy_gap"], errors="coerce").dropna()
        counts = cell["phase"].value_counts()
        rows.append({x: xv, y: yv, "phase": phase, "count": count, "runs": len(cell),
                     "phases": ", ".join(f"{n} {p}" for p, n in counts.items()),
                     "accuracy_gap": float(gaps.median()) if len(gaps) else None})
    return pd.DataFrame(rows, columns=[x, y, "phase", "count", "runs", "phases",
                                       "accuracy_gap"])


def metric_spread(table: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    """Per distinct value of ``keys``, the mean, min and max of ``metric`` over the runs
    that have it (seeds and other axes pooled), and ``n`` of ``runs`` that do."""
    values = table[[*keys]].assign(value=pd.to_numeric(table[metric], errors="coerce"))
    grouped = values.groupby(keys, sort=True, dropna=False)["value"]
    spread = grouped.agg(["mean", "min", "max", "count", "size"]).reset_index()
    return spread.rename(columns={"count": "n", "size": "runs"})


