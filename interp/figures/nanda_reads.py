"""What the Nanda et al. views read from a run (``interp.figures.nanda`` draws them): its key
frequencies, its top neurons' fits over the (a, b) grid, and W_E at each checkpoint. Reads
the run's checkpoints and cached summary only; writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from interp.errors import UserError, warn

if TYPE_CHECKING:
    import torch

    from interp.analysis.neurons import EmbeddingCircle


def run_key_frequencies(run, activations=None) -> list[int]:
    """The key frequencies of ``run``: the ones interp.analyze used (its cached
    summary.json), else the final checkpoint's own, from ``activations`` (its
    ``neuron_activations_grid``, [p, p, d_mlp]; computed here when None) by Nanda et al.'s
    neuron clusters. UserError when there are none (the run has not grokked)."""
    from interp.analysis import fourier
    from interp.analysis.neurons import neuron_activations_grid
    from interp.runs import ANALYSIS_DIR, RunFileError, read_json

    p, summary = run.config.task.p, run.path / ANALYSIS_DIR / "summary.json"
    if summary.is_file():
        try:
            return fourier.check_frequencies(
                read_json(summary)["fourier"]["key_frequencies"]["used"], p)
        except (RunFileError, UserError, KeyError, TypeError) as err:
            if not isinstance(err, KeyError):  # a summary without the fourier analysis: quiet
                warn(f"{summary}: no usable fourier key frequencies ({err}); taking them from "
                     "the final checkpoint")
    final = run.checkpoint_epochs[-1]
    if activations is None:
        activations = neuron_activations_grid(run.model(final), run.task())
    key = fourier.key_frequencies_from_neurons(
        fourier.cluster_neurons(fourier.neuron_frequency_fractions(activations, p)))
    if not key:
        raise UserError(f"{run.path}: the final checkpoint (epoch {final}) has no key "
                        "frequencies (no cluster of Fourier neurons: it has not grokked); "
                        "give a run that has grokked, or train one for more epochs")
    return key


def run_neuron_fits(run, epoch: int | None = None, top: int = 3,
                    key: list[int] | None = None) -> dict:
    """{k: NeuronFit or None} for each key frequency k in ``key`` (default: the run's,
    ``run_key_frequencies``):
    the fit on k's terms, at ``epoch`` (default: the final checkpoint), of the ``top`` largest
    neurons of k's cluster at the final checkpoint (``neurons.top_cluster_neurons``); None
    when no neuron belongs to k. UserError when ``epoch`` is not a checkpoint."""
    from interp.analysis import neurons
    from interp.runs import listed

    epochs = run.checkpoint_epochs
    final = epochs[-1]
    epoch = final if epoch is None else epoch
    if epoch not in epochs:
        raise UserError(f"--epoch {epoch} is not a checkpoint of {run.path}; choose one of "
                        f"{listed([str(e) for e in epochs])}")
    task = run.task()
    p, model = task.n_outputs, run.model(final)
    final_acts = neurons.neuron_activations_grid(model, task)
    key = key if key is not None else run_key_frequencies(run, final_acts)
    chosen = neurons.top_cluster_neurons(final_acts, p, key, top)
    acts = final_acts if epoch == final else neurons.neuron_activations_grid(
        run.model(epoch, into=model), task)
    return {k: neurons.fit_neuron_terms(acts, p, k, idx) if idx else None
            for k, idx in chosen.items()}


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
