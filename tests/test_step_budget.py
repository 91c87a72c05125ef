"""A budget of optimiser steps (schedule.steps): the epochs follow the training-set size and
the batch, the last epoch may be partial, and Hu et al.'s Fig. 5 presets take 1800 steps at
every training fraction."""

import json

import pytest
import torch
from conftest import TINY

from interp.config import ConfigError, RunConfig
from interp.presets import PRESETS, get_preset
from interp.runs import RESUME_FILE, RUN_FILE, Run, load_tensors
from interp.train import loop
from interp.train.loop import TrainOptions, train, train_stack
from interp.train.stacks import check_stackable, group_into_stacks

QUIET = TrainOptions(device="cpu", quiet=True)
FIG5 = [name for name in PRESETS if name.startswith("hu-fig5-")]
# the presets' task (a + b mod 97, so their batches and fractions) with a 4-unit MLP
CHEAP_MODEL = ["task.encoding=onehot", "model.kind=mlp", "model.hidden=[4]",
               "schedule.eval_every=100000"]


@pytest.fixture
def one_thread():
    """Torch on one thread: these steps are on tensors of a few thousand numbers, which a
    second thread only slows (by 10x when the machine's other core is busy)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def optimiser_steps(path) -> int:
    """The step count the run's Adam optimiser keeps, from its saved resume state."""
    tensors, _ = load_tensors(path / RESUME_FILE)
    return int(tensors["optim/0/step"])


def test_the_eight_fig5_presets_are_the_eight_variants_with_one_budget():
    assert len(FIG5) == 8
    assert {get_preset(name).schedule.steps for name in FIG5} == {1800}


@pytest.mark.parametrize("name", FIG5)
def test_every_fig5_preset_takes_1800_optimiser_steps_at_every_fraction(tmp_path, monkeypatch,
                                                                        one_thread, name):
    """The trainer's loop over epochs and minibatches is the real one; each step's forward
    and backward are replaced by a zero gradient (the optimiser still steps and counts), so
    the 32 runs take seconds. The count is the one the optimiser saves in its state."""
    def zero_gradient_step(self, rows, step, evaluate_epoch=None):
        if evaluate_epoch is not None:
            self.record(evaluate_epoch, step)
        self.stack.flat.grad = torch.zeros_like(self.stack.flat)
        self.optimizer.step(step)

    monkeypatch.setattr(loop._Loop, "step", zero_gradient_step)
    configs = [get_preset(name).with_overrides([f"task.frac={frac}", *CHEAP_MODEL])
               for frac in (0.1, 0.3, 0.5, 0.9)]
    paths = [tmp_path / str(i) for i in range(len(configs))]
    for stack in group_into_stacks(configs):
        train_stack([configs[i] for i in stack], [paths[i] for i in stack], QUIET)
    for config, path in zip(configs, paths, strict=True):
        last = Run.load(path).metrics.iloc[-1]
        assert optimiser_steps(path) == 1800, (config.task.frac, config.schedule.epochs)
        assert (last["epoch"], last["step"]) == (config.schedule.epochs, 1800)


def test_a_partial_last_epoch_trains_only_the_steps_left_and_resumes(tmp_path, one_thread):
    """Really trained: batch 128 of 8468 pairs is 67 steps an epoch, so 150 steps are
    67 + 67 + 16; a run stopped after epoch 2 and resumed ends where the straight one does."""
    config = get_preset("hu-fig5-adam-minibatch").with_overrides(
        ["task.frac=0.9", "schedule.steps=150", *CHEAP_MODEL])
    assert config.schedule.epochs == 3
    straight = train(config, tmp_path / "straight", QUIET)

    def stop_after_two(epoch):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "stopped", TrainOptions(device="cpu", quiet=True,
                                                         on_epoch=stop_after_two))
    assert optimiser_steps(tmp_path / "stopped") == 134
    resumed = train(None, tmp_path / "stopped", TrainOptions(device="cpu", quiet=True,
                                                             resume=True))
    for path in (straight, resumed):
        assert optimiser_steps(path) == 150
        assert Run.load(path).metrics.iloc[-1]["step"] == 150
    a, b = Run.load(straight), Run.load(resumed)
    for key, value in a.weights(3).items():
        assert torch.equal(value, b.weights(3)[key]), key


