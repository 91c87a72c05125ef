"""``python -m interp.analyze RUN_DIR|SWEEP_DIR``: analyse a run's checkpoints and write a
report; for a directory of runs (a sweep), also one table of them all.

    python -m interp.analyze checkpoints/nanda-p113
    python -m interp.analyze checkpoints/tiny --every 2 --only fourier
    python -m interp.analyze checkpoints/liu-phases    # every run, plus the sweep table
    python -m interp.analyze checkpoints/liu-phases --table-only    # the table alone

Every analysis that applies to the run (fourier: Nanda et al.'s Fourier structure and
progress measures; representation: Liu et al.'s RQI; lazy_rich: Kumar et al.'s
lazy-versus-rich diagnostics) runs over the checkpoints, one model in memory at a time, and
each checkpoint's results are cached under RUN/analysis/, so a second call computes only new
checkpoints; it can run while training is still writing (it reads complete files only).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp.cli import ArgumentParser, check_output_dir, check_positive, run_main
from interp.errors import UserError, warn

ANALYSES = ("fourier", "representation", "lazy_rich")  # interp.analyzers.ANALYZERS' names
KERNELS = ("correct_class", "trace")


@dataclass
class RunAnalysis:
    """What ``analyse_run`` found: the run's metrics, each analyzer's result, the summary."""

    run: Any  # interp.runs.Run
    metrics: Any  # pandas DataFrame
    results: dict[str, Any] = field(default_factory=dict)  # name -> AnalyzerResult
    summary: dict[str, Any] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    diverged: dict[int, str] = field(default_factory=dict)
    report_path: Path | None = None

    @property
    def computed(self) -> int:
        """Checkpoint analyses computed by this call (the rest came from the cache)."""
        return sum(result.computed for result in self.results.values())

    def measures(self, name: str):
        """The per-checkpoint table of analyzer ``name`` (empty if it did not run)."""
        import pandas as pd

        result = self.results.get(name)
        return result.measures if result is not None else pd.DataFrame()


def select_epochs(epochs: list[int], every: int) -> list[int]:
    """Every ``every``-th checkpoint, always including the last."""
    chosen = epochs[::every]
    if epochs and chosen[-1] != epochs[-1]:
        chosen.append(epochs[-1])
    return chosen


def base_summary(run, metrics) -> dict[str, Any]:
    """What every run's summary holds: landmarks, phases and Liu et al.'s learning phase."""
    from interp.analysis.curves import first_epoch, landmarks
    from interp.analysis.phases import learning_phase
    from interp.analysis.progress import find_phases

    summary: dict[str, Any] = {
        "run": run.name, "path": str(run.path), "preset": run.config.preset,
        "complete": run.is_complete, "landmarks": landmarks(metrics).to_dict(),
    }
    if not metrics.empty and "test_loss" in metrics:
        summary["phases"] = find_phases(metrics).to_dict()
        summary["test_loss_below_1"] = first_epoch(metrics, "test_loss", 1.0, above=False)
    phase = learning_phase(metrics)
    if phase is not None:
        summary["learning_phase"] = {"name": phase.name, "train_step": phase.train_step,
                                     "test_step": phase.test_step, "gap": phase.gap}
    return summary


def lazy_baseline_metrics(run, path: Path | None = None):
    """Metrics of the run's lazy baseline (the same config trained linearised): ``path``, or
    the sibling directory RUN-linearized when it holds one; None if there is none."""
    from interp.runs import Run, is_run_dir

    if path is not None and not is_run_dir(path):
        raise UserError(f"{path}: not a run directory (no run.json)")
    path = path or run.path.with_name(f"{run.path.name}-linearized")
    if not is_run_dir(path):
        return None
    baseline = Run.load(path)
    if not baseline.config.objective.linearized:
        raise UserError(f"{path} is not a linearized run (python -m interp.train --linearized)")
    return baseline.metrics


def analyse_run(path: Path, only: list[str] | None = None, every: int = 1,
                options=None, out: Path | None = None) -> RunAnalysis:
    """Analyse one run directory (cached), write summary.json and report.html."""
    from interp.analyzers import ANALYZERS, Context, Options, selected
    from interp.figures.report import run_report
    from interp.runs import ANALYSIS_DIR, AnalysisStore, Run, lock_analysis

    run = Run.load(path)
    check_analysis_dir(run.path, out)
    root = out or run.path / ANALYSIS_DIR
    with lock_analysis(root):  # one analysis at a time writes here
        store = AnalysisStore(root)
        metrics = run.metrics
        context = Context(run, run.task(), store, options or Options(),
                          select_epochs(run.checkpoint_epochs, every))
        if context.epochs:
            for name in selected(only):
                if ANALYZERS[name].applies(run):
                    context.results[name] = ANALYZERS[name].analyze(context)
        result = RunAnalysis(run, metrics, context.results, skipped=context.skipped,
                             diverged=context.diverged)
        result.summary = {
            **base_summary(run, metrics),
            "checkpoints_analysed": {name: len(r.measures)
                                     for name, r in context.results.items()},
            "skipped_checkpoints": sorted(context.skipped.values()),
            "diverged_checkpoints": sorted(context.diverged.values()),
            **{name: r.summary for name, r in context.results.items() if r.summary},
        }
        store.write_json("summary.json", result.summary)
        result.report_path = store.write_text(
            "report.html", run_report(result, lazy_baseline_metrics(run)))
    return result


def check_analysis_dir(run_dir: Path, out: Path | None) -> None:
    """UserError unless the analysis of ``run_dir`` can be written: to ``out`` if given (new,
    empty, or made by interp.analyze: it holds its lock file), else RUN/analysis (a file
    there is the user's, never replaced)."""
    from interp.files import LOCK_FILE
    from interp.runs import ANALYSIS_DIR

    if out is not None:
        check_output_dir(out)
        if out.is_dir() and any(out.iterdir()) and not (out / LOCK_FILE).is_file():
            raise UserError(f"--out {out} holds files and is not a directory interp.analyze "
                            "made; give the analysis an empty or new directory")
    else:
        check_output_dir(Path(run_dir) / ANALYSIS_DIR,
                         "write the analysis elsewhere with interp.analyze --out DIR")


def describe(result: RunAnalysis) -> str:
    """A few terminal lines about one analysed run."""
    from interp.analysis.curves import landmarks

    s = result.summary
    counts = ", ".join(f"{name} {n}" for name, n in s["checkpoints_analysed"].items())
    lines = [f"{result.run.path}: checkpoints analysed: {counts or 'none'} "
             f"({result.computed} computed now, the rest cached)",
             landmarks(result.metrics).describe()]
    if "phases" in s:
        phases = s["phases"]
        lines.append(f"phases: memorisation until {phases['memorisation_end']}, circuit "
                     f"formation until {phases['cleanup_start']}, clean-up until "
                     f"{phases['cleanup_end']}")
    if "learning_phase" in s:
        lines.append(f"Liu et al.'s phase: {s['learning_phase']['name']}")
    if "fourier" in s and "key_frequencies" in s["fourier"]:
        f = s["fourier"]
        final = f["final"]
        lines.append(f"key frequencies {f['key_frequencies']['used']} (embedding: "
                     f"{f['key_frequencies']['embedding']}); at epoch {final['epoch']}: "
                     + ", ".join(f"{name} {final[name]:.3g}" for name in (
                         "restricted_loss", "excluded_loss", "gini_embed", "gini_unembed")
                                 if name in final))
    if "representation" in s:
        r = s["representation"]
        lines.append(f"RQI {r['final_rqi']:.3f}; ideal accuracy {r['ideal_accuracy']:.3f}, "
                     f"predicted {r['predicted_accuracy']:.3f}")
    if "lazy_rich" in s:
        lazy = s["lazy_rich"]
        lines.append(f"linearisation gap > 0.5 at epoch {lazy['linearisation_gap_above_half']}; "
                     + "; ".join(f"kernel distance ({kind}) > 0.5 at epoch "
                                 f"{lazy[f'kernel_distance_above_half/{kind}']}"
                                 for kind in lazy["kernels"]))
    lines.append(f"report: {result.report_path}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser.from_doc("python -m interp.analyze", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory, or a directory of runs")
    parser.add_argument("--only", action="append", choices=ANALYSES,
                        help="run only this analysis (repeatable; lazy_rich brings fourier)")
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="analyse every K-th checkpoint (the last always)")
    parser.add_argument("--device", default="cpu", help="torch device for the models")
    parser.add_argument("--probes", type=int, default=256,
                        help="probe inputs (from the test split) for the NTK, alignment and "
                             "CKA of the lazy_rich analysis (default 256)")
    parser.add_argument("--kernels", nargs="+", choices=KERNELS, default=["correct_class"],
                        help="NTK kinds: the correct-class logit kernel (default) and/or the "
                             "trace over outputs (exact; n_outputs times the cost)")
    parser.add_argument("--checkpoint-batch", type=int, metavar="N",
                        help="checkpoints evaluated together with stacked weights (one-layer "
                             "transformers; default: as many as fit in half the free GPU "
                             "memory on CUDA, 1 on CPU)")
    parser.add_argument("--out", type=Path,
                        help="output directory (default RUN/analysis; for a directory of "
                             "runs OUT/RUN_NAME, OUT/sweep.csv and OUT/sweep-report.html)")
    parser.add_argument("--table-only", action="store_true",
                        help="for a directory of runs: write the sweep table and report alone "
                             "(from the runs' metrics and the analyses already written), "
                             "without analysing each run's checkpoints")
    return parser.parse_args(argv)


