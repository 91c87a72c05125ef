"""Pack and unpack the complete training state (weights, optimiser, RNG) as flat tensors.

The state goes into a safetensors file, so resuming never unpickles anything; non-tensor
optimiser entries (hyper-parameters, Python scalars) travel as JSON metadata. The format is
one run's: the trainer (``interp.train.loop``) writes each run of a stack in it, so any run
can be resumed alone or together with others.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from interp.config import OptimConfig, ScheduleConfig
from interp.train.variants import variants_active


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
                 device: torch.device, source: Path) -> TrainingState:
    """The ``TrainingState`` that ``pack_state`` flattened; optimiser tensors (except
    scalars such as Adam's step count) moved to ``device``. RunFileError naming ``source``
    if the metadata does not have the shape ``pack_state`` gives it."""
    try:
        model = {k.removeprefix("model/"): v for k, v in tensors.items()
                 if k.startswith("model/")}
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
        epoch, step = meta["epoch"], meta["step"]
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (epoch, step)):
            raise TypeError("epoch and step must be integers")
        return TrainingState(model, {"state": state, "param_groups": groups},
                             tensors["rng/generator"], epoch, step, variants)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise _damaged(source, f"{type(err).__name__}: {err}") from None


def check_training_state(state: TrainingState, model: torch.nn.Module,
                         optimizer: torch.optim.Optimizer, generator: torch.Generator,
                         optim: OptimConfig, schedule: ScheduleConfig, source: Path) -> None:
    """RunFileError naming ``source`` unless ``state`` fits the live training objects it is
    to be loaded into: model weights (names, shapes, dtypes), optimiser groups and state (the
    entries one step of this optimiser creates, with their shapes and dtypes), RNG state,
    optimiser-variant state and an epoch within the schedule. Loading a state that passes
    cannot fail later in the middle of training."""
    from interp.runs import RunFileError, check_weights

    if not 0 <= state.epoch <= schedule.epochs or state.step < 0:
        raise _damaged(source, f"epoch {state.epoch}, step {state.step} outside the run's "
                       f"0..{schedule.epochs} epochs")
    try:
        check_weights(model.state_dict(), state.model, source)
    except RunFileError as err:
        raise _damaged(source, f"model weights: {str(err).removeprefix(f'{source}: ')}"
                       ) from None
    reference = generator.get_state()
    if state.rng.dtype != reference.dtype or state.rng.shape != reference.shape:
        raise _damaged(source, "the random generator state has the wrong size or type")
    try:
        torch.Generator(device=generator.device).set_state(state.rng)  # scratch: same kind
    except RuntimeError:
        raise _damaged(source, "the random generator state is not a valid one") from None
    problem = _optimizer_mismatch(state.optimizer, optimizer)
    if problem is None:
        problem = _variants_mismatch(state.variants, optim, optimizer)
    if problem is not None:
        raise _damaged(source, problem)


def _optimizer_mismatch(saved: dict[str, Any], optimizer: torch.optim.Optimizer) -> str | None:
    """What in the saved optimiser state differs from what ``optimizer`` keeps (found by one
    probe step on a copy), or None."""
    probe = copy.deepcopy(optimizer)
    for group in probe.param_groups:
        for param in group["params"]:
            param.grad = torch.zeros_like(param)
    probe.step()
    expected = probe.state_dict()
    groups = saved["param_groups"]
    if len(groups) != len(expected["param_groups"]):
        return (f"{len(groups)} optimiser parameter groups, the optimiser has "
                f"{len(expected['param_groups'])}")
    for group, reference in zip(groups, expected["param_groups"], strict=True):
        if not isinstance(group, dict) or group.get("params") != reference["params"]:
            return "optimiser parameter groups do not match the model's parameters"
        for key, value in reference.items():
            if key in group and not _same_kind(group[key], value):
                return f"optimiser setting {key!r} is {group[key]!r}"
    state = saved["state"]
    if set(state) != set(expected["state"]):
        return "the optimiser state does not cover the model's parameters"
    for index, entries in expected["state"].items():
        if set(state[index]) != set(entries):
            return f"optimiser state of parameter {index} has entries {sorted(state[index])}"
        for name, value in entries.items():
            mine = state[index][name]
            if torch.is_tensor(value) != torch.is_tensor(mine) or torch.is_tensor(value) and (
                    mine.shape != value.shape or mine.dtype != value.dtype):
                return f"optimiser state {name!r} of parameter {index} has the wrong shape"
    return None


def _same_kind(value: Any, reference: Any) -> bool:
    """Whether a saved optimiser setting has the type of the live one (numbers as numbers)."""
    number = (int, float)
    if isinstance(reference, bool) or reference is None:
        return value == reference or isinstance(value, type(reference))
    if isinstance(reference, number):
        return isinstance(value, number) and not isinstance(value, bool)
    if isinstance(reference, tuple | list):
        return (isinstance(value, tuple | list) and len(value) == len(reference)
                and all(_same_kind(v, r) for v, r in zip(value, reference, strict=True)))
    return isinstance(value, type(reference))


def _variants_mismatch(saved: dict[str, torch.Tensor], optim: OptimConfig,
                       optimizer: torch.optim.Optimizer) -> str | None:
    """What in the saved optimiser-variant state does not fit a run with settings ``optim``
    whose trainable parameters ``optimizer`` holds, or None."""
    if not variants_active(optim):
        return None
    params = [p for group in optimizer.param_groups for p in group["params"]]
    reference = torch.Generator(device=params[0].device if params else "cpu").get_state()
    generator = saved.get("generator")
    seen = saved.get("seen")
    if generator is None or generator.shape != reference.shape or (
            generator.dtype != reference.dtype):
        return "the optimiser-variant noise generator state is missing or the wrong size"
    try:  # a scratch generator of the same device: the live one stays as it is
        torch.Generator(device=params[0].device if params else "cpu").set_state(generator)
    except RuntimeError:
        return "the optimiser-variant noise generator state is not a valid one"
    if seen is None or seen.dim() != 0 or seen.is_floating_point() or int(seen) < 0:
        return "the optimiser-variant step count is missing or invalid"
    buffers = sorted(k for k in saved if k.startswith("buffer/"))
    if optim.grad_filter is None:
        return "unexpected gradient-filter buffers" if buffers else None
    window = (optim.filter_window,) if optim.grad_filter == "ma" else ()
    shapes = [torch.Size(window + tuple(p.shape)) for p in params]
    if int(seen) > 0 and [saved.get(f"buffer/{i}") is not None for i in range(len(shapes))
                          ] != [True] * len(shapes):
        return "gradient-filter buffers are missing"
    for index, shape in enumerate(shapes):
        buffer = saved.get(f"buffer/{index}")
        if buffer is not None and (buffer.shape != shape or not buffer.is_floating_point()):
            return f"gradient-filter buffer {index} has the wrong shape"
    if len(buffers) > len(shapes):
        return "unexpected gradient-filter buffers"
    return None


def _damaged(source: Path, reason: str) -> Exception:
    from interp.runs import RunFileError

    return RunFileError(f"{source}: the resume state is damaged ({reason}); pass --force "
                        "instead of --resume to start the run again")

