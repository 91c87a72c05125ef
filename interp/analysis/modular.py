"""The Fourier and progress-measure analysis of one checkpoint of a modular-arithmetic
transformer (Nanda et al. 2023): model and task in, a ``ModularAnalysis`` out.

The activations come from TransformerLens hooks (``blocks.{L}.mlp.hook_post``,
``blocks.0.attn.hook_pattern``) at the final position over the full p x p grid of inputs,
so the same code reads any TransformerLens model of this task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import torch

from interp.analysis import fourier, progress
from interp.analysis.lazy_rich import trainable_weights
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
    """Run the model over all inputs (the p x p grid, a-major) and collect what is analysed,
    through its TransformerLens hooks (any number of layers)."""
    last = model.cfg.n_layers - 1
    post, pattern = f"blocks.{last}.mlp.hook_post", "blocks.0.attn.hook_pattern"
    acts, logits, attention = [], [], []
    for chunk in inputs.split(batch_size):
        out, cache = model.run_with_cache(chunk, names_filter=[post, pattern])
        acts.append(cache[post][:, -1])
        logits.append(out[:, -1])
        attention.append(cache[pattern][:, :, -1, 0])  # [batch, head]
    weights = {name: param.detach() for name, param in trainable_weights(model).items()}
    W_L = model.W_out[last] @ model.W_U
    return GridActivations(torch.cat(acts), torch.cat(logits), torch.cat(attention),
                           model.W_E.detach(), W_L.detach(), weights)


def grid_bytes(p: int, n_ctx: int, config: TransformerModel, batch_size: int = 4096) -> int:
    """Memory (bytes, float32) one checkpoint takes in ``stacked_grid_activations``: its
    grid outputs and the working tensors of one chunk of inputs."""
    outputs = p * p * (config.d_mlp + p + config.n_heads)
    working = batch_size * (2 * config.d_mlp + 3 * n_ctx * config.d_model + p)
    return 4 * (outputs + working)


@torch.no_grad()
def stacked_grid_activations(states: Sequence[Mapping[str, torch.Tensor]],
                             config: TransformerModel, trainable: Sequence[str],
                             inputs: torch.Tensor, batch_size: int = 4096
                             ) -> list[GridActivations]:
    """``grid_activations`` of several checkpoints of a one-layer, LayerNorm-free
    transformer at once: their state dicts stacked and the exact last-position forward
    vmapped over them, one batched computation instead of a model run per checkpoint."""
    from interp.models.transformer import last_position_forward

    stacked = {name: torch.stack([state[name] for state in states]) for name in states[0]}
    forward = torch.func.vmap(partial(last_position_forward, n_heads=config.n_heads,
                                      act_fn=config.act_fn), in_dims=(0, None))
    outs = [forward(stacked, chunk) for chunk in inputs.to(stacked["embed.weight"].device)
            .split(batch_size)]
    logits = torch.cat([out.logits for out in outs], dim=1)
    acts = torch.cat([out.neuron_acts for out in outs], dim=1)
    attention = torch.cat([out.pattern[:, :, 0] for out in outs], dim=1)
    W_L = (stacked["unembed.weight"] @ stacked["blocks.0.mlp.out.weight"]).mT
    return [GridActivations(acts[i], logits[i], attention[i], stacked["embed.weight"][i],
                            W_L[i], {name: stacked[name][i] for name in trainable})
            for i in range(len(states))]


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
    """Fourier structure and progress measures of ``model`` on ``task`` (a modular task):
    ``analyse_grid`` of its ``grid_activations``."""
    return analyse_grid(grid_activations(model, task.inputs), task, key_frequencies)


def analyse_grid(grid: GridActivations, task, key_frequencies: list[int] | None = None
                 ) -> ModularAnalysis:
    """Fourier structure and progress measures of one checkpoint from its grid activations.

    ``key_frequencies``: the frequencies the restricted/excluded losses keep/remove; Nanda
    et al. use the final model's key frequencies at every checkpoint. None: this
    checkpoint's own (from its neuron clusters). Restricted/excluded losses are computed only
    for ops whose circuit lives in w_k (a +/- b) (``add``, ``sub``).
    """
    p = task.n_outputs
    combine = COMBINATIONS.get(task.info.get("op"))
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
        device = grid.logits.device
        measures = progress.progress_measures(
            grid.neuron_acts, grid.logits, grid.W_L, task.targets.to(device),
            task.train_idx.to(device), task.test_idx.to(device), p, key_frequencies, combine)
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
