"""``python -m interp.figures alpha-sweep``: the Nanda transformer trained at several output
scales alpha (Kumar et al. 2024, sec. 6 and Fig. 5b: large alpha makes grokking later and
more drastic, small alpha removes it); test and train loss against epoch for each.

    python -m interp.figures alpha-sweep --out figures/alpha                  # nanda, GPU
    python -m interp.figures alpha-sweep --preset tiny --alphas 0.5 1 2 4 --out figures/a

Every run trains the centred output alpha * (f - f_0) (objective.centered, alpha = 1
included) with the learning rate divided by alpha (AdamW). The runs are a sweep over
objective.alpha (python -m interp.sweep; they train together as one stack) whose sweep
directory is --runs-dir: a complete run is read, an interrupted one resumed, a missing one
trained; a --runs-dir holding the sweep of other options is refused unless --force.
"""

from __future__ import annotations

from pathlib import Path

from interp.cli import ArgumentParser
from interp.errors import UserError
from interp.figures.export import add_format_option, chosen_formats
from interp.figures.run_options import add_sweep_options, check_run_options

ALPHA = "objective.alpha"


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser.from_doc("python -m interp.figures alpha-sweep", __doc__)
    parser.add_argument("--preset", default="nanda", help="base configuration (default nanda)")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0, 4.0],
                        help="output scales (default: 0.25 0.5 1 2 4)")
    add_sweep_options(parser, None)
    add_format_option(parser)
    args = parser.parse_args(argv)
    if any(alpha <= 0 for alpha in args.alphas):
        raise UserError(f"--alphas must be positive, got {args.alphas}")
    labels = [f"{alpha:g}" for alpha in args.alphas]  # as the figure and the landmarks name them
    if len(set(labels)) < len(labels):
        raise UserError(f"--alphas {' '.join(labels)} gives an alpha twice (alphas are told "
                        "apart by their first six digits); give each once")
    if any(assignment.partition("=")[0].strip() == ALPHA for assignment in args.set):
        raise UserError(f"--set {ALPHA}=... conflicts with --alphas, which gives the output "
                        "scales; drop that --set")
    args.runs_dir = args.runs_dir or Path("checkpoints") / f"alpha-sweep-{args.preset}"
    check_run_options(args)
    formats = chosen_formats(args)

    from interp.figures.export import write_figures
    from interp.figures.model_curves import loss_curves_by_alpha
    from interp.figures.run_options import obtain_sweep, set_table

    sweep = obtain_sweep("alpha-sweep", {
        "preset": args.preset, "set": set_table(args, {}, {"objective.centered": True}),
        "grid": {ALPHA: args.alphas}}, args)
    by_alpha = {sweep.points[run.name][ALPHA]: run for run in sweep.runs}
    metrics = {alpha: run.metrics for alpha, run in by_alpha.items()}
    figure = loss_curves_by_alpha(metrics, "Output scale alpha: test (solid) and train "
                                  "(dashed) loss", "cross-entropy", log_epochs=False)
    print("\n".join(map(str, write_figures({"alpha-sweep": figure}, args.out, formats))))
    for alpha, run in sorted(by_alpha.items()):
        print(f"alpha={alpha:g}: " + run.landmarks().describe().replace("\n", "\n    "))
    return 0
