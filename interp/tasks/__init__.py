"""Data sets: ``build_task(config)`` turns a task config into a ``Task``."""

from __future__ import annotations

import torch

from interp.config import (
    DigitsTask,
    ModelConfig,
    ModularTask,
    PermutationTask,
    PolynomialTask,
    TaskConfig,
    TeacherTask,
    ToyAdditionTask,
)
from interp.tasks.base import Task, random_split

__all__ = ["Task", "build_task", "random_split"]


def build_task(config: TaskConfig, model: ModelConfig | None = None,
               stored: dict[str, torch.Tensor] | None = None) -> Task:
    """The data set and split a task config describes.

    Randomly generated data sets (polynomial, teacher) are drawn from the config's seeds,
    or restored from ``stored`` (what a run directory kept of them). ``model`` is needed
    only by labels defined through a model (the polynomial task's NTK eigenvectors).
    """
    if isinstance(config, ModularTask):
        from interp.tasks.modular import modular_task

        return modular_task(config)
    if isinstance(config, PermutationTask):
        from interp.tasks.permutations import permutation_task

        return permutation_task(config)
    if isinstance(config, PolynomialTask):
        from interp.tasks.polynomial import polynomial_task

        return polynomial_task(config, model, stored)
    if isinstance(config, TeacherTask):
        from interp.tasks.teacher import teacher_task

        return teacher_task(config, stored)
    if isinstance(config, DigitsTask):
        from interp.tasks.digits import digits_task

        return digits_task(config)
    if isinstance(config, ToyAdditionTask):
        from interp.tasks.toy import toy_addition_task

        return toy_addition_task(config)
    raise TypeError(f"no builder for task config {type(config).__name__}")