SWEEP_OUTPUTS = ("sweep.csv", "sweep-report.html")


def check_sweep_outputs(out: Path, runs: list[Path]) -> None:
    """UserError unless the sweep table and report can be written into ``out``: a directory
    (or one to make) holding nothing but them, the runs' analysis directories (named after
    the runs) and temporary files of killed writes; a user's file is never replaced."""
    from interp.files import temp_file_target
    from interp.runs import listed

    check_output_dir(out)
    if not out.is_dir():
        return
    names = {*SWEEP_OUTPUTS, *(path.name for path in runs)}
    foreign = sorted(e.name for e in out.iterdir()
                     if e.name not in names and temp_file_target(e.name) not in SWEEP_OUTPUTS)
    if foreign:
        raise UserError(f"{out} holds files interp.analyze does not write "
                        f"({listed(foreign)}); give the sweep's analysis a directory of its "
                        "own (--out)")


def analyse_sweep(sweep, out: Path, analysis_dir: Path | None) -> str:
    """Write ``out``/sweep.csv and ``out``/sweep-report.html of ``sweep``
    (``interp.sweep_table.Sweep``; per-run analyses read from ``analysis_dir``/RUN_NAME when
    given); returns terminal lines about them."""
    from interp.figures.report import sweep_report
    from interp.files import atomic_write_text

    table = sweep.table(analysis_dir)
    csv, report = (out / name for name in SWEEP_OUTPUTS)
    atomic_write_text(csv, table.to_csv(index=False))
    atomic_write_text(report, sweep_report(sweep, table))
    phases = ", ".join(f"{n} {p}" for p, n in table["phase"].value_counts().items())
    axes = ", ".join(a.title for a in sweep.axes) or "none"
    return (f"sweep {sweep.path}: {len(table)} runs; axes {axes}; Liu et al.'s phases: "
            f"{phases or 'none'}\ntable: {csv}\nreport: {report}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_positive("--every", args.every)
    if args.probes < 2:
        raise UserError(f"--probes must be at least 2, got {args.probes}")
    check_positive("--checkpoint-batch", args.checkpoint_batch)
    from interp.analyzers import Options
    from interp.runs import ANALYSIS_DIR, find_run_dirs, is_run_dir
    from interp.train.loop import resolve_device

    options = Options(device=str(resolve_device(args.device)), probes=args.probes,
                      kernels=tuple(args.kernels), checkpoint_batch=args.checkpoint_batch)
    runs = find_run_dirs(args.run_dir)
    if not runs:
        what = "does not exist" if not args.run_dir.exists() else "holds no run (no run.json)"
        raise UserError(f"{args.run_dir} {what}; give a run directory made by "
                        "python -m interp.train")
    if is_run_dir(args.run_dir):
        if args.table_only:
            raise UserError(f"--table-only is for a directory of runs, and {args.run_dir} is a "
                            "run; drop --table-only")
        print(describe(analyse_run(args.run_dir, args.only, args.every, options, args.out)))
        return 0
    from interp.sweep_table import Sweep

    sweep = Sweep.load(args.run_dir)  # warns of the runs it cannot read, and leaves them out
    sweep_out = args.out or args.run_dir / ANALYSIS_DIR
    check_sweep_outputs(sweep_out, runs)  # each run's output is checked by analyse_run
    if not args.table_only:
        for run in sweep.runs:
            out = args.out / run.name if args.out else None
            try:
                print(describe(analyse_run(run.path, args.only, args.every, options, out)))
            except UserError as err:
                warn(f"skipping the analysis of run {run.path}: {err}")
    print(analyse_sweep(sweep, sweep_out, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
