"""Run configuration: frozen dataclasses with a JSON round-trip, validation and overrides.

A ``RunConfig`` holds everything that determines a run's result: the task (data and split),
the model (architecture and initialisation seed), the optimiser and the schedule. Task and
model configs come in kinds (``kind`` field), each its own dataclass, so a config file only
holds fields that mean something for its kind. Every mistake raises ``ConfigError`` with a
one-line message naming the offending key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from interp.errors import UserError


class ConfigError(UserError):
    """An invalid configuration value, unknown key or unknown kind."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % k for k in range(2, math.isqrt(n) + 1))


# ---------------------------------------------------------------------------------------------
# Tasks


@dataclass(frozen=True)
class ModularTask:
    """Pairs (a, b) in Z_p x Z_p labelled op(a, b) mod p (Power et al. 2022; Nanda et al. 2023)."""

    kind: ClassVar[str] = "modular"
    op: str = "add"
    p: int = 113
    encoding: str = "nanda"
    frac: float = 0.3
    data_seed: int = 598

    def validate(self) -> None:
        from interp.tasks.modular import MODULAR_OPS

        _require(self.op in MODULAR_OPS, f"task.op: unknown modular op {self.op!r}; "
                 f"choose one of {', '.join(MODULAR_OPS)}")
        _require(self.p >= 2, f"task.p must be at least 2, got {self.p}")
        _require(self.op != "div" or _is_prime(self.p),
                 f"task.p must be prime for op 'div' (b^-1 mod p), got {self.p}")
        _validate_split(self)


@dataclass(frozen=True)
class PermutationTask:
    """Pairs (x, y) of permutations of n elements (S_5 by default) labelled op(x, y)."""

    kind: ClassVar[str] = "permutation"
    op: str = "compose"
    n: int = 5
    encoding: str = "nanda"
    frac: float = 0.5
    data_seed: int = 598

    def validate(self) -> None:
        from interp.tasks.permutations import PERMUTATION_OPS

        _require(self.op in PERMUTATION_OPS, f"task.op: unknown permutation op {self.op!r}; "
                 f"choose one of {', '.join(PERMUTATION_OPS)}")
        _require(2 <= self.n <= 6, f"task.n must be between 2 and 6, got {self.n}")
        _validate_split(self)


def _validate_split(task: ModularTask | PermutationTask) -> None:
    from interp.tasks.encodings import ENCODINGS

    _require(task.encoding in ENCODINGS, f"task.encoding: unknown encoding {task.encoding!r}; "
             f"choose one of {', '.join(ENCODINGS)}")
    _require(0 < task.frac < 1, f"task.frac must lie strictly between 0 and 1, got {task.frac}")


TASK_KINDS: dict[str, type] = {cls.kind: cls for cls in (ModularTask, PermutationTask)}
TaskConfig = ModularTask | PermutationTask


# ---------------------------------------------------------------------------------------------
# Models


