"""Analysing runs, as a library: read what is cached, or compute it and write the report.

- ``load_analysis(run)`` reads a run's cached analyses (``RUN/analysis``): each analysis's
  results over checkpoints as pandas DataFrames and its final results as typed dataclasses.
  It never computes and never writes; an analysis not computed yet is None.
- ``analyse_run(path, only=...)`` computes the analyses ``only`` names (all that apply when
  None) for the checkpoints not cached yet, then writes ``summary.json`` and ``report.html``
  holding every analysis cached for the run: those it left out are read, never dropped.
- ``analyse_sweep(sweep, out)`` writes a directory of runs' table and report.

``python -m interp.analyze`` is the command-line front of these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from interp.errors import UserError, warn

# interp.analyzers.ANALYZERS' names (kept here so the CLI lists them without importing torch)
ANALYSES = ("fourier", "representation", "lazy_rich", "llc", "sharpness")
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
SWEEP_OUTPUTS = ("sweep.csv", "sweep-report.html")


@dataclass
class RunAnalysis:
    """A run's analyses: its metrics, landmarks and phases, and each analysis's result
    (``fourier``, ``representation``, ``lazy_rich``, ``llc``, ``sharpness``: None when not
    computed or not applicable; ``not_applicable`` says why an analysis does not apply)."""

    run: Any  # interp.runs.Run
    metrics: Any  # pandas DataFrame, one row per evaluation
    landmarks: Any  # interp.analysis.curves.Landmarks
    phases: Any  # interp.analysis.progress.Phases, or None (regression, no test loss)
    learning_phase: Any  # interp.analysis.phases.Phase, or None (no accuracy)
    results: dict[str, Any] = field(default_factory=dict)  # name -> AnalyzerResult
    not_applicable: dict[str, str] = field(default_factory=dict)  # name -> why not
    skipped: dict[int, str] = field(default_factory=dict)  # damaged checkpoints: epoch -> file
    diverged: dict[int, str] = field(default_factory=dict)  # NaN/inf weights: epoch -> file
    report_path: Path | None = None

    @property
    def fourier(self):
        """Nanda et al.'s Fourier structure and progress measures (``FourierResult``)."""
        return self.results.get("fourier")

    @property
    def representation(self):
        """Liu et al.'s representation quality (``AnalyzerResult``)."""
        return self.results.get("representation")

    @property
    def lazy_rich(self):
        """Kumar et al.'s lazy-versus-rich diagnostics (``AnalyzerResult``)."""
        return self.results.get("lazy_rich")

    @property
    def llc(self):
        """The local learning coefficient per checkpoint, with its chains (``LLCResult``)."""
        return self.results.get("llc")

    @property
    def sharpness(self):
        """The top eigenvalue of the training loss's Hessian per checkpoint
        (``SharpnessResult``)."""
        return self.results.get("sharpness")

    @property
    def computed(self) -> int:
        """Checkpoint analyses computed by this call."""
        return sum(result.computed for result in self.results.values())

    @property
    def analysed(self) -> dict[str, int]:
        """Checkpoints each analysis holds results for."""
        return {name: len(result.measures) for name, result in self.results.items()}

    def measures(self, name: str):
        """The per-checkpoint table of analysis ``name`` (empty if it has none)."""
        import pandas as pd

        result = self.results.get(name)
        return result.measures if result is not None else pd.DataFrame()

    @property
    def summary(self) -> dict[str, Any]:
        """What summary.json holds: landmarks, phases, each analysis's summary."""
        s: dict[str, Any] = {
            "run": self.run.name, "path": str(self.run.path), "preset": self.run.config.preset,
            "complete": self.run.is_complete, "landmarks": self.landmarks.to_dict(),
        }
        if self.phases is not None:
            s["phases"] = self.phases.to_dict()
        if self.learning_phase is not None:
            phase = self.learning_phase
            s["learning_phase"] = {"name": phase.name, "train_step": phase.train_step,
                                   "test_step": phase.test_step, "gap": phase.gap,
                                   "max_gap": phase.max_gap}
        s["checkpoints_analysed"] = self.analysed
        s["not_applicable"] = dict(self.not_applicable)
        s["skipped_checkpoints"] = sorted(self.skipped.values())
        s["diverged_checkpoints"] = sorted(self.diverged.values())
        for name, result in self.results.items():
            if result.summary:
                s[name] = result.summary
        return s


def select_epochs(epochs: list[int], every: int) -> list[int]:
    """Every ``every``-th checkpoint, always including the last."""
    chosen = epochs[::every]
    if epochs and chosen[-1] != epochs[-1]:
        chosen.append(epochs[-1])
    return chosen


