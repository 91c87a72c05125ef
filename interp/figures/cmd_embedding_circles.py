"""``python -m interp.figures embedding-circles RUN_DIR --out DIR``: the embedding circles of
a modular-addition transformer (Nanda et al.): the number embeddings W_E projected on each
key frequency's cos and sin directions at the final checkpoint, and a view with a slider
stepping through the checkpoints, showing W_E's norm per frequency above those circles.

    python -m interp.figures embedding-circles checkpoints/nanda-p113 --out figures/circles
    python -m interp.figures embedding-circles checkpoints/nanda-p113 --out figures/c --every 2

The key frequencies are those interp.analyze cached (RUN/analysis/summary.json), else the
final checkpoint's own. Only the embeddings are read from each checkpoint (no cache needed);
the run is never written. Writes embedding_circles and embedding_slider.
"""

from __future__ import annotations

from pathlib import Path

from interp.cli import ArgumentParser, check_output_dir, check_positive


def main(argv: list[str] | None = None) -> int:
    from interp.figures.export import add_format_option

    parser = ArgumentParser.from_doc("python -m interp.figures embedding-circles", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory")
    parser.add_argument("--out", type=Path, required=True, help="directory for the figures")
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="slider steps through every K-th checkpoint (always the last)")
    add_format_option(parser)
    args = parser.parse_args(argv)
    check_positive("--every", args.every)

    from interp.figures.export import chosen_formats

    formats = chosen_formats(args)
    check_output_dir(args.out)

    from interp.figures.cmd_neurons import open_run
    from interp.figures.export import write_figures
    from interp.figures.nanda import checkpoint_slider, embedding_circles_figure
    from interp.figures.nanda_reads import run_embedding_history

    history = run_embedding_history(open_run(args.run_dir, args.out), args.every)
    epochs, circles = history.epochs, history.circles
    figures = {"embedding_circles": embedding_circles_figure(circles[-1], epochs[-1]),
               "embedding_slider": checkpoint_slider(epochs, history.frequency_norms, circles,
                                                     history.key)}
    spreads = ", ".join(f"k={c.frequency} {c.radius_spread:.1%}" for c in circles[-1])
    print(f"key frequencies {history.key}; radius spread at epoch {epochs[-1]}: {spreads}; "
          f"slider over {len(epochs)} checkpoints")
    written = write_figures(figures, args.out, formats)
    print(f"wrote {len(written)} files to {args.out}")
    return 0
