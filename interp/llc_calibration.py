"""python -m interp.llc_calibration: calibrate the LLC sampler on one checkpoint of a run.

Runs a grid of SGLD step size x localization at one checkpoint (default: the last) and
prints, per cell, the LLC, its std across chains, the diverged chains, the chains' spread
against their within-chain noise (over 3: they disagree), the post-burn-in drift (last
quarter - first quarter of the draws, in LLC units) and the seconds it took. Pick a cell
whose chains all stay finite and agree and whose drift is small beside the LLC; the
defaults per model kind (interp/analysis/llc.py) were chosen so. Nothing is written.

  python -m interp.llc_calibration checkpoints/nanda-p113 --epoch 10000
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from interp.cli import ArgumentParser, run_main
from interp.errors import UserError


def _numbers(text: str) -> list[float]:
    try:
        return [float(item) for item in text.split(",") if item]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers"
                                         ) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser.from_doc("python -m interp.llc_calibration", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory")
    parser.add_argument("--epoch", type=int, help="the checkpoint (default: the last)")
    parser.add_argument("--step-sizes", type=_numbers, default=[1e-5, 3e-5, 1e-4, 3e-4, 1e-3],
                        help="comma-separated SGLD step sizes (default 1e-5,...,1e-3)")
    parser.add_argument("--localizations", type=_numbers, default=[10.0, 100.0, 1000.0],
                        help="comma-separated localization strengths (default 10,100,1000)")
    for flag in ("chains", "draws", "burn-in", "batch-size", "seed"):
        parser.add_argument(f"--{flag}", type=int,
                            help=f"SGLD {flag.replace('-', ' ')} (default: the model kind's)")
    parser.add_argument("--nbeta", type=float, help="n beta (default: the kind's, n / log n)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from interp.analysis.llc import SGLDOverrides, chain_agreement, resolve_settings
    from interp.analyzers.llc import checkpoint_llc
    from interp.models import build_model
    from interp.runs import Run, is_run_dir

    if not is_run_dir(args.run_dir):
        raise UserError(f"{args.run_dir} is not a run directory (no run.json); give one made "
                        "by python -m interp.train")
    run = Run.load(args.run_dir)
    epochs = run.checkpoint_epochs
    epoch = epochs[-1] if args.epoch is None else args.epoch
    if epoch not in epochs:
        raise UserError(f"--epoch {epoch}: {args.run_dir} has no checkpoint there; its "
                        f"checkpoints are at epochs {epochs[0]} to {epochs[-1]}")
    overrides = SGLDOverrides(chains=args.chains, draws=args.draws, burn_in=args.burn_in,
                              batch_size=args.batch_size, seed=args.seed, nbeta=args.nbeta)
    base = resolve_settings(run.config, overrides)
    task = run.task()
    template = build_model(run.config.model, task, args.device)
    weights = run.weights(epoch)
    initial = run.weights(0)
    print(f"{run.path} epoch {epoch} ({run.config.model.kind}): {base.chains} chains, "
          f"{base.burn_in} burn-in + {base.draws} draws, batch {base.batch_size or 'full'}, "
          f"{len(task.train_idx)} training rows")
    print(f"{'step':>8} {'gamma':>8} {'llc':>10} {'std':>9} {'div':>4} {'spread':>7} "
          f"{'drift':>9} {'s':>6}")
    for step_size in args.step_sizes:
        for localization in args.localizations:
            settings = replace(base, step_size=step_size, localization=localization)
            settings.validate()
            start = time.perf_counter()
            (estimate,) = checkpoint_llc(run.config, task, template, [weights], initial,
                                         settings, args.device)
            seconds = time.perf_counter() - start
            agreement = chain_agreement(estimate)
            flag = " disagree" if agreement.disagree else ""
            print(f"{step_size:8.0e} {localization:8.3g} {estimate.llc:10.4g} "
                  f"{estimate.llc_std:9.3g} {estimate.diverged:4d} "
                  f"{agreement.spread_ratio:7.2f} {agreement.drift:9.3g} {seconds:6.1f}{flag}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
