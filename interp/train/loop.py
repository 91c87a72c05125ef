"""One training run: data, model, optimiser, evaluation, checkpoints, crash-safe resume.

The loop is the TransformerLens grokking demo's (full batch, AdamW, cross-entropy on the
last position in float64), generalised to minibatches and warm-up, and made resumable: the
complete training state is saved atomically at every checkpoint and at least every
``resume_every_s`` seconds, and a resumed run reaches the same weights, bit for bit on CPU,
as an uninterrupted one. What it differentiates (plain outputs, alpha-scaled centred outputs,
or the linearised model) comes from ``interp.train.objective``; theta_0 is always read back
from the epoch-0 checkpoint, so a resumed run sees the very same one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from interp.config import RunConfig
from interp.errors import UserError, warn
from interp.models import build_model, parameter_groups, stateless_output_fn
from interp.runs import RESUME_FILE, Run, RunWriter
from interp.tasks import build_task
from interp.train.backend import compile_outputs, should_compile, training_backend
from interp.train.losses import accuracy, build_loss
from interp.train.measures import evaluation_measures
from interp.train.objective import learning_rate_scale, training_outputs
from interp.train.optim import (
    OptimizerVariants,
    build_optimizer,
    learning_rate,
    set_learning_rate,
)
from interp.train.resume import pack_training_state, unpack_training_state


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


def runtime_info(device: torch.device, options: TrainOptions, compiled: bool
                 ) -> dict[str, str | bool]:
    """How a run was trained, for its run.json (not part of its config)."""
    return {"device": str(device), "compile": compiled,
            "matmul_precision": options.matmul_precision}


def _compiles(config: RunConfig, device: torch.device, options: TrainOptions) -> bool:
    fast_path = options.fast and stateless_output_fn(config.model) is not None
    return should_compile(options.compile, device, fast_path)


def weight_norm(params: list[torch.nn.Parameter]) -> float:
    """L2 norm of all trainable parameters together."""
    return math.sqrt(sum(p.detach().double().pow(2).sum().item() for p in params))


def train(config: RunConfig | None, out_dir: str | Path,
          options: TrainOptions = TrainOptions()) -> Path:
    """Train ``config`` into ``out_dir`` (a new run, or a resumed one); returns the run path.

    With ``options.resume``, ``config`` may be None (taken from the run's run.json);
    otherwise it must equal the stored one.
    """
    out_dir = Path(out_dir)
    device = resolve_device(options.device)
    if options.resume:
        writer, config = RunWriter.reopen(out_dir, config)
    else:
        RunWriter.check_can_create(out_dir, force=options.force)
        writer = None
    try:
        task = (Run.load(out_dir).task() if writer is not None
                else build_task(config.task, config.model))
        model = build_model(config.model, task, device)
        groups = parameter_groups(config.model, model)
        params = [p for group in groups for p in group["params"]]
        optimizer = build_optimizer(config.optim, groups)
        generator = torch.Generator().manual_seed(config.schedule.seed)
        variants = OptimizerVariants(config.optim, params, seed=config.schedule.seed + 1)
        start_epoch, step = 0, 0
        if writer is None:
            writer = RunWriter.create(out_dir, config, task.train_idx, task.test_idx,
                                      force=options.force, stored=task.stored,
                                      runtime=runtime_info(device, options,
                                                           _compiles(config, device, options)))
        else:
            start_epoch, step = _restore(writer, model, optimizer, generator, variants, config)
        if start_epoch == 0:
            writer.save_checkpoint(0, model.state_dict())
        # theta_0, read before a resumed run's metrics are touched (a missing one is an error)
        initial = {k: v.to(device) for k, v in Run.load(out_dir).weights(0).items()}
        writer.truncate_metrics(before_epoch=start_epoch)
        with training_backend(device, options.matmul_precision):
            _Loop(config, task, model, params, optimizer, generator, writer, device, options,
                  variants, initial).run(start_epoch, step)
    finally:
        if writer is not None:
            writer.close()
    return out_dir


def _restore(writer: RunWriter, model, optimizer, generator, variants, config: RunConfig
             ) -> tuple[int, int]:
    """Load the run's resume state into the live objects: (epoch, step), (0, 0) without one
    (a warning if checkpoints show the run had got further: its resume state was lost)."""
    saved = writer.load_resume_state()
    if saved is not None:
        return unpack_training_state(*saved, model, optimizer, generator, variants=variants,
                                     schedule=config.schedule, source=writer.path / RESUME_FILE)
    if any(epoch > 0 for epoch in Run.load(writer.path).checkpoint_epochs):
        warn(f"{writer.path} has checkpoints but no resume state ({RESUME_FILE}); training "
             "restarts from epoch 0")
    return 0, 0


class _Loop:
    """The epoch loop; holds the live objects so each piece reads as one short method."""

    def __init__(self, config, task, model, params, optimizer, generator, writer, device,
                 options: TrainOptions, variants: OptimizerVariants,
                 initial: dict[str, torch.Tensor]):
        self.config, self.model, self.params = config, model, params
        self.optimizer, self.generator, self.writer = optimizer, generator, writer
        self.options, self.variants = options, variants
        self.loss = build_loss(config.objective.loss, config.objective.loss_dtype)
        self.target_type = task.target_type
        self.measures = evaluation_measures(config, model, task)
        self.x_train, self.y_train = task.train_inputs.to(device), task.train_targets.to(device)
        self.x_test, self.y_test = task.test_inputs.to(device), task.test_targets.to(device)
        self.outputs = training_outputs(config, model, initial, fast=options.fast,
                                        fixed_inputs=(self.x_train, self.x_test))
        if _compiles(config, device, options):
            self.outputs = compile_outputs(self.outputs, device)
        self.lr_scale = learning_rate_scale(config.objective, config.optim.name)
        self.last_resume_save = time.monotonic()

    def run(self, start_epoch: int, step: int) -> None:
        from tqdm.auto import tqdm

        schedule = self.config.schedule
        batch_size = self.config.optim.batch_size
        full_batch = batch_size is None or batch_size >= len(self.x_train)
        self.bar = tqdm(total=schedule.epochs, initial=start_epoch,
                        disable=self.options.quiet, unit="epoch", dynamic_ncols=True)
        for epoch in range(start_epoch, schedule.epochs):
            evaluate = epoch % schedule.eval_every == 0
            if full_batch:  # the step's own logits give the train metrics of this epoch
                self.step(self.x_train, self.y_train, step,
                          evaluate_epoch=epoch if evaluate else None)
                step += 1
            else:
                if evaluate:
                    self.record(epoch, step, None)
                for batch in torch.randperm(len(self.x_train), generator=self.generator
                                            ).split(batch_size):
                    batch = batch.to(self.x_train.device)
                    self.step(self.x_train[batch], self.y_train[batch], step)
                    step += 1
            self.after_epoch(epoch + 1, step)
            self.bar.update(1)
            if self.options.on_epoch is not None:
                self.options.on_epoch(epoch + 1)
        self.record(schedule.epochs, step, None)
        self.bar.close()

    def step(self, x: torch.Tensor, y: torch.Tensor, step: int,
             evaluate_epoch: int | None = None) -> None:
        """One optimiser step on (x, y); with ``evaluate_epoch``, record the metrics of the
        pre-step weights first, reusing this step's logits as the train outputs."""
        lr = learning_rate(self.config.optim, step) * self.lr_scale
        set_learning_rate(self.optimizer, lr)
        with self.variants.perturbed_weights():
            logits = self.outputs(x)
            self.loss(logits, y).backward()
        if evaluate_epoch is not None:  # logits of perturbed weights are not the train metrics
            clean = None if self.config.optim.weight_noise else logits.detach()
            self.record(evaluate_epoch, step, clean)
        self.variants.filter_gradients()
        self.optimizer.step()
        self.variants.add_update_noise(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def record(self, epoch: int, step: int, train_logits: torch.Tensor | None) -> None:
        """Evaluate the current weights (those of ``epoch``) and append a metrics row."""
        if train_logits is None:
            train_logits = self.outputs(self.x_train)
        test_logits = self.outputs(self.x_test)
        row = {
            "epoch": epoch,
            "step": step,
            "train_loss": self.loss(train_logits, self.y_train).item(),
            "test_loss": self.loss(test_logits, self.y_test).item(),
            "train_acc": accuracy(train_logits, self.y_train, self.target_type),
            "test_acc": accuracy(test_logits, self.y_test, self.target_type),
            "weight_norm": weight_norm(self.params),
        }
        row = {k: v for k, v in row.items() if v is not None}
        row.update(self.measures())
        self.writer.append_metrics(row)
        self.bar.set_postfix(train=f"{row['train_loss']:.3g}", test=f"{row['test_loss']:.3g}",
                             acc=f"{row.get('test_acc', float('nan')):.3f}", refresh=False)

    def after_epoch(self, epoch: int, step: int) -> None:
        """Checkpoint if scheduled; save the resume state at checkpoints and periodically."""
        is_checkpoint = self.config.schedule.is_checkpoint(epoch)
        if is_checkpoint:
            self.writer.save_checkpoint(epoch, self.model.state_dict())
        overdue = time.monotonic() - self.last_resume_save > self.options.resume_every_s
        if is_checkpoint or overdue:
            tensors, meta = pack_training_state(self.model, self.optimizer, self.generator,
                                                epoch, step, variants=self.variants.state_dict())
            self.writer.save_resume_state(tensors, meta)
            self.last_resume_save = time.monotonic()
