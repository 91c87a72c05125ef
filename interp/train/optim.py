"""Optimisers, the learning-rate schedule (linear warm-up, as in Power et al.) and the
optimiser variants of Hu et al. (Fig. 5) and Grokfast (Lee et al. 2024).

``OptimizerVariants`` holds everything the variants need between steps (noise generator,
filter buffers); its ``state_dict`` goes into the resume state, so a killed run resumes
bit-identically.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from interp.config import OptimConfig

OPTIMIZERS = ("adamw", "adam", "sgd")


def build_optimizer(config: OptimConfig, groups: list[dict[str, Any]]
                    ) -> torch.optim.Optimizer:
    """The torch optimiser a config names, over parameter ``groups`` (dicts with ``params``,
    ``lr_factor`` and optionally their own ``weight_decay``)."""
    groups = [{**group, "params": list(group["params"])} for group in groups]
    if config.name == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay,
                                 betas=config.betas)
    if config.name == "adam":
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay,
                                betas=config.betas)
    if config.name == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.name!r}")


def learning_rate(config: OptimConfig, step: int) -> float:
    """The learning rate for optimiser step ``step`` (0-based): linear warm-up, then flat."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    return config.lr


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group ``lr`` times its ``lr_factor``."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_factor", 1.0)


class OptimizerVariants:
    """Weight noise, gradient filters and update noise around one optimiser step.

    Per step: ``with perturbed_weights():`` forward and backward (Hu et al.: each parameter
    W replaced by W + sigma eps at every forward, eps ~ N(0, 1); the gradient taken there is
    applied to the clean W); ``filter_gradients()`` (Grokfast: g <- g + lamb h, with h the
    EMA h <- alpha h + (1 - alpha) g, initialised to the first gradient, or the mean of the
    last ``filter_window`` gradients once the window is full); ``optimizer.step()``;
    ``add_update_noise(optimizer)`` (Hu et al.: W <- W + lr (dW + n), n ~ N(0, sigma^2)).
    Noise is drawn from its own generator, seeded from the schedule seed.
    """

    def __init__(self, config: OptimConfig, params: list[torch.nn.Parameter], seed: int):
        self.config, self.params = config, params
        device = params[0].device if params else torch.device("cpu")
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.buffers: list[torch.Tensor] | None = None  # EMA h, or the MA window [w, ...]
        self.seen = 0  # gradients the filter has taken in

    @property
    def active(self) -> bool:
        c = self.config
        return bool(c.weight_noise or c.update_noise or c.grad_filter)

    def _noise(self, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.shape, generator=self.generator, device=like.device,
                           dtype=like.dtype)

    @contextmanager
    def perturbed_weights(self) -> Iterator[None]:
        """Add N(0, weight_noise^2) to every parameter inside the block, then restore the
        exact clean values (gradients computed inside stay)."""
        sigma = self.config.weight_noise
        if not sigma:
            yield
            return
        clean = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p in self.params:
                p.add_(sigma * self._noise(p))
        try:
            yield
        finally:
            with torch.no_grad():
                for p, value in zip(self.params, clean, strict=True):
                    p.copy_(value)

    @torch.no_grad()
    def filter_gradients(self) -> None:
        """Grokfast's EMA or MA filter, in place on ``p.grad``."""
        kind, lamb = self.config.grad_filter, self.config.filter_lamb
        if kind is None:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if kind == "ema":
            if self.buffers is None:
                self.buffers = [g.clone() for g in grads]
            else:
                alpha = self.config.filter_alpha
                for h, g in zip(self.buffers, grads, strict=True):
                    h.mul_(alpha).add_(g, alpha=1 - alpha)
            filtered = self.buffers
        else:
            window = self.config.filter_window
            if self.buffers is None:
                self.buffers = [torch.zeros(window, *g.shape, dtype=g.dtype, device=g.device)
                                for g in grads]
            for buffer, g in zip(self.buffers, grads, strict=True):
                buffer[self.seen % window] = g
            filtered = ([b.mean(dim=0) for b in self.buffers] if self.seen + 1 >= window
                        else None)
        self.seen += 1
        if filtered is not None:
            for p, h in zip(self.params, filtered, strict=True):
                if p.grad is not None:
                    p.grad.add_(h, alpha=lamb)

    @torch.no_grad()
    def add_update_noise(self, optimizer: torch.optim.Optimizer) -> None:
        """W <- W + lr * n with n ~ N(0, update_noise^2), each group at its own lr."""
        sigma = self.config.update_noise
        if not sigma:
            return
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.add_(self._noise(p), alpha=group["lr"] * sigma)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to continue bit-identically, as named tensors."""
        state = {"generator": self.generator.get_state(),
                 "seen": torch.tensor(self.seen)}
        for index, buffer in enumerate(self.buffers or []):
            state[f"buffer/{index}"] = buffer
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what ``state_dict`` saved (buffers moved to the parameters' device)."""
        self.generator.set_state(state["generator"])
        self.seen = int(state["seen"])
        keys = sorted((k for k in state if k.startswith("buffer/")),
                      key=lambda k: int(k.split("/")[1]))
        device = self.params[0].device if self.params else "cpu"
        self.buffers = [state[k].to(device) for k in keys] or None
