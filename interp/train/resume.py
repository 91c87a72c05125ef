"""Pack and unpack the complete training state (weights, optimiser, RNG) as flat tensors.

The state goes into a safetensors file, so resuming never unpickles anything; non-tensor
optimiser entries (hyper-parameters, Python scalars) travel as JSON metadata. The format is
one run's: the ensemble trainer (``interp.train.ensemble``) writes each of its runs' states
in it too, so any run can be resumed alone or together with others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class TrainingState:
    """One run's training state, as plain data.

    ``model``: state dict; ``optimizer``: ``Optimizer.state_dict()`` form (params by index
    into the run's trainable parameters); ``rng``: the training generator's state;
    ``variants``: the optimiser variants' state (noise generator, filter buffers).
    """

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: torch.Tensor
    epoch: int
    step: int
    variants: dict[str, torch.Tensor] = field(default_factory=dict)


def pack_state(state: TrainingState, extra: Mapping[str, Any] | None = None
               ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten a ``TrainingState`` into (tensors, JSON-able metadata)."""
    tensors = {f"model/{k}": v for k, v in state.model.items()}
    tensors.update({f"variants/{k}": v for k, v in state.variants.items()})
    tensors["rng/generator"] = state.rng
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state.optimizer["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim/{index}/{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
              for group in state.optimizer["param_groups"]]
    meta = {"epoch": state.epoch, "step": state.step, "optim_groups": groups,
            "optim_scalars": scalars, **(extra or {})}
    return tensors, meta


def unpack_state(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any],
                 device: torch.device) -> TrainingState:
    """The ``TrainingState`` that ``pack_state`` flattened; optimiser tensors (except
    scalars such as Adam's step count) moved to ``device``."""
    model = {k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")}
    variants = {k.removeprefix("variants/"): v for k, v in tensors.items()
                if k.startswith("variants/")}
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value.to(device) if value.dim() else value
    for index, entries in meta["optim_scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = [{k: tuple(v) if isinstance(v, list) and k != "params" else v
               for k, v in group.items()} for group in meta["optim_groups"]]
    return TrainingState(model, {"state": state, "param_groups": groups},
                         tensors["rng/generator"], int(meta["epoch"]), int(meta["step"]),
                         variants)


def pack_training_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        generator: torch.Generator, epoch: int, step: int,
                        extra: dict[str, Any] | None = None,
                        variants: dict[str, torch.Tensor] | None = None
                        ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten model + optimiser + RNG state into (tensors, JSON-able metadata);
    ``variants`` is the optimiser variants' state (noise generator, filter buffers)."""
    state = TrainingState(model.state_dict(), optimizer.state_dict(), generator.get_state(),
                          epoch, step, dict(variants or {}))
    return pack_state(state, extra)


def unpack_training_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                          model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                          generator: torch.Generator, source: Path
                          ) -> tuple[int, int, dict[str, torch.Tensor]]:
    """Restore what ``pack_training_state`` saved into the live objects; returns
    (epoch, step, the optimiser variants' state). ``source`` names the file in errors.
    """
    from interp.runs import load_weights_into

    state = unpack_state(tensors, meta, next(model.parameters()).device)
    load_weights_into(model, state.model, source=source)
    generator.set_state(state.rng)
    optimizer.load_state_dict(state.optimizer)
    return state.epoch, state.step, state.variants
