"""``python -m interp.figures phase-diagram|sweep-curves|sweep-heatmap SWEEP_DIR``: a figure
of a sweep's table (``interp.Sweep``), written as one HTML file, or in the --format(s)
chosen (PNG, SVG, PDF) beside it under the same name.

    python -m interp.figures phase-diagram checkpoints/liu-phases --out figures/phases.html
    python -m interp.figures phase-diagram SWEEP --x optim.lr --y optim.weight_decay
    python -m interp.figures sweep-curves SWEEP --x task.frac --metric test_acc_99
    python -m interp.figures sweep-heatmap SWEEP --x optim.lr --y optim.weight_decay \\
        --metric accuracy_gap --where task.frac=0.5

--x and --y default to the sweep's first two axes that are not seeds (--by to the second);
keys zipped together are one axis, named by the first of them. Runs at one point of the
figure (seeds, and the axes it does not show) are pooled: the phase diagram shows their
majority phase, the others their mean and range. --where
KEY=VALUE keeps only the runs with that axis value. The table comes from the runs' metrics
and the analyses interp.analyze already wrote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from interp.cli import ArgumentParser
from interp.errors import UserError
from interp.figures.export import FORMATS, add_format_option, chosen_formats

DEFAULT_METRIC = "accuracy_gap"


def _parser(command: str, metric: bool, y: str | None) -> ArgumentParser:
    parser = ArgumentParser.from_doc(f"python -m interp.figures {command}", __doc__)
    parser.add_argument("sweep_dir", type=Path, help="a directory of runs (a sweep)")
    parser.add_argument("--x", help="the axis across (default: the first axis not a seed)")
    if y is not None:
        parser.add_argument(f"--{y}", help=f"the axis {'up' if y == 'y' else 'of the lines'} "
                                           "(default: the second axis not a seed)")
    if metric:
        parser.add_argument("--metric", default=DEFAULT_METRIC,
                            help=f"a numeric column of the sweep table (default: "
                                 f"{DEFAULT_METRIC}, epochs from train to test accuracy 99%%)")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="keep only the runs whose axis KEY has VALUE (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("figures") / f"{command}.html",
                        help=f"the file to write (default: figures/{command}.html); with "
                             "--format, the same name with each format's suffix")
    add_format_option(parser)
    return parser


def where_filters(specs: list[str]) -> dict:
    """The --where KEY=VALUE options as KEY -> value (a JSON value, else the text)."""
    where = {}
    for spec in specs:
        key, sep, text = spec.partition("=")
        if not sep or not key or not text:
            raise UserError(f"--where expects KEY=VALUE (e.g. task.frac=0.5), got {spec!r}")
        try:
            where[key] = json.loads(text)
        except json.JSONDecodeError:
            where[key] = text
    return where


def _load(args: argparse.Namespace, names: tuple[str, ...], optional: str | None = None):
    """(sweep, its table restricted by --where, the axes of the options ``names``): each
    given, or else the next axis not a seed; None for the option ``optional`` when no axis
    is left for it. Checks --out and --format first (``args.formats`` becomes the formats
    chosen)."""
    from interp.cli import check_output_dir
    from interp.sweep_table import Sweep, select

    if args.out.suffix.lstrip(".") not in FORMATS:
        raise UserError(f"--out {args.out} must name a file ending in "
                        f"{', '.join('.' + f for f in FORMATS)}")
    args.formats = chosen_formats(args)
    check_output_dir(args.out.parent)
    sweep = Sweep.load(args.sweep_dir)
    axes = choose_axes(sweep, args, names, optional)
    table = select(sweep.table(), sweep.axes, where_filters(args.where))
    if table.empty:
        raise UserError("--where leaves no run of the sweep; loosen it")
    return sweep, table, axes


def choose_axes(sweep, args: argparse.Namespace, names: tuple[str, ...],
                optional: str | None = None) -> list:
    """The axes (``interp.sweep_table.Axis``) of the options ``names`` of ``args``: each
    given, or else the sweep's next axis not a seed; None for the option ``optional`` when no
    axis is left for it. UserError when another option finds no axis, or two name one."""
    given = {name: sweep.axis(getattr(args, name), f"--{name}") for name in names
             if getattr(args, name) is not None}
    spare = [a for a in sweep.grid_axes if a not in given.values()]
    axes = []
    for name in names:
        axis = given.get(name) or (spare.pop(0) if spare else None)
        if axis is None and name != optional:
            raise UserError(f"the sweep {sweep.path} has too few axes that are not seeds to "
                            f"choose --{name}; give --{name} (its axes: "
                            f"{', '.join(a.key for a in sweep.axes) or 'none'})")
        axes.append(axis)
    keys = [a.key for a in axes if a is not None]
    if len(set(keys)) < len(keys):
        raise UserError(f"--{' and --'.join(names)} name the same axis {keys[0]!r}; give "
                        "different axes")
    return axes


def _write(figure, args: argparse.Namespace) -> int:
    """Write ``figure`` as --out's name in each chosen format."""
    from interp.figures.export import write_figures

    print("\n".join(map(str, write_figures({args.out.stem: figure}, args.out.parent,
                                           args.formats))))
    return 0


def phase_diagram_main(argv: list[str] | None = None) -> int:
    """``phase-diagram``: Liu et al.'s phase diagram over --x and --y."""
    args = _parser("phase-diagram", metric=False, y="y").parse_args(argv)
    from interp.figures.sweep import phase_diagram

    _, table, (x, y) = _load(args, ("x", "y"))
    if table["phase"].isna().all():
        raise UserError(f"the runs of {args.sweep_dir} have no accuracy, so no Liu et al. "
                        "phase; draw a landmark instead (sweep-heatmap --metric ...)")
    return _write(phase_diagram(table, x, y), args)


def curves_main(argv: list[str] | None = None) -> int:
    """``sweep-curves``: --metric against --x, one line per value of --by."""
    args = _parser("sweep-curves", metric=True, y="by").parse_args(argv)
    from interp.figures.sweep import landmark_curves
    from interp.sweep_table import check_metric

    sweep, table, (x, by) = _load(args, ("x", "by"), optional="by")
    check_metric(table, sweep.axes, args.metric)
    return _write(landmark_curves(table, x, args.metric, by), args)


def heatmap_main(argv: list[str] | None = None) -> int:
    """``sweep-heatmap``: --metric over --x and --y."""
    args = _parser("sweep-heatmap", metric=True, y="y").parse_args(argv)
    from interp.figures.sweep import landmark_heatmap
    from interp.sweep_table import check_metric

    sweep, table, (x, y) = _load(args, ("x", "y"))
    check_metric(table, sweep.axes, args.metric)
    return _write(landmark_heatmap(table, x, y, args.metric), args)
