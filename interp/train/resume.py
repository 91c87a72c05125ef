"""Pack and unpack the complete training state (weights, optimiser, RNG) as flat tensors.

The state goes into a safetensors file, so resuming never unpickles anything; non-tensor
optimiser entries (hyper-parameters, Python scalars) travel as JSON metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def pack_training_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        generator: torch.Generator, epoch: int, step: int,
                        extra: dict[str, Any] | None = None,
                        variants: dict[str, torch.Tensor] | None = None
                        ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten model + optimiser + RNG state into (tensors, JSON-able metadata);
    ``variants`` is the optimiser variants' state (noise generator, filter buffers)."""
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"variants/{k}": v for k, v in (variants or {}).items()})
    tensors["rng/generator"] = generator.get_state()
    opt_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in opt_state["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim/{index}/{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
              for group in opt_state["param_groups"]]
    meta = {"epoch": epoch, "step": step, "optim_groups": groups, "optim_scalars": scalars,
            **(extra or {})}
    return tensors, meta


def unpack_training_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                          model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                          generator: torch.Generator, source: Path
                          ) -> tuple[int, int, dict[str, torch.Tensor]]:
    """Restore what ``pack_training_state`` saved into the live objects; returns
    (epoch, step, the optimiser variants' state). ``source`` names the file in errors.
    """
    from interp.runs import load_weights_into

    device = next(model.parameters()).device
    model_state = {k.removeprefix("model/"): v for k, v in tensors.items()
                   if k.startswith("model/")}
    load_weights_into(model, model_state, source=source)
    generator.set_state(tensors["rng/generator"])
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value.to(device) if value.dim() else value
    for index, entries in meta["optim_scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = [{k: tuple(v) if isinstance(v, list) and k != "params" else v
               for k, v in group.items()} for group in meta["optim_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    variants = {k.removeprefix("variants/"): v for k, v in tensors.items()
                if k.startswith("variants/")}
    return int(meta["epoch"]), int(meta["step"]), variants
