"""``python -m interp.train``: train a model, writing a run directory with checkpoints.

    python -m interp.train --preset tiny
    python -m interp.train --preset nanda --set optim.lr=3e-4 --out checkpoints/lr3e-4
    python -m interp.train --out checkpoints/nanda --resume     # continue a killed run
    python -m interp.train --preset tiny --linearized --out checkpoints/tiny-lazy
    python -m interp.train --preset nanda --sweep seed=0:8      # 8 runs trained as one stack
    python -m interp.train --preset nanda --sweep task.frac=0.2,0.3,0.5 --sweep seed=0:2
    python -m interp.train --preset liu-toy --sweep optim.lr=1e-4,3e-4,1e-3 --sweep seed=0:4
    python -m interp.train --preset hu-mlp --sweep optim.name=adamw,sgd  # one stack each
    python -m interp.train --out checkpoints/nanda-sweep --resume   # continue a sweep
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from interp.cli import (
    ArgumentParser,
    add_backend_arguments,
    add_training_arguments,
    check_output_dir,
    run_main,
)

DEFAULT_ROOT = Path("checkpoints")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m interp.train", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]))
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help="named configuration (see --list-presets)")
    source.add_argument("--config", type=Path, help="JSON config file (or a run's run.json)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. optim.lr=3e-4 (repeatable)")
    parser.add_argument("--linearized", action="store_true",
                        help="train the model linearised at its initialisation (the lazy "
                             "baseline; same as --set objective.linearized=true)")
    sweep = parser.add_mutually_exclusive_group()
    sweep.add_argument("--sweep", action="append", default=[], metavar="KEY=VALUES",
                       help="train one run per value, in this process, as few stacks as the "
                            "runs' shapes allow: "
                            "seed=0:8 (model.seed 0..7), task.frac=0.2,0.3 (repeat for a "
                            "grid); each run gets its own run directory inside --out")
    sweep.add_argument("--sweep-file", type=Path, metavar="FILE",
                       help='JSON list of override lists, one per run: [["model.seed=1"], '
                            '["model.seed=2", "optim.lr=3e-3"]]')
    parser.add_argument("--out", type=Path,
                        help="run directory, or for a sweep the directory of its runs "
                             "(default: checkpoints/PRESET or checkpoints/PRESET-sweep)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true",
                          help="continue the run in --out from its last saved state")
    existing.add_argument("--force", action="store_true",
                          help="replace an existing run in --out")
    add_training_arguments(parser)
    parser.add_argument("--no-fast-path", action="store_true",
                        help="train through the TransformerBridge forward instead of the "
                             "exact last-position fast path")
    add_backend_arguments(parser)
    parser.add_argument("--list-presets", action="store_true", help="list presets and exit")
    return parser.parse_args(argv)


def resolve_config(args: argparse.Namespace):
    """The RunConfig the arguments describe, or None when resuming from run.json alone."""
    from interp.config import RunConfig
    from interp.presets import get_preset
    from interp.runs import read_json

    if args.preset:
        config = get_preset(args.preset)
    elif args.config:
        data = read_json(args.config)
        config = RunConfig.from_dict(data.get("config", data) if isinstance(data, dict)
                                     else data)
    elif args.resume:
        config = None
    else:
        raise_usage("give --preset NAME or --config FILE (see --list-presets)")
    overrides = args.set + (["objective.linearized=true"] if args.linearized else [])
    if overrides:
        if config is None:
            raise_usage(f"{'--set' if args.set else '--linearized'} needs --preset or --config")
        config = config.with_overrides(overrides)
    return config


def default_out(config, sweep: bool) -> Path:
    """checkpoints/PRESET[-linearized][-sweep]: always a directory directly inside
    checkpoints/, whatever the config's preset label holds (it is checked as a name)."""
    from interp.files import check_path_name

    preset = check_path_name(config.preset, "the config's preset") if config.preset else "run"
    suffix = ("-linearized" if config.objective.linearized else "") + ("-sweep" if sweep else "")
    return DEFAULT_ROOT / f"{preset}{suffix}"


def check_fits(configs, args: argparse.Namespace, device: str) -> None:
    """Refuse, before anything is allocated or written, runs whose estimated memory or
    checkpoint disk exceeds what this machine has; with --skip-resource-check, warn."""
    from interp.errors import warn
    from interp.resources import check_resources

    estimate = check_resources(configs, args.out, device, override=args.skip_resource_check)
    for refusal in estimate.refusals:
        warn(refusal.split("; ")[0] + " (--skip-resource-check: training anyway)")


def raise_usage(message: str) -> None:
    from interp.errors import UserError

    raise UserError(message)


def sweep_runs(args: argparse.Namespace):
    """The runs of --sweep / --sweep-file, or None when not sweeping."""
    from interp.train.sweep import grid, read_sweep_file

    if args.sweep_file:
        return read_sweep_file(args.sweep_file)
    return grid(args.sweep) if args.sweep else None


def preset_list(width: int = 100) -> str:
    """--list-presets: each preset's name and its whole description (the first paragraph of
    its docstring), wrapped to ``width`` columns beside the names."""
    import inspect
    import textwrap

    from interp.presets import PRESETS

    column = max(map(len, PRESETS)) + 2
    return "\n".join(textwrap.fill(
        " ".join(inspect.cleandoc(factory.__doc__).split("\n\n")[0].split()), width,
        initial_indent=f"{name:{column}s}", subsequent_indent=" " * column)
        for name, factory in PRESETS.items())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list_presets:
        print(preset_list())
        return 0
    config = resolve_config(args)
    runs = sweep_runs(args)
    if args.out is None:
        if config is None:
            raise_usage("--resume needs --out RUN_DIR")
        args.out = default_out(config, sweep=runs is not None)

    check_output_dir(args.out)

    from interp.runs import Run, find_run_dirs, is_run_dir
    from interp.train.ensemble import train_ensemble
    from interp.train.loop import TrainOptions, resolve_device, train

    device = str(resolve_device(args.device))

    options = TrainOptions(device=args.device, resume=args.resume, force=args.force,
                           quiet=args.quiet, fast=not args.no_fast_path, compile=args.compile,
                           matmul_precision=args.matmul_precision)
    if runs is not None:
        if config is None:
            raise_usage("--sweep needs --preset or --config (the runs' base config)")
        if is_run_dir(args.out):
            raise_usage(f"--out {args.out} holds a single run; give the sweep a directory of "
                        "its own")
        configs = [config.with_overrides(list(run.overrides)) for run in runs]
        check_fits(configs, args, device)
        paths = train_ensemble(configs, [args.out / run.name for run in runs], options)
    elif args.resume and not is_run_dir(args.out) and find_run_dirs(args.out):
        if config is not None:
            raise_usage(f"{args.out} holds a sweep: resume it with --out alone, or with the "
                        "--sweep it was started with")
        paths = find_run_dirs(args.out)
        check_fits([Run.load(path).config for path in paths], args, device)
        paths = train_ensemble(None, paths, options)
    else:
        if args.resume and is_run_dir(args.out):  # its run.json may have been edited
            check_fits([Run.load(args.out).config], args, device)
        elif not args.resume:
            check_fits([config], args, device)
        paths = [train(config, args.out, options)]
    for path in paths:
        print(f"run: {path}")
        print(Run.load(path).landmarks().describe())
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
