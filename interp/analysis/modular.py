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
import torch.nn.functional as F

from interp.analysis import fourier, progress
from interp.analysis.lazy_rich import last_position, trainable_weights
from interp.config import ModularTask, RunConfig, TransformerModel
from interp.errors import UserError

COMBINATIONS = {"add": "add", "sub": "sub"}  # ops whose circuit lives in w_k (a +/- b)


def applies_to(config: RunConfig) -> bool:
    """Whether the Fourier/progress analysis is defined for this run (``skip_reason``)."""
    return skip_reason(config) is None


def skip_reason(config: RunConfig) -> str | None:
    """Why the Fourier/progress analysis is not defined for this run, in one line; None
    when it is. It needs a transformer on a modular task over the full p x p grid (``div``
    drops b = 0), trained as itself (a linearised run's weights do not compute its
    function); restricted and excluded loss further need an op in a +/- b."""
    if not isinstance(config.model, TransformerModel):
        return f"Nanda et al.'s Fourier analysis reads a transformer, not a {config.model.kind}"
    if not isinstance(config.task, ModularTask):
        return f"Nanda et al.'s Fourier analysis is for modular arithmetic, not {config.task.kind}"
    if config.task.op == "div":
        return "division has no b = 0 row, and the Fourier analysis needs the full p x p grid"
    if config.task.encoding not in ("nanda", "power"):
        return (f"the Fourier analysis reads the 'nanda' or 'power' input encoding, not "
                f"{config.task.encoding!r}")
    if config.objective.linearized:
        return "a linearised run's weights do not compute its function"
    return None


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
    """Run the model over all inputs (the p x p grid, a-major: [p * p, seq]) and collect what
    is analysed, through its TransformerLens hooks (any number of layers): rows [p * p, ...]
    as ``GridActivations`` lists them."""
    last = model.cfg.n_layers - 1
    post, pattern = f"blocks.{last}.mlp.hook_post", "blocks.0.attn.hook_pattern"
    acts, logits, attention = [], [], []
    for chunk in inputs.split(batch_size):
        out, cache = model.run_with_cache(chunk, names_filter=[post, pattern])
        acts.append(cache[post][:, -1])
        logits.append(out[:, -1])
        attention.append(cache[pattern][:, :, -1, 0])  # [batch, head]
    weights = {name: param.detach() for name, param in trainable_weights(model).items()}
    return GridActivations(torch.cat(acts), torch.cat(logits), torch.cat(attention),
                           model.W_E.detach(), W_L(model), weights)


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

    TENSORS = ("embed_component_norms", "embed_frequency_norms", "unembed_frequency_norms",
               "neuron_fractions", "neuron_frequency", "attention_fractions",
               "logit_coefficients", "logit_cosines", "logit_fourier_norms", "attention_to_a")

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensor fields by name (for storage)."""
        return {name: getattr(self, name) for name in self.TENSORS}

    def record(self) -> dict:
        """The other fields, as JSON (for storage)."""
        return {"scalars": self.scalars,
                "excluded_loss_per_frequency": self.excluded_loss_per_frequency,
                "key_frequencies_neurons": self.key_frequencies_neurons,
                "key_frequencies_embedding": self.key_frequencies_embedding}

    @classmethod
    def stored(cls, record: dict, tensors: dict[str, torch.Tensor]) -> ModularAnalysis:
        """The analysis ``record()`` and ``tensors()`` wrote (JSON keys are strings: the
        excluded losses' frequencies come back as ints)."""
        return cls(**{name: tensors[name] for name in cls.TENSORS},
                   scalars=dict(record["scalars"]),
                   excluded_loss_per_frequency={
                       int(k): v for k, v in record["excluded_loss_per_frequency"].items()},
                   key_frequencies_neurons=list(record["key_frequencies_neurons"]),
                   key_frequencies_embedding=list(record["key_frequencies_embedding"]))


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


# ---------------------------------------------------------------------------------------------
# One model on one task: what a notebook calls (re-exported by interp.analysis)


def check_modular(model: torch.nn.Module, task, needs_op: bool = False) -> int:
    """p, after checking that ``model`` is a TransformerLens transformer whose outputs are
    ``task``'s p classes and that ``task`` is a modular task over the full p x p grid (with
    ``needs_op``: an op in a +/- b, which the restricted and excluded losses need).
    UserError (one line) otherwise."""
    _check_transformer(model, "this")
    p = task.info.get("p")
    if p is None or task.operands is None:
        raise UserError(f"the task is not a modular-arithmetic task (its info is {task.info}); "
                        "pass the run's own task, run.task()")
    if len(task.inputs) != p * p:
        raise UserError(f"the task has {len(task.inputs)} inputs, not the full p x p = {p * p} "
                        f"grid (op {task.info.get('op')!r}: div drops b = 0); the Fourier "
                        "analysis needs every pair (a, b)")
    if model.cfg.d_vocab_out != p:
        raise UserError(f"the model has {model.cfg.d_vocab_out} output classes but the task's "
                        f"p is {p}; pass the task of the model's run (run.task())")
    if needs_op and task.info.get("op") not in COMBINATIONS:
        raise UserError(f"restricted and excluded losses need an op in a +/- b "
                        f"({', '.join(COMBINATIONS)}); this task's op is {task.info.get('op')!r}")
    return p


def _check_transformer(model: torch.nn.Module, what: str) -> None:
    """UserError unless ``model`` has the TransformerLens weights and hooks ``what`` reads."""
    if not all(hasattr(model, name) for name in ("cfg", "W_E", "W_out", "W_U", "run_with_cache")):
        raise UserError(f"{type(model).__name__} is not a TransformerLens transformer (no "
                        f"W_out / W_U / run_with_cache); {what} needs the modular-arithmetic "
                        "transformer, e.g. Run.load('checkpoints/nanda-p113').model()")


def W_L(model: torch.nn.Module) -> torch.Tensor:
    """W_L = W_out @ W_U of the model's last layer: [d_mlp, p] (d_vocab_out), the map from
    the MLP neurons to the logits (Nanda et al. sec. 4.2); detached."""
    _check_transformer(model, "W_L")
    return (model.W_out[model.cfg.n_layers - 1] @ model.W_U).detach()


KEY_SOURCES = ("neurons", "embedding")


def key_frequencies(model: torch.nn.Module, task, source: str = "neurons",
                    min_share: float = 0.02) -> list[int]:
    """The model's key frequencies, sorted: a list of k in 1..p//2 (may be empty).

    model: the modular transformer; task: its modular task (``run.task()``: inputs
    [p * p, seq], the full grid). ``neurons`` (default): frequencies explaining > 0.85 of
    the variance of at least ``min_share`` of the last layer's MLP neurons over the grid
    (Nanda et al.'s clusters; ``key_frequencies_from_neurons``). ``embedding``: frequencies
    holding more than 3 times the uniform share of W_E's [d_vocab, d_model] Fourier norm
    (``key_frequencies_from_norms``). A
    model before grokking has few or none: take them from the final checkpoint and use
    those at every epoch, as Nanda et al. (and ``interp.analyze``) do.
    """
    if source not in KEY_SOURCES:
        raise UserError(f"unknown key-frequency source {source!r}; choose one of "
                        f"{', '.join(KEY_SOURCES)}")
    p = check_modular(model, task)
    if source == "embedding":
        return fourier.key_frequencies_from_norms(
            fourier.embedding_frequency_norms(model.W_E.detach(), p))
    grid = grid_activations(model, task.inputs)
    fractions = fourier.neuron_frequency_fractions(grid.neuron_acts.reshape(p, p, -1), p)
    return fourier.key_frequencies_from_neurons(fourier.cluster_neurons(fractions), min_share)


def checkpoint_progress(model: torch.nn.Module, task, key_frequencies: Sequence[int]
                        ) -> progress.ProgressMeasures:
    """Restricted loss and accuracy (test set), excluded loss and accuracy (train set, also
    per frequency) of ``model`` on ``task`` for ``key_frequencies`` (k in 1..p//2, at least
    one): ``progress.progress_measures`` on the model's last-position MLP activations
    [p * p, d_mlp], logits [p * p, p] and W_L [d_mlp, p] over the grid of inputs
    (``run.task()``'s, [p * p, seq]). Nanda et al. 2023, sec. 5."""
    p = check_modular(model, task, needs_op=True)
    key = fourier.check_frequencies(key_frequencies, p)
    grid = grid_activations(model, task.inputs)
    device = grid.logits.device
    return progress.progress_measures(
        grid.neuron_acts, grid.logits, grid.W_L, task.targets.to(device),
        task.train_idx.to(device), task.test_idx.to(device), p, key,
        COMBINATIONS[task.info["op"]])


def restricted_loss(model: torch.nn.Module, task, key_frequencies: Sequence[int]) -> float:
    """Test cross-entropy (float64) of the logits rebuilt from the key-frequency parts of the
    last layer's MLP activations [p * p, d_mlp] through W_L [d_mlp, p]
    (``checkpoint_progress``): falls well before the test loss."""
    return checkpoint_progress(model, task, key_frequencies).restricted_loss


def excluded_loss(model: torch.nn.Module, task, key_frequencies: Sequence[int]) -> float:
    """Train cross-entropy (float64) of the logits [p * p, p] with the key-frequency parts
    removed (``checkpoint_progress``): rises as the model comes to rely on them."""
    return checkpoint_progress(model, task, key_frequencies).excluded_loss


@torch.no_grad()
def last_position_loss(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                       batch_size: int = 4096) -> float:
    """Mean cross-entropy, in float64 as the nanda preset trains, of the logits at the last
    position: inputs [n, seq] token ids (or [n, features]), targets [n] class ids.
    ``last_position_loss(model, task.test_inputs, task.test_targets)`` is the test loss."""
    if len(inputs) == 0 or targets.shape != inputs.shape[:1] or targets.is_floating_point():
        raise UserError(f"last_position_loss needs inputs [n, ...] and targets [n] class ids "
                        f"with n >= 1; got inputs {list(inputs.shape)} and targets "
                        f"{targets.dtype} {list(targets.shape)}")
    total = 0.0
    for chunk, labels in zip(inputs.split(batch_size), targets.split(batch_size), strict=True):
        logits = last_position(model(chunk)).double()
        if labels.min() < 0 or labels.max() >= logits.shape[-1]:
            raise UserError(f"targets hold class ids outside 0..{logits.shape[-1] - 1}, the "
                            "model's outputs; pass the targets of the model's task")
        total += float(F.cross_entropy(logits, labels.to(logits.device), reduction="sum"))
    return total / len(inputs)
