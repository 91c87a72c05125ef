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
from interp.errors import UserError, warn


def open_run(run_dir: Path, out: Path):
    """The run (``interp.runs.Run``) at ``run_dir``, after checking that it is a transformer
    trained on modular addition or subtraction with checkpoints and that ``out`` lies
    outside it; UserError (one line) otherwise."""
    from interp.analysis.modular import COMBINATIONS, applies_to
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
    if Path(out).resolve().is_relative_to(run.path.resolve()):
        raise UserError(f"--out {out} lies inside the run {run.path}; figure commands never "
                        "write into a run: choose an --out outside it")
    return run


def run_key_frequencies(run, activations=None) -> list[int]:
    """The key frequencies of ``run``: the ones interp.analyze used (its cached
    summary.json), else the final checkpoint's own, from ``activations`` (its
    ``neuron_activations_grid``, [p, p, d_mlp]; computed here when None) by Nanda et al.'s
    neuron clusters. UserError when there are none (the run has not grokked)."""
    from interp.analysis import fourier
    from interp.analysis.neurons import neuron_activations_grid
    from interp.runs import ANALYSIS_DIR, RunFileError, read_json

    p, summary = run.config.task.p, run.path / ANALYSIS_DIR / "summary.json"
    if summary.is_file():
        try:
            return fourier.check_frequencies(
                read_json(summary)["fourier"]["key_frequencies"]["used"], p)
        except (RunFileError, UserError, KeyError, TypeError) as err:
            if not isinstance(err, KeyError):  # a summary without the fourier analysis: quiet
                warn(f"{summary}: no usable fourier key frequencies ({err}); taking them from "
                     "the final checkpoint")
    final = run.checkpoint_epochs[-1]
    if activations is None:
        activations = neuron_activations_grid(run.model(final), run.task())
    key = fourier.key_frequencies_from_neurons(
        fourier.cluster_neurons(fourier.neuron_frequency_fractions(activations, p)))
    if not key:
        raise UserError(f"{run.path}: the final checkpoint (epoch {final}) has no key "
                        "frequencies (no cluster of Fourier neurons: it has not grokked); "
                        "give a run that has grokked, or train one for more epochs")
    return key


def run_neuron_fits(run, epoch: int | None = None, top: int = 3,
                    key: list[int] | None = None) -> dict:
    """{k: NeuronFit or None} for each key frequency k in ``key`` (default: the run's,
    ``run_key_frequencies``):
    the fit on k's terms, at ``epoch`` (default: the final checkpoint), of the ``top`` largest
    neurons of k's cluster at the final checkpoint (``neurons.top_cluster_neurons``); None
    when no neuron belongs to k. UserError when ``epoch`` is not a checkpoint."""
    from interp.analysis import neurons
    from interp.runs import listed

    epochs = run.checkpoint_epochs
    final = epochs[-1]
    epoch = final if epoch is None else epoch
    if epoch not in epochs:
        raise UserError(f"--epoch {epoch} is not a checkpoint of {run.path}; choose one of "
                        f"{listed([str(e) for e in epochs])}")
    task = run.task()
    p, model = task.n_outputs, run.model(final)
    final_acts = neurons.neuron_activations_grid(model, task)
    key = key if key is not None else run_key_frequencies(run, final_acts)
    chosen = neurons.top_cluster_neurons(final_acts, p, key, top)
    acts = final_acts if epoch == final else neurons.neuron_activations_grid(
        run.model(epoch, into=model), task)
    return {k: neurons.fit_neuron_terms(acts, p, k, idx) if idx else None
            for k, idx in chosen.items()}


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
