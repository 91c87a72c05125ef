"""Shared fixtures: small configs that train in seconds on 2 CPU cores."""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
from contextlib import chdir, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from interp.config import RunConfig

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


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
