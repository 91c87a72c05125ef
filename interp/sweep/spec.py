"""A sweep spec: a TOML file (read with the standard library's ``tomllib``) naming a base
config, fixed overrides and the axes whose values make the runs.

    preset = "liu-toy"                    # the base: a preset, or config = "base.json"
    description = "what the sweep shows"  # optional
    [set]                                 # fixed overrides, every run
    "schedule.epochs" = 20000
    [grid]                                # every combination of these axes' values
    "optim.lr" = {log = [1e-4, 1e-2], num = 8}
    "optim.weight_decay" = [0.0, 0.3, 1.0, 3.0, 10.0]
    "model.seed" = "0:3"
    [zip]                                 # axes that move together (equal lengths), each
    "task.frac" = [0.3, 0.5]              # tuple of values then combined with the grid
    "schedule.epochs" = [6000, 3600]

Keys are config keys ``section.name`` (quoted: a bare ``optim.lr`` is TOML for a table, also
accepted), ``seed`` for ``model.seed``, and, as an axis, ``preset`` (the base preset of each
run, e.g. ``preset = ["hu-mlp", "hu-lstm"]``; the spec then names no top-level preset).
An axis is an explicit list; ``"a:b[:step]"``, an integer range (end excluded, as Python's
``range``); ``{log = [lo, hi], num = n}``, n log-spaced values, both ends included;
``{linear = [lo, hi], num = n}``, n evenly spaced values, both ends included. Spaced values
between the ends are rounded to ``SIGNIFICANT_DIGITS`` (names stay short), and are integers
when both ends are integers and every value is whole. Figures draw a log-spaced axis on a
log scale, and so an explicit list of positive numbers spanning two decades or more
(``interp.runs.LOG_SPAN``); ``{values = [...], scale = "linear"}`` (or ``"log"``) is a list
drawn on the scale it names. The [zip] axes are one axis of the sweep's figures, named by
its first key (the others move with it: ``SweepRecord.companions``).

A run is the base config, then [set], then its axis values (``SpecRun``), named after its
axis overrides (``interp.train.sweep.SweepRun``); grid axes vary in the order given, the last
fastest, and the zipped axes fastest of all. A relative ``config`` path is read from the
spec's directory. ``spec_from_data`` builds a spec in code (the figure commands' sweeps).
"""

from __future__ import annotations

import itertools
import json
import math
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.config import SECTIONS, RunConfig
from interp.errors import UserError
from interp.files import json_ready
from interp.runs import SweepAxis, SweepEntry, SweepRecord, is_log_spaced
from interp.train.sweep import KEY_ALIASES, MAX_RUNS, SweepRun, parse_values

SPECS_DIR = Path(__file__).parent / "specs"
TOP_LEVEL = ("preset", "config", "description", "set", "grid", "zip")
SIGNIFICANT_DIGITS = 6
PRESET_AXIS = "preset"
SCALES = ("log", "linear")


@dataclass(frozen=True)
class Axis:
    """One swept key: its values in order, whether drawn on a log scale (given log-spaced,
    or a list spanning two decades), whether zipped."""

    key: str
    values: tuple[Any, ...]
    log: bool = False
    zip: bool = False


