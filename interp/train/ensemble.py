"""Many runs in one process: ``train_ensemble`` trains M runs together with stacked weights.

Runs that differ only in seeds, data split (fraction, data seed), optimiser settings or the
output scale alpha (``SWEEPABLE_KEYS``) share one architecture, so their weights stack into
[M, ...] tensors and one ``torch.vmap`` of the model's stateless fast path
(``interp.models.stateless_output_fn``) computes all their outputs at once: a few large
kernels instead of M times many small ones, which is what a GPU needs. Each run still
writes its own, normal run directory (run.json, split, metrics, checkpoints, and its resume
state in the single-run format, so it can also be continued alone), and ends where training
it alone would, up to float rounding:

- its weights start from its own seeded initialisation (``build_model``);
- its loss is its own mean cross-entropy over its own training rows (runs with fewer rows
  are padded with rows of weight zero), so its gradient is its own;
- it trains what ``interp.train.objective`` defines: f, or with ``objective.centered``
  its own alpha * (f(theta) - f(theta_0)) with its learning rate scaled for its alpha;
- runs with equal optimiser settings (and learning-rate scale) share one optimiser over their
  stacked weights. The optimisers allowed here (AdamW, Adam, SGD) act element by element,
  so this is the same arithmetic as one optimiser per run; others get their own optimiser.

A killed ensemble resumes from its runs' resume states; runs whose state is behind the
others' (the kill came while the states were being written) first catch up on their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from interp.config import OptimConfig, RunConfig
from interp.errors import UserError
from interp.files import reserve_open_files
from interp.models import build_model, parameter_groups, stateless_output_fn
from interp.runs import RESUME_FILE, Run, RunWriter, load_weights_into
from interp.tasks import build_task
from interp.tasks.base import Task
from interp.train.backend import compile_outputs, should_compile, training_backend
from interp.train.loop import TrainOptions, resolve_device, runtime_info
from interp.train.objective import learning_rate_scale
from interp.train.optim import (
    OptimizerVariants,
    build_optimizer,
    learning_rate,
    set_learning_rate,
)
from interp.train.resume import (
    TrainingState,
    check_training_state,
    pack_state,
    unpack_state,
)

# Config keys in which the runs of one ensemble may differ.
SWEEPABLE_KEYS = ("task.frac", "task.data_seed", "model.seed", "optim.name", "optim.lr",
                  "optim.weight_decay", "optim.betas", "optim.warmup_steps", "schedule.seed",
                  "objective.alpha")
# Optimisers whose update of each weight reads only that weight's own gradient and state.
ELEMENTWISE_OPTIMIZERS = ("adamw", "adam", "sgd")


def check_ensemble(configs: Sequence[RunConfig]) -> None:
    """UserError unless the runs ``configs`` can be trained together by ``train_ensemble``."""
    if not configs:
        raise UserError("an ensemble needs at least one run")
    shared = [{k: v for k, v in _flat(c).items() if k not in SWEEPABLE_KEYS} for c in configs]
    for config, values in zip(configs, shared, strict=True):
        differing = [key for key in shared[0] if values.get(key) != shared[0][key]]
        if differing:
            raise UserError(f"runs trained together may differ only in "
                            f"{', '.join(SWEEPABLE_KEYS)}; these also differ in {differing[0]}"
                            "; train them separately")
        if stateless_output_fn(config.model) is None:
            raise UserError("training runs together needs a model with an exact fast path "
                            "(a one-layer transformer without LayerNorm); train these runs "
                            "one at a time")
        if config.objective.loss != "cross_entropy" or config.objective.linearized:
            raise UserError("training runs together supports cross-entropy training of the "
                            "network itself (not linearised) so far; train these runs one at "
                            "a time")
        if OptimizerVariants(config.optim, [], seed=0).active:
            raise UserError("the optimiser variants (optim.update_noise, weight_noise, "
                            "grad_filter) train one run at a time so far; train these runs "
                            "one at a time")
        if config.optim.name not in ELEMENTWISE_OPTIMIZERS:
            raise UserError(f"optim.name {config.optim.name!r}: training runs together "
                            f"supports {', '.join(ELEMENTWISE_OPTIMIZERS)}; train these runs "
                            "one at a time")


def _flat(config: RunConfig) -> dict[str, Any]:
    """``section.key`` -> value (the preset name, a label, left out)."""
    return {f"{section}.{key}": value for section, values in config.to_dict().items()
            if isinstance(values, dict) for key, value in values.items()}


def train_ensemble(configs: Sequence[RunConfig] | None, out_dirs: Sequence[str | Path],
                   options: TrainOptions | None = None) -> list[Path]:
    """Train the runs ``configs`` into ``out_dirs`` (one each) together; returns the paths.

    With ``options.resume``, ``configs`` may be None (each run's own run.json); otherwise
    they must equal the stored ones. Nothing is written unless every run can start.
    """
    options = options or TrainOptions()
    out_dirs = [Path(d) for d in out_dirs]
    if len(set(out_dirs)) != len(out_dirs):
        raise UserError("two runs of the ensemble would share a run directory")
    device = resolve_device(options.device)
    reserve_open_files(len(out_dirs))  # each run's writer holds its lock open
    members: list[_Member] = []
    try:
        if options.resume:
            given = list(configs) if configs is not None else [None] * len(out_dirs)
            for out_dir, config in zip(out_dirs, given, strict=True):
                writer, config = RunWriter.reopen(out_dir, config)
                members.append(_Member(config, None, writer))
            configs = [member.config for member in members]
            check_ensemble(configs)
            for member in members:
                member.task = Run.load(member.writer.path).task()
        else:
            check_ensemble(configs)
            for out_dir in out_dirs:
                RunWriter.check_can_create(out_dir, force=options.force)
            tasks = [build_task(config.task, config.model) for config in configs]
            _check_steps_per_epoch(configs, tasks)
            compiled = should_compile(options.compile, device, fast_path=True)
            runtime = {**runtime_info(device, options, compiled), "ensemble": len(configs)}
            for config, task, out_dir in zip(configs, tasks, out_dirs, strict=True):
                # every run locked before any is touched: a refusal replaces none of them
                members.append(_Member(config, task, RunWriter.reserve(out_dir,
                                                                       force=options.force)))
            for member in members:
                task = member.task
                RunWriter.create(member.writer.path, member.config, task.train_idx,
                                 task.test_idx, stored=task.stored, runtime=runtime,
                                 reserved=member.writer)
        with training_backend(device, options.matmul_precision):
            _train(members, device, options, stop_epoch=configs[0].schedule.epochs)
    finally:
        for member in members:
            member.writer.close()
    return out_dirs


def _check_steps_per_epoch(configs: Sequence[RunConfig], tasks: Sequence[Task]) -> None:
    batch_size = configs[0].optim.batch_size
    sizes = {len(task.train_idx) for task in tasks}
    if batch_size is not None and batch_size < max(sizes) and len(sizes) > 1:
        raise UserError("with minibatches (optim.batch_size), runs trained together need "
                        "training sets of one size: do not vary task.frac")


@dataclass
class _Member:
    """One run of the ensemble: its config, data, run directory and training RNG."""

    config: RunConfig
    task: Task | None  # None until the run's task is built
    writer: RunWriter
    generator: torch.Generator = field(default_factory=torch.Generator)


def _train(members: list[_Member], device: torch.device, options: TrainOptions,
           stop_epoch: int) -> None:
    """Train ``members`` from their saved states (or initialisation) up to ``stop_epoch``."""
    states = [_load_state(m, device) for m in members]
    epochs = [0 if state is None else state.epoch for state in states]
    if len(set(epochs)) > 1:  # a kill while the resume states were being written
        behind = [m for m, epoch in zip(members, epochs, strict=True) if epoch < max(epochs)]
        _train(behind, device, options, stop_epoch=max(epochs))
        states = [_load_state(m, device) for m in members]
    for member, state in zip(members, states, strict=True):
        member.generator.manual_seed(member.config.schedule.seed)
        if state is not None:
            member.generator.set_state(state.rng)
        member.writer.truncate_metrics(before_epoch=0 if state is None else state.epoch)
    loop = _EnsembleLoop(members, _Stack(members, states, device), device, options)
    start = states[0]
    if start is None:
        loop.save_checkpoints(0)
    loop.run(0 if start is None else start.epoch, 0 if start is None else start.step,
             stop_epoch)


def _load_state(member: _Member, device: torch.device) -> TrainingState | None:
    """The run's resume state, checked against the objects that would resume it alone (it
    is in the single-run format); None if it has none yet."""
    saved = member.writer.load_resume_state()
    if saved is None:
        return None
    source = member.writer.path / RESUME_FILE
    state = unpack_state(*saved, device, source)
    config = member.config
    model = build_model(config.model, member.task, device)
    groups = parameter_groups(config.model, model)
    params = [p for group in groups for p in group["params"]]
    check_training_state(state, model, build_optimizer(config.optim, groups), torch.Generator(),
                         OptimizerVariants(config.optim, params, seed=0), config.schedule,
                         source)
    return state


class _Group:
    """Runs with one optimiser config and learning-rate scale (``learning_rate_scale``: the
    output scale alpha's): their trainable weights stacked into leaf tensors
    [len(members), ...] and one optimiser over them."""

    def __init__(self, optim: OptimConfig, lr_scale: float, size: int,
                 leaves: dict[str, torch.Tensor]):
        self.optim, self.lr_scale, self.size, self.leaves = optim, lr_scale, size, leaves
        self.optimizer = build_optimizer(optim, [{"params": leaves.values(), "lr_factor": 1.0}])

    def member_optimizer_state(self, index: int) -> dict[str, Any]:
        """The optimiser state of the group's ``index``-th run, as its own optimiser's
        ``state_dict()`` would be (per-weight tensors sliced, shared scalars copied)."""
        full = self.optimizer.state_dict()
        shapes = [leaf.shape for leaf in self.leaves.values()]
        state = {j: {k: v[index] if torch.is_tensor(v) and v.shape == shapes[j] else v
                     for k, v in entries.items()} for j, entries in full["state"].items()}
        return {"state": state, "param_groups": full["param_groups"]}

    def load_optimizer_states(self, states: Sequence[dict[str, Any]]) -> None:
        """Stack the runs' own optimiser states (``member_optimizer_state`` form) into the
        group's optimiser."""
        shapes = [leaf.shape[1:] for leaf in self.leaves.values()]
        stacked = {j: {k: torch.stack([s["state"][j][k] for s in states])
                       if torch.is_tensor(v) and v.shape == shapes[j] else v
                       for k, v in entries.items()}
                   for j, entries in states[0]["state"].items()}
        self.optimizer.load_state_dict({"state": stacked,
                                        "param_groups": states[0]["param_groups"]})


class _Stack:
    """The ensemble's weights: trainable ones in per-optimiser groups of leaves, the rest
    (frozen biases, buffers) stacked once. Runs are ordered group by group. ``initial``:
    theta_0 stacked (name -> [M, ...]) for centred objectives, else None."""

    def __init__(self, members: list[_Member], states: list[TrainingState | None],
                 device: torch.device):
        template = build_model(members[0].config.model, members[0].task, device)
        name_of = {id(v): k for k, v in template.state_dict(keep_vars=True).items()}
        self.trainable = [name_of[id(p)] for p in template.parameters() if p.requires_grad]
        self.names = list(template.state_dict())
        weights = [self._start_weights(m, s, template, device)
                   for m, s in zip(members, states, strict=True)]
        by_optim: dict[tuple[OptimConfig, float], list[int]] = {}
        for index, member in enumerate(members):
            config = member.config
            scale = learning_rate_scale(config.objective, config.optim.name)
            by_optim.setdefault((config.optim, scale), []).append(index)
        self.order = [i for indices in by_optim.values() for i in indices]
        self.frozen = {name: torch.stack([weights[i][name] for i in self.order])
                       for name in self.names if name not in self.trainable}
        self.groups = [
            _Group(optim, scale, len(indices), {
                name: torch.stack([weights[i][name] for i in indices]).requires_grad_()
                for name in self.trainable})
            for (optim, scale), indices in by_optim.items()]
        self.initial = None
        if members[0].config.objective.centered:  # alpha * (f(theta) - f(theta_0))
            theta_0 = [weights[i] if states[i] is None else
                       {k: v.to(device) for k, v in Run.load(members[i].writer.path).weights(0)
                        .items()} for i in self.order]
            self.initial = {name: torch.stack([t[name] for t in theta_0]) for name in self.names}
        if states[0] is not None:
            offset = 0
            for group in self.groups:
                rows = self.order[offset:offset + group.size]
                group.load_optimizer_states([states[i].optimizer for i in rows])
                offset += group.size

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
        in the trainable ones)."""
        if len(self.groups) == 1:
            trainable = self.groups[0].leaves
        else:
            trainable = {name: torch.cat([g.leaves[name] for g in self.groups])
                         for name in self.trainable}
        return {name: self.frozen.get(name, trainable.get(name)) for name in self.names}

    def weight_norms(self) -> torch.Tensor:
        """[M] each run's L2 norm of its trainable weights (float64)."""
        weights = self.weights()
        return sum(weights[name].detach().double().pow(2).flatten(1).sum(1)
                   for name in self.trainable).sqrt()

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """Each run's state dict (in stack order), as views of the stacked weights."""
        weights = {name: value.detach() for name, value in self.weights().items()}
        return [{name: value[i] for name, value in weights.items()}
                for i in range(len(self.order))]

    def optimizer_states(self) -> list[dict[str, Any]]:
        """Each run's own optimiser state (in stack order)."""
        return [g.member_optimizer_state(i) for g in self.groups for i in range(g.size)]

    def set_learning_rates(self, step: int) -> None:
        for group in self.groups:
            set_learning_rate(group.optimizer, learning_rate(group.optim, step) * group.lr_scale)

    def optimizer_step(self) -> None:
        for group in self.groups:
            group.optimizer.step()
            group.optimizer.zero_grad(set_to_none=True)


