"""``python -m interp.figures gromov-norm``: the Gromov quadratic network (Kumar et al.
Fig. 2a) groks while its weight norm grows, with plain gradient descent and no weight
decay."""

from __future__ import annotations

from interp.cli import ArgumentParser
from interp.figures.export import add_format_option, chosen_formats
from interp.figures.run_options import add_run_options, check_run_options, configured


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser.from_doc("python -m interp.figures gromov-norm", __doc__)
    add_run_options(parser, "gromov-norm")
    add_format_option(parser)
    args = parser.parse_args(argv)
    check_run_options(args)
    formats = chosen_formats(args)

    from interp.figures.export import write_figures
    from interp.figures.model_curves import accuracy_and_weight_norm
    from interp.figures.run_options import obtain_runs
    from interp.presets import get_preset

    (run,) = obtain_runs({"kumar-gromov": configured(get_preset("kumar-gromov"), args)},
                       args.runs_dir, args.device).values()
    figure = accuracy_and_weight_norm(run.metrics, "Gromov network: accuracy and weight norm")
    print("\n".join(map(str, write_figures({"gromov-norm": figure}, args.out, formats))))
    return 0
