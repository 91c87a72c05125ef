"""Training a sweep's runs into its sweep directory, on this machine.

``plan_sweep`` looks at each run's directory: a finished run (``Run.is_complete``) is
skipped, an unfinished one resumes from its resume state, a missing one is made. The runs to
train are grouped into stacks (``interp.train.stacks.group_into_stacks``: runs that share
parameter shapes train together), the resuming ones apart from the new ones (one call of
``train_stack`` either resumes or makes all its runs), and a stack too large for the memory
a worker has is halved until it fits (``interp.resources.estimate_resources``).
``train_sweep`` trains the stacks in this process, or with ``workers`` > 1 on that many local
worker processes (spawned; each takes whole stacks from a queue and uses cores / workers
torch threads; with several GPUs each worker has its own), with one progress bar counting
runs and model-epochs (an epoch of one run).
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import queue
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.config import RunConfig
from interp.errors import UserError, warn
from interp.runs import Run, RunWriter, is_run_dir
from interp.train.loop import TrainOptions, train_stack
from interp.train.stacks import group_into_stacks

REPORT_EVERY_S = 0.1  # how often a stack reports its epoch to the progress bar


@dataclass(frozen=True)
class Unit:
    """One stack to train: indices of its runs in the sweep, whether they resume (else they
    are made), and the epochs each has done (its latest checkpoint; 0 for a new run)."""

    runs: tuple[int, ...]
    resume: bool
    starts: tuple[int, ...]


@dataclass(frozen=True)
class SweepPlan:
    """What training the sweep in ``out`` takes: its runs (names and configs, in the spec's
    order), those already finished, and the stacks that train the others."""

    out: Path
    names: tuple[str, ...]
    configs: tuple[RunConfig, ...]
    finished: tuple[int, ...]
    units: tuple[Unit, ...]

    def paths(self, unit: Unit) -> list[Path]:
        return [self.out / self.names[i] for i in unit.runs]

    def unit_configs(self, unit: Unit) -> list[RunConfig]:
        return [self.configs[i] for i in unit.runs]

    @property
    def model_epochs(self) -> int:
        """Epochs of every run together."""
        return sum(config.schedule.epochs for config in self.configs)

    def describe(self) -> str:
        """The runs and their stacks, as ``--dry-run`` prints them."""
        resuming = sum(len(u.runs) for u in self.units if u.resume)
        created = sum(len(u.runs) for u in self.units if not u.resume)
        lines = [f"{len(self.names)} runs -> {self.out}: {len(self.finished)} finished, "
                 f"{resuming} to resume, {created} to create, in {len(self.units)} "
                 f"stack{'s' if len(self.units) != 1 else ''}"]
        for number, unit in enumerate(self.units, start=1):
            lines.append(f"stack {number}: {len(unit.runs)} run{'s' if len(unit.runs) > 1 else ''}"
                         f" ({'resume' if unit.resume else 'create'})")
            lines += [f"  {self.names[i]}" for i in unit.runs]
        return "\n".join(lines)


def run_state(path: Path, config: RunConfig, force: bool) -> tuple[str, int]:
    """("finished" | "resume" | "create", epochs done) of the run ``config`` in ``path``.
    UserError if ``path`` holds another run (unless ``force``: it is then replaced) or
    anything a run does not write."""
    if not is_run_dir(path):
        RunWriter.check_can_create(path, force=force)
        return "create", 0
    run = Run.load(path)
    stored, given = run.config.flat(), config.flat()
    differing = [key for key in sorted(stored.keys() | given.keys())
                 if stored.get(key) != given.get(key)]
    if differing:
        if not force:
            raise UserError(f"{path} holds a different run (its config differs in "
                            f"{', '.join(differing[:5])}); pass --force to replace it, or "
                            "choose another --out")
        RunWriter.check_can_create(path, force=True)
        return "create", 0
    if run.is_complete:
        return "finished", config.schedule.epochs
    return "resume", (run.checkpoint_epochs or [0])[-1]


def plan_sweep(out: Path, names: Sequence[str], configs: Sequence[RunConfig], *,
               force: bool = False, fits: Callable[[list[RunConfig]], bool] | None = None
               ) -> SweepPlan:
    """The plan for training ``configs`` into ``out / names`` (see the module docstring);
    ``fits(configs)``: whether a stack of ``configs`` fits a worker's memory (default: any
    does). Reads the run directories, writes nothing."""
    out = Path(out)
    states = [run_state(out / name, config, force)
              for name, config in zip(names, configs, strict=True)]
    todo = [i for i, (state, _) in enumerate(states) if state != "finished"]
    units = []
    for stack in group_into_stacks([configs[i] for i in todo]):
        for resume in (True, False):
            part = [todo[j] for j in stack if (states[todo[j]][0] == "resume") == resume]
            for runs in _split(part, configs, fits) if part else []:
                units.append(Unit(tuple(runs), resume, tuple(states[i][1] for i in runs)))
    finished = tuple(i for i, (state, _) in enumerate(states) if state == "finished")
    return SweepPlan(out, tuple(names), tuple(configs), finished, tuple(units))


def _split(runs: list[int], configs: Sequence[RunConfig],
           fits: Callable[[list[RunConfig]], bool] | None) -> list[list[int]]:
    """``runs`` (one stack), halved until each part fits (a single run always does here:
    ``check_plan_resources`` refuses it if it cannot)."""
    if len(runs) == 1 or fits is None or fits([configs[i] for i in runs]):
        return [runs]
    half = (len(runs) + 1) // 2
    return _split(runs[:half], configs, fits) + _split(runs[half:], configs, fits)


def memory_fits(device: str, workers: int) -> Callable[[list[RunConfig]], bool]:
    """Whether a stack fits the memory one of ``workers`` worker processes has: the host
    memory available now shared among them, and on CUDA the device's free memory shared
    among the workers that use it."""
    from interp.resources import device_memory_available, estimate_resources, memory_available

    host = memory_available() // workers
    free = device_memory_available(device) if device.startswith("cuda") else None
    gpu = None if free is None else free // math.ceil(workers / max(1, _cuda_count()))

    def fits(configs: list[RunConfig]) -> bool:
        estimate = estimate_resources(configs, device)
        return estimate.memory_bytes <= host and (gpu is None or estimate.device_bytes <= gpu)
    return fits


def check_plan_resources(plan: SweepPlan, device: str, skip: bool) -> None:
    """``interp.resources.check_resources`` for each stack of the plan: a one-line UserError
    for the first that cannot fit (with ``skip``, a warning for each)."""
    from interp.resources import OVERRIDE_FLAG, check_resources

    for unit in plan.units:
        estimate = check_resources(plan.unit_configs(unit), plan.out, device, override=skip)
        for refusal in estimate.refusals:
            warn(refusal.split("; ")[0] + f" ({OVERRIDE_FLAG}: training anyway)")


def default_workers(device: str | None) -> int:
    """Worker processes when --workers is not given: one per GPU when CUDA has several and
    no single device is asked for; otherwise 1.

    One process on a CPU: a stack already turns its runs into a few large kernels that
    torch spreads over every core, while each further worker costs its own start (imports:
    seconds) and runtime memory (~600 MB, ``interp.resources``). On this project's 2-core
    CPU two workers of one thread measured the same as one of two threads within the noise
    of the shared machine: Liu's toy model, 2 stacks of 8 runs: 1 300 model-epochs/s with
    one, 1 440 with two; ``tiny``, 2 stacks of 4: 75 with one, 69 with two."""
    count = _cuda_count()
    return count if count > 1 and device in (None, "cuda") else 1


def worker_devices(device: str | None, workers: int) -> list[str | None]:
    """The device of each worker: ``device`` when given (None: the trainer's default),
    else with several GPUs worker i uses cuda:(i mod GPUs)."""
    count = _cuda_count()
    if device in (None, "cuda") and count > 1:
        return [f"cuda:{i % count}" for i in range(workers)]
    return [device] * workers


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def train_sweep(plan: SweepPlan, options: TrainOptions, devices: Sequence[str | None],
                quiet: bool = False) -> None:
    """Train the plan's stacks: in this process when ``devices`` (one per worker) has one
    entry or there is one stack, else on ``len(devices)`` spawned worker processes. Each
    stack's runs are made or resumed as the plan says; ``options``: how to train (its
    ``resume`` and ``on_epoch`` are set per stack)."""
    progress = Progress(plan, quiet)
    try:
        workers = min(len(devices), len(plan.units))
        if workers <= 1:
            for index, unit in enumerate(plan.units):
                report = Throttled(lambda epoch, index=index: progress.report(index, epoch))
                train_unit(plan.unit_configs(unit), plan.paths(unit), unit.resume,
                            dataclasses.replace(options, device=devices[0] or options.device,
                                                on_epoch=report))
                progress.finish(index)
        else:
            _train_on_workers(plan, options, devices[:workers], progress)
    finally:
        progress.close()


def train_unit(configs: list[RunConfig], paths: list[Path], resume: bool,
               options: TrainOptions) -> None:
    """Train one stack of a plan: its runs made (``resume`` False) or resumed, quietly (the
    sweep has its own progress bar)."""
    train_stack(configs, paths, dataclasses.replace(options, resume=resume, quiet=True))


def _train_on_workers(plan: SweepPlan, options: TrainOptions, devices: Sequence[str | None],
                      progress: Progress) -> None:
    """Train the plan's stacks on one spawned process per entry of ``devices``; the first
    error (after the stacks under way end; the rest are not started) is raised."""
    context = multiprocessing.get_context("spawn")
    epochs, device_queue = context.Queue(), context.Queue()
    for device in devices:
        device_queue.put(device)
    threads = max(1, len(os.sched_getaffinity(0)) // len(devices))
    error: BaseException | None = None
    with ProcessPoolExecutor(len(devices), mp_context=context, initializer=_start_worker,
                             initargs=(epochs, device_queue, threads, os.getpid())) as pool:
        futures = {pool.submit(_train_in_worker, index, plan.unit_configs(unit),
                               plan.paths(unit), unit.resume, options): index
                   for index, unit in enumerate(plan.units)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=REPORT_EVERY_S, return_when=FIRST_COMPLETED)
            _drain(epochs, progress)
            for future in done:
                if future.cancelled():
                    continue
                failure = future.exception()
                if failure is None:
                    progress.finish(futures[future])
                elif error is None:
                    error = failure
                    for other in pending:
                        other.cancel()
    if isinstance(error, BrokenProcessPool):
        raise UserError("a sweep worker process died (killed, or out of memory) while "
                        "training a stack; rerun the command: finished runs are kept and the "
                        "others resume")
    if error is not None:
        raise error


def _drain(epochs: Any, progress: Progress) -> None:
    while True:
        try:
            index, epoch = epochs.get_nowait()
        except queue.Empty:
            return
        progress.report(index, epoch)


# A worker process's own settings, from _start_worker: where it sends its epochs, its device.
_worker: dict[str, Any] = {}


def _start_worker(epochs: Any, devices: Any, threads: int, parent: int) -> None:
    """Set up a worker process: die with the sweep process (a killed sweep leaves no
    trainers holding its runs' locks), use ``threads`` torch threads, take a device."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != parent:  # the sweep died before prctl took effect
            os._exit(1)
    import torch

    torch.set_num_threads(threads)
    _worker.update(epochs=epochs, device=devices.get())


def _train_in_worker(index: int, configs: list[RunConfig], paths: list[Path], resume: bool,
                     options: TrainOptions) -> int:
    """Train one stack in a worker process, reporting its epochs to the sweep process."""
    report = Throttled(lambda epoch: _worker["epochs"].put((index, epoch)))
    device = _worker["device"] or options.device
    train_unit(configs, paths, resume,
                dataclasses.replace(options, device=device, on_epoch=report))
    return index


class Throttled:
    """An ``on_epoch`` callback passing the epoch on at most every ``REPORT_EVERY_S``."""

    def __init__(self, send: Callable[[int], None]):
        self.send, self.last = send, time.monotonic()

    def __call__(self, epoch: int) -> None:
        now = time.monotonic()
        if now - self.last >= REPORT_EVERY_S:
            self.send(epoch)
            self.last = now


class Progress:
    """The sweep's progress bar: model-epochs done (a run's epochs count from its resume
    point; while a stack's lagging runs catch up, its others stay where they are), and runs
    finished."""

    def __init__(self, plan: SweepPlan, quiet: bool):
        from tqdm.auto import tqdm

        self.plan, self.runs_done = plan, len(plan.finished)
        self.reached: list[int | None] = [self._done(unit, 0) for unit in plan.units]
        done = sum(plan.configs[i].schedule.epochs for i in plan.finished) + sum(self.reached)
        self.bar = tqdm(total=plan.model_epochs, initial=done, unit="model-epoch",
                        disable=quiet, dynamic_ncols=True, desc=self._desc())

    def _desc(self) -> str:
        return f"runs {self.runs_done}/{len(self.plan.names)}"

    def _done(self, unit: Unit, epoch: int) -> int:
        """Model-epochs of ``unit`` done once its stack reports ``epoch``."""
        end = self.plan.configs[unit.runs[0]].schedule.epochs
        return sum(min(end, max(start, epoch)) for start in unit.starts)

    def report(self, index: int, epoch: int) -> None:
        if self.reached[index] is None:  # the stack has finished; a late report
            return
        done = self._done(self.plan.units[index], epoch)
        self.bar.update(max(0, done - self.reached[index]))
        self.reached[index] = max(done, self.reached[index])

    def finish(self, index: int) -> None:
        unit = self.plan.units[index]
        end = self.plan.configs[unit.runs[0]].schedule.epochs
        self.bar.update(end * len(unit.runs) - self.reached[index])
        self.reached[index] = None
        self.runs_done += len(unit.runs)
        self.bar.set_description(self._desc())

    def close(self) -> None:
        self.bar.close()
