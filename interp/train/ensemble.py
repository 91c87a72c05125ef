"""Many runs in one process: ``train_ensemble`` trains any list of runs, as few stacks as
their shapes allow (``interp.train.stacks.group_into_stacks``), one stack after another,
each through the one training loop (``interp.train.loop.train_stack``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from interp.config import RunConfig
from interp.errors import UserError
from interp.train.loop import TrainOptions, train_stack
from interp.train.stacks import group_into_stacks


def train_ensemble(configs: Sequence[RunConfig] | None, out_dirs: Sequence[str | Path],
                   options: TrainOptions | None = None) -> list[Path]:
    """Train the runs ``configs`` into ``out_dirs`` (one each); returns the paths in order.

    Runs that can share a stack train together; the others form stacks of their own. With
    ``options.resume``, ``configs`` may be None (each run's own run.json).
    """
    from interp.runs import Run

    out_dirs = [Path(d) for d in out_dirs]
    if len(set(out_dirs)) != len(out_dirs):
        raise UserError("two runs of the ensemble would share a run directory")
    if configs is None:
        grouping = [Run.load(path).config for path in out_dirs]
    else:
        grouping = list(configs)
    if not (options and options.resume):  # a refusal anywhere trains none of the stacks
        from interp.runs import RunWriter

        for out_dir in out_dirs:
            RunWriter.check_can_create(out_dir, force=bool(options and options.force))
    for indices in group_into_stacks(grouping):
        train_stack(None if configs is None else [configs[i] for i in indices],
                    [out_dirs[i] for i in indices], options)
    return out_dirs