@dataclass(frozen=True)
class SpecRun(SweepRun):
    """One run of a spec: its axis overrides (``SweepRun``: they name it) and its value on
    each axis, (key, value) in the spec's axis order."""

    values: tuple[tuple[str, Any], ...]

    @property
    def axes(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep spec (see the module docstring); ``origin`` names it in messages."""

    origin: str
    source: str
    data: dict[str, Any]
    preset: str | None
    base: RunConfig | None  # the preset's or config file's config; None with a preset axis
    fixed: tuple[str, ...]  # [set] as "section.name=value" overrides
    axes: tuple[Axis, ...]

    @property
    def name(self) -> str:
        """The spec's name: its file's stem (the default sweep directory's name)."""
        return Path(self.origin).stem

    @property
    def description(self) -> str | None:
        return self.data.get("description")

    def runs(self) -> list[SpecRun]:
        """Every run: the product of the grid axes (the last varying fastest) and of the zip
        axes taken together (varying fastest of all)."""
        # a column: the (key, value) pairs each of its steps sets; a zip column sets several
        columns = [[((axis.key, v),) for v in axis.values] for axis in self.axes
                   if not axis.zip]
        zipped = [[(axis.key, v) for v in axis.values] for axis in self.axes if axis.zip]
        if zipped:
            columns.append(list(zip(*zipped, strict=True)))
        runs = []
        for combo in itertools.product(*columns):
            values = tuple(pair for step in combo for pair in step)
            runs.append(SpecRun(tuple(_override(k, v) for k, v in values), values))
        return runs

    def configs(self, runs: list[SpecRun] | None = None) -> list[RunConfig]:
        """The resolved config of each of ``runs`` (default: every run); UserError naming
        the spec and the run if one is invalid."""
        bases: dict[str | None, RunConfig] = {}
        configs = []
        for run in self.runs() if runs is None else runs:
            preset = run.axes.get(PRESET_AXIS, self.preset)
            try:
                if preset not in bases:
                    bases[preset] = _base(self, preset).with_overrides(list(self.fixed))
                configs.append(bases[preset].with_overrides(
                    [o for o in run.overrides if not o.startswith(f"{PRESET_AXIS}=")]))
            except UserError as err:
                raise UserError(f"{self.origin}: run {run.name}: {err}") from None
        return configs

    def record(self, runs: list[SpecRun] | None = None) -> SweepRecord:
        """What the sweep directory's sweep.json holds for this spec."""
        runs = self.runs() if runs is None else runs
        return SweepRecord(
            json_ready(self.data), self.source,
            tuple(SweepAxis(a.key, a.log, a.zip) for a in self.axes),
            tuple(SweepEntry(r.name, r.overrides, r.axes) for r in runs))


def shipped_specs() -> dict[str, Path]:
    """The shipped specs: name -> path of ``interp/sweep/specs/NAME.toml``."""
    return {path.stem: path for path in sorted(SPECS_DIR.glob("*.toml"))}


def load_spec(spec: str | Path) -> SweepSpec:
    """The spec in the TOML file ``spec``, or the shipped spec of that name; UserError if
    there is neither or it is invalid."""
    path = Path(spec)
    if not path.is_file():
        shipped = shipped_specs()
        if str(spec) not in shipped:
            raise UserError(f"no sweep file {str(spec)!r} and no shipped sweep of that name; "
                            f"give a TOML file or one of: {', '.join(shipped) or 'none'}")
        path = shipped[str(spec)]
    try:
        text = path.read_bytes().decode()
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file (a sweep spec is TOML)") from None
    return parse_spec(text, str(path), path.parent)


def parse_spec(text: str, origin: str = "<spec>", directory: Path = Path(".")) -> SweepSpec:
    """Parse the TOML ``text`` of a spec (``origin`` names it in messages; a relative
    ``config`` path is read from ``directory``); UserError naming the key if it is invalid."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{origin}: not valid TOML ({err})") from None
    try:
        return _parse(data, text, origin, directory)
    except UserError as err:
        raise UserError(f"{origin}: {err}") from None


def spec_from_data(data: dict[str, Any], origin: str, comment: str = "") -> SweepSpec:
    """A spec built in code: ``data`` is what a spec file's TOML parses to (top-level keys,
    then the tables [set], [grid] and [zip] of ``key: value``; a [set] value may be override
    text, ``"task.p": "7"``, as ``--set`` gives it). Its text (the sweep directory records
    it) is that TOML, after ``comment`` as comment lines; it is parsed and checked as a spec
    file is, ``origin`` naming it in messages."""
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f"{key} = {_toml(value)}" for key, value in data.items()
              if not isinstance(value, dict)]
    for table, entries in data.items():
        if isinstance(entries, dict):
            lines += ["", f"[{table}]"]
            lines += [f"{json.dumps(key)} = {_toml(value)}" for key, value in entries.items()]
    return parse_spec("\n".join(lines) + "\n", origin)


def _toml(value: Any) -> str:
    """``value`` (a number, text, boolean, or a list of them) as a TOML value: JSON's form,
    but nan, inf and -inf as TOML writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_toml, value)) + "]"
    return json.dumps(value)


