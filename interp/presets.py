"""Named experiment configurations (``--preset NAME``), each following its paper."""

from __future__ import annotations

from collections.abc import Callable

from interp.config import (
    ModularTask,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
    TransformerModel,
)
from interp.errors import UserError


def nanda() -> RunConfig:
    """Nanda et al. 2023: one-layer transformer, a + b mod 113, 30% train, 25k full-batch
    AdamW epochs (lr 1e-3, wd 1, betas 0.9/0.98). Groks between ~10k and ~17k epochs."""
    return RunConfig(
        task=ModularTask(op="add", p=113, encoding="nanda", frac=0.3, data_seed=598),
        model=TransformerModel(seed=999),
        optim=OptimConfig(name="adamw", lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98)),
        schedule=ScheduleConfig(epochs=25_000, eval_every=10, checkpoint_every=100),
        preset="nanda",
    )


def power() -> RunConfig:
    """Power et al. 2022 (openai/grok): two-layer causal transformer with LayerNorm,
    [x, op, y, =] tokens, x / y mod 97 on half the pairs, AdamW with 10 warm-up steps,
    minibatch 512, 1e5 steps (10 steps an epoch)."""
    return RunConfig(
        task=ModularTask(op="div", p=97, encoding="power", frac=0.5, data_seed=0),
        model=TransformerModel(n_layers=2, normalization="LN", freeze_biases=False, seed=0),
        optim=OptimConfig(name="adamw", lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98),
                          warmup_steps=10, batch_size=512),
        schedule=ScheduleConfig(epochs=10_000, eval_every=10, checkpoint_every=500,
                                checkpoint_log=30),
        preset="power",
    )


def tiny() -> RunConfig:
    """A small Nanda-style run that groks in about a minute on 2 CPU cores: train accuracy
    reaches 99% long before test accuracy does, and test accuracy ends near 100%."""
    return RunConfig(
        task=ModularTask(op="add", p=53, encoding="nanda", frac=0.5, data_seed=598),
        model=TransformerModel(d_model=64, n_heads=4, d_head=16, d_mlp=256, seed=999),
        optim=OptimConfig(name="adamw", lr=3e-3, weight_decay=1.0, betas=(0.9, 0.98)),
        schedule=ScheduleConfig(epochs=2500, eval_every=10, checkpoint_every=250,
                                checkpoint_log=20),
        preset="tiny",
    )


PRESETS: dict[str, Callable[[], RunConfig]] = {"nanda": nanda, "power": power, "tiny": tiny}


def get_preset(name: str) -> RunConfig:
    """The preset config ``name``; UserError listing the presets if unknown."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()
