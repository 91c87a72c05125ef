"""``python -m interp.analyze RUN_DIR|SWEEP_DIR``: analyse a run's checkpoints and write a
report; for a directory of runs (a sweep), also one table of them all.

    python -m interp.analyze checkpoints/nanda-p113
    python -m interp.analyze checkpoints/tiny --every 2 --only fourier
    python -m interp.analyze checkpoints/liu-phases    # every run, plus the sweep table
    python -m interp.analyze checkpoints/liu-phases --table-only    # the table alone

    python -m interp.analyze checkpoints/nanda-p113 --only llc --only sharpness

Every analysis that applies to the run (fourier: Nanda et al.'s Fourier structure and
progress measures; representation: Liu et al.'s RQI; lazy_rich: Kumar et al.'s
lazy-versus-rich diagnostics) runs over the checkpoints, one model in memory at a time, and
each checkpoint's results are cached under RUN/analysis/, so a second call computes only new
checkpoints; it can run while training is still writing (it reads complete files only).
Two analyses run on request (--only), since they cost minutes where the others cost
seconds: llc, the local learning coefficient (SGLD chains around each checkpoint, Lau et al.
2023), and sharpness, the top eigenvalue of the training loss's Hessian; once cached, every
later call reads them into the summary and report.
Writes RUN/analysis/summary.json and a self-contained RUN/analysis/report.html, and prints a
short summary. A damaged checkpoint is skipped with a warning naming it.

For a directory of runs (made by python -m interp.sweep or interp.train --sweep), each run
is analysed so, then SWEEP_DIR/analysis/sweep.csv holds one row per run (axis values, seeds,
landmarks, Liu et al.'s phase, final losses and accuracies, each run's analysis summary;
see interp.sweep_table) and SWEEP_DIR/analysis/sweep-report.html shows the phase diagram,
the landmarks against each axis, and the table. A run that cannot be read is skipped with a
warning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from interp.cli import ArgumentParser, add_analysis_arguments, analysis_options, run_main
from interp.errors import UserError, warn
from interp.run_analysis import ANALYSES, RunAnalysis


def describe(result: RunAnalysis) -> str:
    """A few terminal lines about one analysed run."""
    from interp.analysis.curves import format_epoch

    analysed = result.analysed
    cached = sum(analysed.values()) - result.computed
    counts = ", ".join(f"{name} {n}" for name, n in analysed.items())
    lines = [f"{result.run.path}: checkpoints analysed: {counts or 'none'} "
             f"({result.computed} computed now, {max(cached, 0)} read from the cache)",
             result.landmarks.describe()]
    if result.phases is not None:
        phases = result.phases
        lines.append(f"phases: memorisation until {format_epoch(phases.memorisation_end)}, "
                     f"circuit formation until {format_epoch(phases.cleanup_start)}, clean-up "
                     f"until {format_epoch(phases.cleanup_end)}")
    if result.learning_phase is not None:
        lines.append(f"Liu et al.'s phase: {result.learning_phase.describe()}")
    fourier = result.fourier
    if fourier is not None:
        final = fourier.final
        lines.append(f"key frequencies {fourier.key_frequencies} (embedding: "
                     f"{final.key_frequencies_embedding}); at epoch {fourier.final_epoch}: "
                     + ", ".join(f"{name} {final.scalars[name]:.3g}" for name in (
                         "restricted_loss", "excluded_loss", "gini_embed", "gini_unembed")
                                 if name in final.scalars))
    r = result.representation
    if r is not None:
        lines.append(f"{r.geometry} RQI {r.final_rqi:.3f} ({r.test}); ideal accuracy "
                     f"{r.ideal_accuracy:.3f}, predicted {r.predicted_accuracy:.3f}")
    if result.lazy_rich is not None:
        lazy = result.lazy_rich.summary
        lines.append(f"linearisation gap > 0.5 at epoch "
                     f"{format_epoch(lazy['linearisation_gap_above_half'])}; "
                     + "; ".join(f"kernel distance ({kind}, {lazy['probes_used']} probes) > 0.5 at "
                                 f"epoch {format_epoch(lazy[f'kernel_distance_above_half/{kind}'])}"
                                 for kind in lazy["kernels"]))
    if result.llc is not None:
        llc = result.llc
        lines.append(f"LLC {llc.final:.3g} at the last checkpoint, peak at epoch "
                     f"{format_epoch(llc.peak_epoch)} ({llc.settings.chains} chains x "
                     f"{llc.settings.draws} draws, step size {llc.settings.step_size:g}, "
                     f"n*beta {llc.nbeta:.4g})")
    if result.sharpness is not None:
        sharp = result.sharpness
        lines.append(f"sharpness (top Hessian eigenvalue) {sharp.final:.4g} at the last "
                     f"checkpoint, largest {sharp.maximum:.4g} at epoch "
                     f"{format_epoch(sharp.peak_epoch)}" if sharp.final is not None else
                     "sharpness: missing at the last checkpoint (see the warnings)")
    for name, why in result.not_applicable.items():
        lines.append(f"{name}: not applicable ({why})")
    lines.append(f"report: {result.report_path}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser.from_doc("python -m interp.analyze", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory, or a directory of runs")
    parser.add_argument("--only", action="append", choices=ANALYSES,
                        help="compute only this analysis (repeatable; lazy_rich brings "
                             "fourier; llc and sharpness run only when named here); the "
                             "others already cached stay in the summary and report")
    add_analysis_arguments(parser)
    parser.add_argument("--out", type=Path,
                        help="output directory (default RUN/analysis; for a directory of "
                             "runs OUT/RUN_NAME, OUT/sweep.csv and OUT/sweep-report.html)")
    parser.add_argument("--table-only", action="store_true",
                        help="for a directory of runs: write the sweep table and report alone "
                             "(from the runs' metrics and the analyses already written), "
                             "without analysing each run's checkpoints")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = analysis_options(args)
    from interp.run_analysis import analyse_run, analyse_sweep, check_sweep_outputs
    from interp.runs import ANALYSIS_DIR, find_run_dirs, is_run_dir

    runs = find_run_dirs(args.run_dir)
    if not runs:
        what = "does not exist" if not args.run_dir.exists() else "holds no run (no run.json)"
        raise UserError(f"{args.run_dir} {what}; give a run directory made by "
                        "python -m interp.train")
    if is_run_dir(args.run_dir):
        if args.table_only:
            raise UserError(f"--table-only is for a directory of runs, and {args.run_dir} is a "
                            "run; drop --table-only")
        print(describe(analyse_run(args.run_dir, args.only, args.every, options, args.out,
                                   args.quiet)))
        return 0
    from interp.sweep_table import Sweep

    sweep = Sweep.load(args.run_dir)  # warns of the runs it cannot read, and leaves them out
    sweep_out = args.out or args.run_dir / ANALYSIS_DIR
    check_sweep_outputs(sweep_out, runs)  # each run's output is checked by analyse_run
    if not args.table_only:
        for run in sweep.runs:
            out = args.out / run.name if args.out else None
            try:
                print(describe(analyse_run(run.path, args.only, args.every, options, out,
                                           args.quiet)))
            except UserError as err:
                warn(f"skipping the analysis of run {run.path}: {err}")
    print(analyse_sweep(sweep, sweep_out, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