def test_epochs_follow_the_fraction_and_the_batch_after_overrides():
    preset = get_preset("hu-fig5-adamw")  # batch 512
    assert (preset.schedule.epochs, preset.steps_per_epoch()) == (180, 10)  # 4704 pairs
    at_09 = preset.with_overrides(["task.frac=0.9"])  # 8468 pairs: 17 steps an epoch
    assert (at_09.schedule.epochs, at_09.schedule.steps) == (106, 1800)
    assert preset.with_overrides(["optim.batch_size=null"]).schedule.epochs == 1800
    assert preset.with_overrides(["schedule.steps=25"]).schedule.epochs == 3
    nanda = get_preset("nanda").with_overrides(["schedule.steps=500", "task.frac=0.5"])
    assert (nanda.schedule.epochs, nanda.schedule.steps) == (500, 500)


def test_an_epoch_count_given_with_a_budget_must_agree_with_it():
    data = get_preset("hu-fig5-adamw").to_dict()
    assert RunConfig.from_dict(data).schedule.epochs == 180  # both given, and they agree
    data["schedule"]["epochs"] = 100
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(data)
    message = str(err.value)
    assert "\n" not in message
    assert "schedule.epochs=100 disagrees with schedule.steps=1800" in message
    assert "(1800 steps, 10 an epoch, take 180 epochs)" in message
    assert "schedule.steps=null" in message
    with pytest.raises(ConfigError, match="schedule.epochs=100 disagrees"):
        get_preset("hu-fig5-adamw").with_overrides(["schedule.epochs=100",
                                                    "schedule.steps=1800"])
    with pytest.raises(ConfigError, match="schedule.steps must be positive or null"):
        get_preset("hu-fig5-adamw").with_overrides(["schedule.steps=0"])
    # an epoch count set alone replaces the budget
    by_epochs = get_preset("hu-fig5-adamw").with_overrides(["schedule.epochs=100"])
    assert (by_epochs.schedule.epochs, by_epochs.schedule.steps) == (100, None)
    assert by_epochs.with_overrides(["task.frac=0.9"]).schedule.epochs == 100


def test_run_json_keeps_the_budget_and_old_run_json_still_loads(tmp_path):
    config = RunConfig.from_dict({**TINY["toy"], "schedule": {"steps": 7, "eval_every": 2}})
    assert config.schedule.epochs == 7  # full batch: one step an epoch
    path = train(config, tmp_path / "run", QUIET)
    record = json.loads((path / RUN_FILE).read_text())
    assert record["config"]["schedule"]["steps"] == 7
    assert Run.load(path).config == config
    # a run.json written before schedule.steps and objective.alpha_weight_decay existed
    del record["config"]["schedule"]["steps"]
    del record["config"]["objective"]["alpha_weight_decay"]
    (path / RUN_FILE).write_text(json.dumps(record))
    old = Run.load(path).config
    assert (old.schedule.steps, old.schedule.epochs) == (None, 7)
    assert old.objective.alpha_weight_decay == "scaled"


def test_full_batch_budgets_at_several_fractions_share_a_stack():
    full = [get_preset("hu-fig5-adamw-fullbatch").with_overrides([f"task.frac={f}"])
            for f in (0.1, 0.5, 0.9)]
    check_stackable(full)  # one step an epoch: 1800 epochs at every fraction
    minibatch = [get_preset("hu-fig5-adamw").with_overrides([f"task.frac={f}"])
                 for f in (0.1, 0.5, 0.9)]
    assert group_into_stacks(minibatch) == [[0], [1], [2]]
