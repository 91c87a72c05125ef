"""``python -m interp.figures committee-alpha``: Kumar et al.'s committee machine trained at
several output scales alpha (their Fig. 3a: grokking delayed by large alpha, removed by
small), and the exact test-loss decomposition over training (appendix 12, Fig. 11)."""

from __future__ import annotations

import argparse

from interp.figures.run_options import add_run_options, configured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interp.figures committee-alpha",
                                     description=__doc__.splitlines()[0].replace("``", ""))
    add_run_options(parser, "committee-alpha")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.25, 1.0, 4.0],
                        help="output scales to train (default: 0.25 1 4)")
    args = parser.parse_args(argv)

    from interp.figures.export import write_figures
    from interp.figures.model_curves import loss_curves_by_alpha, loss_decomposition
    from interp.figures.run_options import obtain_run
    from interp.presets import get_preset

    base = get_preset("kumar-committee")
    runs = {alpha: obtain_run(configured(base, args, f"objective.alpha={alpha}"),
                              args.runs_dir, f"alpha{alpha:g}", args.device)
            for alpha in args.alphas}
    reference = min(runs, key=lambda alpha: abs(alpha - 1))
    written = write_figures({
        "committee-alpha-loss": loss_curves_by_alpha(
            {a: r.metrics for a, r in runs.items()},
            "Committee machine: loss curves for several alpha"),
        "committee-decomposition": loss_decomposition(runs[reference].metrics)}, args.out)
    print("\n".join(map(str, written)))
    return 0