def load_analysis(run, analysis_dir: Path | None = None) -> RunAnalysis:
    """What is cached of the analyses of ``run`` (an ``interp.Run`` or a run directory) in
    ``analysis_dir`` (default RUN/analysis): reads only, computes and writes nothing. An
    analysis with nothing cached is None; a damaged cached entry is left out with a warning.
    """
    from interp.runs import ANALYSIS_DIR, AnalysisStore, Run

    run = run if isinstance(run, Run) else Run.load(Path(run))
    root = Path(analysis_dir) if analysis_dir is not None else run.path / ANALYSIS_DIR
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} is a file, not a directory: no analysis is cached there "
                        "(give the directory interp.analyze wrote with --analysis DIR)")
    return _analyse(run, AnalysisStore(root), run.checkpoint_epochs, compute=(), options=None,
                    quiet=True)


def check_out_outside_run(out: Path, run_dir: Path) -> None:
    """UserError unless a figure command's ``out`` lies outside the run ``run_dir`` (figure
    commands never write into a run)."""
    if Path(out).resolve().is_relative_to(Path(run_dir).resolve()):
        raise UserError(f"--out {out} lies inside the run {run_dir}; figure commands never "
                        "write into a run: choose an --out outside it")


def cached_analysis(run_dir: Path, name: str, out: Path, analysis_dir: Path | None = None
                    ) -> RunAnalysis:
    """``load_analysis`` for a figure command writing into ``out``, which must lie outside
    the run; UserError (one line, saying the command that computes it) unless analysis
    ``name`` is cached."""
    from interp.files import check_output_dir
    from interp.runs import Run

    run = Run.load(run_dir)
    check_out_outside_run(out, run.path)
    check_output_dir(out)
    result = load_analysis(run, analysis_dir)
    if result.results.get(name) is None:
        why = result.not_applicable.get(name)
        where = f" --out {analysis_dir}" if analysis_dir is not None else ""
        raise UserError(f"{run.path}: " + (f"no {name} analysis: {why}" if why else
                        f"no cached {name} analysis; compute it first: python -m "
                        f"interp.analyze {run.path} --only {name}{where}"))
    return result


def analyse_run(path: Path, only: list[str] | None = None, every: int = 1, options=None,
                out: Path | None = None, quiet: bool = False) -> RunAnalysis:
    """Compute the analyses ``only`` names (every one that applies when None; their
    dependencies too) on every ``every``-th checkpoint of the run at ``path``, caching each
    checkpoint's results; then write summary.json and report.html into ``out`` (default
    RUN/analysis) with every analysis cached there, computed now or before."""
    from interp.analyzers import selected
    from interp.figures.report import run_report
    from interp.runs import ANALYSIS_DIR, AnalysisStore, Run, lock_analysis

    run = Run.load(path)
    check_analysis_dir(run.path, out)
    root = out or run.path / ANALYSIS_DIR
    with lock_analysis(root):  # one analysis at a time writes here
        store = AnalysisStore(root)
        result = _analyse(run, store, select_epochs(run.checkpoint_epochs, every),
                          compute=selected(only), options=options, quiet=quiet)
        store.write_json(SUMMARY_FILE, result.summary)
        result.report_path = store.write_text(
            REPORT_FILE, run_report(result, lazy_baseline_metrics(run)))
    return result


def _analyse(run, store, epochs: list[int], compute, options, quiet: bool) -> RunAnalysis:
    """Every analysis that applies to ``run``: those in ``compute`` computed on ``epochs``
    where not cached, the others read from ``store`` on every checkpoint with the options
    they were computed with (as the previous summary.json records them)."""
    from interp.analysis.curves import landmarks
    from interp.analysis.phases import learning_phase
    from interp.analysis.progress import find_phases, phases_skip_reason
    from interp.analyzers import ANALYZERS, Context, Options

    task = run.task()
    metrics = run.metrics
    phases_why_not = phases_skip_reason(run.config)
    result = RunAnalysis(
        run, metrics, landmarks(metrics, run.config.objective.loss, task.target_type),
        find_phases(metrics) if phases_why_not is None and "test_loss" in metrics else None,
        learning_phase(metrics))
    if phases_why_not is not None:
        result.not_applicable["phases"] = phases_why_not
    previous = _previous_summary(store)
    computing = Context(run, task, store, options or Options(), epochs, quiet=quiet)
    reading = Context(run, task, store, _recorded_options(previous, options),
                      run.checkpoint_epochs, read_only=True, quiet=True)
    for context in (computing, reading):
        context.results = result.results  # a later analysis reads an earlier one's result
    for name, analyzer in ANALYZERS.items():
        why_not = analyzer.skip_reason(run)
        if why_not is not None:
            result.not_applicable[name] = why_not
            continue
        context = computing if name in compute else reading
        if not context.epochs or context.read_only and not store.holds(name):
            continue
        analysed = analyzer.analyze(context)
        if analysed is not None:
            result.results[name] = analysed
    for context in (computing, reading):
        result.skipped.update(context.skipped)
        result.diverged.update(context.diverged)
    return result


