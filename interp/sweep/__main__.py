"""``python -m interp.sweep SPEC``: train the runs of a sweep spec into one sweep directory.

    python -m interp.sweep liu.toml --out checkpoints/liu-phases
    python -m interp.sweep liu.toml --out checkpoints/liu-phases   # again: finished runs are
                                            # skipped, unfinished ones resume, missing ones start
    python -m interp.sweep tiny-demo --dry-run      # a shipped spec: its runs and their stacks
    python -m interp.sweep liu.toml --workers 2     # stacks on 2 local worker processes
    python -m interp.sweep liu.toml --ray HOST:PORT # stacks as tasks on a Ray cluster
    python -m interp.sweep --list                   # the shipped specs

SPEC is a TOML file or the name of a shipped spec (interp/sweep/specs/NAME.toml):

    preset = "liu-toy"                         # the base: or config = "base.json"
    [set]                                      # fixed overrides
    "schedule.eval_every" = 100
    [grid]                                     # every combination of these axes' values
    "optim.lr" = {log = [1e-4, 1e-2], num = 8}     # 8 log-spaced values, both ends included
    "optim.weight_decay" = [0.0, 0.3, 1.0, 3.0, 10.0]
    "model.seed" = "0:3"                           # integer range, end excluded: 0, 1, 2
    [zip]                                      # axes that move together (equal lengths),
    "task.frac" = {linear = [0.5, 0.9], num = 3}   # then combined with the grid: 360 runs
    "schedule.epochs" = [20000, 15000, 10000]

An axis may also be "preset": each run's base preset ([grid] preset = ["hu-mlp", "hu-lstm"]).
The sweep directory (default checkpoints/SPEC_NAME) holds sweep.json (the spec, its text and
the resolved runs) and one run directory per run. A directory holding a different spec is
refused unless --force (runs of equal config are then kept, the others replaced).

--ray runs each stack as a Ray task (pip install 'interp[ray]'): with no ADDRESS on a new
local Ray instance, with one on the running cluster there. Tasks write the run directories
in place, so every node must see --out at the same path (a shared filesystem); nothing is
copied between nodes. A task whose worker dies is retried and resumes its runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from interp.cli import (
    ArgumentParser,
    add_backend_arguments,
    add_training_arguments,
    check_positive,
    run_main,
)
from interp.errors import UserError

DEFAULT_ROOT = Path("checkpoints")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser.from_doc("python -m interp.sweep", __doc__)
    parser.add_argument("spec", nargs="?", metavar="SPEC",
                        help="sweep file (TOML) or the name of a shipped sweep (see --list)")
    parser.add_argument("--out", type=Path,
                        help="the sweep directory (default: checkpoints/SPEC_NAME)")
    parser.add_argument("--workers", type=int,
                        help="local worker processes, each training whole stacks (default: "
                             "1, or one per GPU when CUDA has several)")
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                        help="train the stacks as Ray tasks: on a new local Ray instance, or "
                             "on the cluster at ADDRESS (HOST:PORT, or auto); every node must "
                             "see --out at the same path (a shared filesystem)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the runs and their stacks, train and write nothing")
    parser.add_argument("--force", action="store_true",
                        help="replace the sweep --out holds by this one (never files a run "
                             "did not write)")
    add_training_arguments(parser)
    add_backend_arguments(parser)
    parser.add_argument("--list", action="store_true", help="list the shipped sweeps and exit")
    return parser.parse_args(argv)


def list_specs() -> None:
    from interp.sweep.spec import load_spec, shipped_specs

    for name in shipped_specs():
        description = load_spec(name).description or ""
        print(f"{name:24s} {description.strip().splitlines()[0] if description else ''}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        list_specs()
        return 0
    if args.spec is None:
        raise UserError("give SPEC: a sweep file (TOML) or a shipped sweep (see --list)"
                        + ("; put it before --ray, whose ADDRESS is optional" if args.ray else ""))
    check_positive("--workers", args.workers)
    if args.ray is not None and args.workers is not None:
        raise UserError("--workers sets local worker processes and --ray trains on Ray, whose "
                        "CPUs (and GPUs) decide how many stacks train at once: drop one of them")

    from interp.files import check_path_name
    from interp.sweep.api import SweepOptions, plan_spec, run_sweep
    from interp.sweep.spec import load_spec

    spec = load_spec(args.spec)
    out = args.out or DEFAULT_ROOT / check_path_name(spec.name, "the spec's name")
    options = SweepOptions(device=args.device, workers=args.workers, force=args.force,
                           skip_resource_check=args.skip_resource_check, compile=args.compile,
                           matmul_precision=args.matmul_precision, quiet=args.quiet,
                           ray=args.ray)
    if args.dry_run:
        print(plan_spec(spec, out, options).describe())
        return 0
    print(run_sweep(spec, out, options).describe())
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
