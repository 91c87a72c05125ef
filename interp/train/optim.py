"""The optimisers (AdamW, Adam, SGD) and the learning-rate schedule (linear warm-up, as in
Power et al.) over a stack of M runs' weights, each run with its own hyper-parameters.

``StackedOptimizer`` updates stacked weights [M, ...] with each run's own learning rate,
warm-up, weight decay, betas, SGD momentum, output-scale factors (``learning_rate_scale``,
``weight_decay_scale``) and parameter group (the toy model's embedding learning-rate factor
and weight decay), all as [M] tensors broadcast over each weight: one kernel per operation
for the whole stack. Its arithmetic is torch's single-tensor AdamW / Adam / SGD (PyTorch's
``_single_tensor_adam`` and ``_single_tensor_sgd``, same operations in the same order,
scalars computed in float64 and applied in the weights' dtype), on the flat [M, P] weights
of ``interp.train.flat``, so a run equals the same run under ``torch.optim`` up to float
rounding. Each run's state is read and written in ``torch.optim``'s ``state_dict`` format
(``run_state``/``load_run_states``), so a run of a stack resumes alone and vice versa.

Runs with ``optim.orthogonal_grad`` take Prieto et al.'s perpendicular gradient
(``interp.analysis.stability.orthogonal_gradient``) for any of the three optimisers:
``orthogonalize_gradient`` replaces their gradient before the trainer's gradient filters
and ``step`` (the others' is left as it is). It keeps no state, so resuming needs none.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from interp.analysis.stability import orthogonal_gradient
from interp.config import OptimConfig
from interp.train.flat import FlatLayout

ADAM_EPS = 1e-8  # torch.optim's default, as every run has used


def build_optimizer(config: OptimConfig, groups: list[dict[str, Any]]
                    ) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimiser a config names, over parameter ``groups`` (dicts with
    ``params``, ``lr_factor`` and optionally their own ``weight_decay``): the reference whose
    arithmetic and ``state_dict`` format ``StackedOptimizer`` follows."""
    groups = [{**group, "params": list(group["params"])} for group in groups]
    if config.name == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay,
                                 betas=config.betas, eps=ADAM_EPS)
    if config.name == "adam":
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay,
                                betas=config.betas, eps=ADAM_EPS)
    if config.name == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, weight_decay=config.weight_decay,
                               momentum=config.momentum)
    raise ValueError(f"unknown optimizer {config.name!r}")


