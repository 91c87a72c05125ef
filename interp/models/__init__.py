"""Model builders: ``build_model(config, task)`` gives an ``nn.Module`` with TransformerLens
hook points; ``output_fn`` gives the function the trainer differentiates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

import torch

from interp.config import ModelConfig, TaskConfig, TransformerModel
from interp.errors import UserError
from interp.tasks.base import Task

OutputFn = Callable[[torch.Tensor], torch.Tensor]
StatelessOutputFn = Callable[[Mapping[str, torch.Tensor], torch.Tensor], torch.Tensor]


def check_compatible(model: ModelConfig, task: TaskConfig) -> None:
    """Raise a UserError if ``model`` cannot read ``task``'s inputs."""
    if isinstance(model, TransformerModel) and getattr(task, "encoding", None) == "onehot":
        raise UserError("model.kind 'transformer' needs token inputs: set task.encoding to "
                        "'nanda' or 'power' (the 'onehot' encoding is for MLPs)")


def build_model(config: ModelConfig, task: Task, device: str | torch.device = "cpu"
                ) -> torch.nn.Module:
    """The freshly initialised (seeded) model for ``task``."""
    if isinstance(config, TransformerModel):
        from interp.models.transformer import build_transformer

        return build_transformer(config, task, device)
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

    With ``fast``, models with an exact fast path (``stateless_output_fn``) use it.
    """
    stateless = stateless_output_fn(config) if fast else None
    if stateless is not None:
        return partial(stateless, model.state_dict(keep_vars=True))
    if isinstance(config, TransformerModel):
        return lambda tokens: model(tokens)[:, -1]
    raise TypeError(f"no output function for model config {type(config).__name__}")
