"""``python -m interp.figures progress RUN_DIR --out DIR``: the progress-measures figures of
Nanda et al. (learning curves with phases, restricted/excluded loss, Gini and weight norm,
Fourier structure of W_E, W_L, neurons, logits and attention) for one run, with its single
neurons over the (a, b) grid and its embedding circles.

    python -m interp.analyze checkpoints/nanda-p113 --only fourier   # computes, caches
    python -m interp.figures progress checkpoints/nanda-p113 --out figures/nanda --format html,png

Reads the cached analysis of ``python -m interp.analyze`` (and the run's checkpoints for the
neuron and embedding views); computes nothing and never writes into the run.
"""

from __future__ import annotations

from pathlib import Path

from interp.cli import ArgumentParser
from interp.figures.export import add_format_option, chosen_formats


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser.from_doc("python -m interp.figures progress", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory")
    parser.add_argument("--out", type=Path, required=True, help="directory for the figures")
    parser.add_argument("--analysis", type=Path, metavar="DIR",
                        help="where interp.analyze wrote the analysis (its --out; default "
                             "RUN_DIR/analysis)")
    add_format_option(parser)
    args = parser.parse_args(argv)
    formats = chosen_formats(args)

    from interp.figures.export import write_figures
    from interp.figures.report import nanda_figures, progress_figures
    from interp.run_analysis import cached_analysis

    result = cached_analysis(args.run_dir, "fourier", args.out, args.analysis)
    figures = {**progress_figures(result), **nanda_figures(result)}
    written = write_figures(figures, args.out, formats)
    print(f"wrote {len(written)} files to {args.out}")
    return 0
