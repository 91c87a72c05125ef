"""``python -m interp.figures lazy-rich RUN_DIR --out DIR``: Kumar et al.'s lazy-versus-rich
diagnostics over a run's checkpoints (kernel distance and alignment of the empirical NTK,
parameter movement, linearisation gap, network vs linearised loss, representation CKA, NTK
eigenvectors vs key Fourier modes), with the grokking landmarks marked.

    python -m interp.figures lazy-rich checkpoints/tiny --out figures/tiny-lazy-rich
    python -m interp.figures lazy-rich checkpoints/tiny --out figures/tiny-lazy-rich \\
        --linearized-run checkpoints/tiny-linearized --probes 128 --every 2

Uses (and fills) the cache of ``python -m interp.analyze``; the measures see the run's own
trained output (centred and alpha-scaled when it was).
"""

from __future__ import annotations

from pathlib import Path

from interp.cli import ArgumentParser, check_output_dir, check_positive
from interp.errors import UserError


def main(argv: list[str] | None = None) -> int:
    from interp.analyze import KERNELS

    parser = ArgumentParser.from_doc("python -m interp.figures lazy-rich", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory")
    parser.add_argument("--out", type=Path, required=True, help="directory for the figures")
    parser.add_argument("--linearized-run", type=Path, metavar="DIR",
                        help="a lazy-baseline run (python -m interp.train --linearized) whose "
                             "learning curves are overlaid (default: RUN_DIR-linearized if "
                             "it exists)")
    parser.add_argument("--probes", type=int, default=256,
                        help="probe inputs for the NTK and CKA (default 256)")
    parser.add_argument("--kernels", nargs="+", choices=KERNELS, default=["correct_class"],
                        help="NTK kinds (trace costs n_outputs times more)")
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="use every K-th checkpoint (always the last)")
    parser.add_argument("--device", default="cpu", help="torch device for the models")
    args = parser.parse_args(argv)
    if args.probes < 2:
        raise UserError(f"--probes must be at least 2, got {args.probes}")
    check_positive("--every", args.every)

    from interp.analyze import analyse_run, lazy_baseline_metrics
    from interp.analyzers import Options
    from interp.figures.export import write_figures
    from interp.figures.report import lazy_rich_figures
    from interp.runs import Run
    from interp.train.loop import resolve_device

    args.device = str(resolve_device(args.device))
    check_output_dir(args.out)

    run = Run.load(args.run_dir)
    baseline = lazy_baseline_metrics(run, args.linearized_run)
    options = Options(device=args.device, probes=args.probes, kernels=tuple(args.kernels))
    result = analyse_run(args.run_dir, ["lazy_rich"], args.every, options)
    print("\n".join(map(str, write_figures(lazy_rich_figures(result, baseline), args.out))))
    lazy, marks = result.summary.get("lazy_rich", {}), result.summary["landmarks"]
    print(f"linearisation gap (test) passes 0.5 at epoch "
          f"{lazy.get('linearisation_gap_above_half')}; " + "; ".join(
              f"kernel distance ({kind}) passes 0.5 at epoch "
              f"{lazy.get(f'kernel_distance_above_half/{kind}')}" for kind in args.kernels))
    print(f"landmarks: train acc 99% at {marks['train_acc_99']}, test acc 99% at "
          f"{marks['test_acc_99']}, test loss peaks at {marks['test_loss_peak']}")
    return 0
