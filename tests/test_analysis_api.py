"""The public analysis namespace (interp.analysis): its docstring example runs on the shipped
reference run and gives what the analyzer computes; every bad input is a one-line UserError;
importing it is instant."""

import doctest
import shutil
import subprocess
import sys
from contextlib import chdir
from pathlib import Path

import pytest
import torch

from interp import analysis
from interp.analysis import modular
from interp.config import ModularTask
from interp.errors import UserError
from interp.tasks import build_task

REFERENCE = Path(__file__).resolve().parents[1] / "checkpoints" / "nanda-p113"
KEY = [9, 10, 30, 36]  # the reference run's key frequencies (tests/test_reference_run.py)
P = 113


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The names the module docstring's example defines, run on a copy of the reference run
    (its relative path resolved in a temporary directory), and its doctest results."""
    root = tmp_path_factory.mktemp("example")
    shutil.copytree(REFERENCE, root / "checkpoints" / "nanda-p113")
    test = doctest.DocTestParser().get_doctest(analysis.__doc__, {}, "interp.analysis",
                                               None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    with chdir(root):
        runner.run(test, clear_globs=False)
    return {**test.globs, "results": runner.summarize(verbose=False)}


@pytest.fixture(scope="module")
def final_model(example):
    return example["run"].model()


def test_importing_the_namespace_loads_neither_torch_nor_transformer_lens():
    code = ("import sys, interp.analysis as a\n"
            "assert 'torch' not in sys.modules and 'transformer_lens' not in sys.modules\n"
            "a.restricted_loss, a.fourier_basis, a.ntk\n"
            "assert 'transformer_lens' not in sys.modules\n"
            "print(len(a.__all__), 'restricted_loss' in dir(a))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    count, listed = done.stdout.split()
    assert int(count) >= 40 and listed == "True"


def test_every_public_name_resolves_and_the_notebook_functions_give_shapes():
    for name in analysis.__all__:
        assert getattr(analysis, name).__doc__, name
    for name in ("fourier_basis", "key_frequencies", "restricted_loss", "excluded_loss",
                 "checkpoint_progress", "W_L", "ntk", "last_position_loss",
                 "neuron_frequency_fractions", "progress_measures", "embedding_fourier_norms",
                 "grid_activations", "neuron_activations_grid"):
        assert "[" in getattr(analysis, name).__doc__, f"{name}: no shape in its docstring"
    with pytest.raises(AttributeError, match="no attribute 'restricted_los'"):
        analysis.restricted_los  # noqa: B018


def test_the_docstring_example_gives_the_analyzers_restricted_loss(example):
    assert example["results"] == doctest.TestResults(failed=0, attempted=9)
    run, model, task = example["run"], example["model"], example["task"]
    assert example["key"] == KEY
    measures = analysis.checkpoint_progress(model, task, KEY)
    restricted = measures.restricted_loss
    # interp.analyze's fourier analyzer: the exact fast-path forward of the stored weights
    # (not the TransformerLens model), stacked, then the same measures
    grid, = modular.stacked_grid_activations(
        [run.weights(10_000)], run.config.model, list(analysis.trainable_weights(model)),
        task.inputs)
    cached = modular.analyse_grid(grid, task, KEY).scalars
    assert restricted == pytest.approx(cached["restricted_loss"], rel=1e-4)
    assert restricted == pytest.approx(1.6015, abs=1e-3)
    test_loss = analysis.last_position_loss(model, task.test_inputs, task.test_targets)
    assert test_loss == pytest.approx(run.metrics.set_index("epoch").loc[10_000, "test_loss"],
                                      rel=1e-6)
    assert restricted < test_loss / 10  # the progress measure leads the test loss
    assert measures.excluded_loss == pytest.approx(cached["excluded_loss"], rel=1e-4)


def test_at_the_final_checkpoint_the_restricted_loss_is_below_the_test_loss(example,
                                                                            final_model):
    task = example["task"]
    measures = analysis.checkpoint_progress(final_model, task, KEY)
    test_loss = analysis.last_position_loss(final_model, task.test_inputs, task.test_targets)
    assert measures.restricted_loss < test_loss < 1e-5
    assert measures.restricted_acc == 1.0
    assert measures.excluded_loss > 1.0 and measures.excluded_acc < 0.5
    assert sorted(measures.excluded_loss_per_frequency) == KEY
    assert analysis.key_frequencies(final_model, task, source="embedding") == KEY


def test_W_L_is_W_out_times_W_U(example):
    model = example["model"]
    W_L = analysis.W_L(model)
    assert W_L.shape == (512, P) and not W_L.requires_grad
    torch.testing.assert_close(W_L, model.W_out[0].detach() @ model.W_U.detach())
    assert analysis.unembed_fourier(W_L, P).shape == (512, P)


def test_ntk_matches_the_squared_gradient_of_the_correct_logit(example):
    model, task = example["model"], example["task"]
    inputs, targets = task.test_inputs[:4], task.test_targets[:4]
    kernel = analysis.ntk(model, inputs, targets, kind="correct_class")
    assert kernel.shape == (4, 4) and kernel.dtype == torch.float64
    torch.testing.assert_close(kernel, kernel.T)
    weights = list(analysis.trainable_weights(model).values())
    for i in range(2):
        logit = model(inputs[i:i + 1])[0, -1, targets[i]]
        squared = sum(float(g.double().pow(2).sum())
                      for g in torch.autograd.grad(logit, weights))
        assert kernel[i, i].item() == pytest.approx(squared, rel=1e-4)


def test_neuron_activations_grid_is_re_exported_as_a_p_by_p_grid(example):
    from interp.analysis import neurons

    model, task = example["model"], example["task"]
    assert analysis.neuron_activations_grid is neurons.neuron_activations_grid
    grid = analysis.neuron_activations_grid(model, task)
    assert grid.shape == (P, P, 512)
    flat = modular.grid_activations(model, task.inputs).neuron_acts
    torch.testing.assert_close(grid, flat.reshape(P, P, -1))


def _bad_inputs(model, task):
    """(call, what the message must say) for each mistake."""
    acts = torch.zeros(P * P, 8)
    other_p = build_task(ModularTask(p=7))
    division = build_task(ModularTask(op="div"))
    product = build_task(ModularTask(op="mul"))
    return [
        (lambda: analysis.restricted_loss(model, task, []), "key-frequency list is empty"),
        (lambda: analysis.excluded_loss(model, task, [0, 9]), r"\[0\] are not integers in 1..56"),
        (lambda: analysis.restricted_loss(model, task, [57]), "not integers in 1..56"),
        (lambda: analysis.restricted_loss(model, task, [9.0]), "not integers in 1..56"),
        (lambda: analysis.restricted_loss(model, task, [9, 9]), "repeat a frequency"),
        (lambda: analysis.restricted_loss(model, task, 9), "not a list of integers"),
        (lambda: analysis.restricted_loss(model, product, KEY), "need an op in a"),
        (lambda: analysis.restricted_loss(model, division, KEY), "not the full p x p"),
        (lambda: analysis.key_frequencies(model, other_p), "113 output classes but .* p is 7"),
        (lambda: analysis.key_frequencies(model, task, source="weights"), "unknown key-freq"),
        (lambda: analysis.key_frequencies(torch.nn.Linear(3, P), task),
         "Linear is not a TransformerLens transformer"),
        (lambda: analysis.W_L(torch.nn.Linear(3, P)), "not a TransformerLens transformer"),
        (lambda: analysis.neuron_frequency_fractions(acts, P),
         r"shape \[12769, 8\]; expected \[p, p, ...\]"),
        (lambda: analysis.progress_measures(acts.reshape(P, P, 8), torch.zeros(P * P, P),
                                            torch.zeros(8, P), task.targets, task.train_idx,
                                            task.test_idx, P, KEY),
         r"neuron_acts has shape \[113, 113, 8\]; expected \[p \* p, ...\]"),
        (lambda: analysis.progress_measures(acts, torch.zeros(P * P, P), torch.zeros(8, P),
                                            task.targets, task.train_idx, task.test_idx, P,
                                            [60]), "not integers in 1..56"),
        (lambda: analysis.unembed_fourier(torch.zeros(8, 7), P), r"expected \[d_mlp, p\]"),
        (lambda: analysis.embedding_fourier_norms(torch.zeros(7, 4), P), "d_vocab >= p"),
        (lambda: analysis.fourier_basis(1), "integer >= 2"),
        (lambda: analysis.last_position_loss(model, task.inputs[:5], task.targets[:4]),
         r"got inputs \[5, 3\] and targets torch.int64 \[4\]"),
        (lambda: analysis.ntk(model, task.inputs[:0]), "got no inputs"),
        (lambda: analysis.ntk(model, task.inputs[:2], kind="full"), "unknown kernel kind"),
        (lambda: analysis.ntk(model, task.inputs[:2], kind="correct_class"),
         "needs targets"),
    ]


def test_every_bad_input_is_a_one_line_user_error(example):
    for call, message in _bad_inputs(example["model"], example["task"]):
        with pytest.raises(UserError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)