def _previous_summary(store) -> dict[str, Any]:
    """The summary.json written before (empty if none, or unreadable: warned)."""
    path = store.root / SUMMARY_FILE
    if not path.is_file():
        return {}
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        warn(f"{path}: unreadable ({err}); the analyses it summarised are read from their "
             "cached entries with the default options")
        return {}
    return summary if isinstance(summary, dict) else {}


def _recorded_options(previous: dict[str, Any], options):
    """The analysis options the cached entries were computed with (lazy_rich's probes and
    kernels, the llc and sharpness settings), as the previous summary records them;
    ``options`` (or the defaults) else."""
    from interp.analyzers import Options

    base = options or Options()
    for name in ("llc", "sharpness"):
        entry = previous.get(name)
        overrides = recorded_settings(name, entry.get("settings")) if isinstance(
            entry, dict) else None
        if overrides is not None:
            base = replace(base, **{name: overrides})
    lazy = previous.get("lazy_rich")
    if not isinstance(lazy, dict):
        return base
    probes, kernels = lazy.get("probes"), lazy.get("kernels")
    if isinstance(probes, int) and probes >= 2:
        base = replace(base, probes=probes)
    if isinstance(kernels, list) and kernels and all(isinstance(k, str) for k in kernels):
        base = replace(base, kernels=tuple(kernels))
    return base


def recorded_settings(name: str, entry: Any):
    """The ``--llc-*`` or ``--sharpness-*`` overrides (analysis ``name``) that reproduce the
    settings a summary recorded (``entry``: its ``settings`` object), or None if ``entry``
    is not such an object."""
    from dataclasses import fields

    from interp.analysis.llc import SGLDOverrides, check_overrides
    from interp.analysis.sharpness import SharpnessOverrides, resolve_sharpness

    kind = SGLDOverrides if name == "llc" else SharpnessOverrides
    names = [f.name for f in fields(kind)]
    if not isinstance(entry, dict) or set(entry) != set(names):
        return None
    overrides = kind(**entry)
    try:
        if name == "llc":
            check_overrides(overrides)
        else:
            resolve_sharpness(overrides)
    except (UserError, TypeError):
        return None
    return overrides


def analyse_sweep(sweep, out: Path, analysis_dir: Path | None) -> str:
    """Write ``out``/sweep.csv and ``out``/sweep-report.html of ``sweep``
    (``interp.sweep_table.Sweep``; per-run analyses read from ``analysis_dir``/RUN_NAME when
    given); returns terminal lines about them."""
    from interp.figures.sweep_report import sweep_report
    from interp.files import atomic_write_text

    table = sweep.table(analysis_dir)
    csv, report = (out / name for name in SWEEP_OUTPUTS)
    atomic_write_text(csv, table.to_csv(index=False))
    atomic_write_text(report, sweep_report(sweep, table, out, analysis_dir))
    phases = ", ".join(f"{n} {p}" for p, n in table["phase"].value_counts().items())
    axes = ", ".join(a.title for a in sweep.axes) or "none"
    return (f"sweep {sweep.path}: {len(table)} runs; axes {axes}; Liu et al.'s phases: "
            f"{phases or 'none'}\ntable: {csv}\nreport: {report}")


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


def check_analysis_dir(run_dir: Path, out: Path | None) -> None:
    """UserError unless the analysis of ``run_dir`` can be written: to ``out`` if given (new,
    empty, or made by interp.analyze: it holds its lock file), else RUN/analysis (a file
    there is the user's, never replaced)."""
    from interp.files import LOCK_FILE, check_output_dir
    from interp.runs import ANALYSIS_DIR

    if out is not None:
        check_output_dir(out)
        if out.is_dir() and any(out.iterdir()) and not (out / LOCK_FILE).is_file():
            raise UserError(f"--out {out} holds files and is not a directory interp.analyze "
                            "made; give the analysis an empty or new directory")
    else:
        check_output_dir(Path(run_dir) / ANALYSIS_DIR,
                         "write the analysis elsewhere with interp.analyze --out DIR")


def check_sweep_outputs(out: Path, runs: list[Path]) -> None:
    """UserError unless the sweep table and report can be written into ``out``: a directory
    (or one to make) holding nothing but them, the runs' analysis directories (named after
    the runs) and temporary files of killed writes; a user's file is never replaced."""
    from interp.files import check_output_dir, temp_file_target
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