def learning_rate(config: OptimConfig, step: int) -> float:
    """The learning rate for optimiser step ``step`` (0-based): linear warm-up, then flat."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    return config.lr


@dataclass(frozen=True)
class RunOptimizer:
    """One run's optimiser settings: its config, the factor its scheduled learning rate is
    multiplied by (``interp.train.objective.learning_rate_scale``), and its parameter groups
    as state-dict names with each group's learning-rate factor and weight decay (the decay
    the optimiser applies, ``weight_decay_scale`` included)."""

    config: OptimConfig
    lr_scale: float
    groups: tuple[tuple[tuple[str, ...], float, float], ...]  # (names, lr_factor, decay)

    @classmethod
    def of(cls, config: OptimConfig, lr_scale: float, groups: list[dict[str, Any]],
           name_of: Mapping[int, str], decay_scale: float = 1.0) -> RunOptimizer:
        """From ``interp.models.parameter_groups`` groups of a template model whose
        parameters' state-dict names ``name_of`` gives (by ``id``); every group's weight
        decay multiplied by ``decay_scale`` (``interp.train.objective.weight_decay_scale``)."""
        return cls(config, lr_scale, tuple(
            (tuple(name_of[id(p)] for p in group["params"]), group.get("lr_factor", 1.0),
             group.get("weight_decay", config.weight_decay) * decay_scale)
            for group in groups))

    @property
    def names(self) -> list[str]:
        """The trainable weights in optimiser order (torch's parameter indices)."""
        return [name for names, _, _ in self.groups for name in names]


class StackedOptimizer:
    """AdamW, Adam or SGD (one kind for the stack) over the stack's flat trainable weights
    ``flat`` (a leaf [M, P], laid out by ``layout``) with each run's settings (``runs``, M of
    them, with the same parameter groups by name). Call ``step(step)`` after backward (and
    ``orthogonalize_gradient()``, before any gradient filter); it also clears the gradient.

    Every weight has a gradient here (a weight the forward does not read gets zeros), where
    ``torch.optim`` skips a parameter without one; the models' forwards read every trainable
    weight.
    """

    def __init__(self, flat: torch.Tensor, layout: FlatLayout, runs: Sequence[RunOptimizer]):
        self.flat, self.layout, self.runs = flat, layout, list(runs)
        self.kind = runs[0].config.name
        if any(run.config.name != self.kind for run in runs):
            raise ValueError("one stacked optimiser trains one kind of optimiser")
        device, dtype = flat.device, flat.dtype

        def column(values: Sequence[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float64, device=device)

        configs = [run.config for run in runs]
        self.base_lr = column([c.lr for c in configs])
        self.warmup = column([c.warmup_steps for c in configs])
        self.lr_scale = column([run.lr_scale for run in runs])
        self.beta1 = column([c.betas[0] for c in configs])
        self.beta2 = column([c.betas[1] for c in configs])
        # SGD's heavy-ball momentum: a buffer [M, P] once a run of the stack has momentum
        self.any_momentum = any(c.momentum for c in configs)
        self.momentum = column([c.momentum for c in configs]).to(dtype)[:, None]
        self.momentum_buffer: torch.Tensor | None = None
        # the parameter groups: contiguous column spans of the flat weights (optimiser order)
        ends = list(itertools.accumulate(layout.sizes))
        stops = list(itertools.accumulate(len(names) for names, _, _ in runs[0].groups))
        self.spans = [(ends[start - 1] if start else 0, ends[stop - 1])
                      for start, stop in zip([0, *stops[:-1]], stops, strict=True)]
        self.lr_factor = torch.stack([column([run.groups[g][1] for run in runs])
                                      for g in range(len(self.spans))], dim=1)  # [M, G]
        self.decay = torch.stack([column([run.groups[g][2] for run in runs])
                                  for g in range(len(self.spans))], dim=1)  # [M, G]
        self.has_decay = (self.decay != 0).any(dim=0).tolist()
        # the runs taking the perpendicular gradient, and each weight tensor's columns
        self.orthogonal = torch.tensor([c.orthogonal_grad for c in configs], device=device)
        self.any_orthogonal = any(c.orthogonal_grad for c in configs)
        self.tensor_spans = [(end - size, end) for end, size in zip(ends, layout.sizes,
                                                                    strict=True)]
        # the per-run constants of Adam's moment updates, in the weights' dtype
        self.one_minus_beta1 = (1 - self.beta1).to(dtype)[:, None]
        self.beta2_cast = self.beta2.to(dtype)[:, None]
        self.one_minus_beta2 = (1 - self.beta2).to(dtype)[:, None]
        # each run's torch.optim param_groups, the format its saved state takes
        self.group_formats = [_param_groups_format(run) for run in runs]
        self.exp_avg: torch.Tensor | None = None
        self.exp_avg_sq: torch.Tensor | None = None
        self.steps = 0  # optimiser steps taken (one count for the whole stack)

    def learning_rates(self, step: int) -> torch.Tensor:
        """[M] float64: each run's learning rate at optimiser step ``step`` (0-based), its
        warm-up and output-scale factor applied (``learning_rate`` times ``lr_scale``)."""
        warm = torch.where(step < self.warmup,
                           self.base_lr * (step + 1) / self.warmup.clamp(min=1), self.base_lr)
        return warm * self.lr_scale

    @torch.no_grad()
    def orthogonalize_gradient(self) -> None:
        """Replace the gradient of the runs with ``optim.orthogonal_grad`` by its part
        perpendicular to each weight tensor (``orthogonal_gradient``); the others' stays bit
        for bit. Does nothing when no run takes it or there is no gradient."""
        if self.any_orthogonal and self.flat.grad is not None:
            self.flat.grad = orthogonal_gradient(self.flat.grad, self.flat.detach(),
                                                 self.tensor_spans, self.orthogonal)

    @torch.no_grad()
    def step(self, step: int) -> torch.Tensor:
        """Update the weights from their gradient and clear it; returns the learning rate
        each parameter group took, [M, G] float64 (group g: columns ``spans[g]``)."""
        rates = self.learning_rates(step)[:, None] * self.lr_factor
        flat, grad = self.flat, self.flat.grad
        if grad is None:
            return rates
        self.steps += 1
        corrections = None
        fresh = self.any_momentum and self.momentum_buffer is None  # torch: b = g at first
        if fresh:
            self.momentum_buffer = torch.empty_like(flat)
        if self.kind != "sgd":
            if self.exp_avg is None:
                self.exp_avg, self.exp_avg_sq = torch.zeros_like(flat), torch.zeros_like(flat)
            corrections = ((1 - self.beta1 ** self.steps)[:, None],
                           (1 - self.beta2 ** self.steps).sqrt()[:, None].to(flat.dtype))
        for g, (start, stop) in enumerate(self.spans):
            self._update(g, slice(start, stop), grad[:, start:stop], rates[:, g:g + 1],
                         corrections, fresh)
        flat.grad = None
        return rates

    def _update(self, group: int, columns: slice, grad: torch.Tensor, lr: torch.Tensor,
                corrections: tuple[torch.Tensor, torch.Tensor] | None, fresh: bool) -> None:
        """One group's update: its weights ``flat[:, columns]``, learning rates ``lr`` [M, 1]
        (float64), Adam's bias corrections (1 - beta1^t, sqrt(1 - beta2^t)) [M, 1]; ``fresh``:
        SGD's momentum buffer has just been made (it takes the gradient as it is)."""
        param = self.flat[:, columns]
        decay = self.decay[:, group:group + 1]
        if self.kind != "adamw" and self.has_decay[group]:  # L2 on the gradient
            grad = grad.add(param * decay.to(param.dtype))
        if corrections is None:  # SGD; heavy ball b <- mu b + g, the step along b
            if self.any_momentum:  # (a run with mu = 0 steps along g: 0 b + g)
                buffer = self.momentum_buffer[:, columns]
                grad = buffer.copy_(grad) if fresh else buffer.mul_(self.momentum).add_(grad)
            param.add_(grad * (-lr).to(param.dtype))
            return
        exp_avg, exp_avg_sq = self.exp_avg[:, columns], self.exp_avg_sq[:, columns]
        if self.kind == "adamw":
            param.mul_((1 - lr * decay).to(param.dtype))
        exp_avg.lerp_(grad, self.one_minus_beta1)
        exp_avg_sq.mul_(self.beta2_cast).addcmul_(grad * self.one_minus_beta2, grad)
        bias_correction1, bias_correction2_sqrt = corrections
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(ADAM_EPS)
        param.addcdiv_(exp_avg * (-lr / bias_correction1).to(param.dtype), denom)

    def run_state(self, index: int, step: int) -> dict[str, Any]:
        """Run ``index``'s state as its own ``torch.optim`` optimiser's ``state_dict()``
        would be after ``step`` scheduled steps (the learning rate it would hold: that of the
        last step taken)."""
        run = self.runs[index]
        lr = learning_rate(run.config, max(step - 1, 0)) * run.lr_scale
        groups = [{**group, "lr": lr * group["lr_factor"]} for group in self.group_formats[index]]
        state = {}
        if self.momentum_buffer is not None and run.config.momentum:  # torch keeps none at 0
            state = {position: {"momentum_buffer": buffer.clone()} for position, buffer
                     in enumerate(self.layout.pieces(self.momentum_buffer[index]))}
        if self.exp_avg is not None:
            moments = zip(self.layout.pieces(self.exp_avg[index]),
                          self.layout.pieces(self.exp_avg_sq[index]), strict=True)
            state = {position: {"step": torch.tensor(float(self.steps)),
                                "exp_avg": exp_avg.clone(), "exp_avg_sq": exp_avg_sq.clone()}
                     for position, (exp_avg, exp_avg_sq) in enumerate(moments)}
        return {"state": state, "param_groups": groups}

    def load_run_states(self, states: Sequence[dict[str, Any]]) -> None:
        """Continue from the runs' saved states (``run_state`` form, or a ``torch.optim``
        state_dict of the same optimiser): the moment estimates or SGD's momentum buffers
        stacked (zeros for a run without momentum), the step count taken from them (equal for
        every run: they stopped at one step)."""
        counts = {int(entry["step"]) for state in states for entry in state["state"].values()
                  if "step" in entry}
        if len(counts) > 1:
            raise ValueError(f"the runs' optimiser states are at different steps {counts}")
        self.steps = counts.pop() if counts else 0
        positions = range(len(self.layout.names))
        if self.kind != "sgd" and all(p in s["state"] for s in states for p in positions):
            def stacked(key: str) -> torch.Tensor:
                return torch.stack([self.layout.row([s["state"][p][key] for p in positions])
                                    for s in states]).to(self.flat)

            self.exp_avg, self.exp_avg_sq = stacked("exp_avg"), stacked("exp_avg_sq")
        buffers = [[s["state"].get(p, {}).get("momentum_buffer") for p in positions]
                   for s in states]
        saved = [all(b is not None for b in run) for run in buffers]
        if self.any_momentum and any(saved):
            self.momentum_buffer = torch.stack([
                self.layout.row(run).to(self.flat) if has else torch.zeros_like(self.flat[0])
                for run, has in zip(buffers, saved, strict=True)]).detach()


@functools.lru_cache(maxsize=1024)  # runs of a sweep mostly share one format
def _param_groups_format(run: RunOptimizer) -> list[dict[str, Any]]:
    """The ``param_groups`` of the run's own ``torch.optim`` optimiser's ``state_dict()``."""
    template = build_optimizer(run.config, [{"params": [torch.empty(0) for _ in names],
                                             "lr_factor": factor, "weight_decay": decay}
                                            for names, factor, decay in run.groups])
    return template.state_dict()["param_groups"]

