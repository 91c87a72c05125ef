"""A model kind as one registry entry: ``ModelKind``.

A kind is its config class (a frozen dataclass in ``interp.config``: what the model reads and
how big it is) and one ``ModelKind`` holding the rest the package needs: how to build the
model, which parameter groups the optimiser sees, what the loss reads of the model's output,
and an exact stateless forward where one is faster than ``torch.func.functional_call`` of the
module. Each kind's module defines its entry (``ENTRY = ModelKind(...)``); ``interp.models``
collects them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from interp.models.stacking import StatelessOutputFn
from interp.tasks.base import Task


def trainable_parameters(config: Any, model: torch.nn.Module) -> list[dict[str, Any]]:
    """One optimiser group of every trainable parameter, at the scheduled learning rate."""
    return [{"params": [p for p in model.parameters() if p.requires_grad], "lr_factor": 1.0}]


@dataclass(frozen=True)
class ModelKind:
    """Everything the package needs to know about a model kind, beyond its config class.

    - ``config``: the config class (``kind``, ``reads``, ``seed``, ``init_scale``,
      ``validate``, ``parameter_count``, ``activation_bytes``; see ``interp.config``).
    - ``build(config, task, generator, device)``: the freshly initialised model on
      ``device``, every random draw from ``generator`` (a CPU generator seeded with
      ``config.seed``): an ``nn.Module`` with TransformerLens hook points mapping the task's
      inputs [batch, ...] to [batch, n_outputs] (or [batch, seq, n_outputs] with
      ``last_position``). ``build_model`` then scales its parameters by ``config.init_scale``.
    - ``parameter_groups(config, model)``: the optimiser's groups (dicts with ``params``,
      ``lr_factor`` and optionally ``weight_decay``); by default one of every trainable
      parameter.
    - ``stateless(config)``: an exact pure forward (weights by state-dict name, inputs) ->
      [batch, n_outputs] for this config, or None; without one (the default) the module's
      own forward runs through ``torch.func.functional_call`` (``interp.models.stacking``),
      which stacks and vmaps as it is.
    - ``last_position``: the module returns [batch, seq, n_outputs] and the loss reads the
      last position.
    - ``number_embeddings``: the state-dict name of the matrix whose row k embeds the number
      k, for Liu et al.'s representation measures (RQI); None when it has none.
    """

    config: type
    build: Callable[[Any, Task, torch.Generator, str | torch.device], torch.nn.Module]
    parameter_groups: Callable[[Any, torch.nn.Module], list[dict[str, Any]]] = (
        trainable_parameters)
    stateless: Callable[[Any], StatelessOutputFn | None] | None = None
    last_position: bool = False
    number_embeddings: str | None = None

    @property
    def name(self) -> str:
        """The kind's name: its config class's ``kind`` (``model.kind`` in a config)."""
        return self.config.kind