def _parse(data: dict[str, Any], text: str, origin: str, directory: Path) -> SweepSpec:
    unknown = [key for key in data if key not in TOP_LEVEL]
    if unknown:
        raise UserError(f"unknown top-level key {unknown[0]!r}; a sweep spec has preset or "
                        "config, description, [set], [grid] and [zip]")
    for key in ("set", "grid", "zip"):
        if not isinstance(data.get(key, {}), dict):
            raise UserError(f"{key} must be a table ([{key}] followed by key = value lines)")
    if not isinstance(data.get("description", ""), str):
        raise UserError("description must be text")
    try:
        json_ready(data)
    except TypeError:
        raise UserError("a spec's values are numbers, text, booleans, lists and tables "
                        "(TOML dates and times are not config values)") from None
    fixed = _flat(data.get("set", {}), "set")
    grid = _flat(data.get("grid", {}), "grid")
    zipped = _flat(data.get("zip", {}), "zip")
    both = sorted(grid.keys() & zipped.keys())
    if both:
        raise UserError(f"[grid] and [zip] both set {both[0]}; give each axis once")
    if PRESET_AXIS in fixed:
        raise UserError("[set] preset: the base preset is the top-level preset = NAME")
    axes = ([_axis(key, value, "grid") for key, value in grid.items()]
            + [_axis(key, value, "zip") for key, value in zipped.items()])
    _check_sources(data, axes, fixed)
    _check_count(axes)
    preset_axis = next((a for a in axes if a.key == PRESET_AXIS), None)
    preset = data.get("preset")
    base = None if preset_axis else _base_of(data, directory)
    spec = SweepSpec(origin, text, data, preset, base,
                     tuple(_override(k, v) for k, v in fixed.items()), tuple(axes))
    _check_keys(spec, fixed, axes, preset_axis)
    names = Counter(run.name for run in spec.runs())
    repeated = next((name for name, count in names.items() if count > 1), None)
    if repeated is not None:
        raise UserError(f"the spec gives run {repeated!r} twice (an axis repeats a value, or "
                        "values differ only past the digits a name keeps); give each run once")
    return spec


