"""``python -m interp.figures hu-models``: Hu et al.'s comparison of the transformer, the
MLP and the LSTM on a + b mod 97 (their Figs. 2-4): accuracy curves side by side at one
training fraction."""

from __future__ import annotations

from interp.cli import ArgumentParser
from interp.figures.run_options import add_run_options, check_run_options, configured


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser.from_doc("python -m interp.figures hu-models", __doc__)
    add_run_options(parser, "hu-models")
    parser.add_argument("--frac", type=float, default=0.3,
                        help="training fraction of every model (default: 0.3)")
    args = parser.parse_args(argv)
    check_run_options(args)

    from interp.figures.export import write_figures
    from interp.figures.model_curves import accuracy_panels
    from interp.figures.run_options import obtain_runs
    from interp.presets import get_preset

    # Hu et al.'s "simplified transformer" is Nanda et al.'s one-layer model, here at p = 97
    transformer = get_preset("nanda").with_overrides(["task.p=97", "task.data_seed=0"])
    configs = {"transformer": transformer, "MLP": get_preset("hu-mlp"),
               "LSTM": get_preset("hu-lstm")}
    configs = {name: configured(config, args, f"task.frac={args.frac}")
               for name, config in configs.items()}
    runs = obtain_runs({name.lower(): config for name, config in configs.items()},
                       args.runs_dir, args.device)
    metrics = {name: runs[name.lower()].metrics for name in configs}
    figure = accuracy_panels(metrics, f"a + b mod 97, {args.frac:.0%} training data")
    print("\n".join(map(str, write_figures({"hu-models": figure}, args.out))))
    return 0
