"""Which runs can train together as one stack, and how a list of runs splits into stacks.

Runs stack when their weights have the same shapes and they step in lock-step: the same
model architecture, task family, loss, schedule and optimiser kind. They may differ in
``VARYING_KEYS``: seeds, data seed, training fraction or size (padding rows of weight zero),
the learning-rate settings, weight decay, betas, SGD momentum, warm-up, output scale alpha
and how the weight decay follows it (``objective.alpha_weight_decay``), the label scale, the
toy model's embedding learning-rate factor and weight decay, the initialisation scale, the
committee machine's solution mix, noise scales, filter strengths and whether they take the
orthogonal gradient. With minibatches
(``optim.batch_size``) the training set size (``task.frac``, ``task.n_train``) is shared
too: the runs take the same number of steps per epoch. Everything else is a ``stack key``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interp.config import RunConfig
from interp.errors import UserError

VARYING_KEYS = frozenset({
    "task.frac", "task.data_seed", "task.n_train", "task.n_test", "task.teacher_seed",
    "model.seed", "model.init_scale", "model.embedding_lr_factor",
    "model.embedding_weight_decay", "model.solution_mix",
    "optim.lr", "optim.weight_decay", "optim.betas", "optim.warmup_steps", "optim.momentum",
    "optim.update_noise", "optim.weight_noise", "optim.filter_alpha", "optim.filter_lamb",
    "optim.orthogonal_grad",
    "schedule.seed", "objective.alpha", "objective.alpha_weight_decay", "objective.label_scale",
})


def varying_keys(config: RunConfig) -> frozenset[str]:
    """The keys in which runs stacked with ``config`` may differ."""
    if config.optim.batch_size is None:
        return VARYING_KEYS
    return VARYING_KEYS - {"task.frac", "task.n_train"}


def settings(config: RunConfig) -> dict[str, Any]:
    """``section.key`` -> value (``RunConfig.flat``), the preset label left out."""
    return {key: value for key, value in config.flat().items() if key != "preset"}


def stack_key(config: RunConfig) -> tuple:
    """What runs of one stack share: every config value outside ``VARYING_KEYS``."""
    return tuple(sorted((key, repr(value)) for key, value in settings(config).items()
                        if key not in varying_keys(config)))


def check_stackable(configs: Sequence[RunConfig]) -> None:
    """UserError naming the first key in which a run differs from the first run, unless the
    runs ``configs`` can train as one stack."""
    if not configs:
        raise UserError("a stack needs at least one run")
    first, varying = settings(configs[0]), varying_keys(configs[0])
    for index, config in enumerate(configs[1:], start=1):
        values = settings(config)
        differing = next((key for key in sorted(first.keys() | values.keys())
                          if key not in varying and first.get(key) != values.get(key)),
                         None)
        if differing is not None:
            raise UserError(f"run {index} cannot share a stack with run 0: {differing} is "
                            f"{values.get(differing)!r}, not {first.get(differing)!r} (runs of "
                            f"a stack may differ only in {', '.join(sorted(varying))}); "
                            "train them as separate stacks (interp.train.stacks."
                            "group_into_stacks)")


def group_into_stacks(configs: Sequence[RunConfig]) -> list[list[int]]:
    """The indices of ``configs`` split into stacks (runs with one ``stack_key``), in
    order of first appearance."""
    groups: dict[tuple, list[int]] = {}
    for index, config in enumerate(configs):
        groups.setdefault(stack_key(config), []).append(index)
    return list(groups.values())
