"""``python -m interp.figures toy-rqi``: Liu et al.'s toy model: the representation quality
index of its embeddings against training steps with train and test accuracy, and the final
embeddings projected on their top two principal components."""

from __future__ import annotations

from interp.cli import ArgumentParser
from interp.figures.export import add_format_option, chosen_formats
from interp.figures.run_options import add_run_options, check_run_options, configured


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser.from_doc("python -m interp.figures toy-rqi", __doc__)
    add_run_options(parser, "toy-rqi")
    add_format_option(parser)
    args = parser.parse_args(argv)
    check_run_options(args)
    formats = chosen_formats(args)

    from interp.analysis.representation import embedding_projection
    from interp.figures.export import write_figures
    from interp.figures.model_curves import representation_quality
    from interp.figures.run_options import obtain_runs
    from interp.presets import get_preset

    (run,) = obtain_runs({"liu-toy": configured(get_preset("liu-toy"), args)}, args.runs_dir,
                       args.device).values()
    embeddings = run.weights(run.checkpoint_epochs[-1])["embed.weight"]
    coordinates = embedding_projection(embeddings).coordinates
    figure = representation_quality(run.metrics, run.metrics, coordinates, x="step")
    print("\n".join(map(str, write_figures({"toy-rqi": figure}, args.out, formats))))
    return 0
