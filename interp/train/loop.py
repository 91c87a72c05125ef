"""The training loop: a stack of M >= 1 runs of one architecture, trained together in one
process; a single run is a stack of one.

The loop is the TransformerLens grokking demo's (full batch, AdamW, cross-entropy on the
last position in float64), generalised to minibatches, warm-up, MSE, the output scale alpha,
linearised training and the optimiser variants, and to M runs at once: their weights are
stacked into [M, ...] tensors and one call of the model's stacked stateless forward
(``interp.models.stacked_output_fn``: ``torch.vmap`` for M > 1) computes every run's outputs,
a few large kernels instead of M times many small ones, which is what a GPU needs. Each run
keeps what makes it itself, so it ends where training it alone would, up to float rounding:

- its weights start from its own seeded initialisation (``build_model``);
- its data is its own task's split (runs with fewer rows are padded with rows of weight
  zero), its loss its own mean, so its gradient is its own;
- it trains what ``interp.train.objective`` defines, with its own alpha and theta_0;
- its optimiser settings, warm-up, parameter groups and noise are its own
  (``StackedOptimizer``, ``StackedVariants``: per-run [M] hyper-parameters, per-run
  generators); its minibatch order comes from its own generator.

Which runs can share a stack: ``interp.train.stacks``. Each run writes its own, normal run
directory (run.json, split, metrics, checkpoints, and its resume state in the single-run
format), so any run of a stack can be continued alone and a killed stack resumes; runs
whose state is behind the others' (the kill came while the states were being written) first
catch up on their own. The complete training state is saved atomically at every checkpoint
and at least every ``resume_every_s`` seconds, and a resumed run reaches the same weights,
bit for bit on CPU, as an uninterrupted one.

Every evaluation of softmax classifiers (class targets, loss cross_entropy or stablemax)
also records Prieto et al.'s numerical-stability diagnostics (``interp.analysis.stability``):
``softmax_collapse`` and ``grad_weight_cosine``, the latter from the gradient of the training
loss on the whole training set: the evaluation step's own gradient in full-batch training,
else one computed apart (``torch.autograd.grad``: the training state, the gradient buffer
included, is untouched).

A run whose loss becomes NaN or infinite does not disturb the others (runs share no weights
and each loss reaches only its own): its metrics record null from then on, and it trains on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from interp.analysis.stability import grad_weight_cosine, softmax_collapse
from interp.config import RunConfig
from interp.errors import UserError, warn
from interp.files import reserve_open_files
from interp.models import build_model, parameter_groups, stacked_output_fn, stateless_output_fn
from interp.runs import PREVIOUS_RESUME_FILE, RESUME_FILE, Run, RunWriter, load_weights_into
from interp.tasks import build_task
from interp.tasks.base import Task
from interp.train.backend import compile_outputs, should_compile, training_backend
from interp.train.flat import FlatLayout
from interp.train.losses import StackedRows
from interp.train.measures import evaluation_measures
from interp.train.objective import StackedObjective, learning_rate_scale, weight_decay_scale
from interp.train.optim import RunOptimizer, StackedOptimizer, build_optimizer
from interp.train.resume import TrainingState, check_training_state, pack_state, unpack_state
from interp.train.stacks import check_stackable
from interp.train.variants import StackedVariants, variants_active


@dataclass(frozen=True)
class TrainOptions:
    """How to run (not what to compute): none of these change the results beyond float
    rounding. ``compile``: torch.compile the fast path's outputs (CUDA graphs on CUDA;
    opt-in, ``interp.train.backend.should_compile``);
    ``matmul_precision``: "highest" (float32) unless reduced precision is opted into (see
    ``interp.train.backend``). ``on_epoch``: called with each finished epoch's number
    (progress reporting, benchmarks)."""

    device: str | None = None
    resume: bool = False
    force: bool = False
    quiet: bool = False
    fast: bool = True
    compile: bool | None = None
    matmul_precision: str = "highest"
    resume_every_s: float = 60.0
    on_epoch: Callable[[int], None] | None = None


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(name: str | None) -> torch.device:
    """The torch device for ``name`` (default: CUDA when available): cpu, cuda or cuda:N
    (N below the number of GPUs) when CUDA is available, mps when available; UserError
    naming the devices this machine has for anything else (tpu, meta, cuda:7, ...)."""
    name = name or default_device()
    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = torch.backends.mps.is_available()
    usable = ", ".join(["cpu", *(["cuda", f"cuda:0 to cuda:{cuda - 1}" if cuda > 1 else "cuda:0"]
                                 if cuda else []), *(["mps"] if mps else [])])
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps") or (
            device.type != "cuda" and device.index is not None):
        raise UserError(f"--device {name!r} is not a device interp can use here; use one "
                        f"of: {usable}")
    if device.type == "cuda" and not cuda:
        raise UserError(f"--device {name}: CUDA is not available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= cuda:
        raise UserError(f"--device {name}: this machine has {cuda} CUDA device(s); use one "
                        f"of: {usable}")
    if device.type == "mps" and not mps:
        raise UserError(f"--device {name}: MPS (Apple GPU) is not available here; use "
                        "--device cpu")
    return device


def runtime_info(device: torch.device, options: TrainOptions, compiled: bool, runs: int
                 ) -> dict[str, str | bool | int]:
    """How a run was trained, for its run.json (not part of its config)."""
    info: dict[str, str | bool | int] = {"device": str(device), "compile": compiled,
                                         "matmul_precision": options.matmul_precision}
    if runs > 1:
        info["stacked_runs"] = runs
    return info


def _compiles(config: RunConfig, device: torch.device, options: TrainOptions) -> bool:
    fast_path = options.fast and stateless_output_fn(config.model) is not None
    return should_compile(options.compile, device, fast_path)


# Bytes of one run's activations (one forward over its larger data split) that a CPU core's
# caches hold. Beyond it a vmap over M runs streams M runs' activations through memory at
# every elementwise operation, where the runs one after another each stay in cache: the
# committee machine (Kumar et al., 4 MB a run) steps at 0.8x the one-at-a-time pace
# vmapped on this project's 2-core CPU, Liu et al.'s toy model (0.15 MB) at 2.8x.
CPU_VECTORIZE_LIMIT = 1 << 20


def vectorizes(config: RunConfig, task: Task, device: torch.device) -> bool:
    """Whether the stack's forward is one vmap over its runs (always on GPUs, where a small
    model's step is all kernel-launch overhead; on CPU while one run's activations fit its
    caches, ``CPU_VECTORIZE_LIMIT``) rather than the runs one after another."""
    if device.type != "cpu":
        return True
    rows = max(len(task.train_idx), len(task.test_idx))
    return config.model.activation_bytes(task.sizes) * rows <= CPU_VECTORIZE_LIMIT


def train(config: RunConfig | None, out_dir: str | Path,
          options: TrainOptions = TrainOptions()) -> Path:
    """Train ``config`` into ``out_dir`` (a new run, or a resumed one); returns the run path.

    With ``options.resume``, ``config`` may be None (taken from the run's run.json);
    otherwise it must equal the stored one. A stack of one: ``train_stack``.
    """
    return train_stack(None if config is None else [config], [out_dir], options)[0]


def train_stack(configs: Sequence[RunConfig] | None, out_dirs: Sequence[str | Path],
                options: TrainOptions | None = None) -> list[Path]:
    """Train the runs ``configs`` into ``out_dirs`` (one each) as one stack; returns the
    paths. The runs must be able to share a stack (``interp.train.stacks.check_stackable``:
    a one-line error names the first key that differs).

    With ``options.resume``, ``configs`` may be None (each run's own run.json); otherwise
    they must equal the stored ones. Nothing is written unless every run can start.
    """
    options = options or TrainOptions()
    out_dirs = [Path(d) for d in out_dirs]
    if len(set(out_dirs)) != len(out_dirs):
        raise UserError("two runs of the stack would share a run directory")
    if configs is not None and len(configs) != len(out_dirs):
        raise ValueError(f"{len(configs)} configs for {len(out_dirs)} run directories")
    device = resolve_device(options.device)
    if len(out_dirs) > 1:
        reserve_open_files(len(out_dirs))  # each run's writer holds its lock open
    members: list[_Member] = []
    try:
        if options.resume:
            given = list(configs) if configs is not None else [None] * len(out_dirs)
            for out_dir, config in zip(out_dirs, given, strict=True):
                writer, config = RunWriter.reopen(out_dir, config)
                members.append(_Member(config, None, writer))
            check_stackable([member.config for member in members])
            for member in members:
                member.task = Run.load(member.writer.path).task()
        else:
            members = _create(list(configs), out_dirs, device, options)
        with training_backend(device, options.matmul_precision):
            _train(members, device, options, stop_epoch=members[0].config.schedule.epochs)
    finally:
        for member in members:
            member.writer.close()
    return out_dirs


def _create(configs: list[RunConfig], out_dirs: list[Path], device: torch.device,
            options: TrainOptions) -> list[_Member]:
    """New runs: checked (a config built in Python with a step budget must be ``resolved``),
    every run directory locked before any is touched (a refusal replaces none of them), then
    created."""
    for config in configs:
        config.validate()
    check_stackable(configs)
    for out_dir in out_dirs:
        RunWriter.check_can_create(out_dir, force=options.force)
    tasks = [build_task(config.task, config.model).with_label_scale(
        config.objective.label_scale) for config in configs]  # as Run.task() rebuilds them
    runtime = runtime_info(device, options, _compiles(configs[0], device, options),
                           len(configs))
    members = []
    try:
        for config, task, out_dir in zip(configs, tasks, out_dirs, strict=True):
            members.append(_Member(config, task, RunWriter.reserve(out_dir, force=options.force)))
        for member in members:
            task = member.task
            RunWriter.create(member.writer.path, member.config, task.train_idx, task.test_idx,
                             stored=task.stored, runtime=runtime, reserved=member.writer)
    except BaseException:
        for member in members:
            member.writer.close()
        raise
    return members


@dataclass
class _Member:
    """One run of the stack: its config, data, run directory and training RNG."""

    config: RunConfig
    task: Task | None  # None until the run's task is built
    writer: RunWriter
    generator: torch.Generator = field(default_factory=torch.Generator)


def _train(members: list[_Member], device: torch.device, options: TrainOptions,
           stop_epoch: int) -> None:
    """Train ``members`` from their saved states (or initialisation) up to ``stop_epoch``."""
    states = [_load_state(m, device) for m in members]
    epochs = [0 if state is None else state.epoch for state in states]
    if len(set(epochs)) > 1:  # a kill while the resume states were being written: the runs
        # saved already step back to their previous state, and the whole stack goes on from
        # there, computing what it would have computed uninterrupted
        for i, member in enumerate(members):
            if epochs[i] > min(epochs):
                before = _load_state(member, device, previous=True)
                if (0 if before is None else before.epoch) == min(epochs):
                    states[i], epochs[i] = before, min(epochs)
    if len(set(epochs)) > 1:  # states further apart: the runs behind catch up on their own
        behind = [m for m, epoch in zip(members, epochs, strict=True) if epoch < max(epochs)]
        _train(behind, device, options, stop_epoch=max(epochs))
        states = [_load_state(m, device) for m in members]
    for member, state in zip(members, states, strict=True):
        member.generator.manual_seed(member.config.schedule.seed)
        if state is not None:
            member.generator.set_state(state.rng)
        member.writer.truncate_metrics(before_epoch=0 if state is None else state.epoch)
    loop = _Loop(members, states, device, options)
    start = states[0]
    if start is None:
        loop.save_checkpoints(0)
    loop.run(0 if start is None else start.epoch, 0 if start is None else start.step,
             stop_epoch)


def _load_state(member: _Member, device: torch.device, previous: bool = False
                ) -> TrainingState | None:
    """The run's resume state (or the one before it), checked against the objects that
    would resume it alone (it is in the single-run format); None if it has none yet (with a
    warning if its checkpoints show it had got further: its resume state was lost, and it
    restarts from epoch 0)."""
    saved = member.writer.load_resume_state(previous)
    if saved is None:
        if not previous and any(epoch > 0 for epoch
                                in Run.load(member.writer.path).checkpoint_epochs):
            warn(f"{member.writer.path} has checkpoints but no resume state ({RESUME_FILE}); "
                 "training restarts from epoch 0")
        return None
    source = member.writer.path / (PREVIOUS_RESUME_FILE if previous else RESUME_FILE)
    state = unpack_state(*saved, device, source)
    config = member.config
    model = build_model(config.model, member.task, device)
    optimizer = build_optimizer(config.optim, parameter_groups(config.model, model))
    check_training_state(state, model, optimizer, torch.Generator(), config.optim,
                         config.schedule, source)
    return state


class _StackedWeights:
    """The stack's weights: the trainable ones as one flat leaf [M, P] (``interp.train.flat``,
    in optimiser order), the rest (frozen biases, buffers) stacked once; ``initial``: theta_0
    stacked, for centred and linearised objectives (else None)."""

    def __init__(self, members: list[_Member], states: list[TrainingState | None],
                 template: torch.nn.Module, trainable: list[str], device: torch.device):
        self.names = list(template.state_dict())
        weights = [self._start_weights(m, s, template, device)
                   for m, s in zip(members, states, strict=True)]
        self.layout = FlatLayout(tuple(trainable),
                                 tuple(weights[0][name].shape for name in trainable))
        self.flat = self.layout.stack(weights).requires_grad_()
        self.frozen = {name: torch.stack([w[name] for w in weights])
                       for name in self.names if name not in trainable}
        self.initial = None
        objective = members[0].config.objective
        if objective.centered or objective.linearized:
            theta_0 = [w if s is None else
                       {k: v.to(device) for k, v in Run.load(m.writer.path).weights(0).items()}
                       for m, s, w in zip(members, states, weights, strict=True)]
            self.initial = {name: torch.stack([t[name] for t in theta_0])
                            for name in self.names}

    @staticmethod
    def _start_weights(member: _Member, state: TrainingState | None,
                       template: torch.nn.Module, device: torch.device
                       ) -> dict[str, torch.Tensor]:
        """The run's weights now: its initialisation, or those of its resume state."""
        if state is None:
            model = build_model(member.config.model, member.task, device)
            return {k: v.detach() for k, v in model.state_dict().items()}
        load_weights_into(template, state.model, source=member.writer.path / RESUME_FILE)
        return {k: v.detach().clone() for k, v in template.state_dict().items()}

    def weights(self) -> dict[str, torch.Tensor]:
        """Every state-dict entry stacked over the runs: name -> [M, ...] (differentiable
        in the trainable ones, views of the flat weights)."""
        trainable = self.layout.views(self.flat)
        return {name: trainable[name] if name in trainable else self.frozen[name]
                for name in self.names}

    def weight_norms(self) -> torch.Tensor:
        """[M] each run's L2 norm of its trainable weights (float64)."""
        return self.flat.detach().double().pow(2).sum(1).sqrt()

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """Each run's state dict, as views of the stacked weights."""
        weights = {name: value.detach() for name, value in self.weights().items()}
        count = self.flat.shape[0]
        return [{name: value[i] for name, value in weights.items()} for i in range(count)]


@dataclass(frozen=True)
class _TrainPass:
    """Every run's outputs [M, n, C] and loss [M] on its training rows, and the loss's
    gradient [M, P] (None when not needed: targets not classes)."""

    outputs: torch.Tensor
    losses: torch.Tensor
    grad: torch.Tensor | None


class _Loop:
    """The epoch loop of a stack; holds the live objects so each piece reads as one short
    method."""

    def __init__(self, members: list[_Member], states: list[TrainingState | None],
                 device: torch.device, options: TrainOptions):
        self.members, self.options = members, options
        configs = [member.config for member in members]
        config = configs[0]
        self.schedule, self.batch_size = config.schedule, config.optim.batch_size
        self.loss = config.objective.loss
        self.loss_dtype = getattr(torch, config.objective.loss_dtype)
        self.target_type = members[0].task.target_type
        # the numerical-stability diagnostics: softmax classifiers (an MSE run's outputs are
        # no logits)
        self.diagnose = self.target_type == "class" and self.loss != "mse"
        template = build_model(config.model, members[0].task, device)
        name_of = {id(v): k for k, v in template.state_dict(keep_vars=True).items()}
        runs = [RunOptimizer.of(c.optim, learning_rate_scale(c.objective, c.optim.name),
                                parameter_groups(c.model, template), name_of,
                                weight_decay_scale(c.objective, c.optim.name))
                for c in configs]
        self.stack = _StackedWeights(members, states, template, runs[0].names, device)
        self.optimizer = StackedOptimizer(self.stack.flat, self.stack.layout, runs)
        self.variants = None
        if any(variants_active(c.optim) for c in configs):
            self.variants = StackedVariants(self.stack.flat, self.stack.layout,
                                            [c.optim for c in configs],
                                            [c.schedule.seed + 1 for c in configs])
        if states[0] is not None:
            self.optimizer.load_run_states([s.optimizer for s in states])
            if self.variants is not None:
                self.variants.load_run_states([s.variants for s in states])
        network = stacked_output_fn(config.model, template, fast=options.fast,
                                    vectorized=vectorizes(config, members[0].task, device))
        if _compiles(config, device, options):
            network = compile_outputs(network, device)
        self.train = StackedRows.gather([(m.task.train_inputs, m.task.train_targets)
                                         for m in members], device)
        self.test = StackedRows.gather([(m.task.test_inputs, m.task.test_targets)
                                        for m in members], device)
        alpha = torch.tensor([c.objective.alpha for c in configs], device=device)
        self.outputs = StackedObjective(config.objective, network, self.stack.weights,
                                        list(self.stack.layout.names), self.stack.initial,
                                        alpha,
                                        fixed_inputs=(self.train.inputs, self.test.inputs))
        self.measures = [evaluation_measures(c, m.task) for c, m in zip(configs, members,
                                                                         strict=True)]
        self.last_resume_save = time.monotonic()

    def run(self, start_epoch: int, step: int, stop_epoch: int) -> None:
        from tqdm.auto import tqdm

        n_train = self.train.inputs.shape[1]
        full_batch = self.batch_size is None or self.batch_size >= n_train
        self.bar = tqdm(total=stop_epoch, initial=start_epoch, disable=self.options.quiet,
                        unit="epoch", dynamic_ncols=True)
        for epoch in range(start_epoch, stop_epoch):
            evaluate = epoch % self.schedule.eval_every == 0
            if full_batch:  # the step's own outputs give the train metrics of this epoch
                self.step(self.train, step, evaluate_epoch=epoch if evaluate else None)
                step += 1
            else:
                if evaluate:
                    self.record(epoch, step)
                order = torch.stack([torch.randperm(n_train, generator=m.generator)
                                     for m in self.members]).to(self.train.inputs.device)
                batches = order.split(self.batch_size, dim=1)
                if self.schedule.steps is not None:  # a step budget's last epoch is partial
                    batches = batches[:self.schedule.steps - step]
                for batch in batches:
                    self.step(self.train.batch(batch), step)
                    step += 1
            if epoch + 1 == self.schedule.epochs:  # the final row before the final checkpoint:
                self.record(epoch + 1, step)  # a run with that checkpoint is complete
            self.after_epoch(epoch + 1, step, force_resume_save=epoch + 1 == stop_epoch)
            self.bar.update(1)
            if self.options.on_epoch is not None:
                self.options.on_epoch(epoch + 1)
        if start_epoch == stop_epoch == self.schedule.epochs:  # a finished run resumed: its
            self.record(stop_epoch, step)  # final row, which resuming truncated, again
        self.bar.close()

    def step(self, rows: StackedRows, step: int, evaluate_epoch: int | None = None) -> None:
        """One optimiser step of every run on its ``rows``; with ``evaluate_epoch``, record
        the pre-step metrics first, reusing this step's outputs and gradient for the training
        set (not under weight noise: those are of the perturbed weights)."""
        variants = self.variants
        noisy = variants is not None and any(variants.weight_noise)
        with variants.perturbed_weights() if noisy else nullcontext():
            outputs = self.outputs(rows.inputs)
            losses = rows.losses(outputs, self.loss, self.loss_dtype)
            losses.sum().backward()  # runs share no weights: each gets its own loss's gradient
        if evaluate_epoch is not None:
            clean = None if noisy else _TrainPass(outputs.detach(), losses.detach(),
                                                  self.stack.flat.grad)
            self.record(evaluate_epoch, step, clean)
        self.optimizer.orthogonalize_gradient()  # before the filters: they see its result
        if variants is not None:
            variants.filter_gradients()
        rates = self.optimizer.step(step)
        if variants is not None:
            variants.add_update_noise(rates, self.optimizer.spans)

    def train_pass(self) -> _TrainPass:
        """Every run's outputs and loss on its whole training set at its current weights,
        and (for the diagnostics) the loss's gradient, taken with ``torch.autograd.grad`` so
        the weights' gradient buffer and every other piece of training state stay as they
        are."""
        with torch.enable_grad() if self.diagnose else nullcontext():
            outputs = self.outputs(self.train.inputs)
            losses = self.train.losses(outputs, self.loss, self.loss_dtype)
            grad = (torch.autograd.grad(losses.sum(), self.stack.flat)[0] if self.diagnose
                    else None)
        return _TrainPass(outputs.detach(), losses.detach(), grad)

    @torch.no_grad()
    def record(self, epoch: int, step: int, train: _TrainPass | None = None) -> None:
        """Evaluate every run's current weights (those of ``epoch``) and append a metrics
        row to each run; ``train``: this step's outputs, losses and gradient on the training
        set (else ``train_pass``)."""
        if train is None:
            train = self.train_pass()
        test_outputs = self.outputs(self.test.inputs)
        columns = {
            "train_loss": train.losses,
            "test_loss": self.test.losses(test_outputs, self.loss, self.loss_dtype),
            "train_acc": self.train.accuracies(train.outputs, self.target_type),
            "test_acc": self.test.accuracies(test_outputs, self.target_type),
            "weight_norm": self.stack.weight_norms(),
        }
        if self.diagnose:
            columns["softmax_collapse"] = softmax_collapse(train.outputs, self.train.targets,
                                                           self.train.weights)
            columns["grad_weight_cosine"] = grad_weight_cosine(train.grad,
                                                               self.stack.flat.detach())
        columns = {name: column for name, column in columns.items() if column is not None}
        values = torch.stack([c.double() for c in columns.values()]).tolist()  # one sync
        weights = self.stack.state_dicts() if any(self.measures) else None
        for i, member in enumerate(self.members):
            row = {"epoch": epoch, "step": step}
            row.update({name: values[j][i] for j, name in enumerate(columns)})
            if self.measures[i] is not None:
                row.update(self.measures[i](weights[i]))
            member.writer.append_metrics(row)
        if len(self.members) == 1:
            accuracy = row.get("test_acc", math.nan)  # none for runs without an accuracy
            self.bar.set_postfix(train=f"{row['train_loss']:.3g}",
                                 test=f"{row['test_loss']:.3g}", refresh=False,
                                 **({"acc": f"{accuracy:.3f}"} if math.isfinite(accuracy)
                                    else {}))

    def after_epoch(self, epoch: int, step: int, force_resume_save: bool) -> None:
        """Checkpoint if scheduled; save every run's resume state at checkpoints,
        periodically and when ``force_resume_save``."""
        is_checkpoint = self.schedule.is_checkpoint(epoch)
        if is_checkpoint:
            self.save_checkpoints(epoch)
        overdue = time.monotonic() - self.last_resume_save > self.options.resume_every_s
        if is_checkpoint or overdue or force_resume_save:
            def save(index: int, member: _Member, weights: dict) -> None:
                variants = {} if self.variants is None else self.variants.run_state(index)
                state = TrainingState(weights, self.optimizer.run_state(index, step),
                                      member.generator.get_state(), epoch, step, variants)
                member.writer.save_resume_state(*pack_state(state))

            self.for_each_run(save, range(len(self.members)), self.members,
                              self.stack.state_dicts())
            self.last_resume_save = time.monotonic()

    def save_checkpoints(self, epoch: int) -> None:
        self.for_each_run(lambda member, weights: member.writer.save_checkpoint(epoch, weights),
                          self.members, self.stack.state_dicts())

    def for_each_run(self, write: Callable[..., None], *per_run: Sequence) -> None:
        """``write(*values)`` for every run, concurrently when there are several: each writes
        its own run's files, and an atomic write waits mostly on its fsync (M runs' files
        one by one would take M times as long)."""
        if len(self.members) == 1:
            write(*(values[0] for values in per_run))
            return
        with ThreadPoolExecutor(max_workers=min(8, len(self.members))) as pool:
            list(pool.map(write, *per_run))