@dataclass
class _Rows:
    """Each run's rows of the shared data set, padded to one length n.

    inputs [M, n, ...], targets [M, n], weights [M, n] float64 (1 / the run's row count on
    its rows, 0 on padding), counts [M].
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor
    counts: torch.Tensor

    @classmethod
    def gather(cls, task: Task, index_lists: Sequence[torch.Tensor], device: torch.device
               ) -> _Rows:
        n = max(len(index) for index in index_lists)
        rows = torch.stack([F.pad(index, (0, n - len(index)), value=int(index[0]))
                            for index in index_lists])
        counts = torch.tensor([len(index) for index in index_lists], dtype=torch.float64)
        weights = (torch.arange(n)[None] < counts[:, None]) / counts[:, None]
        return cls(task.inputs[rows].to(device), task.targets[rows].to(device),
                   weights.to(device), counts.to(device))

    def batch(self, index: torch.Tensor) -> _Rows:
        """The rows ``index`` [M, b] of each run (no padding: minibatches)."""
        take = torch.arange(len(index), device=index.device)[:, None], index
        count = torch.full_like(self.counts, index.shape[1])
        return _Rows(self.inputs[take], self.targets[take],
                     torch.full(index.shape, 1 / index.shape[1], dtype=torch.float64,
                                device=index.device), count)

    def losses(self, logits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """[M] each run's mean cross-entropy over its rows, computed in ``dtype``."""
        per_row = F.cross_entropy(logits.to(dtype).flatten(0, 1), self.targets.flatten(),
                                  reduction="none")
        return (per_row.view(self.targets.shape) * self.weights.to(dtype)).sum(1)

    def accuracies(self, logits: torch.Tensor) -> torch.Tensor:
        """[M] each run's accuracy over its rows."""
        correct = (logits.argmax(-1) == self.targets) & (self.weights > 0)
        return correct.sum(1) / self.counts


