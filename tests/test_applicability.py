"""Measures only where they apply, with their parameters shown (issue 13, item 2): loss
landmarks whose threshold fits the loss, the threshold accuracy of regression runs, no
Nanda phases for regression, Liu et al.'s phase rule scaled to the run, the circular RQI of
Fourier embeddings, probe counts in the lazy-rich figures, and "never" for missed epochs."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from conftest import small_config

from interp.analysis import representation as rep
from interp.analysis.curves import (
    LOSS_THRESHOLD,
    format_epoch,
    landmarks,
    loss_threshold,
    threshold_accuracy,
)
from interp.analysis.phases import LIU_MAX_GAP, learning_phase
from interp.analysis.progress import phases_skip_reason
from interp.analyzers import representation as rep_analyzer
from interp.config import RunConfig
from interp.figures.lazy_rich import cka_figure, kernel_figure
from interp.figures.model_curves import representation_quality
from interp.models import build_model
from interp.presets import get_preset
from interp.runs import Run
from interp.tasks import build_task
from interp.train.loop import TrainOptions, train
from interp.train.measures import evaluation_measures

REFERENCE = Path(__file__).resolve().parent.parent / "checkpoints" / "nanda-p113"
COMMITTEE = {"task": {"kind": "polynomial", "dim": 10, "n_train": 40, "n_test": 30},
             "model": {"kind": "committee", "width": 20, "eps": 0.25, "seed": 4},
             "optim": {"name": "sgd", "lr": 1, "weight_decay": 0},
             "objective": {"loss": "mse", "centered": True, "alpha": 1.0}}


def mse_curves() -> pd.DataFrame:
    """A regression run's metrics: train loss 2.0 falling to 1e-3, test loss rising from
    2.0 to 3.0 before falling to 0.01; no accuracy columns (recorded before it had one)."""
    return pd.DataFrame({"epoch": [0, 10, 20, 30, 40], "step": [0, 10, 20, 30, 40],
                         "train_loss": [2.0, 0.5, 0.03, 0.015, 0.001],
                         "test_loss": [2.0, 3.0, 2.5, 0.5, 0.01]})


# ---------------------------------------------------------------------------------------------
# Loss landmarks and "never"


def test_format_epoch_says_never_for_a_landmark_not_reached():
    assert [format_epoch(v) for v in (None, math.nan, 0, 890, 61.0)] == [
        "never", "never", "0", "890", "61"]


def test_mse_landmarks_use_a_fraction_of_the_first_loss_not_a_cross_entropy_figure():
    metrics = mse_curves()
    assert loss_threshold(metrics, "cross_entropy") == LOSS_THRESHOLD == pytest.approx(
        -math.log(0.99))
    marks = landmarks(metrics, "mse", "real")
    assert marks.loss_threshold == pytest.approx(0.02)  # 1% of the first train loss, 2.0
    assert (marks.train_loss_low, marks.test_loss_low, marks.loss_gap) == (30, 40, 10)
    # read against -ln 0.99 the train loss would only count at epoch 40, and the test loss
    # (0.01 < 0.01005) too: the gap would vanish
    ce = landmarks(metrics)
    assert (ce.train_loss_low, ce.test_loss_low) == (40, 40)
    assert marks.accuracy_rule is None and marks.train_acc_99 is None
    text = marks.describe()
    assert "train acc" not in text  # no accuracy: no accuracy landmarks
    assert "train loss <= 0.02 (1% of the first train loss) at epoch 30" in text
    assert "None" not in text
    d = marks.to_dict()
    assert (d["loss"], d["loss_threshold"], d["loss_rule"]) == (
        "mse", pytest.approx(0.02), "1% of the first train loss")
    never = landmarks(metrics.assign(test_loss=[2.0, 3.0, 2.5, 2.5, 2.5]), "mse", "real")
    assert never.test_loss_low is None and never.loss_gap is None
    assert "test loss at epoch never" in never.describe()


def test_a_regression_runs_accuracy_is_its_threshold_accuracy():
    metrics = mse_curves().assign(train_acc=[0.1, 0.5, 0.995, 1.0, 1.0],
                                  test_acc=[0.1, 0.0, 0.1, 0.5, 0.999])
    marks = landmarks(metrics, "mse", "real")
    assert (marks.train_acc_99, marks.test_acc_99, marks.accuracy_gap) == (20, 40, 20)
    assert "squared error below 0.001" in marks.accuracy_rule
    assert marks.describe().startswith("train acc >= 99% at epoch 20; test acc >= 99% at "
                                       "epoch 40; gap 20 epochs (accuracy: squared error below")


def test_threshold_accuracy_counts_examples_within_the_tolerance():
    targets = torch.zeros(4, 2)
    outputs = torch.tensor([[0.0, 0.0], [0.04, 0.0], [0.03, 0.04], [math.nan, 0.0]])
    # mean squared errors over the outputs: 0, 8e-4, 1.25e-3, NaN
    assert threshold_accuracy(outputs, targets) == 0.5
    assert threshold_accuracy(outputs, targets, tolerance=5e-4) == 0.25
    assert threshold_accuracy(torch.tensor([0.5, 0.52]), torch.tensor([0.5, 0.5])) == 1.0


def test_regression_runs_record_the_threshold_accuracy_of_the_trained_output():
    config = RunConfig.from_dict(COMMITTEE)
    task = build_task(config.task, config.model)
    measure = evaluation_measures(config, task)
    model = build_model(config.model, task)
    # centred, the output at initialisation is 0: right where y^2 < 1e-3
    y = task.targets
    at_init = measure(model.state_dict())
    assert at_init["train_acc"] == pytest.approx(
        (y[task.train_idx].square() < 1e-3).double().mean().item())
    assert at_init["test_acc"] == pytest.approx(
        (y[task.test_idx].square() < 1e-3).double().mean().item())
    assert 0 < at_init["train_acc"] < 0.5 and "decomp_total" in at_init
    # moved weights: the accuracy of alpha (f(W) - f(W_0)) as the loss sees it
    moved = model.W.detach() + 0.05 * torch.randn(model.W.shape,
                                                  generator=torch.Generator().manual_seed(1))
    x = task.inputs[task.test_idx]
    with torch.no_grad():
        f0 = model(x)
        model.W.copy_(moved)
        expected = threshold_accuracy(model(x) - f0, y[task.test_idx])
    assert measure({"W": moved})["test_acc"] == pytest.approx(expected)
    classification = get_preset("hu-mlp")
    assert evaluation_measures(classification, build_task(classification.task)) is None


def test_training_a_regression_run_writes_its_accuracy_and_shows_it_in_the_bar(tmp_path,
                                                                               capsys):
    config = RunConfig.from_dict({**COMMITTEE, "schedule": {"epochs": 20, "eval_every": 10,
                                                            "checkpoint_every": 20}})
    train(config, tmp_path / "run", TrainOptions(device="cpu", quiet=False))
    metrics = Run.load(tmp_path / "run").metrics
    assert {"train_acc", "test_acc"} <= set(metrics)
    assert metrics["test_acc"].between(0, 1).all()
    bar = capsys.readouterr().err
    assert "acc=0." in bar and "nan" not in bar


# ---------------------------------------------------------------------------------------------
# Phases


def test_nanda_phases_apply_to_classification_runs_only():
    for preset in ("kumar-committee", "kumar-teacher"):
        reason = phases_skip_reason(get_preset(preset))
        assert reason is not None and "regression" in reason and "\n" not in reason
    for preset in ("nanda", "kumar-gromov", "omnigrok-digits"):  # MSE on class labels too
        assert phases_skip_reason(get_preset(preset)) is None


def tiny_like_curves() -> pd.DataFrame:
    """A 2500-step run: train accuracy 90% at step 90, test accuracy at step 870."""
    steps = list(range(0, 2501, 10))
    return pd.DataFrame({"epoch": steps, "step": steps,
                         "train_loss": [1.0] * len(steps), "test_loss": [1.0] * len(steps),
                         "train_acc": [float(s >= 90) for s in steps],
                         "test_acc": [float(s >= 870) for s in steps]})


def test_liu_phase_threshold_scales_with_the_run_and_is_stated():
    metrics = tiny_like_curves()
    scaled = learning_phase(metrics)
    assert (scaled.name, scaled.gap, scaled.max_gap) == ("grokking", 780, 25)
    absolute = learning_phase(metrics, max_gap=LIU_MAX_GAP)
    assert (absolute.name, absolute.max_gap) == ("comprehension", 1000)
    # Liu et al.'s own runs: 10^5 steps, where a hundredth is their 10^3
    long = pd.DataFrame({"step": [0, 100, 1099, 100_000], "epoch": [0, 100, 1099, 100_000],
                         "train_loss": [1.0] * 4, "test_loss": [1.0] * 4,
                         "train_acc": [0.0, 1.0, 1.0, 1.0], "test_acc": [0.0, 0.0, 1.0, 1.0]})
    assert learning_phase(long).max_gap == 1000
    assert learning_phase(long).name == "comprehension"  # 999 steps
    assert learning_phase(long, gap_fraction=0.005).name == "grokking"


# ---------------------------------------------------------------------------------------------
# Representation: the circular RQI of Fourier embeddings


def _reference_embeddings(epoch: int) -> torch.Tensor:
    return Run.load(REFERENCE).weights(epoch)["embed.weight"][:113]


def test_circular_rqi_of_the_reference_run_is_near_one_grokked_and_near_zero_at_init():
    final, initial = _reference_embeddings(25_000), _reference_embeddings(0)
    frequencies = rep.circle_frequencies(final, 113)
    assert frequencies == [9, 10, 30, 36]
    grams = rep.parallelograms(113, 113)
    assert rep.circular_rqi(final, grams, frequencies, 113) > 0.99
    assert rep.circular_rqi(initial, grams, frequencies, 113) < 0.02
    assert rep.rqi(final, grams) == 0.0  # Liu et al.'s linear test does not fit circles


def test_circular_rqi_of_synthetic_circles():
    p, n_dims = 31, 6
    a = torch.arange(p, dtype=torch.float64)
    rotation = torch.linalg.qr(torch.randn(n_dims, n_dims, dtype=torch.float64,
                                           generator=torch.Generator().manual_seed(0))).Q
    # an ellipse of frequency 3 and a circle of frequency 5, rotated into 6 dimensions
    waves = torch.stack([3 * torch.cos(2 * math.pi * 3 * a / p), torch.sin(2 * math.pi * 3 * a / p),
                         torch.cos(2 * math.pi * 5 * a / p), torch.sin(2 * math.pi * 5 * a / p),
                         torch.zeros(p), torch.zeros(p)], dim=1)
    circles = waves @ rotation.T
    grams = rep.parallelograms(p, p)
    assert rep.circle_frequencies(circles, p) == [3]  # 5 holds under 3x the uniform share
    assert rep.circular_rqi(circles, grams, [3, 5], p) == 1.0
    assert rep.rqi(circles, grams) < 0.05
    assert rep.circular_delta([5], p) == pytest.approx(math.sin(math.pi / p) ** 2)
    random = torch.randn(p, n_dims, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    assert rep.circular_rqi(random, grams, [3, 5], p) < 0.05
    line = a[:, None]  # one dimension holds no circle: no parallelogram is satisfied
    assert rep.circular_rqi(line, grams, [1], p) == 0.0
    assert rep.circular_rqi(circles, grams, [], p) == 0.0  # no key frequency: no circle
    pairs = torch.tensor([(i, j) for i in range(p) for j in range(i, p)])
    train, test = pairs[::2], pairs[1::2]
    assert rep.circular_predicted_accuracy(circles, train, test, [3, 5], p) == pytest.approx(
        rep.ideal_accuracy(p, train, test, p))


def _run(config: RunConfig) -> SimpleNamespace:
    return SimpleNamespace(config=config)


def test_representation_analysis_says_which_test_it_applies_and_why_not():
    nanda, toy = get_preset("nanda"), get_preset("liu-toy")
    assert (rep_analyzer.geometry(nanda), rep_analyzer.geometry(toy)) == ("circular", "linear")
    assert rep_analyzer.skip_reason(_run(nanda)) is None
    assert rep_analyzer.skip_reason(_run(toy)) is None
    for preset, words in (("kumar-committee", "addition task"), ("hu-mlp", "no embedding")):
        reason = rep_analyzer.skip_reason(_run(get_preset(preset)))
        assert words in reason and "\n" not in reason
    text = rep_analyzer.describe_test(True, [9, 10, 30, 36], 0.16)
    assert "circular" in text and "9, 10, 30, 36" in text and "0.16" in text
    figure = representation_quality(pd.DataFrame({"epoch": [0, 10], "rqi": [0.0, 1.0]}),
                                    pd.DataFrame({"epoch": [0, 10]}), geometry="circular")
    assert figure.data[0].name == "circular RQI" and "circular" in figure.layout.title.text


# ---------------------------------------------------------------------------------------------
# Sample sizes in the lazy-rich figures


def test_lazy_rich_figures_say_how_many_probes_they_used():
    curve = pd.DataFrame({"epoch": [0, 10], "kernel_distance/trace": [0.0, 0.4],
                          "alignment/trace": [0.1, 0.3], "cka/hook_post": [1.0, 0.5]})
    assert "64 probes" in kernel_figure(curve, probes=64).layout.title.text
    assert "256 probes" in cka_figure(curve, probes=256).layout.title.text
    assert "probes" not in cka_figure(curve).layout.title.text


@pytest.fixture(scope="module")
def analysis_context(tmp_path_factory):
    """A fresh analysis context over a few checkpoints of a small modular-addition run."""
    from interp.analyzers import Context, Options
    from interp.runs import ANALYSIS_DIR, AnalysisStore

    path = tmp_path_factory.mktemp("applicability") / "run"
    train(small_config(schedule={"epochs": 4, "checkpoint_every": 2}), path,
          TrainOptions(device="cpu", quiet=True))
    run = Run.load(path)

    def context(probes: int = 256):
        return Context(run, run.task(), AnalysisStore(path / ANALYSIS_DIR),
                       Options(probes=probes), run.checkpoint_epochs)
    return context


def test_lazy_rich_summary_states_its_probe_count(analysis_context):
    from interp.analyzers import lazy_rich as lazy_analyzer

    context = analysis_context(probes=10_000)
    summary = lazy_analyzer.analyze(context).summary
    # all of the small test split: fewer than requested
    assert summary["probes_used"] == len(context.task.test_idx) < 10_000
    assert summary["probes"] == 10_000  # the option, as the cache records it


def test_representation_summary_names_its_test_and_parameters(analysis_context):
    result = rep_analyzer.analyze(analysis_context())
    assert result.geometry == "circular" and result.frequencies
    assert result.delta == pytest.approx(rep.circular_delta(result.frequencies, 23))
    assert "circular parallelograms" in result.test
    assert result.summary["test"] == result.test
    assert result.summary["frequencies"] == result.frequencies
    assert "final_effective_loss" not in result.summary  # Liu et al.'s l_eff is linear
    assert list(result.measures.columns) == ["epoch", "rqi"]
    assert result.measures["rqi"].between(0, 1).all()
    assert result.final_rqi == result.measures["rqi"].iloc[-1]
    assert result.projection.coordinates.shape == (23, 2)
    # with the fourier analysis's key frequencies at hand, those are the circles read
    context = analysis_context()
    context.results["fourier"] = SimpleNamespace(key_frequencies=[7, 2])
    assert rep_analyzer.analyze(context).frequencies == [2, 7]
    context.results["fourier"] = SimpleNamespace(key_frequencies=[])
    none = rep_analyzer.analyze(context)
    assert none.frequencies == [] and none.final_rqi == 0.0 and "no key frequencies" in none.test
