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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from interp.cli import ArgumentParser, check_output_dir, check_positive

if TYPE_CHECKING:  # heavy imports stay out of --help
    import torch

    from interp.analysis.neurons import EmbeddingCircle


@dataclass(frozen=True)
class EmbeddingHistory:
    """W_E read at some checkpoints: ``epochs`` [n]; ``frequency_norms`` [n, p//2] (per
    frequency k = 1..p//2); ``circles``: n lists, one ``EmbeddingCircle`` per key frequency
    (in the order of ``key``)."""

    epochs: list[int]
    frequency_norms: torch.Tensor
    circles: list[list[EmbeddingCircle]]
    key: list[int]


def run_embedding_history(run, every: int = 1, key: list[int] | None = None
                          ) -> EmbeddingHistory:
    """W_E's norm per frequency and embedding circles of ``run`` at every ``every``-th
    checkpoint (always the last), for the key frequencies ``key`` (default: the run's,
    ``run_key_frequencies``). Reads only the embeddings of each checkpoint."""
    import torch

    from interp.analysis import fourier, neurons
    from interp.figures.cmd_neurons import run_key_frequencies
    from interp.models import model_kind
    from interp.run_analysis import select_epochs

    key = key if key is not None else run_key_frequencies(run)
    p, name = run.config.task.p, model_kind(run.config.model).number_embeddings
    epochs = select_epochs(run.checkpoint_epochs, every)
    norms, circles = [], []
    for epoch in epochs:
        W_E = run.weights(epoch)[name]
        norms.append(fourier.embedding_frequency_norms(W_E, p))
        circles.append(neurons.embedding_circles(W_E, p, key))
    return EmbeddingHistory(epochs, torch.stack(norms), circles, key)


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
