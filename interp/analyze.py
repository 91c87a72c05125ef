"""``python -m interp.analyze RUN_DIR``: analyse a run's checkpoints and write a report.

    python -m interp.analyze checkpoints/nanda-p113
    python -m interp.analyze checkpoints/tiny --every 2 --only fourier
    python -m interp.analyze checkpoints/            # every run inside, plus a comparison

For every analysis that applies to the run, each checkpoint is analysed once (one model in
memory at a time) and cached under RUN/analysis/, so a second call computes only new
checkpoints; it can run while training is still writing (it reads complete files only).
Writes RUN/analysis/summary.json and a self-contained RUN/analysis/report.html, and prints a
short summary. A damaged checkpoint is skipped with a warning naming it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp.cli import run_main
from interp.errors import UserError

FOURIER_VERSION = 1  # bump when the stored Fourier/progress results change meaning
ANALYSES = ("fourier",)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@dataclass
class RunAnalysis:
    """What ``analyse_run`` found: tables for figures, and the summary it wrote."""

    run: Any  # interp.runs.Run
    metrics: Any  # pandas DataFrame
    measures: Any  # pandas DataFrame, one row per analysed checkpoint (may be empty)
    final: dict[str, Any] = field(default_factory=dict)  # final checkpoint: tensors + record
    over_time: dict[str, Any] = field(default_factory=dict)  # stacked per-checkpoint tensors
    summary: dict[str, Any] = field(default_factory=dict)
    computed: int = 0
    skipped: dict[int, str] = field(default_factory=dict)
    report_path: Path | None = None


def select_epochs(epochs: list[int], every: int) -> list[int]:
    """Every ``every``-th checkpoint, always including the last."""
    chosen = epochs[::every]
    if epochs and chosen[-1] != epochs[-1]:
        chosen.append(epochs[-1])
    return chosen


class _ModelLoader:
    """Loads checkpoints into one reusable model; damaged files become warnings."""

    def __init__(self, run, device: str, skipped: dict[int, str]):
        self.run, self.device, self.skipped, self.model = run, device, skipped, None

    def __call__(self, epoch: int):
        """The model with the weights of ``epoch``, or None (warned once) if they are damaged."""
        from interp.runs import RunFileError

        if epoch in self.skipped:
            return None
        try:
            self.model = self.run.model(epoch, self.device, into=self.model)
        except RunFileError as err:
            warn(f"skipping checkpoint: {err}")
            self.skipped[epoch] = str(self.run.checkpoint_file(epoch))
            return None
        return self.model


def analyse_fourier(run, epochs: list[int], store, device: str, skipped: dict[int, str]
                    ) -> tuple[Any, dict, dict, int]:
    """Fourier structure + progress measures at each epoch (cached).

    Key frequencies come from the last loadable checkpoint's neuron clusters and are used
    at every checkpoint, as Nanda et al. do. Returns (measures table, final tensors and
    record, stacked per-frequency norms over time, number of checkpoints computed now).
    """
    import pandas as pd
    import torch

    from interp.analysis.modular import analyse_checkpoint

    task = run.task()
    load = _ModelLoader(run, device, skipped)
    computed = 0

    def compute(epoch: int, key: list[int] | None):
        model = load(epoch)
        if model is None:
            return None
        result = analyse_checkpoint(model, task, key)
        key = result.key_frequencies_neurons if key is None else key
        record = {"scalars": result.scalars,
                  "excluded_loss_per_frequency": result.excluded_loss_per_frequency,
                  "key_frequencies_neurons": result.key_frequencies_neurons,
                  "key_frequencies_embedding": result.key_frequencies_embedding}
        store.save("fourier", epoch, {"key_frequencies": key, "version": FOURIER_VERSION},
                   record, result.tensors())
        return key

    key = None
    for epoch in reversed(epochs):  # the key frequencies of the last good checkpoint
        cached = store.load("fourier", epoch, None)
        if cached is not None and cached[0]["params"].get("version") == FOURIER_VERSION:
            key = cached[0]["key_frequencies_neurons"]
            break
        key = compute(epoch, None)
        if key is not None:
            computed += 1
            break
    if key is None:
        return pd.DataFrame(), {}, {}, computed
    params = {"key_frequencies": key, "version": FOURIER_VERSION}
    rows, stacks, final = [], {"embed_frequency_norms": [], "unembed_frequency_norms": []}, {}
    for epoch in epochs:
        cached = store.load("fourier", epoch, params)
        if cached is None:
            if compute(epoch, key) is None:
                continue
            computed += 1
            cached = store.load("fourier", epoch, params)
        record, tensors = cached
        excluded = {f"excluded_loss/{k}": v
                    for k, v in record["excluded_loss_per_frequency"].items()}
        rows.append({"epoch": epoch, **record["scalars"], **excluded})
        for name, values in stacks.items():
            values.append(tensors[name])
        final = {"epoch": epoch, "record": record, **tensors}
    measures = pd.DataFrame(rows)
    over_time = {"epochs": measures["epoch"].tolist() if rows else [],
                 **{name: torch.stack(values) for name, values in stacks.items() if values}}
    final["key_frequencies"] = key
    return measures, final, over_time, computed


def summarise(run, metrics, measures, final: dict, skipped: dict[int, str]) -> dict[str, Any]:
    """The summary.json content: landmarks, phases, key frequencies, final measures."""
    from interp.analysis.curves import first_epoch, landmarks
    from interp.analysis.progress import find_phases

    summary: dict[str, Any] = {
        "run": run.name,
        "path": str(run.path),
        "preset": run.config.preset,
        "complete": run.is_complete,
        "landmarks": landmarks(metrics).to_dict(),
        "phases": find_phases(metrics).to_dict(),
        "test_loss_below_1": first_epoch(metrics, "test_loss", 1.0, above=False),
        "checkpoints_analysed": len(measures),
        "skipped_checkpoints": sorted(skipped.values()),
    }
    if final:
        record = final["record"]
        summary["key_frequencies"] = {"used": final["key_frequencies"],
                                      "neurons": record["key_frequencies_neurons"],
                                      "embedding": record["key_frequencies_embedding"]}
        summary["final"] = {"epoch": final["epoch"], **record["scalars"],
                            "excluded_loss_per_frequency":
                                record["excluded_loss_per_frequency"]}
        if "restricted_loss" in measures:
            summary["restricted_loss_below_1"] = first_epoch(measures, "restricted_loss", 1.0,
                                                             above=False)
    return summary


def analyse_run(path: Path, only: list[str] | None = None, every: int = 1,
                device: str = "cpu", out: Path | None = None) -> RunAnalysis:
    """Analyse one run directory (cached), write summary.json and report.html."""
    import pandas as pd

    from interp.analysis.modular import applies_to
    from interp.runs import AnalysisStore, Run

    run = Run.load(path)
    store = AnalysisStore(out or run.path / "analysis")
    metrics = run.metrics
    skipped: dict[int, str] = {}
    epochs = select_epochs(run.checkpoint_epochs, every)
    measures, final, over_time, computed = pd.DataFrame(), {}, {}, 0
    if (only is None or "fourier" in only) and applies_to(run.config) and epochs:
        measures, final, over_time, computed = analyse_fourier(run, epochs, store, device,
                                                               skipped)
    result = RunAnalysis(run, metrics, measures, final, over_time, computed=computed,
                         skipped=skipped)
    result.summary = summarise(run, metrics, measures, final, skipped)
    store.write_json("summary.json", result.summary)
    from interp.figures.report import run_report

    result.report_path = store.write_text("report.html", run_report(result))
    return result


def describe(result: RunAnalysis) -> str:
    """A few terminal lines about one analysed run."""
    from interp.analysis.curves import landmarks

    s = result.summary
    lines = [f"{result.run.path}: {len(result.measures)} checkpoints analysed "
             f"({result.computed} computed now, the rest cached)",
             landmarks(result.metrics).describe()]
    phases = s["phases"]
    lines.append(f"phases: memorisation until {phases['memorisation_end']}, circuit formation "
                 f"until {phases['cleanup_start']}, clean-up until {phases['cleanup_end']}")
    if "key_frequencies" in s:
        f = s["final"]
        lines.append(f"key frequencies {s['key_frequencies']['used']} (embedding: "
                     f"{s['key_frequencies']['embedding']}); at epoch {f['epoch']}: "
                     + ", ".join(f"{name} {f[name]:.3g}" for name in (
                         "restricted_loss", "excluded_loss", "gini_embed", "gini_unembed")
                                 if name in f))
    lines.append(f"report: {result.report_path}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m interp.analyze", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("run_dir", type=Path, help="a run directory, or a directory of runs")
    parser.add_argument("--only", action="append", choices=ANALYSES,
                        help="run only this analysis (repeatable)")
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="analyse every K-th checkpoint (the last always)")
    parser.add_argument("--device", default="cpu", help="torch device for the models")
    parser.add_argument("--out", type=Path,
                        help="output directory (default RUN/analysis; for several runs "
                             "OUT/RUN_NAME and OUT/comparison.html)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.every < 1:
        raise UserError(f"--every must be a positive integer, got {args.every}")
    from interp.runs import find_run_dirs
    from interp.train.loop import resolve_device

    device = str(resolve_device(args.device))
    runs = find_run_dirs(args.run_dir)
    if not runs:
        what = "does not exist" if not args.run_dir.exists() else "holds no run (no run.json)"
        raise UserError(f"{args.run_dir} {what}; give a run directory made by "
                        "python -m interp.train")
    several = len(runs) > 1
    results = []
    for path in runs:
        out = (args.out / path.name if several else args.out) if args.out else None
        try:
            result = analyse_run(path, args.only, args.every, device, out)
        except UserError as err:
            if not several:
                raise
            warn(f"skipping run {path}: {err}")
            continue
        print(describe(result))
        results.append(result)
    if several:
        from interp.figures.report import comparison_report
        from interp.runs import atomic_write_text

        page = (args.out or args.run_dir) / "comparison.html"
        atomic_write_text(page, comparison_report(results))
        print(f"comparison: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
