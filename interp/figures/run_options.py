"""Options shared by the figure commands that train or read runs, and obtaining those runs:
one by one (``obtain_runs``), or as a sweep (``obtain_sweep``: ``interp.sweep``'s machinery,
its runs stacked where their shapes allow)."""

from __future__ import annotations

import argparse
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interp.cli import check_output_dir, check_positive
from interp.config import RunConfig
from interp.errors import UserError


def add_run_options(parser: argparse.ArgumentParser, default_runs: str | None) -> None:
    """--out, --runs-dir (default checkpoints/DEFAULT_RUNS; None: left to the command),
    --epochs, --set and --device."""
    parser.add_argument("--out", type=Path, default=Path("figures"),
                        help="directory for the HTML (and PNG) files (default: figures)")
    parser.add_argument("--runs-dir", type=Path,
                        default=Path("checkpoints") / default_runs if default_runs else None,
                        help="where the runs are read from, or trained into when absent "
                             + (f"(default: checkpoints/{default_runs})" if default_runs
                                else "(default: set by the command)"))
    parser.add_argument("--epochs", type=int,
                        help="train for this many epochs instead of the preset's (a "
                             "shortened run)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value of every run, e.g. task.dim=20")
    parser.add_argument("--device", help="torch device for training (default: cuda if any)")


def check_run_options(args: argparse.Namespace) -> None:
    """UserError, before any training, unless --epochs is positive, --device usable here,
    --out a directory that can be written and --runs-dir a directory (it may be read-only
    when its runs are complete)."""
    from interp.train.loop import resolve_device

    check_positive("--epochs", args.epochs)
    resolve_device(args.device)
    check_output_dir(args.out)
    if args.runs_dir is not None:
        check_output_dir(args.runs_dir, "choose another --runs-dir", writable=False)


def add_sweep_options(parser: argparse.ArgumentParser, default_runs: str | None) -> None:
    """``add_run_options``, and --force for the sweep directory --runs-dir."""
    add_run_options(parser, default_runs)
    parser.add_argument("--force", action="store_true",
                        help="train into a --runs-dir that holds this command's runs for other "
                             "options (its runs of equal config are kept, others replaced)")


def set_table(args: argparse.Namespace, defaults: Mapping[str, Any],
              forced: Mapping[str, Any]) -> dict[str, Any]:
    """The [set] table of a sweep spec for the run options: ``defaults``, then --set
    (``KEY=VALUE``: a JSON number, boolean or list as itself, anything else as the
    override text ``RunConfig.with_overrides`` reads), then ``forced`` and --epochs."""
    table = dict(defaults)
    for assignment in args.set:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects KEY=VALUE (e.g. task.p=97), got {assignment!r}")
        table[key.strip()] = _set_value(value)
    table.update(forced)
    if args.epochs is not None:
        table["schedule.epochs"] = args.epochs
    return table


def _set_value(text: str) -> Any:
    """``text`` as a TOML value when it is JSON (not text) that TOML writes alike, else as
    it is (override text)."""
    try:
        value = json.loads(text)
        if not isinstance(value, str) and tomllib.loads(f"v = {json.dumps(value)}")["v"] == value:
            return value
    except (json.JSONDecodeError, tomllib.TOMLDecodeError):
        pass
    return text


def obtain_sweep(command: str, data: Mapping[str, Any], args: argparse.Namespace):
    """The sweep (``interp.Sweep``) of the spec ``data`` (a spec file's tables, see
    ``interp.sweep.spec.spec_from_data``) in --runs-dir, trained there first as
    ``python -m interp.sweep`` would (finished runs read, unfinished ones resumed, missing
    ones made; a --runs-dir holding other runs refused unless --force)."""
    from interp.sweep.api import SweepOptions, run_sweep
    from interp.sweep.spec import spec_from_data
    from interp.sweep_table import Sweep

    spec = spec_from_data(dict(data), command,
                          f"the runs of python -m interp.figures {command}")
    outcome = run_sweep(spec, args.runs_dir, SweepOptions(device=args.device, force=args.force,
                                                          option="--runs-dir"))
    print(outcome.describe(), flush=True)
    return Sweep.load(args.runs_dir)


def configured(config: RunConfig, args: argparse.Namespace, *extra: str) -> RunConfig:
    """``config`` with --set, --epochs and ``extra`` overrides applied."""
    overrides = [*args.set, *extra]
    if args.epochs is not None:
        overrides.append(f"schedule.epochs={args.epochs}")
    return config.with_overrides(overrides) if overrides else config


def obtain_runs(configs: Mapping[str, RunConfig], runs_dir: Path, device: str | None = None
                ) -> dict[str, Any]:
    """The finished runs RUNS_DIR/NAME for each NAME -> config: a complete one is read as
    is, an interrupted one resumed, a missing one trained; a run there with another config, or
    a RUNS_DIR inside a run, is an error. Every run still to train is checked against this
    machine's memory and disk (``interp.resources``) before any of them starts."""
    from interp.resources import check_resources
    from interp.runs import Run, is_run_dir
    from interp.train.loop import TrainOptions, train

    inside = next((p for p in (Path(runs_dir).resolve(), *Path(runs_dir).resolve().parents)
                   if is_run_dir(p)), None)
    if inside is not None:
        raise UserError(f"--runs-dir {runs_dir} lies inside the run {inside}; runs are never "
                        "written into another run: choose a --runs-dir outside it")
    paths = {name: Path(runs_dir) / name for name in configs}
    to_train = []
    for name, path in paths.items():
        if is_run_dir(path):
            run = Run.load(path)
            if run.config.to_dict() != configs[name].to_dict():
                raise UserError(f"{path} holds a run with another config; remove it or pass "
                                "another --runs-dir")
            if run.is_complete:
                continue
        to_train.append(name)
    for name in to_train:
        if not is_run_dir(paths[name]):
            check_resources([configs[name]], paths[name], device)
    for name in to_train:
        print(f"training {paths[name]} ...", flush=True)
        train(configs[name], paths[name],
              TrainOptions(device=device, quiet=True, resume=is_run_dir(paths[name])))
    return {name: Run.load(path) for name, path in paths.items()}


def obtain_alpha_runs(configs: Mapping[float, RunConfig], runs_dir: Path,
                      device: str | None = None) -> dict[float, Any]:
    """``obtain_runs`` for runs keyed by their output scale alpha, named ``alpha{alpha:g}``;
    UserError if two alphas would share a name (and so a run)."""
    names = {alpha: f"alpha{alpha:g}" for alpha in configs}
    if len(set(names.values())) < len(names):
        raise UserError(f"--alphas {' '.join(map(repr, configs))} name the same run twice "
                        f"({', '.join(names.values())}); give alphas that differ in their "
                        "first six digits")
    runs = obtain_runs({names[alpha]: config for alpha, config in configs.items()}, runs_dir,
                       device)
    return {alpha: runs[name] for alpha, name in names.items()}
