"""``python -m interp.figures committee-alpha``: Kumar et al.'s committee machine trained at
several output scales alpha (their Fig. 3a: grokking delayed by large alpha, removed by
small), and the exact test-loss decomposition over training (appendix 12, Fig. 11)."""

from __future__ import annotations

from interp.cli import ArgumentParser
from interp.errors import UserError
from interp.figures.export import add_format_option, chosen_formats
from interp.figures.run_options import add_run_options, check_run_options, configured


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser.from_doc("python -m interp.figures committee-alpha", __doc__)
    add_run_options(parser, "committee-alpha")
    add_format_option(parser)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.25, 1.0, 4.0],
                        help="output scales to train (default: 0.25 1 4)")
    args = parser.parse_args(argv)
    if any(alpha <= 0 for alpha in args.alphas):
        raise UserError(f"--alphas must be positive, got {args.alphas}")
    check_run_options(args)
    formats = chosen_formats(args)

    from interp.figures.export import write_figures
    from interp.figures.model_curves import loss_curves_by_alpha, loss_decomposition
    from interp.figures.run_options import obtain_alpha_runs
    from interp.presets import get_preset

    base = get_preset("kumar-committee")
    configs = {alpha: configured(base, args, f"objective.alpha={alpha}")
               for alpha in args.alphas}
    runs = obtain_alpha_runs(configs, args.runs_dir, args.device)
    reference = min(runs, key=lambda alpha: abs(alpha - 1))
    written = write_figures({
        "committee-alpha-loss": loss_curves_by_alpha(
            {a: r.metrics for a, r in runs.items()},
            "Committee machine: loss curves for several alpha"),
        "committee-decomposition": loss_decomposition(runs[reference].metrics)}, args.out,
        formats)
    print("\n".join(map(str, written)))
    return 0
