"""Model builders: ``build_model(config, task)`` gives an ``nn.Module`` with TransformerLens
hook points; ``output_fn`` gives the function the trainer differentiates, and
``stacked_output_fn`` the same for a stack of runs (``interp.models.stacking``).

Every model kind is one ``ModelKind`` entry (``interp.models.kind``), defined in the kind's
own module and collected by ``model_kinds``; the functions here dispatch through it.
``register_model_kind`` adds a kind from outside the package. The kinds' modules import
transformer_lens (seconds), so they are imported when a model is first needed, not with this
package.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import Any

import torch

from interp.config import INPUTS, ModelConfig, TaskConfig, check_reads
from interp.config import MODEL_KINDS as CONFIG_CLASSES
from interp.models.kind import ModelKind
from interp.models.stacking import (
    StackedOutputFn,
    StatelessOutputFn,
    run_output_fn,
    stacked_output_fn,
)
from interp.tasks.base import Task

__all__ = ["ModelKind", "OutputFn", "StackedOutputFn", "StatelessOutputFn", "build_model",
           "check_compatible", "model_kind", "model_kinds", "output_fn", "parameter_groups",
           "register_model_kind", "run_output_fn", "stacked_output_fn", "stateless_output_fn",
           "unregister_model_kind"]

OutputFn = Callable[[torch.Tensor], torch.Tensor]

_REGISTERED: dict[str, ModelKind] = {}  # the kinds added by register_model_kind
_CONFIG_ATTRIBUTES = ("kind", "reads", "seed", "init_scale", "validate", "parameter_count",
                      "activation_bytes")


@cache
def _built_in() -> dict[str, ModelKind]:
    from interp.models import committee, gromov, lstm, mlp, toy, transformer

    return {entry.name: entry for entry in (
        transformer.ENTRY, mlp.ENTRY, lstm.ENTRY, gromov.ENTRY, committee.ENTRY, toy.ENTRY)}


def model_kinds() -> dict[str, ModelKind]:
    """Every model kind by name: the package's own, then the registered ones."""
    return {**_built_in(), **_REGISTERED}


def register_model_kind(entry: ModelKind) -> None:
    """Add a model kind: its entry here and its config class to ``interp.config.MODEL_KINDS``
    (so ``RunConfig.from_dict`` reads ``model.kind``). Registering the same entry again does
    nothing; another entry under a taken name is a ValueError."""
    name = entry.name
    if model_kinds().get(name, entry) is not entry or CONFIG_CLASSES.get(
            name, entry.config) is not entry.config:
        raise ValueError(f"model kind {name!r} is already registered")
    missing = [attribute for attribute in _CONFIG_ATTRIBUTES
               if not hasattr(entry.config, attribute)]
    if missing:
        raise ValueError(f"{entry.config.__name__} lacks {', '.join(missing)} (every model "
                         "config class has them; see interp.config)")
    if entry.config.reads not in INPUTS:
        raise ValueError(f"{entry.config.__name__}.reads must be one of {', '.join(INPUTS)}, "
                         f"got {entry.config.reads!r}")
    _REGISTERED[name] = entry
    CONFIG_CLASSES[name] = entry.config


def unregister_model_kind(name: str) -> None:
    """Remove a kind ``register_model_kind`` added (the package's own stay)."""
    del _REGISTERED[name], CONFIG_CLASSES[name]


def model_kind(config: ModelConfig) -> ModelKind:
    """The entry of a model config's kind."""
    entry = model_kinds().get(config.kind)
    if entry is None or not isinstance(config, entry.config):
        raise TypeError(f"no model kind registered for {type(config).__name__}")
    return entry


def check_compatible(model: ModelConfig, task: TaskConfig) -> None:
    """Raise a one-line UserError if ``model`` cannot read ``task``'s inputs."""
    check_reads(model, task)


def build_model(config: ModelConfig, task: Task, device: str | torch.device = "cpu"
                ) -> torch.nn.Module:
    """The freshly initialised (seeded) model for ``task``; every parameter is multiplied
    by ``config.init_scale`` (Omnigrok's initialisation scale; 1 leaves PyTorch's)."""
    generator = torch.Generator().manual_seed(config.seed)
    model = model_kind(config).build(config, task, generator, device)
    if config.init_scale != 1:
        with torch.no_grad():
            for param in model.parameters():
                param.mul_(config.init_scale)
    return model


def stateless_output_fn(config: ModelConfig) -> StatelessOutputFn | None:
    """(weights, inputs) -> [batch, n_outputs] as a pure function of the model's state dict,
    for the models that have an exact fast path (None for the others).

    weights: the full state dict by name (parameters and buffers). Being pure, it composes
    with ``torch.func`` (``vmap`` over stacked weights trains many models at once).
    """
    stateless = model_kind(config).stateless
    return stateless(config) if stateless is not None else None


def output_fn(config: ModelConfig, model: torch.nn.Module, fast: bool = True) -> OutputFn:
    """inputs -> [batch, n_outputs]: what the loss reads (the last position of a sequence).

    With ``fast``, models with an exact fast path (``stateless_output_fn``: the one-layer
    transformer's last position) use it; models without ``last_position`` already return
    [batch, n_outputs].
    """
    stateless = stateless_output_fn(config) if fast else None
    if stateless is not None:
        return partial(stateless, model.state_dict(keep_vars=True))
    if model_kind(config).last_position:
        return lambda inputs: model(inputs)[:, -1]
    return model


def parameter_groups(config: ModelConfig, model: torch.nn.Module) -> list[dict[str, Any]]:
    """The optimiser's parameter groups (trainable parameters only).

    Liu et al.'s toy model trains its embeddings with their own learning-rate factor and
    weight decay; every other model is one group. ``lr_factor`` multiplies the scheduled
    learning rate; a group without ``weight_decay`` takes optim.weight_decay.
    """
    return model_kind(config).parameter_groups(config, model)