class _EnsembleLoop:
    """The epoch loop of the ensemble (the single-run loop's schedule, for M runs)."""

    def __init__(self, members: list[_Member], stack: _Stack, device: torch.device,
                 options: TrainOptions):
        self.members = [members[i] for i in stack.order]
        self.stack, self.options = stack, options
        config = self.members[0].config
        self.schedule, self.batch_size = config.schedule, config.optim.batch_size
        self.loss_dtype = getattr(torch, config.objective.loss_dtype)
        self.network = torch.vmap(stateless_output_fn(config.model))  # f(weights, inputs)
        self.live = lambda inputs: self.network(stack.weights(), inputs)
        if should_compile(options.compile, device, fast_path=True):
            self.live = compile_outputs(self.live, device)
        task = self.members[0].task
        self.train = _Rows.gather(task, [m.task.train_idx for m in self.members], device)
        self.test = _Rows.gather(task, [m.task.test_idx for m in self.members], device)
        self.alpha = torch.tensor([m.config.objective.alpha for m in self.members],
                                  device=device)[:, None, None]
        self.known_initial = []  # (inputs, f(theta_0) on them) for the fixed row sets
        if stack.initial is not None:
            self.known_initial = [(rows.inputs, self.initial_outputs(rows.inputs))
                                  for rows in (self.train, self.test)]
        self.last_resume_save = time.monotonic()

    def outputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """What every run trains, as ``interp.train.objective`` defines it: [M, n, ...] ->
        [M, n, C], f or (centred objectives) alpha * (f - f(theta_0))."""
        if self.stack.initial is None:
            return self.live(inputs)
        initial = next((f0 for x, f0 in self.known_initial if x is inputs), None)
        if initial is None:
            initial = self.initial_outputs(inputs)
        return self.alpha * (self.live(inputs) - initial)

    @torch.no_grad()
    def initial_outputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """f(theta_0) of every run on ``inputs``: [M, n, C]."""
        return self.network(self.stack.initial, inputs)

    def run(self, start_epoch: int, step: int, stop_epoch: int) -> None:
        from tqdm.auto import tqdm

        n_train = self.train.inputs.shape[1]
        full_batch = self.batch_size is None or self.batch_size >= n_train
        bar = tqdm(total=stop_epoch, initial=start_epoch, disable=self.options.quiet,
                   unit="epoch", dynamic_ncols=True)
        for epoch in range(start_epoch, stop_epoch):
            evaluate = epoch % self.schedule.eval_every == 0
            if full_batch:
                self.step(self.train, step, evaluate_epoch=epoch if evaluate else None)
                step += 1
            else:
                if evaluate:
                    self.record(epoch, step)
                order = torch.stack([torch.randperm(n_train, generator=m.generator)
                                     for m in self.members]).to(self.train.inputs.device)
                for batch in order.split(self.batch_size, dim=1):
                    self.step(self.train.batch(batch), step)
                    step += 1
            self.after_epoch(epoch + 1, step, force_resume_save=epoch + 1 == stop_epoch)
            bar.update(1)
            if self.options.on_epoch is not None:
                self.options.on_epoch(epoch + 1)
        if stop_epoch == self.schedule.epochs:
            self.record(stop_epoch, step)
        bar.close()

    def step(self, rows: _Rows, step: int, evaluate_epoch: int | None = None) -> None:
        """One optimiser step of every run on its ``rows``; with ``evaluate_epoch``, record
        the pre-step metrics first, reusing this step's logits for the training set."""
        self.stack.set_learning_rates(step)
        logits = self.outputs(rows.inputs)
        losses = rows.losses(logits, self.loss_dtype)
        losses.sum().backward()  # runs share no weights: each gets its own loss's gradient
        if evaluate_epoch is not None:
            self.record(evaluate_epoch, step, logits.detach(), losses.detach())
        self.stack.optimizer_step()

    @torch.no_grad()
    def record(self, epoch: int, step: int, train_logits: torch.Tensor | None = None,
               train_losses: torch.Tensor | None = None) -> None:
        """Evaluate every run's current weights and append a metrics row to each run."""
        if train_logits is None:
            train_logits = self.outputs(self.train.inputs)
            train_losses = self.train.losses(train_logits, self.loss_dtype)
        test_logits = self.outputs(self.test.inputs)
        columns = {
            "train_loss": train_losses,
            "test_loss": self.test.losses(test_logits, self.loss_dtype),
            "train_acc": self.train.accuracies(train_logits),
            "test_acc": self.test.accuracies(test_logits),
            "weight_norm": self.stack.weight_norms(),
        }
        values = torch.stack([c.double() for c in columns.values()]).tolist()  # one sync
        for i, member in enumerate(self.members):
            row = {"epoch": epoch, "step": step}
            row.update({name: values[j][i] for j, name in enumerate(columns)})
            member.writer.append_metrics(row)

    def after_epoch(self, epoch: int, step: int, force_resume_save: bool) -> None:
        """Checkpoint if scheduled; save every run's resume state at checkpoints,
        periodically and when ``force_resume_save``."""
        is_checkpoint = self.schedule.is_checkpoint(epoch)
        if is_checkpoint:
            self.save_checkpoints(epoch)
        overdue = time.monotonic() - self.last_resume_save > self.options.resume_every_s
        if is_checkpoint or overdue or force_resume_save:
            def save(member: _Member, weights: dict, optimizer: dict) -> None:
                state = TrainingState(weights, optimizer, member.generator.get_state(), epoch,
                                      step)
                member.writer.save_resume_state(*pack_state(state))

            self.for_each_run(save, self.stack.state_dicts(), self.stack.optimizer_states())
            self.last_resume_save = time.monotonic()

    def save_checkpoints(self, epoch: int) -> None:
        self.for_each_run(lambda member, weights: member.writer.save_checkpoint(epoch, weights),
                          self.stack.state_dicts())

    def for_each_run(self, write: Callable[..., None], *per_run: Sequence) -> None:
        """``write(member, *values)`` for every run, concurrently: each writes its own run's
        files, and an atomic write waits mostly on its fsync (M runs' files one by one
        would take M times as long)."""
        with ThreadPoolExecutor(max_workers=min(8, len(self.members))) as pool:
            list(pool.map(write, self.members, *per_run))
