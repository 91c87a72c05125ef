"""``python -m interp.figures committee-theory``: Kumar et al.'s committee machine trained at
several output scales alpha and alignments eps, each beside its theory: the online limit
(gradient flow on the population loss from the run's own initial weights, exact equations
for its summary statistics; ``interp.analysis.committee_theory``) and, for D <= 32, the
train loss to first order in 1/P (the leave-one-out gap).

The preset's P = 550 with D = 100 is far from the online limit (P >> D^2 / 2): there the
figure shows how far the finite data set moves the test loss. Where theory and experiment
agree, e.g. --set task.dim=6 --set model.width=32 --set task.n_train=40000
--set optim.lr=3.2 --epochs 400."""

from __future__ import annotations

from interp.cli import ArgumentParser
from interp.errors import UserError
from interp.figures.export import add_format_option, chosen_formats
from interp.figures.run_options import add_run_options, check_run_options, configured


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser.from_doc("python -m interp.figures committee-theory", __doc__)
    add_run_options(parser, "committee-theory")
    add_format_option(parser)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.5, 1.0, 2.0],
                        help="output scales to train (default: 0.5 1 2)")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.02, 0.05],
                        help="weights of the quadratic term (alignment) to train "
                             "(default: 0.02 0.05)")
    args = parser.parse_args(argv)
    for flag, values in (("--alphas", args.alphas), ("--eps", args.eps)):
        if any(not value > 0 for value in values):
            raise UserError(f"{flag} must be positive, got {values}")
    check_run_options(args)
    formats = chosen_formats(args)

    from interp.figures.committee_theory import (
        describe,
        dynamics_of,
        run_theory,
        theory_loss_figure,
        theory_terms_figure,
    )
    from interp.figures.export import write_figures
    from interp.figures.run_options import obtain_runs
    from interp.presets import get_preset

    base = get_preset("kumar-committee")
    configs = {f"alpha{alpha:g}-eps{eps:g}": configured(
        base, args, f"objective.alpha={alpha}", f"model.eps={eps}")
        for eps in args.eps for alpha in args.alphas}
    if len(configs) < len(args.eps) * len(args.alphas):
        raise UserError("--alphas and --eps name the same run twice; give values that differ "
                        "in their first six digits")
    for config in configs.values():
        dynamics_of(config)  # refuse what the theory does not describe before training
    runs = obtain_runs(configs, args.runs_dir, args.device)
    paired = {name: (run, run_theory(run)) for name, run in runs.items()}
    for name, (run, theory) in paired.items():
        print(describe(name, run, theory))
    written = write_figures({
        "committee-theory-loss": theory_loss_figure(
            paired, "Committee machine: trained runs and their theory"),
        "committee-theory-terms": theory_terms_figure(paired)}, args.out, formats)
    print("\n".join(map(str, written)))
    return 0
