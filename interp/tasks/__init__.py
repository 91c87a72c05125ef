"""Data sets: ``build_task(config)`` turns a task config into a ``Task``."""

from interp.config import ModularTask, PermutationTask, TaskConfig
from interp.tasks.base import Task, random_split

__all__ = ["Task", "build_task", "random_split"]


def build_task(config: TaskConfig) -> Task:
    """The data set and split a task config describes."""
    if isinstance(config, ModularTask):
        from interp.tasks.modular import modular_task

        return modular_task(config)
    if isinstance(config, PermutationTask):
        from interp.tasks.permutations import permutation_task

        return permutation_task(config)
    raise TypeError(f"no builder for task config {type(config).__name__}")
