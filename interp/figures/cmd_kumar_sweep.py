"""``python -m interp.figures kumar-sweep SWEEP_DIR``: a sweep of committee-machine (or any
MSE regression) runs drawn as Kumar et al. 2024 draw theirs: train and test loss against
epoch on log-log axes coloured by one axis (--x), one panel per value of another (--by); the
final test loss and the grokking delay in loss (epochs from the train loss's halving to the
test loss's) against --x, one line per value of --by; the exact test-loss decomposition of a
few runs (where the trainer recorded it); and the delay against the task hardness
y^T K_0^{-1} y of each run.

    python -m interp.sweep kumar-alpha
    python -m interp.figures kumar-sweep checkpoints/kumar-alpha --out figures/kumar-alpha
    python -m interp.figures kumar-sweep checkpoints/kumar-eigenvector \\
        --x task.eigen_index --by task.n_train --out figures/kumar-eigenvector

--x and --by default to the sweep's first two axes that are not seeds (no panels for a
one-axis sweep); --where KEY=VALUE keeps only the runs with that axis value. The figures go
to --out as SWEEP_NAME-loss-curves, -final-test-loss, -delay, -decomposition and
-hardness. The runs are read through interp.Sweep: their metrics and the sweep table (the
task hardness is computed there from each run's epoch-0 checkpoint, about a second a run at
the preset's size); nothing is written into the sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from interp.cli import ArgumentParser
from interp.errors import UserError
from interp.figures.export import add_format_option, chosen_formats

if TYPE_CHECKING:  # pandas and plotly are imported where a figure is drawn
    import pandas as pd
    import plotly.graph_objects as go

    from interp.sweep_table import Axis, Sweep

DECOMPOSED_RUNS = 3  # runs whose loss decomposition is drawn


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser.from_doc("python -m interp.figures kumar-sweep", __doc__)
    parser.add_argument("sweep_dir", type=Path, help="a directory of runs (a sweep)")
    parser.add_argument("--x", help="the axis of the colours and across the landmark plots "
                                    "(default: the first axis not a seed)")
    parser.add_argument("--by", help="the axis of the panels and of the landmark lines "
                                     "(default: the second axis not a seed, if any)")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="keep only the runs whose axis KEY has VALUE (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("figures"),
                        help="directory for the figures (default: figures)")
    add_format_option(parser)
    args = parser.parse_args(argv)
    formats = chosen_formats(args)

    from interp.cli import check_output_dir
    from interp.figures.cmd_sweep import choose_axes, where_filters
    from interp.run_analysis import check_out_outside_run
    from interp.sweep_table import Sweep, select

    check_output_dir(args.out)
    sweep = Sweep.load(args.sweep_dir)
    for run in sweep.runs:
        check_out_outside_run(args.out, run.path)
    losses = {run.name: run.config.objective.loss for run in sweep.runs}
    other = next((name for name, loss in losses.items() if loss != "mse"), None)
    if other is not None:
        raise UserError(f"kumar-sweep draws regression runs trained on MSE; run {other} of "
                        f"{sweep.path} trains {losses[other]}: draw its sweep with sweep-curves "
                        "or phase-diagram")
    x, by = choose_axes(sweep, args, ("x", "by"), optional="by")
    table = select(sweep.table(), sweep.axes, where_filters(args.where))
    if table.empty:
        raise UserError("--where leaves no run of the sweep; loosen it")

    import pandas as pd

    from interp.analysis.curves import format_epoch
    from interp.figures.export import write_figures
    from interp.figures.kumar_sweep import DELAY, HARDNESS

    figures = sweep_figures(sweep, table, x, by)
    print("\n".join(map(str, write_figures(figures, args.out, formats))))
    for row in table.to_dict("records"):
        value = {key: None if pd.isna(row.get(key)) else row[key]
                 for key in ("train_loss_half", "test_loss_half", DELAY, "final_test_loss",
                             HARDNESS)}
        print(f"{row['run']}: train loss halved at epoch "
              f"{format_epoch(value['train_loss_half'])}, test loss at "
              f"{format_epoch(value['test_loss_half'])} (delay {format_epoch(value[DELAY])})"
              + ("" if value["final_test_loss"] is None
                 else f"; final test loss {value['final_test_loss']:.4g}")
              + ("" if value[HARDNESS] is None else f"; task hardness {value[HARDNESS]:.3g}"))
    return 0


def sweep_figures(sweep: Sweep, table: pd.DataFrame, x: Axis, by: Axis | None
                  ) -> dict[str, go.Figure]:
    """The figures of ``sweep`` (``interp.Sweep``) for the runs of ``table`` (its table, or
    rows of it) over axes ``x`` and ``by`` (None: no panels): name -> plotly figure, the
    decomposition only where some run recorded it, the hardness only where the table has
    it."""
    from interp.figures.kumar_sweep import (
        DELAY,
        HARDNESS,
        decomposition_panels,
        delay_against_hardness,
        loss_curves_by_axis,
    )
    from interp.figures.sweep import landmark_curves

    metrics = {run.name: run.metrics for run in sweep.runs if run.name in set(table["run"])}
    name = sweep.path.resolve().name
    figures = {
        f"{name}-loss-curves": loss_curves_by_axis(
            metrics, sweep.points, x, by, f"{name}: train (dashed) and test (solid) loss"),
        f"{name}-final-test-loss": landmark_curves(table, x, "final_test_loss", by),
        f"{name}-delay": landmark_curves(table, x, DELAY, by),
    }
    decomposed = _decomposed_runs(table, metrics, x, by)
    if decomposed:
        figures[f"{name}-decomposition"] = decomposition_panels(decomposed)
    if HARDNESS in table and table[HARDNESS].notna().any():
        figures[f"{name}-hardness"] = delay_against_hardness(table, x)
    return figures


def _decomposed_runs(table: pd.DataFrame, metrics: dict[str, pd.DataFrame], x: Axis,
                     by: Axis | None) -> dict[str, pd.DataFrame]:
    """Up to ``DECOMPOSED_RUNS`` runs that recorded the loss decomposition, at the first,
    middle and last value of axis ``x`` (at the first value of ``by`` that has such runs):
    run name -> its metrics."""
    recorded = [name for name in table["run"] if "decomp_total" in metrics[name]]
    if not recorded:
        return {}
    rows = table[table["run"].isin(recorded)]
    if by is not None:
        first = next(v for v in by.values if by.label(v) in {by.label(w) for w in rows[by.key]})
        rows = rows[[by.label(v) == by.label(first) for v in rows[by.key]]]
    values = [v for v in x.values if x.label(v) in {x.label(w) for w in rows[x.key]}]
    picked = sorted({0, len(values) // 2, len(values) - 1})[:DECOMPOSED_RUNS]
    chosen = {}
    for value in (values[i] for i in picked):
        name = rows[[x.label(v) == x.label(value) for v in rows[x.key]]]["run"].iloc[0]
        chosen[name] = metrics[name]
    return chosen