@dataclass(frozen=True)
class TransformerModel:
    """A TransformerLens transformer (TransformerBridge, native weights).

    Defaults are Nanda et al.'s one-layer model: d_model 128, 4 heads of 32, d_mlp 512, ReLU,
    no LayerNorm, all biases frozen at zero.
    """

    kind: ClassVar[str] = "transformer"
    n_layers: int = 1
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    act_fn: str = "relu"
    normalization: str | None = None
    attention: str = "causal"
    freeze_biases: bool = True
    seed: int = 999

    def validate(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp"):
            value = getattr(self, name)
            _require(value > 0, f"model.{name} must be positive, got {value}")
        _require(self.act_fn in ("relu", "gelu"), f"model.act_fn must be 'relu' or 'gelu', "
                 f"got {self.act_fn!r}")
        _require(self.normalization in (None, "LN", "LNPre", "RMS", "RMSPre"),
                 f"model.normalization must be null, 'LN', 'LNPre', 'RMS' or 'RMSPre', "
                 f"got {self.normalization!r}")
        _require(self.attention in ("causal", "bidirectional"),
                 f"model.attention must be 'causal' or 'bidirectional', got {self.attention!r}")


MODEL_KINDS: dict[str, type] = {cls.kind: cls for cls in (TransformerModel,)}
ModelConfig = TransformerModel


# ---------------------------------------------------------------------------------------------
# Optimiser and schedule


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser: AdamW/Adam/SGD, linear warm-up over ``warmup_steps``, full or minibatch."""

    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 0
    batch_size: int | None = None

    def validate(self) -> None:
        from interp.train.optim import OPTIMIZERS

        _require(self.name in OPTIMIZERS, f"optim.name: unknown optimizer {self.name!r}; "
                 f"choose one of {', '.join(OPTIMIZERS)}")
        _require(self.lr > 0, f"optim.lr must be positive, got {self.lr}")
        _require(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, "
                 f"got {self.weight_decay}")
        _require(all(0 <= b < 1 for b in self.betas), f"optim.betas must lie in [0, 1), "
                 f"got {list(self.betas)}")
        _require(self.warmup_steps >= 0, f"optim.warmup_steps must be >= 0, "
                 f"got {self.warmup_steps}")
        _require(self.batch_size is None or self.batch_size > 0,
                 f"optim.batch_size must be positive or null (full batch), got {self.batch_size}")


@dataclass(frozen=True)
class ScheduleConfig:
    """How long to train and when to evaluate and checkpoint (all in epochs).

    Checkpoints are written at epoch 0, at the last epoch, every ``checkpoint_every`` epochs
    (0: never) and at ``checkpoint_log`` log-spaced epochs (0: none). ``seed`` drives the
    training-time randomness (minibatch order).
    """

    epochs: int = 25_000
    eval_every: int = 10
    checkpoint_every: int = 100
    checkpoint_log: int = 0
    seed: int = 0

    def validate(self) -> None:
        _require(self.epochs > 0, f"schedule.epochs must be positive, got {self.epochs}")
        _require(self.eval_every > 0, f"schedule.eval_every must be positive, "
                 f"got {self.eval_every}")
        _require(self.checkpoint_every >= 0, f"schedule.checkpoint_every must be >= 0, "
                 f"got {self.checkpoint_every}")
        _require(self.checkpoint_log >= 0, f"schedule.checkpoint_log must be >= 0, "
                 f"got {self.checkpoint_log}")


@dataclass(frozen=True)
class ObjectiveConfig:
    """What is minimised: the loss on the model's outputs, and how outputs are formed.

    ``loss``: ``cross_entropy`` (class targets) or ``mse``. ``loss_dtype``: the precision
    the loss is computed in (Nanda et al. use float64). ``centered`` and ``alpha``: the
    output scale of Chizat et al. / Kumar et al.: with ``centered`` the model trained is
    alpha * (f(theta) - f(theta_0)); without it, plain f (alpha must then be 1).
    ``linearized``: train the model linearised at its initialisation instead (lazy baseline).
    """

    loss: str = "cross_entropy"
    loss_dtype: str = "float64"
    centered: bool = False
    alpha: float = 1.0
    linearized: bool = False

    def validate(self) -> None:
        _require(self.loss in ("cross_entropy", "mse"),
                 f"objective.loss must be 'cross_entropy' or 'mse', got {self.loss!r}")
        _require(self.loss_dtype in ("float32", "float64"),
                 f"objective.loss_dtype must be 'float32' or 'float64', got {self.loss_dtype!r}")
        _require(self.alpha > 0, f"objective.alpha must be positive, got {self.alpha}")
        _require(self.centered or self.alpha == 1,
                 f"objective.alpha={self.alpha} scales the centred output alpha * (f - f_0): "
                 "also set objective.centered=true")


# ---------------------------------------------------------------------------------------------
# The whole run

SECTIONS = ("task", "model", "optim", "schedule", "objective")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's result."""

    task: TaskConfig = field(default_factory=ModularTask)
    model: ModelConfig = field(default_factory=TransformerModel)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    preset: str | None = None

    def validate(self) -> RunConfig:
        """Check every field; return self so calls chain. Raises ConfigError."""
        for part in (self.task, self.model, self.optim, self.schedule, self.objective):
            part.validate()
        from interp.models import check_compatible

        check_compatible(self.model, self.task)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; kinds are written as ``kind`` keys."""
        return {
            "task": _section_to_dict(self.task),
            "model": _section_to_dict(self.model),
            "optim": _section_to_dict(self.optim),
            "schedule": _section_to_dict(self.schedule),
            "objective": _section_to_dict(self.objective),
            "preset": self.preset,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build and validate a config from a (possibly partial) dict; missing keys default."""
        _require(isinstance(data, dict), "a run config must be a JSON object")
        unknown = set(data) - {*SECTIONS, "preset"}
        _require(not unknown, f"unknown config key {min(unknown, default='')!r}; expected "
                 f"{', '.join(SECTIONS)}, preset")
        preset = data.get("preset")
        _require(preset is None or isinstance(preset, str), "preset must be a string or null")
        return cls(
            task=_kinded_from_dict("task", data.get("task", {}), TASK_KINDS, "modular"),
            model=_kinded_from_dict("model", data.get("model", {}), MODEL_KINDS, "transformer"),
            optim=_section_from_dict("optim", data.get("optim", {}), OptimConfig),
            schedule=_section_from_dict("schedule", data.get("schedule", {}), ScheduleConfig),
            objective=_section_from_dict("objective", data.get("objective", {}),
                                         ObjectiveConfig),
            preset=preset,
        ).validate()

    def with_overrides(self, assignments: list[str]) -> RunConfig:
        """Apply ``section.key=value`` strings (values parsed as JSON, else taken as text)."""
        data = self.to_dict()
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            _require(bool(sep) and bool(key), f"--set expects key=value, got {assignment!r}")
            section, dot, name = key.strip().partition(".")
            _require(section in SECTIONS and bool(dot),
                     f"--set key {key!r} must look like SECTION.NAME with SECTION one of "
                     f"{', '.join(SECTIONS)}")
            value = _parse_value(raw)
            if name == "kind" and value != data[section].get("kind"):
                data[section] = {"kind": value}  # a new kind starts from its own defaults
            else:
                data[section][name] = value
        return RunConfig.from_dict(data)


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _section_to_dict(section: Any) -> dict[str, Any]:
    out = dataclasses.asdict(section)
    out = {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
    kind = getattr(type(section), "kind", None)
    return {"kind": kind, **out} if kind is not None else out


def _kinded_from_dict(name: str, data: Any, kinds: dict[str, type], default: str) -> Any:
    _require(isinstance(data, dict), f"{name} must be a JSON object")
    data = dict(data)
    kind = data.pop("kind", default)
    _require(kind in kinds, f"{name}.kind: unknown {name} kind {kind!r}; "
             f"choose one of {', '.join(kinds)}")
    return _section_from_dict(name, data, kinds[kind])


def _section_from_dict(name: str, data: Any, cls: type) -> Any:
    _require(isinstance(data, dict), f"{name} must be a JSON object")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    _require(not unknown, f"unknown config key {name}.{min(unknown, default='')}; "
             f"{name} keys are {', '.join(sorted(fields))}")
    kwargs = {key: _coerce(f"{name}.{key}", value, hints[key]) for key, value in data.items()}
    return cls(**kwargs)


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a simple type hint; convert lists to tuples, ints to floats."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(hint)
        if value is None:
            _require(type(None) in options, f"{key} must not be null")
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(key, value, option)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if origin is tuple:
        args = typing.get_args(hint)
        _require(isinstance(value, list | tuple) and len(value) == len(args),
                 f"{key} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(key, v, a) for v, a in zip(value, args, strict=True))
    if hint is bool:
        _require(isinstance(value, bool), f"{key} must be true or false, got {value!r}")
        return value
    if hint is int:
        _require(isinstance(value, int) and not isinstance(value, bool)
                 or isinstance(value, float) and value.is_integer(),
                 f"{key} must be an integer, got {value!r}")
        return int(value)
    if hint is float:
        _require(isinstance(value, int | float) and not isinstance(value, bool),
                 f"{key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        _require(isinstance(value, str), f"{key} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # a bug, not a user error
