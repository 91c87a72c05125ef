"""``python -m interp.sweep SPEC``: train the runs of a sweep spec into one sweep directory.

    python -m interp.sweep liu.toml --out checkpoints/liu-phases
    python -m interp.sweep liu.toml --out checkpoints/liu-phases   # again: finished runs are
                                            # skipped, unfinished ones resume, missing ones start
    python -m interp.sweep tiny-demo --dry-run      # a shipped spec: its runs and their stacks
    python -m interp.sweep liu.toml --workers 2     # stacks on 2 local worker processes
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
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from interp.cli import (
    ArgumentParser,
    add_backend_arguments,
    add_training_arguments,
    check_output_dir,
    check_positive,
    run_main,
)

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
        from interp.errors import UserError

        raise UserError("give SPEC: a sweep file (TOML) or a shipped sweep (see --list)")
    check_positive("--workers", args.workers)

    from interp.files import check_path_name
    from interp.sweep.spec import load_spec

    spec = load_spec(args.spec)
    runs = spec.runs()
    configs = spec.configs(runs)
    out = args.out or DEFAULT_ROOT / check_path_name(spec.name, "the spec's name")
    check_output_dir(out)

    from interp.errors import warn
    from interp.runs import check_sweep_dir, open_sweep_dir
    from interp.sweep.runner import (
        check_plan_resources,
        default_workers,
        memory_fits,
        plan_sweep,
        train_sweep,
        worker_devices,
    )
    from interp.train.loop import TrainOptions, resolve_device

    device = str(resolve_device(args.device))
    workers = args.workers or default_workers(args.device)
    record = spec.record(runs)
    names = [run.name for run in runs]
    check_sweep_dir(out, record, force=args.force)
    fits = memory_fits(device, workers)
    plan = plan_sweep(out, names, configs, force=args.force, fits=fits)
    check_plan_resources(plan, device, skip=args.skip_resource_check)
    if args.dry_run:
        print(plan.describe())
        return 0

    lock, stored = open_sweep_dir(out, record, force=args.force)
    with lock:
        left = sorted({r.name for r in stored.runs} - set(names)) if stored else []
        if left:
            warn(f"{len(left)} run(s) of the sweep {out} held are not in this spec and are "
                 f"left in place: {', '.join(left[:5])}{' ...' if len(left) > 5 else ''}")
        plan = plan_sweep(out, names, configs, force=args.force, fits=fits)  # now it is ours
        if not plan.units:
            print(f"sweep: {out} ({len(names)} runs, all finished: nothing to train)")
            return 0
        options = TrainOptions(device=args.device, force=args.force, quiet=True,
                               compile=args.compile, matmul_precision=args.matmul_precision)
        start, trained = time.monotonic(), sum(len(unit.runs) for unit in plan.units)
        epochs = sum(plan.configs[unit.runs[0]].schedule.epochs * len(unit.runs)
                     - sum(unit.starts) for unit in plan.units)
        train_sweep(plan, options, worker_devices(args.device, workers), quiet=args.quiet)
    seconds = time.monotonic() - start
    print(f"sweep: {out} ({len(names)} runs; {trained} trained in {len(plan.units)} stack(s), "
          f"{seconds:.1f} s, {epochs / max(seconds, 1e-9):.0f} model-epochs/s)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
