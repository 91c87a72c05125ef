"""Model builders: ``build_model(config, task)`` gives an ``nn.Module`` with TransformerLens
hook points; ``output_fn`` gives the function the trainer differentiates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch

from interp.config import (
    CommitteeModel,
    GromovModel,
    LSTMModel,
    MLPModel,
    ModelConfig,
    TaskConfig,
    ToyModel,
    TransformerModel,
)
from interp.errors import UserError
from interp.tasks.base import Task

OutputFn = Callable[[torch.Tensor], torch.Tensor]
StatelessOutputFn = Callable[[Mapping[str, torch.Tensor], torch.Tensor], torch.Tensor]

_TOKEN_ENCODINGS = ("nanda", "power", "pair")

# model kind -> (can it read this task?, what it reads: the hint of the one-line error)
_READS: dict[str, tuple[Callable[[TaskConfig], bool], str]] = {
    "mlp": (lambda t: t.kind in ("polynomial", "teacher", "digits")
            or getattr(t, "encoding", None) == "onehot",
            "feature inputs: task.kind polynomial, teacher or digits, or modular/permutation "
            "with task.encoding=onehot"),
    "lstm": (lambda t: t.kind == "toy_addition" or getattr(t, "encoding", None)
             in _TOKEN_ENCODINGS,
             "token inputs: task.kind toy_addition, or modular/permutation with "
             "task.encoding pair, nanda or power"),
    "gromov": (lambda t: t.kind in ("modular", "permutation") and t.encoding == "onehot",
               "one-hot pairs: task.kind modular or permutation with task.encoding=onehot"),
    "committee": (lambda t: t.kind == "polynomial",
                  "Gaussian inputs with one real output: task.kind polynomial"),
    "toy": (lambda t: t.kind == "toy_addition" or getattr(t, "encoding", None) == "pair",
            "the pair [a, b]: task.kind toy_addition, or modular/permutation with "
            "task.encoding=pair"),
}


def check_compatible(model: ModelConfig, task: TaskConfig) -> None:
    """Raise a one-line UserError if ``model`` cannot read ``task``'s inputs."""
    if isinstance(model, TransformerModel):
        if getattr(task, "encoding", None) == "onehot":
            raise UserError("model.kind 'transformer' needs token inputs: set task.encoding "
                            "to 'nanda' or 'power' (the 'onehot' encoding is for MLPs)")
        if task.kind not in ("modular", "permutation", "toy_addition"):
            raise UserError(f"model.kind 'transformer' cannot read task.kind {task.kind!r}: "
                            "it needs token inputs (modular, permutation or toy_addition)")
        return
    reads, hint = _READS[model.kind]
    if not reads(task):
        raise UserError(f"model.kind {model.kind!r} cannot read task.kind {task.kind!r}"
                        f"{_encoding(task)}; it reads {hint}")


def _encoding(task: TaskConfig) -> str:
    encoding = getattr(task, "encoding", None)
    return f" with encoding {encoding!r}" if encoding else ""


def build_model(config: ModelConfig, task: Task, device: str | torch.device = "cpu"
                ) -> torch.nn.Module:
    """The freshly initialised (seeded) model for ``task``; every parameter is multiplied
    by ``config.init_scale`` (Omnigrok's initialisation scale; 1 leaves PyTorch's)."""
    if isinstance(config, TransformerModel):
        from interp.models.transformer import build_transformer

        model = build_transformer(config, task, device)
    else:
        model = _build_hooked(config, task, torch.Generator().manual_seed(config.seed))
        model = model.to(device)
    if config.init_scale != 1:
        with torch.no_grad():
            for param in model.parameters():
                param.mul_(config.init_scale)
    return model


def _build_hooked(config: ModelConfig, task: Task, generator: torch.Generator
                  ) -> torch.nn.Module:
    features = task.inputs.shape[1]
    if isinstance(config, MLPModel):
        from interp.models.mlp import MLP

        return MLP(features, config.hidden, task.n_outputs, config.activation, config.bias,
                   generator)
    if isinstance(config, GromovModel):
        from interp.models.mlp import GromovNet

        return GromovNet(features, config.width, task.n_outputs, generator)
    if isinstance(config, CommitteeModel):
        from interp.models.committee import CommitteeMachine

        return CommitteeMachine(features, config.width, config.eps, config.degree, generator)
    if isinstance(config, LSTMModel):
        from interp.models.lstm import LSTMClassifier

        return LSTMClassifier(task.vocab_size, config.hidden, config.n_layers,
                              task.n_outputs, generator)
    if isinstance(config, ToyModel):
        from interp.models.toy import ToyAdditionModel

        return ToyAdditionModel(task.vocab_size, config.d_emb, config.hidden, task.n_outputs,
                                generator)
    raise TypeError(f"no builder for model config {type(config).__name__}")


def stateless_output_fn(config: ModelConfig) -> StatelessOutputFn | None:
    """(weights, inputs) -> [batch, n_outputs] as a pure function of the model's state dict,
    for the models that have an exact fast path (None for the others).

    weights: the full state dict by name (parameters and buffers). Being pure, it composes
    with ``torch.func`` (``vmap`` over stacked weights trains many models at once).
    """
    if isinstance(config, TransformerModel):
        from interp.models.transformer import last_position_logits, supports_fast_path

        if supports_fast_path(config):
            return partial(last_position_logits, n_heads=config.n_heads, act_fn=config.act_fn)
    return None


def output_fn(config: ModelConfig, model: torch.nn.Module, fast: bool = True) -> OutputFn:
    """inputs -> [batch, n_outputs]: what the loss reads (the last position of a sequence).

    With ``fast``, models with an exact fast path (``stateless_output_fn``: the one-layer
    transformer's last position) use it; the models other than the transformer already
    return [batch, n_outputs].
    """
    stateless = stateless_output_fn(config) if fast else None
    if stateless is not None:
        return partial(stateless, model.state_dict(keep_vars=True))
    if isinstance(config, TransformerModel):
        return lambda tokens: model(tokens)[:, -1]
    return model


def parameter_groups(config: ModelConfig, model: torch.nn.Module) -> list[dict[str, Any]]:
    """The optimiser's parameter groups (trainable parameters only).

    Liu et al.'s toy model trains its embeddings with their own learning-rate factor and
    weight decay; every other model is one group. ``lr_factor`` multiplies the scheduled
    learning rate; a group without ``weight_decay`` takes optim.weight_decay.
    """
    if isinstance(config, ToyModel):
        embedding = [model.embed.weight]
        decoder = [p for p in model.decoder.parameters() if p.requires_grad]
        return [{"params": embedding, "lr_factor": config.embedding_lr_factor,
                 "weight_decay": config.embedding_weight_decay},
                {"params": decoder, "lr_factor": 1.0}]
    return [{"params": [p for p in model.parameters() if p.requires_grad], "lr_factor": 1.0}]
