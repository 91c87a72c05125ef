"""``python -m interp.figures neurons RUN_DIR --out DIR``: single MLP neurons of a
modular-addition transformer, as Nanda et al.'s notebook shows them: for each key
frequency's cluster, its top neurons' activations over the (a, b) grid, their least-squares
fit on that frequency's 2D Fourier terms (1, cos/sin(wa), cos/sin(wb) and their products)
with the fraction of variance it explains, and the fitted coefficients.

    python -m interp.figures neurons checkpoints/nanda-p113 --out figures/nanda-neurons
    python -m interp.figures neurons checkpoints/nanda-p113 --out figures/n0 --epoch 0 --top 5

The key frequencies are those interp.analyze cached (RUN/analysis/summary.json), else the
final checkpoint's own; the neurons are the largest (by activation variance) of each key
frequency's cluster at the final checkpoint, drawn at --epoch (default: the final one).
Reads the run, never writes into it; writes one figure per key frequency, neurons_kK.
"""

from __future__ import annotations

from pathlib import Path

from interp.cli import ArgumentParser, check_output_dir, check_positive
from interp.errors import UserError


def open_run(run_dir: Path, out: Path):
    """The run (``interp.runs.Run``) at ``run_dir``, after checking that it is a transformer
    trained on modular addition or subtraction with checkpoints and that ``out`` lies
    outside it; UserError (one line) otherwise."""
    from interp.analysis.modular import COMBINATIONS, applies_to
    from interp.run_analysis import check_out_outside_run
    from interp.runs import Run

    run = Run.load(run_dir)
    config = run.config
    if not applies_to(config) or config.task.op not in COMBINATIONS:
        what = f"model kind {config.model.kind}, task kind {config.task.kind}" + (
            f", op {config.task.op}" if hasattr(config.task, "op") else "")
        raise UserError(f"{run.path} is a run of {what}: these figures need a transformer "
                        "trained on modular addition or subtraction (e.g. the nanda preset, "
                        "not linearised); give such a run")
    if not run.checkpoint_epochs:
        raise UserError(f"{run.path} has no checkpoints yet; train it first "
                        f"(python -m interp.train --out {run.path} --resume)")
    check_out_outside_run(out, run.path)
    return run


def main(argv: list[str] | None = None) -> int:
    from interp.figures.export import add_format_option

    parser = ArgumentParser.from_doc("python -m interp.figures neurons", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory")
    parser.add_argument("--out", type=Path, required=True, help="directory for the figures")
    parser.add_argument("--epoch", type=int, metavar="E",
                        help="draw the neurons at this checkpoint (default: the final one)")
    parser.add_argument("--top", type=int, default=3, metavar="N",
                        help="neurons drawn per key-frequency cluster (default 3)")
    add_format_option(parser)
    args = parser.parse_args(argv)
    check_positive("--top", args.top)

    from interp.figures.export import chosen_formats

    formats = chosen_formats(args)
    check_output_dir(args.out)
    run = open_run(args.run_dir, args.out)

    from interp.figures.export import write_figures
    from interp.figures.nanda import neuron_figures
    from interp.figures.nanda_reads import run_neuron_fits

    final = run.checkpoint_epochs[-1]
    epoch = final if args.epoch is None else args.epoch
    fits = run_neuron_fits(run, epoch, args.top)
    for k, fit in fits.items():
        if fit is None:
            print(f"k={k}: no neuron of the final checkpoint belongs to it (nothing drawn)")
            continue
        shares = ", ".join(f"{n} {float(e):.0%}" for n, e in zip(fit.neurons, fit.explained,
                                                                 strict=True))
        print(f"k={k}: variance explained at epoch {epoch}: {shares}")
    written = write_figures(neuron_figures(fits, epoch, final), args.out, formats)
    print(f"wrote {len(written)} files to {args.out}")
    return 0