def _flat(table: dict[str, Any], where: str) -> dict[str, Any]:
    """``table``'s entries as ``section.name`` -> value: a section's own table (``[grid.optim]``
    or a bare dotted key ``optim.lr = ...``) is flattened, ``seed`` means ``model.seed``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        items = ([(f"{key}.{name}", inner) for name, inner in value.items()]
                 if key in SECTIONS and isinstance(value, dict) else [(key, value)])
        for name, inner in items:
            name = KEY_ALIASES.get(name, name)
            if name in flat:
                raise UserError(f"[{where}] sets {name} twice; give it once")
            flat[name] = inner
    return flat


def _axis(key: str, value: Any, where: str) -> Axis:
    """The axis ``key = value`` of table ``where`` (the forms in the module docstring)."""
    at = f"[{where}] {key}"
    if isinstance(value, list):
        return _listed(key, value, at, where == "zip")
    if isinstance(value, dict) and "values" in value:
        return _listed(key, value, at, where == "zip")
    if isinstance(value, str):
        try:
            values = parse_values(value)
        except UserError:
            raise UserError(f"{at} = {value!r}: a range's step cannot be 0") from None
        if not isinstance(values, range):
            raise UserError(f"{at} = {value!r} is not an integer range a:b[:step]; give a "
                            f'list (["{value}"] for one text value)')
        if len(values) == 0:
            raise UserError(f"{at} = {value!r} is an empty range (the end is excluded); "
                            "give a range that holds at least one integer")
        if len(values) > MAX_RUNS:
            raise UserError(f"{at} = {value!r} gives {len(values)} values; one sweep holds at "
                            f"most {MAX_RUNS} runs")
        return Axis(key, tuple(values), zip=where == "zip")
    if isinstance(value, dict):
        return _spaced(key, value, at, where == "zip")
    raise UserError(f"{at} = {value!r} is not an axis: give a list, a range \"a:b\", "
                    "{log = [lo, hi], num = n} or {linear = [lo, hi], num = n} (a fixed value "
                    "belongs in [set])")


def _listed(key: str, value: list | dict[str, Any], at: str, zipped: bool) -> Axis:
    """An explicit list, or ``{values = [...], scale = "log"|"linear"}``: drawn on a log
    scale when the scale says so, or, with none given, when it spans two decades."""
    scale = None
    if isinstance(value, dict):
        extra = sorted(set(value) - {"values", "scale"})
        if extra:
            raise UserError(f"{at}: unknown key {extra[0]!r}; a list axis is "
                            '{values = [...], scale = "log"|"linear"}')
        value, scale = value["values"], value.get("scale")
        if not isinstance(value, list):
            raise UserError(f"{at}: values must be a list, got {value!r}")
        if scale is not None and scale not in SCALES:
            raise UserError(f"{at}: scale must be \"log\" or \"linear\", got {scale!r}")
    if not value:
        raise UserError(f"{at} is an empty list; give at least one value")
    if scale == "log" and not all(_is_number(v) and v > 0 for v in value):
        raise UserError(f"{at}: a log scale needs positive numbers, got {value!r}; give "
                        'scale = "linear"')
    log = is_log_spaced(value) if scale is None else scale == "log"
    return Axis(key, tuple(value), log=log, zip=zipped)


def _spaced(key: str, value: dict[str, Any], at: str, zipped: bool) -> Axis:
    """A ``{log = [lo, hi], num = n}`` or ``{linear = [lo, hi], num = n}`` axis."""
    kinds = [kind for kind in ("log", "linear") if kind in value]
    extra = sorted(set(value) - {"log", "linear", "num"})
    if len(kinds) != 1 or extra or "num" not in value:
        raise UserError(f"{at} must be {{log = [lo, hi], num = n}}, {{linear = [lo, hi], "
                        f"num = n}} or {{values = [...], scale = \"log\"|\"linear\"}}, got the "
                        f"keys {', '.join(sorted(value))}")
    kind, ends, num = kinds[0], value[kinds[0]], value["num"]
    if not (isinstance(ends, list) and len(ends) == 2 and all(_is_number(e) for e in ends)):
        raise UserError(f"{at}: {kind} must be two numbers [lo, hi], got {ends!r}")
    if kind == "log" and not all(e > 0 for e in ends):
        raise UserError(f"{at}: log-spaced ends must be positive, got {ends!r}")
    if not (isinstance(num, int) and not isinstance(num, bool) and 1 <= num <= MAX_RUNS):
        raise UserError(f"{at}: num must be an integer from 1 to {MAX_RUNS}, got {num!r}")
    lo, hi = ends
    values = []
    for i in range(num):
        t = i / (num - 1) if num > 1 else 0.0
        if kind == "log":
            value_i = math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo)))
        else:
            value_i = lo * (1 - t) + hi * t
        values.append(lo if i == 0 else hi if i == num - 1 else
                      float(f"{value_i:.{SIGNIFICANT_DIGITS}g}"))
    if all(isinstance(e, int) for e in ends) and all(float(v).is_integer() for v in values):
        values = [int(v) for v in values]
    return Axis(key, tuple(values), log=kind == "log", zip=zipped)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _check_sources(data: dict[str, Any], axes: list[Axis], fixed: dict[str, Any]) -> None:
    """One base (preset, config or a preset axis); no axis that is also a [set] override;
    [zip] axes of equal lengths."""
    sources = [key for key in ("preset", "config") if key in data]
    if any(a.key == PRESET_AXIS for a in axes):
        sources.append("a preset axis")
    if len(sources) != 1:
        raise UserError(f"give exactly one base: preset = NAME, config = PATH or a preset "
                        f"axis (got {', '.join(sources) or 'none'})")
    for key in ("preset", "config"):
        if key in data and not isinstance(data[key], str):
            raise UserError(f"{key} must be text (a preset name or a path)")
    for axis in axes:
        if axis.key in fixed:
            raise UserError(f"{axis.key} is both an axis ([{'zip' if axis.zip else 'grid'}]) "
                            "and a fixed override ([set]); keep it in one of them")
    lengths = {a.key: len(a.values) for a in axes if a.zip}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{key} has {n}" for key, n in lengths.items())
        raise UserError(f"[zip] axes move together and need equal lengths: {listed} values")


def _check_count(axes: list[Axis]) -> None:
    grid = math.prod(len(a.values) for a in axes if not a.zip)
    zipped = next((len(a.values) for a in axes if a.zip), 1)
    if grid * zipped > MAX_RUNS:
        raise UserError(f"the spec gives {grid * zipped} runs; one sweep holds at most "
                        f"{MAX_RUNS}: split it into several")


def _base_of(data: dict[str, Any], directory: Path) -> RunConfig:
    """The config of the spec's top-level preset or config file."""
    if "preset" in data:
        from interp.presets import get_preset

        return get_preset(data["preset"])
    from interp.runs import read_json

    path = Path(data["config"])
    path = path if path.is_absolute() else directory / path
    config = read_json(path)
    return RunConfig.from_dict(config.get("config", config) if isinstance(config, dict)
                               else config)


