"""Shared fixtures: small configs that train in seconds on 2 CPU cores."""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
from contextlib import chdir, redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

from interp.config import RunConfig

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# A small config of every model kind other than the transformer (a few seconds of training).
TINY = {
    "hu-mlp": {"task": {"kind": "modular", "p": 11, "encoding": "onehot", "frac": 0.5},
               "model": {"kind": "mlp", "hidden": [64, 64]},
               "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 0}},
    "hu-lstm": {"task": {"kind": "modular", "p": 11, "encoding": "pair", "frac": 0.5},
                "model": {"kind": "lstm"}, "optim": {"name": "adam", "lr": 1e-2,
                                                     "weight_decay": 0}},
    "gromov": {"task": {"kind": "modular", "p": 11, "encoding": "onehot", "frac": 0.5},
               "model": {"kind": "gromov", "width": 64},
               "optim": {"name": "sgd", "lr": 1000, "weight_decay": 0},
               "objective": {"loss": "mse"}},
    "committee": {"task": {"kind": "polynomial", "dim": 20, "n_train": 100, "n_test": 200},
                  "model": {"kind": "committee", "width": 50, "eps": 0.25},
                  "optim": {"name": "sgd", "lr": 25, "weight_decay": 0},
                  "objective": {"loss": "mse"}},
    "teacher": {"task": {"kind": "teacher", "n_train": 50, "n_test": 50},
                "model": {"kind": "mlp", "hidden": [100, 100], "activation": "tanh",
                          "init_scale": 2},
                "optim": {"lr": 3e-4, "weight_decay": 0.05}, "objective": {"loss": "mse"}},
    "digits": {"task": {"kind": "digits", "source": "sklearn", "n_train": 200},
               "model": {"kind": "mlp", "hidden": [50, 50]},
               "optim": {"lr": 1e-3, "weight_decay": 0.01, "batch_size": 100},
               "objective": {"loss": "mse"}},
    "toy": {"task": {"kind": "toy_addition"}, "model": {"kind": "toy"},
            "optim": {"lr": 1e-3, "weight_decay": 0.0}},
}


def small_config(**sections) -> RunConfig:
    """A p = 23 modular-addition transformer, small enough for a few hundred epochs a second."""
    data = {
        "task": {"kind": "modular", "op": "add", "p": 23, "frac": 0.5, "data_seed": 1},
        "model": {"kind": "transformer", "d_model": 32, "n_heads": 2, "d_head": 16,
                  "d_mlp": 64, "seed": 3},
        "optim": {"lr": 3e-3},
        "schedule": {"epochs": 60, "eval_every": 5, "checkpoint_every": 20},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return RunConfig.from_dict(data)


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m ARGS`` in a subprocess from the repository root."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=timeout)


_MAIN_MODULES = {"interp.train": "interp.train.__main__",
                 "interp.figures": "interp.figures.__main__"}


def run_in_process(module: str, *args: str, cwd: Path | None = None
                   ) -> subprocess.CompletedProcess:
    """``run_cli``'s result for ``python -m MODULE ARGS``, run in this process as its
    ``__main__`` does (through ``interp.cli.run_main``) from ``cwd``. Seconds faster than a
    subprocess (no imports to repeat), for the many commands that stop early."""
    from interp.cli import run_main

    main = importlib.import_module(_MAIN_MODULES.get(module, module)).main
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), chdir(cwd or Path.cwd()):
        status = run_main(main, list(args))
    return subprocess.CompletedProcess([module, *args], status, out.getvalue(), err.getvalue())


@pytest.fixture
def config_file(tmp_path):
    """Write a RunConfig to JSON and return its path."""
    def write(config: RunConfig, name: str = "config.json") -> Path:
        path = tmp_path / name
        path.write_text(config.to_json())
        return path
    return write


def files_in(path):
    """The relative paths of every file under ``path``, sorted."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def assert_same_run(a, b, exact: bool, columns=("train_loss", "test_loss", "train_acc",
                                                "test_acc", "weight_norm")):
    """Two runs (``interp.runs.Run``) hold the same files, config, split, weights (bitwise
    when ``exact``, else to float rounding) and metrics."""
    assert files_in(a.path) == files_in(b.path)
    assert a.checkpoint_epochs == b.checkpoint_epochs
    assert a.config.to_dict() == b.config.to_dict()
    assert [torch.equal(x, y) for x, y in zip(a.split(), b.split(), strict=True)] == [True] * 2
    for epoch in a.checkpoint_epochs:
        for name, value in a.weights(epoch).items():
            if exact:
                assert torch.equal(value, b.weights(epoch)[name]), (epoch, name)
            else:
                torch.testing.assert_close(value, b.weights(epoch)[name], rtol=1e-4, atol=1e-5)
    ma, mb = a.metrics, b.metrics
    assert list(ma.columns) == list(mb.columns) and len(ma) == len(mb)
    assert ma[["epoch", "step"]].equals(mb[["epoch", "step"]])
    columns = [c for c in columns if c in ma.columns]
    np.testing.assert_allclose(ma[columns], mb[columns], rtol=1e-4, atol=1e-6)
