"""``python -m interp.figures lazy-rich RUN_DIR --out DIR``: Kumar et al.'s lazy-versus-rich
diagnostics over a run's checkpoints (kernel distance and alignment of the empirical NTK,
parameter movement, linearisation gap, network vs linearised loss, representation CKA, NTK
eigenvectors vs key Fourier modes), with the grokking landmarks marked.

    python -m interp.figures lazy-rich checkpoints/tiny --out figures/tiny-lazy-rich
    python -m interp.figures lazy-rich checkpoints/tiny --out figures/tiny-lazy-rich \\
        --linearized-run checkpoints/tiny-linearized --format html,pdf

Reads the cached analysis of ``python -m interp.analyze RUN_DIR --only lazy_rich`` (which
takes --probes, --kernels and --every); computes nothing and never writes into the run. The
measures see the run's own trained output (centred and alpha-scaled when it was).
"""

from __future__ import annotations

from pathlib import Path

from interp.cli import ArgumentParser
from interp.figures.export import add_format_option, chosen_formats


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser.from_doc("python -m interp.figures lazy-rich", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory")
    parser.add_argument("--out", type=Path, required=True, help="directory for the figures")
    parser.add_argument("--linearized-run", type=Path, metavar="DIR",
                        help="a lazy-baseline run (python -m interp.train --linearized) whose "
                             "learning curves are overlaid (default: RUN_DIR-linearized if "
                             "it exists)")
    parser.add_argument("--analysis", type=Path, metavar="DIR",
                        help="where interp.analyze wrote the analysis (its --out; default "
                             "RUN_DIR/analysis)")
    add_format_option(parser)
    args = parser.parse_args(argv)
    formats = chosen_formats(args)

    from interp.analysis.curves import format_epoch
    from interp.figures.export import write_figures
    from interp.figures.report import lazy_rich_figures
    from interp.run_analysis import cached_analysis, lazy_baseline_metrics

    result = cached_analysis(args.run_dir, "lazy_rich", args.out, args.analysis)
    baseline = lazy_baseline_metrics(result.run, args.linearized_run)
    print("\n".join(map(str, write_figures(lazy_rich_figures(result, baseline), args.out,
                                           formats))))
    lazy, marks = result.lazy_rich.summary, result.landmarks
    print(f"linearisation gap (test) passes 0.5 at epoch "
          f"{format_epoch(lazy['linearisation_gap_above_half'])}; " + "; ".join(
              f"kernel distance ({kind}, {lazy['probes_used']} probes) passes 0.5 at epoch "
              f"{format_epoch(lazy[f'kernel_distance_above_half/{kind}'])}"
              for kind in lazy["kernels"]))
    print(f"landmarks: train acc 99% at {format_epoch(marks.train_acc_99)}, test acc 99% at "
          f"{format_epoch(marks.test_acc_99)}, test loss peaks at "
          f"{format_epoch(marks.test_loss_peak)}")
    return 0