def _base(spec: SweepSpec, preset: str | None) -> RunConfig:
    """The base config of a run whose preset is ``preset`` (the spec's own base if None)."""
    if spec.base is not None and preset == spec.preset:
        return spec.base
    from interp.presets import get_preset

    return get_preset(preset)


def _check_keys(spec: SweepSpec, fixed: dict[str, Any], axes: list[Axis],
                preset_axis: Axis | None) -> None:
    """UserError naming the first key that is not a config key, or whose value makes the
    config invalid ([set], then each axis's first value, applied in order), and the first
    preset of a preset axis that does not exist."""
    if preset_axis is not None:
        for value in preset_axis.values:
            if not isinstance(value, str):
                raise UserError(f"preset axis: {value!r} is not a preset name")
            _base(spec, value)
    base = _base(spec, preset_axis.values[0] if preset_axis else spec.preset)
    given = ([("set", k, v) for k, v in fixed.items()]
             + [("zip" if a.zip else "grid", a.key, a.values[0])
                for a in axes if a is not preset_axis])
    for where, key, _ in given:
        section, dot, name = key.partition(".")
        if section not in SECTIONS or not dot or not name:
            raise UserError(f"[{where}] {key}: not a config key; keys look like SECTION.NAME "
                            f"with SECTION one of {', '.join(SECTIONS)} (e.g. optim.lr)")
    try:
        base.with_overrides([_override(key, value) for _, key, value in given])
    except UserError as together:
        for end, (where, key, _) in enumerate(given, start=1):
            try:
                base.with_overrides([_override(k, v) for _, k, v in given[:end]])
            except UserError as err:
                raise UserError(f"[{where}] {key}: {err}") from None
        raise UserError(f"[set] with the axes' first values: {together}") from None


def _override(key: str, value: Any) -> str:
    """``key=value`` as ``RunConfig.with_overrides`` reads it (JSON; text as it is)."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return f"{key}={text}"
