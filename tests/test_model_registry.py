"""A model kind is one registry entry: the README's example kind, registered from outside the
package, builds, checks its configs, estimates its resources and trains as a stack of runs
through the one training loop with nothing else added."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import torch

import interp.config
from interp.config import ConfigError, RunConfig
from interp.models import (
    ModelKind,
    build_model,
    model_kinds,
    parameter_groups,
    register_model_kind,
    unregister_model_kind,
)
from interp.resources import estimate_resources, parameter_count
from interp.runs import Run
from interp.tasks import build_task
from interp.train.loop import TrainOptions, train, train_stack

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The Python block of the README's section 'Adding a model kind'."""
    section = README.read_text().split("### Adding a model kind", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


@pytest.fixture
def cosine(monkeypatch):
    """The README's example module, imported (which registers its kind); unregistered after."""
    module = types.ModuleType("readme_cosine")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(readme_example(), str(README), "exec"), module.__dict__)
    yield module
    unregister_model_kind("cosine")
    assert "cosine" not in model_kinds() and "cosine" not in interp.config.MODEL_KINDS


def cosine_config(**model) -> RunConfig:
    return RunConfig.from_dict({
        "task": {"kind": "modular", "p": 11, "encoding": "onehot", "frac": 0.5},
        "model": {"kind": "cosine", "width": 32, **model},
        "optim": {"name": "adam", "lr": 3e-2, "weight_decay": 0},
        "schedule": {"epochs": 40, "eval_every": 10, "checkpoint_every": 20}})


def test_the_readme_example_trains_as_a_stack_of_two(cosine, tmp_path):
    configs = [cosine_config(seed=0), cosine_config(seed=1, init_scale=0.5)]
    stacked = train_stack(configs, [tmp_path / "a", tmp_path / "b"],
                          TrainOptions(device="cpu", quiet=True))
    for config, path in zip(configs, stacked, strict=True):
        run = Run.load(path)
        assert isinstance(run.config.model, cosine.CosineModel)
        losses = run.metrics["train_loss"]
        assert len(losses) == 5 and losses.iloc[-1] < 0.1 * losses.iloc[0]
        # the stack's run is the run trained alone, up to float rounding
        alone = Run.load(train(config, tmp_path / f"alone-{path.name}",
                               TrainOptions(device="cpu", quiet=True)))
        for name, value in run.weights(40).items():
            torch.testing.assert_close(value, alone.weights(40)[name], rtol=1e-4, atol=1e-5)
        # and it is an ordinary run: its model rebuilds with its hook points
        model = run.model(40)
        _, cache = model.run_with_cache(run.task().train_inputs[:3])
        assert cache["hook_post"].shape == (3, 32)
    first, second = (Run.load(p).weights(0)["W_in"] for p in stacked)
    assert not torch.equal(first, second)  # seeds 0 and 1, the second scaled by 0.5


def test_the_example_kind_is_checked_and_estimated_like_the_others(cosine):
    config = cosine_config()
    task = build_task(config.task)
    model = build_model(config.model, task)
    assert isinstance(model, cosine.CosineNet)
    (group,) = parameter_groups(config.model, model)  # the default: one group of all
    assert group["params"] == [model.W_in, model.W_out] and group["lr_factor"] == 1.0
    assert parameter_count(config) == 32 * (22 + 11) == sum(
        v.numel() for v in model.state_dict().values())
    assert estimate_resources([config]).n_parameters == 32 * 33
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"task": {"kind": "toy_addition"}, "model": {"kind": "cosine"}})
    assert str(info.value) == (
        "model.kind 'cosine' cannot read task.kind 'toy_addition'; it needs feature inputs: "
        "task.kind polynomial, teacher or digits, or task.kind modular or permutation with "
        "task.encoding onehot")
    with pytest.raises(ConfigError, match="^model.width must be positive, got -3$"):
        cosine_config(width=-3)


def test_registering_is_idempotent_and_a_taken_name_is_refused(cosine):
    register_model_kind(cosine.ENTRY)  # the same entry again: nothing changes
    assert model_kinds()["cosine"] is cosine.ENTRY
    with pytest.raises(ValueError, match="model kind 'mlp' is already registered"):
        register_model_kind(ModelKind(interp.config.MLPModel, cosine.ENTRY.build))


def test_every_built_in_kind_is_one_entry_of_both_registries():
    assert list(model_kinds()) == list(interp.config.MODEL_KINDS)
    for name, entry in model_kinds().items():
        assert entry.name == name and interp.config.MODEL_KINDS[name] is entry.config
        assert entry.config.reads in interp.config.INPUTS
