"""``python -m interp.figures hu-models``: Hu et al.'s comparison of the transformer, the
MLP and the LSTM on a + b mod 97 (their Figs. 2-4): accuracy curves side by side at one
training fraction.

The three runs are a sweep over the preset (python -m interp.sweep) whose sweep directory is
--runs-dir: a complete run is read, an interrupted one resumed, a missing one trained; a
--runs-dir holding the sweep of other options is refused unless --force.
"""

from __future__ import annotations

from interp.cli import ArgumentParser
from interp.figures.export import add_format_option, chosen_formats
from interp.figures.run_options import add_sweep_options, check_run_options

# preset -> panel title; Hu et al.'s "simplified transformer" is Nanda et al.'s one-layer
# model, here at p = 97 (the MLP's and LSTM's presets already are)
MODELS = {"nanda": "transformer", "hu-mlp": "MLP", "hu-lstm": "LSTM"}
TASK = {"task.p": 97, "task.data_seed": 0}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser.from_doc("python -m interp.figures hu-models", __doc__)
    add_sweep_options(parser, "hu-models")
    add_format_option(parser)
    parser.add_argument("--frac", type=float, default=0.3,
                        help="training fraction of every model (default: 0.3)")
    args = parser.parse_args(argv)
    check_run_options(args)
    formats = chosen_formats(args)

    from interp.figures.export import write_figures
    from interp.figures.model_curves import accuracy_panels
    from interp.figures.run_options import obtain_sweep, set_table

    sweep = obtain_sweep("hu-models", {
        "set": set_table(args, TASK, {"task.frac": args.frac}),
        "grid": {"preset": list(MODELS)}}, args)
    metrics = {MODELS[sweep.points[run.name]["preset"]]: run.metrics for run in sweep.runs}
    figure = accuracy_panels(metrics, f"a + b mod 97, {args.frac:.0%} training data")
    print("\n".join(map(str, write_figures({"hu-models": figure}, args.out, formats))))
    return 0
