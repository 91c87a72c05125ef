"""Nanda-notebook parity on the shipped reference run: single neurons over the (a, b) grid with
their fitted Fourier terms, the embedding circles, and the checkpoint slider."""

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from conftest import TINY, files_in, run_in_process

from interp.analysis import fourier, neurons
from interp.config import RunConfig
from interp.figures import nanda
from interp.runs import Run

REFERENCE = Path(__file__).resolve().parents[1] / "checkpoints" / "nanda-p113"
KEY = [9, 10, 30, 36]  # the reference run's key frequencies (test_reference_run)
P = 113


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A copy of the reference run (never the shipped one), without the analysis `make
    demo` writes there."""
    path = tmp_path_factory.mktemp("nanda") / "run"
    shutil.copytree(REFERENCE, path, ignore=lambda directory, names: [
        "analysis"] if Path(directory) == REFERENCE else [])
    return Run.load(path)


@pytest.fixture(scope="module")
def grids(run):
    """{epoch: [p, p, d_mlp] activations} at the final checkpoint and at initialisation, and
    the model (holding the weights of epoch 0) and task."""
    task = run.task()
    model = run.model(25_000)
    final = neurons.neuron_activations_grid(model, task)
    return {25_000: final, 0: neurons.neuron_activations_grid(run.model(0, into=model), task),
            "model_at_0": model, "task": task}


def digest(path: Path) -> dict[str, str]:
    return {name: hashlib.sha256((path / name).read_bytes()).hexdigest()
            for name in files_in(path)}


def test_activation_grid_is_each_input_a_major(grids):
    acts, model = grids[0], grids["model_at_0"]
    assert acts.shape == grids[25_000].shape == (P, P, 512)
    _, cache = model.run_with_cache(torch.tensor([[3, 7, P], [100, 2, P]]))
    post = cache["blocks.0.mlp.hook_post"][:, -1]
    torch.testing.assert_close(acts[3, 7], post[0])
    torch.testing.assert_close(acts[100, 2], post[1])


def test_top_neurons_are_their_frequency_once_grokked_and_not_at_init(grids):
    chosen = neurons.top_cluster_neurons(grids[25_000], P, KEY, top=3)
    assert list(chosen) == KEY and all(len(idx) == 3 for idx in chosen.values())
    fractions = fourier.neuron_frequency_fractions(grids[25_000], P)
    for k, idx in chosen.items():
        final = neurons.fit_neuron_terms(grids[25_000], P, k, idx)
        init = neurons.fit_neuron_terms(grids[0], P, k, idx)
        assert final.neurons == idx and final.coefficients.shape == (3, 9)
        assert (final.explained > 0.9).all(), (k, final.explained)  # measured 0.92-0.97
        assert (init.explained < 0.05).all(), (k, init.explained)  # measured 0-0.03
        torch.testing.assert_close(final.explained.float(), fractions[k - 1, idx])
        residual = (final.activations - final.fitted).pow(2).sum() / (
            final.activations - final.activations.mean(dim=(0, 1))).pow(2).sum()
        assert residual < 0.1
        assert (final.sum_terms.norm(dim=1) > 0.2).all()  # cos/sin(w(a+b)) carry weight


def test_fit_recovers_the_terms_it_was_built_from():
    p, k = 31, 4
    w, x = 2 * math.pi * k / p, torch.arange(p, dtype=torch.float64)
    a, b = x[:, None], x[None, :]
    grid = torch.stack([2 + 3 * torch.cos(w * (a + b)) - 1.5 * torch.sin(w * a) + 0 * b,
                        torch.cos(2 * w * a) + 0 * b], dim=-1)  # neuron 1: another frequency
    fit = neurons.fit_neuron_terms(grid, p, k)
    expected = torch.zeros(9, dtype=torch.float64)
    expected[[0, 2, 5, 8]] = torch.tensor([2, -1.5, 3, -3], dtype=torch.float64)
    torch.testing.assert_close(fit.coefficients[0], expected)
    torch.testing.assert_close(fit.sum_terms[0], torch.tensor([3.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(fit.difference_terms[0], torch.zeros(2, dtype=torch.float64))
    assert float(fit.explained[0]) == pytest.approx(1) and float(fit.explained[1]) < 1e-12
    torch.testing.assert_close(fit.fitted[:, :, 0], grid[:, :, 0])


def test_bad_fit_inputs_are_one_line_errors():
    from interp.errors import UserError

    with pytest.raises(UserError, match=r"expected \[p, p, \.\.\.\]"):
        neurons.fit_neuron_terms(torch.zeros(P * P, 4), P, 9)
    with pytest.raises(UserError, match="not integers in 1..56"):
        neurons.fit_neuron_terms(torch.zeros(P, P, 4), P, 57)
    with pytest.raises(UserError, match=r"neurons \[4\]"):
        neurons.fit_neuron_terms(torch.zeros(P, P, 4), P, 9, [0, 4])
    with pytest.raises(UserError, match="empty"):
        neurons.top_cluster_neurons(torch.zeros(P, P, 4), P, [], 3)


def test_embedding_circles_form_once_grokked(run):
    final = neurons.embedding_circles(run.weights(25_000)["embed.weight"], P, KEY)
    init = neurons.embedding_circles(run.weights(0)["embed.weight"], P, KEY)
    assert [c.frequency for c in final] == KEY and final[0].points.shape == (P, 2)
    assert all(c.radius_spread < 0.1 for c in final), [c.radius_spread for c in final]
    assert all(c.radius_spread > 0.3 for c in init), [c.radius_spread for c in init]
    # on the circle, a sits at angle w_k a (up to the directions' orientation): consecutive
    # numbers are a constant angle apart
    circle = final[2]
    angle = torch.atan2(circle.points[:, 1], circle.points[:, 0]).double()
    step = torch.remainder(angle[1:] - angle[:-1], 2 * math.pi)
    expected = 2 * math.pi * 30 / P
    assert float((step - expected).abs().median()) < 0.1 or float(
        (step - (2 * math.pi - expected)).abs().median()) < 0.1


def test_embedding_circle_of_a_pure_fourier_embedding_is_exact():
    p, k = 13, 3
    x = 2 * math.pi * k * torch.arange(p) / p
    W_E = torch.stack([torch.cos(x), torch.sin(x), torch.zeros(p)], dim=1)
    (circle,) = neurons.embedding_circles(torch.cat([W_E, torch.ones(1, 3)]), p, [k])
    assert circle.radius_spread < 1e-6
    torch.testing.assert_close(circle.points, W_E[:, :2], atol=1e-6, rtol=0)


def test_checkpoint_slider_has_a_frame_per_checkpoint(run):
    epochs = run.checkpoint_epochs
    weights = [run.weights(e)["embed.weight"] for e in epochs]
    norms = torch.stack([fourier.embedding_frequency_norms(W, P) for W in weights])
    circles = [neurons.embedding_circles(W, P, KEY) for W in weights]
    fig = nanda.checkpoint_slider(epochs, norms, circles, KEY)
    assert [f.name for f in fig.frames] == [str(e) for e in epochs] == [
        step["args"][0][0] for step in fig.layout.sliders[0].steps]
    assert len(fig.data) == 1 + 2 * len(KEY) and all(
        len(f.data) == len(fig.data) for f in fig.frames)
    assert fig.layout.sliders[0].active == len(epochs) - 1  # opens on the last checkpoint
    assert list(fig.data[0].y) == list(fig.frames[-1].data[0].y) == norms[-1].tolist()
    first, last = fig.frames[0].data[0].y, fig.frames[-1].data[0].y
    assert max(last[k - 1] for k in KEY) > 5 > 2 > max(first)  # the key frequencies grow
    assert fig.layout.meta["caption"]


def test_neurons_command_draws_a_figure_per_cluster_and_leaves_the_run(run, tmp_path):
    before = digest(run.path)
    out = tmp_path / "out"
    result = run_in_process("interp.figures.cmd_neurons", str(run.path), "--out", str(out),
                            "--epoch", "0", "--top", "2")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.glob("*.html")} == {f"neurons_k{k}.html" for k in KEY}
    assert "k=9: variance explained at epoch 0: 182 1%, 1 0%" in result.stdout
    page = (out / "neurons_k9.html").read_text()
    assert "neuron 182: activation" in page and "1.2% of variance explained" in page
    page = (out / "neurons_k30.html").read_text()  # its top neurons are dead at init
    assert "neuron 394: activation" in page and "constant (dead) here" in page
    assert digest(run.path) == before


def test_commands_take_the_cached_key_frequencies(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run.path, copy)
    (copy / "analysis").mkdir()
    (copy / "analysis" / "summary.json").write_text(json.dumps(
        {"fourier": {"key_frequencies": {"used": [30, 9]}}}))
    result = run_in_process("interp.figures.cmd_embedding_circles", str(copy), "--out",
                            str(tmp_path / "circles"), "--every", "3")
    assert result.returncode == 0, result.stderr
    assert "key frequencies [30, 9]" in result.stdout
    assert "slider over 11 checkpoints" in result.stdout  # 29 checkpoints: 0, 3, .., 27, 28
    assert {p.name for p in (tmp_path / "circles").glob("*.html")} == {
        "embedding_circles.html", "embedding_slider.html"}


def test_bad_input_is_one_line(run, tmp_path):
    other = tmp_path / "mlp-run"
    other.mkdir()
    (other / "run.json").write_text(json.dumps(
        {"format": 1, "config": RunConfig.from_dict(TINY["hu-mlp"]).to_dict()}))
    out = str(tmp_path / "out")
    cases = [
        ("interp.figures.cmd_neurons", [str(run.path), "--out", out, "--top", "0"], "--top"),
        ("interp.figures.cmd_neurons", [str(run.path), "--out", out, "--epoch", "150"],
         "--epoch 150 is not a checkpoint"),
        ("interp.figures.cmd_neurons", [str(other), "--out", out],
         "model kind mlp, task kind modular"),
        ("interp.figures.cmd_neurons", [str(run.path), "--out", str(run.path / "figs")],
         "inside the run"),
        ("interp.figures.cmd_embedding_circles", [str(run.path), "--out", out, "--every", "0"],
         "--every"),
        ("interp.figures.cmd_embedding_circles", [str(tmp_path), "--out", out],
         "not a run directory"),
    ]
    for module, args, message in cases:
        result = run_in_process(module, *args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert not (tmp_path / "out").exists() and not (run.path / "figs").exists()
