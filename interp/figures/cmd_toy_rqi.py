"""``python -m interp.figures toy-rqi``: Liu et al.'s toy model: the representation quality
index of its embeddings against training steps with train and test accuracy, and the final
embeddings projected on their top two principal components."""

from __future__ import annotations

import argparse

from interp.figures.run_options import add_run_options, configured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interp.figures toy-rqi",
                                     description=__doc__.splitlines()[0].replace("``", ""))
    add_run_options(parser, "toy-rqi")
    args = parser.parse_args(argv)

    from interp.analysis.representation import embedding_projection
    from interp.figures.export import write_figures
    from interp.figures.model_curves import representation_quality
    from interp.figures.run_options import obtain_run
    from interp.presets import get_preset

    run = obtain_run(configured(get_preset("liu-toy"), args), args.runs_dir, "liu-toy",
                     args.device)
    embeddings = run.weights(run.checkpoint_epochs[-1])["embed.weight"]
    coordinates = embedding_projection(embeddings).coordinates
    figure = representation_quality(run.metrics, run.metrics, coordinates, x="step")
    print("\n".join(map(str, write_figures({"toy-rqi": figure}, args.out))))
    return 0
