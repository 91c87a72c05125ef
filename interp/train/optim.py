"""Optimisers and the learning-rate schedule (linear warm-up, as in Power et al.)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from interp.config import OptimConfig

OPTIMIZERS = ("adamw", "adam", "sgd")


def build_optimizer(config: OptimConfig, params: Iterable[torch.nn.Parameter]
                    ) -> torch.optim.Optimizer:
    """The torch optimiser a config names, over ``params`` (only the trainable ones)."""
    params = list(params)
    if config.name == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                 betas=config.betas)
    if config.name == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay,
                                betas=config.betas)
    if config.name == "sgd":
        return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.name!r}")


def learning_rate(config: OptimConfig, step: int) -> float:
    """The learning rate for optimiser step ``step`` (0-based): linear warm-up, then flat."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    return config.lr
