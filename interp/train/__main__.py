"""``python -m interp.train``: train a model, writing a run directory with checkpoints.

    python -m interp.train --preset tiny
    python -m interp.train --preset nanda --set optim.lr=3e-4 --out checkpoints/lr3e-4
    python -m interp.train --out checkpoints/nanda --resume     # continue a killed run
    python -m interp.train --preset tiny --linearized --out checkpoints/tiny-lazy
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from interp.cli import run_main

DEFAULT_ROOT = Path("checkpoints")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
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
    parser.add_argument("--out", type=Path,
                        help="run directory (default: checkpoints/PRESET)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true",
                          help="continue the run in --out from its last saved state")
    existing.add_argument("--force", action="store_true",
                          help="replace an existing run in --out")
    parser.add_argument("--device", help="torch device (default: cuda when available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no-fast-path", action="store_true",
                        help="train through the TransformerBridge forward instead of the "
                             "exact last-position fast path")
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


def raise_usage(message: str) -> None:
    from interp.errors import UserError

    raise UserError(message)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list_presets:
        from interp.presets import PRESETS

        for name, factory in PRESETS.items():
            print(f"{name:12s} {factory.__doc__.split(chr(10))[0]}")
        return 0
    config = resolve_config(args)
    if args.out is None:
        if config is None:
            raise_usage("--resume needs --out RUN_DIR")
        suffix = "-linearized" if config.objective.linearized else ""
        args.out = DEFAULT_ROOT / f"{config.preset or 'run'}{suffix}"

    from interp.analysis.curves import landmarks
    from interp.runs import Run
    from interp.train.loop import TrainOptions, train

    options = TrainOptions(device=args.device, resume=args.resume, force=args.force,
                           quiet=args.quiet, fast=not args.no_fast_path)
    path = train(config, args.out, options)
    run = Run.load(path)
    print(f"run: {path}")
    print(landmarks(run.metrics).describe())
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
