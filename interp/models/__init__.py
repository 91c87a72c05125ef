"""Model builders: ``build_model(config, task)`` gives an ``nn.Module`` with TransformerLens
hook points; ``output_fn`` gives the function the trainer differentiates."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from interp.config import ModelConfig, TaskConfig, TransformerModel
from interp.errors import UserError
from interp.tasks.base import Task

OutputFn = Callable[[torch.Tensor], torch.Tensor]


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


def output_fn(config: ModelConfig, model: torch.nn.Module, fast: bool = True) -> OutputFn:
    """inputs -> [batch, n_outputs]: what the loss reads (the last position of a sequence).

    With ``fast``, the one-layer transformer uses the exact last-position fast path.
    """
    if isinstance(config, TransformerModel):
        from interp.models.transformer import last_position_logits, supports_fast_path

        if fast and supports_fast_path(config):
            weights = model.state_dict(keep_vars=True)
            return partial(last_position_logits, weights, n_heads=config.n_heads,
                           act_fn=config.act_fn)
        return lambda tokens: model(tokens)[:, -1]
    raise TypeError(f"no output function for model config {type(config).__name__}")
