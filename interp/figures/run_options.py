"""Options shared by the figure commands that train or read runs, and obtaining those runs."""

from __future__ import annotations

import argparse
from pathlib import Path

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


def configured(config: RunConfig, args: argparse.Namespace, *extra: str) -> RunConfig:
    """``config`` with --set, --epochs and ``extra`` overrides applied."""
    overrides = [*args.set, *extra]
    if args.epochs is not None:
        overrides.append(f"schedule.epochs={args.epochs}")
    return config.with_overrides(overrides) if overrides else config


def obtain_run(config: RunConfig, runs_dir: Path, name: str, device: str | None = None):
    """The finished run RUNS_DIR/NAME: trained from ``config`` if absent, resumed if it was
    interrupted, read as is if complete; a run there with another config is an error."""
    from interp.runs import Run, is_run_dir
    from interp.train.loop import TrainOptions, train

    path = Path(runs_dir) / name
    if is_run_dir(path):
        run = Run.load(path)
        if run.config.to_dict() != config.to_dict():
            raise UserError(f"{path} holds a run with another config; remove it or pass "
                            "another --runs-dir")
        if run.is_complete:
            return run
    print(f"training {path} ...", flush=True)
    train(config, path, TrainOptions(device=device, quiet=True, resume=is_run_dir(path)))
    return Run.load(path)
