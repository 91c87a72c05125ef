"""Sweeps: the runs of ``--sweep KEY=VALUES`` (a grid) or of a sweep file, as override lists.

    --sweep seed=0:8                  model.seed 0, 1, ..., 7 (``seed`` is model.seed)
    --sweep task.frac=0.2,0.3,0.5     a comma-separated list of values
    --sweep optim.lr=1e-3,3e-3 --sweep seed=0:4     the grid: 2 x 4 runs
    --sweep-file runs.json            a JSON list of override lists, one per run:
                                      [["model.seed=1", "optim.lr=1e-3"], ["model.seed=2"]]

Each run is the base config with its overrides (``RunConfig.with_overrides``), named after
them (``model.seed=3_optim.lr=0.001``): the name of its run directory inside ``--out``.
Characters that are not safe in a file name become ``-``, and a name longer than
``NAME_LENGTH`` is cut and ends in a hash of the whole (the overrides are in run.json).
A sweep has at most ``MAX_RUNS`` runs, counted before any is made.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from interp.errors import UserError

KEY_ALIASES = {"seed": "model.seed"}
MAX_RUNS = 10_000
NAME_LENGTH = 100
_RANGE = re.compile(r"^(-?\d+):(-?\d+)(?::(-?\d+))?$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.,=+\[\]-]")


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its ``section.key=value`` overrides and its name."""

    overrides: tuple[str, ...]

    @property
    def name(self) -> str:
        """The run's directory name: the overrides joined by ``_``, made safe (see above)."""
        whole = "_".join(self.overrides).replace(" ", "")
        name = _UNSAFE.sub("-", whole).replace("..", "-").lstrip(".-") or "run"
        if len(name) > NAME_LENGTH:
            digest = hashlib.sha256(whole.encode()).hexdigest()[:12]
            name = f"{name[:NAME_LENGTH - 13]}-{digest}"
        return name


def parse_values(text: str) -> list | range:
    """The values of one ``--sweep`` spec: ``a:b[:step]`` (integers, end excluded; a lazy
    range) or a comma-separated list of JSON values (text where not JSON)."""
    match = _RANGE.match(text.strip())
    if match:
        start, stop, step = (int(g) if g else 1 for g in match.groups())
        if step == 0:
            raise UserError(f"--sweep range {text!r} has step 0")
        return range(start, stop, step)
    try:
        values = json.loads(f"[{text}]")
    except json.JSONDecodeError:
        values = [part.strip() for part in text.split(",")]
    return values


def grid(specs: list[str]) -> list[SweepRun]:
    """The runs of ``--sweep KEY=VALUES`` specs: every combination of their values."""
    axes = []
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = KEY_ALIASES.get(key.strip(), key.strip())
        if not sep or not key or not text.strip():
            raise UserError(f"--sweep expects KEY=VALUES (e.g. seed=0:8 or "
                            f"task.frac=0.2,0.3), got {spec!r}")
        values = parse_values(text)
        if not values:
            raise UserError(f"--sweep {spec!r} gives no values")
        axes.append((key, values))
    count = math.prod(len(values) for _, values in axes)
    if count > MAX_RUNS:
        raise UserError(f"--sweep gives {count} runs; one sweep holds at most {MAX_RUNS}: "
                        "split it into several")
    axes = [[f"{key}={_text(v)}" for v in values] for key, values in axes]
    return _distinct([SweepRun(tuple(combo)) for combo in itertools.product(*axes)])


def read_sweep_file(path: Path) -> list[SweepRun]:
    """The runs of a sweep file: a JSON list of override lists (``"section.key=value"``)."""
    from interp.runs import read_json

    data = read_json(path)
    if (not isinstance(data, list) or not data
            or not all(isinstance(r, list) and r and all(isinstance(o, str) for o in r)
                       for r in data)):
        raise UserError(f"{path}: a sweep file is a JSON list of non-empty override lists, "
                        'e.g. [["model.seed=1"], ["model.seed=2", "optim.lr=3e-3"]]')
    if len(data) > MAX_RUNS:
        raise UserError(f"{path}: {len(data)} runs; one sweep holds at most {MAX_RUNS}: split "
                        "it into several")
    return _distinct([SweepRun(tuple(run)) for run in data])


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _distinct(runs: list[SweepRun]) -> list[SweepRun]:
    counts = Counter(run.name for run in runs)
    repeated = next((name for name, count in counts.items() if count > 1), None)
    if repeated is not None:
        raise UserError(f"the sweep names run {repeated!r} twice; give each run once")
    return runs
