"""The Fourier and progress-measure analysis of one checkpoint of a modular-arithmetic
transformer (Nanda et al. 2023): model and task in, a ``ModularAnalysis`` out.

The activations come from TransformerLens hooks (``blocks.{L}.mlp.hook_post``,
``blocks.0.attn.hook_pattern``) at the final position over the full p x p grid of inputs,
so the same code reads any TransformerLens model of this task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from interp.analysis import fourier, progress
from interp.config import ModularTask, RunConfig, TransformerModel

COMBINATIONS = {"add": "add", "sub": "sub"}  # ops whose circuit lives in w_k (a +/- b)


def applies_to(config: RunConfig) -> bool:
    """Whether the Fourier/progress analysis is defined for this run.

    It needs a transformer on a modular task over the full p x p grid (``div`` drops b = 0),
    trained as itself (a linearised run's weights do not compute its function); restricted
    and excluded loss further need an op in a +/- b.
    """
    return (isinstance(config.model, TransformerModel) and isinstance(config.task, ModularTask)
            and config.task.op != "div" and config.task.encoding in ("nanda", "power")
            and not config.objective.linearized)


@dataclass(frozen=True)
class GridActivations:
    """What the analysis reads from a model, over the p x p grid (a-major rows)."""

    neuron_acts: torch.Tensor  # [p * p, d_mlp] last layer's MLP output, final position
    logits: torch.Tensor  # [p * p, p] final position
    attention_to_a: torch.Tensor  # [p * p, n_heads] final position -> first operand (layer 0)
    W_E: torch.Tensor  # [d_vocab, d_model]
    W_L: torch.Tensor  # [d_mlp, p] = W_out @ W_U of the last layer
    weights: dict[str, torch.Tensor] = field(repr=False)  # trainable weights by name


@torch.no_grad()
def grid_activations(model: torch.nn.Module, inputs: torch.Tensor, batch_size: int = 4096
                     ) -> GridActivations:
    """Run the model over all inputs (the p x p grid, a-major) and collect what is analysed."""
    last = model.cfg.n_layers - 1
    post, pattern = f"blocks.{last}.mlp.hook_post", "blocks.0.attn.hook_pattern"
    acts, logits, attention = [], [], []
    for chunk in inputs.split(batch_size):
        out, cache = model.run_with_cache(chunk, names_filter=[post, pattern])
        acts.append(cache[post][:, -1])
        logits.append(out[:, -1])
        attention.append(cache[pattern][:, :, -1, 0])  # [batch, head]
    weights = {name: param.detach() for name, param in model.state_dict(keep_vars=True).items()
               if isinstance(param, torch.nn.Parameter) and param.requires_grad}
    W_L = model.W_out[last] @ model.W_U
    return GridActivations(torch.cat(acts), torch.cat(logits), torch.cat(attention),
                           model.W_E.detach(), W_L.detach(), weights)


@dataclass(frozen=True)
class ModularAnalysis:
    """Everything measured at one checkpoint. Tensors are indexed by frequency k - 1."""

    embed_component_norms: torch.Tensor  # [p] const, cos 1, sin 1, ...
    embed_frequency_norms: torch.Tensor  # [p // 2]
    unembed_frequency_norms: torch.Tensor  # [p // 2] norm of W_L's Fourier terms (over c)
    neuron_fractions: torch.Tensor  # [p // 2, d_mlp]
    neuron_frequency: torch.Tensor  # [d_mlp] cluster frequency or -1
    attention_fractions: torch.Tensor  # [p // 2, n_heads]
    logit_coefficients: torch.Tensor  # [p // 2] on cos(w_k (a + b - c))
    logit_cosines: torch.Tensor  # [p // 2]
    logit_fourier_norms: torch.Tensor  # [p, p] norm over outputs c of the 2D transform
    attention_to_a: torch.Tensor  # [n_heads, p, p] final position -> a, per input (a, b)
    scalars: dict[str, float]  # losses, Gini, weight norms, explained shares
    excluded_loss_per_frequency: dict[int, float]
    key_frequencies_neurons: list[int]  # this checkpoint's own key frequencies
    key_frequencies_embedding: list[int]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensor fields by name (for storage)."""
        return {name: getattr(self, name) for name in (
            "embed_component_norms", "embed_frequency_norms", "unembed_frequency_norms",
            "neuron_fractions", "neuron_frequency", "attention_fractions",
            "logit_coefficients", "logit_cosines", "logit_fourier_norms", "attention_to_a")}


def analyse_checkpoint(model: torch.nn.Module, task, key_frequencies: list[int] | None = None
                       ) -> ModularAnalysis:
    """Fourier structure and progress measures of ``model`` on ``task`` (a modular task).

    ``key_frequencies``: the frequencies the restricted/excluded losses keep/remove; Nanda
    et al. use the final model's key frequencies at every checkpoint. None: this
    checkpoint's own (from its neuron clusters). Restricted/excluded losses are computed only
    for ops whose circuit lives in w_k (a +/- b) (``add``, ``sub``).
    """
    p = task.n_outputs
    combine = COMBINATIONS.get(task.info.get("op"))
    grid = grid_activations(model, task.inputs)
    acts_grid = grid.neuron_acts.reshape(p, p, -1)
    neuron_fractions = fourier.neuron_frequency_fractions(acts_grid, p)
    clusters = fourier.cluster_neurons(neuron_fractions)
    own_key = fourier.key_frequencies_from_neurons(clusters)
    key_frequencies = own_key if key_frequencies is None else key_frequencies
    embed_components = fourier.embedding_fourier_norms(grid.W_E, p)
    embed_freqs = fourier.frequency_norms(embed_components.pow(2), p)
    unembed_components = fourier.unembed_fourier(grid.W_L, p).norm(dim=0)
    unembed_freqs = fourier.frequency_norms(unembed_components.pow(2), p)
    attention_fractions = fourier.attention_frequency_fractions(
        grid.attention_to_a.reshape(p, p, -1), p)
    logits_grid = grid.logits.reshape(p, p, p)
    logit_fourier_norms = fourier.fourier_2d(logits_grid, p).norm(dim=-1)
    projection = fourier.logit_projection(logits_grid, p, key_frequencies, combine or "add")
    weights_sq = progress.squared_weights(grid.weights)
    scalars = {
        "gini_embed": progress.gini(embed_freqs),
        "gini_unembed": progress.gini(unembed_freqs),
        "sum_squared_weights": weights_sq["total"],
        **{f"squared_weights/{name}": value for name, value in weights_sq.items()
           if name != "total"},
        "neurons_explained": clusters.explained_fraction,
        "logits_explained_by_key": projection.explained,
    }
    per_frequency: dict[int, float] = {}
    if combine is not None and key_frequencies:
        measures = progress.progress_measures(
            grid.neuron_acts, grid.logits, grid.W_L, task.targets, task.train_idx,
            task.test_idx, p, key_frequencies, combine)
        scalars.update(restricted_loss=measures.restricted_loss,
                       restricted_acc=measures.restricted_acc,
                       excluded_loss=measures.excluded_loss,
                       excluded_acc=measures.excluded_acc)
        per_frequency = measures.excluded_loss_per_frequency
    return ModularAnalysis(
        embed_component_norms=embed_components, embed_frequency_norms=embed_freqs,
        unembed_frequency_norms=unembed_freqs, neuron_fractions=neuron_fractions,
        neuron_frequency=clusters.frequency, attention_fractions=attention_fractions,
        logit_coefficients=projection.coefficient, logit_cosines=projection.cosine,
        logit_fourier_norms=logit_fourier_norms,
        attention_to_a=grid.attention_to_a.T.reshape(-1, p, p),
        scalars=scalars, excluded_loss_per_frequency=per_frequency,
        key_frequencies_neurons=own_key,
        key_frequencies_embedding=fourier.key_frequencies_from_norms(embed_freqs),
    )
