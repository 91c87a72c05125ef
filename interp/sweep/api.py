"""Training a sweep spec into its sweep directory, as one call: what ``python -m interp.sweep``
does, shared with the commands that train a sweep of their own (``python -m interp.figures
alpha-sweep`` and ``hu-models``).

    spec = load_spec("tiny-demo")
    print(plan_spec(spec, out, SweepOptions()).describe())   # --dry-run: checks, writes nothing
    print(run_sweep(spec, out, SweepOptions()).describe())   # trains; again: trains nothing
    sweep = interp.Sweep.load(out)

A finished run is skipped, an unfinished one resumed, a missing one made (``runner.py``); a
directory holding another sweep is refused unless ``force``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from interp.errors import warn

if TYPE_CHECKING:
    from interp.config import RunConfig
    from interp.runs import SweepRecord
    from interp.sweep.runner import SweepPlan
    from interp.sweep.spec import SweepSpec


@dataclass(frozen=True)
class SweepOptions:
    """How to train a sweep (the flags of ``python -m interp.sweep``): the torch device
    (None: the trainer's default), local worker processes (None: ``default_workers``),
    ``force`` (replace the sweep the directory holds; runs of equal config are kept), train
    past the resource check, the trainer's compile and matmul precision, no progress bar,
    ``option``: the command's option naming the sweep directory, for messages, and ``ray``:
    train the stacks as Ray tasks (``interp.sweep.ray_backend``) on the cluster at this
    address, "" for a new local instance (None: local worker processes)."""

    device: str | None = None
    workers: int | None = None
    force: bool = False
    skip_resource_check: bool = False
    compile: bool | None = None
    matmul_precision: str = "highest"
    quiet: bool = False
    option: str = "--out"
    ray: str | None = None


@dataclass(frozen=True)
class SweepOutcome:
    """What ``run_sweep`` did: runs in the sweep, runs trained (made or resumed) in how
    many stacks, their model-epochs (an epoch of one run) and the seconds it took."""

    out: Path
    runs: int
    trained: int
    stacks: int
    model_epochs: int
    seconds: float

    def describe(self) -> str:
        """One line, as ``python -m interp.sweep`` prints it."""
        if not self.trained:
            return f"sweep: {self.out} ({self.runs} runs, all finished: nothing to train)"
        rate = self.model_epochs / max(self.seconds, 1e-9)
        return (f"sweep: {self.out} ({self.runs} runs; {self.trained} trained in {self.stacks} "
                f"stack(s), {self.seconds:.1f} s, {rate:.0f} model-epochs/s)")


@dataclass(frozen=True)
class _Prepared:
    record: SweepRecord  # the spec's
    stored: SweepRecord | None  # the sweep the directory holds
    plan: SweepPlan
    fits: Callable[[list[RunConfig]], bool]  # whether a stack fits a worker's memory
    workers: int

    @property
    def writes(self) -> bool:
        """Whether training the sweep writes anything: a run to train, or its sweep.json."""
        return bool(self.plan.units) or self.stored is None or (
            self.stored.to_dict() != self.record.to_dict())


def _prepare(spec: SweepSpec, out: Path, options: SweepOptions) -> _Prepared:
    """The spec's runs checked against ``out`` and this machine, and planned; writes nothing.
    ``out`` need not be writable when there is nothing to write (every run finished)."""
    from interp.cli import check_output_dir
    from interp.runs import check_sweep_dir
    from interp.sweep.runner import check_plan_resources, default_workers, memory_fits, plan_sweep
    from interp.train.loop import resolve_device

    runs = spec.runs()
    configs = spec.configs(runs)
    fix = f"choose another {options.option}"
    check_output_dir(out, fix, writable=False)
    device = str(resolve_device(options.device))
    if options.ray is None:
        workers = options.workers or default_workers(options.device)
    else:  # a local Ray instance trains a stack a core; a cluster's nodes are unknown here
        from interp.sweep.ray_backend import local_cpus

        workers = 1 if options.ray else local_cpus()
    record = spec.record(runs)
    stored = check_sweep_dir(out, record, force=options.force, option=options.option)
    fits = memory_fits(device, workers)
    plan = plan_sweep(out, [run.name for run in runs], configs, force=options.force, fits=fits)
    prepared = _Prepared(record, stored, plan, fits, workers)
    if prepared.writes:
        check_output_dir(out, fix)
    check_plan_resources(plan, device, skip=options.skip_resource_check)
    return prepared


def plan_spec(spec: SweepSpec, out: Path, options: SweepOptions) -> SweepPlan:
    """What training ``spec`` into the sweep directory ``out`` takes (``--dry-run``); refuses
    (UserError) as ``run_sweep`` would, and writes nothing."""
    return _prepare(spec, Path(out), options).plan


def run_sweep(spec: SweepSpec, out: Path, options: SweepOptions) -> SweepOutcome:
    """Train the runs of ``spec`` into the sweep directory ``out`` (made if absent; its
    sweep.json written first), their stacks on local worker processes or Ray tasks;
    UserError before anything is written if ``out`` holds another sweep (unless
    ``options.force``), Ray cannot be reached, or a stack cannot fit this machine (unless
    ``options.skip_resource_check``). Runs ``out`` held that the spec does not name are
    left in place, with a warning. A sweep whose runs have all finished is left untouched
    (it may be read-only)."""
    from interp.runs import open_sweep_dir
    from interp.sweep.runner import plan_sweep, train_sweep, worker_devices
    from interp.train.loop import TrainOptions

    out = Path(out)
    prepared = _prepare(spec, out, options)
    names, configs = prepared.plan.names, prepared.plan.configs
    if not prepared.writes:
        _warn_left(out, prepared.stored, names)
        return SweepOutcome(out, len(names), 0, 0, 0, 0.0)
    ray = options.ray if prepared.plan.units else None  # only sweep.json to write: no Ray
    with _backend(ray):  # before anything is written: Ray may be unreachable
        lock, stored = open_sweep_dir(out, prepared.record, force=options.force,
                                      option=options.option)
        with lock:
            _warn_left(out, stored, names)
            plan = plan_sweep(out, names, configs, force=options.force,  # now that it is ours
                              fits=prepared.fits)
            if not plan.units:
                return SweepOutcome(out, len(names), 0, 0, 0, 0.0)
            train = TrainOptions(device=options.device, force=options.force, quiet=True,
                                 compile=options.compile,
                                 matmul_precision=options.matmul_precision)
            start = time.monotonic()
            epochs = sum(plan.configs[unit.runs[0]].schedule.epochs * len(unit.runs)
                         - sum(unit.starts) for unit in plan.units)
            if ray is None:
                train_sweep(plan, train, worker_devices(options.device, prepared.workers),
                            quiet=options.quiet)
            else:
                from interp.sweep.ray_backend import train_on_ray

                train_on_ray(plan, train, quiet=options.quiet)
            seconds = time.monotonic() - start
    return SweepOutcome(out, len(names), sum(len(unit.runs) for unit in plan.units),
                        len(plan.units), epochs, seconds)


def _backend(ray: str | None) -> AbstractContextManager[None]:
    """Ray connected for the training (``ray``; "" starts a local instance), else nothing."""
    if ray is None:
        return nullcontext()
    from interp.sweep.ray_backend import ray_session

    return ray_session(ray or None)


def _warn_left(out: Path, stored: SweepRecord | None, names: tuple[str, ...]) -> None:
    """Warn of the runs of the sweep ``out`` held (``stored``) that are not ``names``."""
    from interp.runs import listed

    left = sorted({r.name for r in stored.runs} - set(names)) if stored else []
    if left:
        warn(f"{len(left)} run(s) of the sweep {out} held are not in this spec and are left "
             f"in place: {listed(left)}")
