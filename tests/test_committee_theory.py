"""Kumar et al.'s committee machine in theory: the online-limit flow against gradient descent
on the exact population loss and against the trainer at large P, the reduced order-parameter
flow against the full one, and the leave-one-out gap against finite-data simulations."""

import math

import numpy as np
import pytest
import torch

from interp.analysis.committee import summary_statistics
from interp.analysis.committee_theory import (
    CommitteeDynamics,
    ReducedState,
    leave_one_out_gap,
    population_flow,
    reduced_flow,
)


def _initial(D, N, seed=0, k=1):
    generator = torch.Generator().manual_seed(seed)
    W0 = torch.randn(N, D, generator=generator, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(D, k, generator=generator, dtype=torch.float64))
    return W0, q.T


def _population_gd(W0, directions, dynamics, steps, every):
    """Gradient descent on the exact population loss (autograd of the Isserlis formula,
    written out here independently of the theory's equations), its loss every ``every``
    steps."""
    D, N, eps, alpha = dynamics.dim, dynamics.width, dynamics.eps, dynamics.alpha
    v0, M0 = summary_statistics(W0)
    B = dynamics.label_scale * directions.T @ directions
    W, losses = W0.clone().requires_grad_(), []
    for step in range(steps + 1):
        v, M = W.mean(0), W.T @ W / N
        A = alpha * eps / (2 * D) * (M - M0) - B / 2
        u = alpha * (v - v0)
        loss = u @ u / D + torch.trace(A) ** 2 + 2 * A.pow(2).sum()
        if step % every == 0:
            losses.append(loss.item())
        (grad,) = torch.autograd.grad(loss + dynamics.weight_decay / 2 * W.pow(2).sum(), W)
        with torch.no_grad():
            W -= dynamics.lr * grad
    return np.array(losses)


@pytest.mark.parametrize("alpha, k, label_scale, decay", [(1.0, 1, 1.0, 0.0),
                                                           (2.0, 2, 1.0, 0.0),
                                                           (0.5, 1, 1.5, 1e-5)])
def test_flow_is_gradient_descent_on_the_population_loss(alpha, k, label_scale, decay):
    D, N, eps = 8, 64, 0.2
    W0, directions = _initial(D, N, k=k)
    dynamics = CommitteeDynamics(dim=D, width=N, eps=eps, lr=0.05 * N / alpha ** 2,
                                 alpha=alpha, label_scale=label_scale, weight_decay=decay)
    steps, every = 1200, 120
    gd = _population_gd(W0, directions, dynamics, steps, every)
    v0, M0 = summary_statistics(W0)
    theory = population_flow(dynamics, v0.numpy(), M0.numpy(), directions.numpy(),
                             np.arange(0, steps + 1, every))
    assert gd[-1] < 0.1 * gd[0]  # the loss falls: the comparison covers the whole descent
    # gradient descent lags the flow by O(lr * rate): here (k + 2) kappa eps s <= 0.023 a step
    np.testing.assert_allclose(theory.total, gd, rtol=0.02)
    assert theory.total == pytest.approx(theory.linear + theory.scale + theory.alignment)


def test_flow_matches_the_trainer_at_large_P(tmp_path):
    from interp.presets import get_preset
    from interp.runs import Run
    from interp.train.loop import TrainOptions, train

    D, N, eps, eta0 = 4, 16, 0.5, 0.1
    config = get_preset("kumar-committee").with_overrides([
        f"task.dim={D}", "task.n_train=40000", "task.n_test=100", f"model.width={N}",
        f"model.eps={eps}", f"optim.lr={eta0 * N}", "schedule.epochs=300",
        "schedule.eval_every=20", "schedule.checkpoint_every=0", "schedule.checkpoint_log=0"])
    train(config, tmp_path / "run", TrainOptions(quiet=True, device="cpu"))
    run = Run.load(tmp_path / "run")
    v0, M0 = summary_statistics(run.weights(0)["W"])
    metrics = run.metrics
    dynamics = CommitteeDynamics(dim=D, width=N, eps=eps, lr=eta0 * N)
    theory = population_flow(dynamics, v0.numpy(), M0.numpy(),
                             run.task().info["directions"].double().numpy(),
                             metrics["epoch"].to_numpy(float))
    measured = metrics["decomp_total"].to_numpy()  # the exact test loss of the trained weights
    assert measured[-1] < 0.02 * measured[0]
    # a finite data set moves the fall by a few epochs: the ratio measured / theory spread
    # over 0.91..1.11 across data seeds 0-2 at this P (the quartic target's gradient noise)
    np.testing.assert_allclose(measured, theory.total, rtol=0.2)
    halved = [np.argmax(curve < curve[0] / 2) for curve in (theory.total, measured)]
    assert abs(halved[0] - halved[1]) <= 1  # the same evaluation (of 20 epochs), or the next


def test_reduced_flow_is_the_full_flow_for_wide_networks():
    D, N = 10, 4000
    W0, directions = _initial(D, N)
    v0, M0 = (t.numpy() for t in summary_statistics(W0))
    dynamics = CommitteeDynamics(dim=D, width=N, eps=0.1, lr=0.2 * N)
    epochs = np.linspace(0, 3000, 31)
    full = population_flow(dynamics, v0, M0, directions.numpy(), epochs)
    reduced = reduced_flow(dynamics, ReducedState.project(v0, M0, directions.numpy()), 1,
                           epochs)
    assert full.total[-1] < 0.05 * full.total[0]
    np.testing.assert_allclose(reduced.total, full.total, rtol=0.03, atol=1e-4)
    np.testing.assert_allclose(reduced.overlap, full.overlap, rtol=0.03)
    # on its manifold (isotropic M0, v0 along beta) the reduction is exact
    B = directions.T.numpy() @ directions.numpy()
    exact_v0, exact_M0 = 0.05 * directions.numpy()[0], 1.3 * np.eye(D) + 0.4 * B
    on_manifold = population_flow(dynamics, exact_v0, exact_M0, directions.numpy(), epochs)
    reduced = reduced_flow(dynamics, ReducedState.project(exact_v0, exact_M0,
                                                          directions.numpy()), 1, epochs)
    np.testing.assert_allclose(reduced.total, on_manifold.total, rtol=1e-6)
    np.testing.assert_allclose(reduced.v_along, on_manifold.v_along, rtol=1e-5)


def test_larger_alpha_and_smaller_eps_delay_the_fall():
    D = 20

    def halving(alpha, eps):
        dynamics = CommitteeDynamics(dim=D, width=1000, eps=eps, lr=1000 / alpha ** 2,
                                     alpha=alpha)
        epochs = np.linspace(0, 20_000, 2001)
        curve = reduced_flow(dynamics, ReducedState(1.0, 1.0), 1, epochs).total
        return epochs[np.argmax(curve < curve[0] / 2)]

    assert halving(1, 0.05) < halving(2, 0.05) < halving(4, 0.05)
    assert halving(1, 0.2) < halving(1, 0.05) < halving(1, 0.02)
    # the saddle escape of the docstring: t ~ log(D / (alpha eps)) / (3 kappa eps)
    kappa = 2 / D
    assert halving(1, 0.05) == pytest.approx(math.log(D / 0.05) / (3 * kappa * 0.05), rel=0.3)


def test_leave_one_out_gap_predicts_the_finite_data_gap():
    D, N, eps, eta0, P, steps, every = 6, 32, 0.3, 0.1, 400, 300, 30
    W0, directions = _initial(D, N)
    beta = directions[0]
    dynamics = CommitteeDynamics(dim=D, width=N, eps=eps, lr=eta0 * N)
    v0, M0 = summary_statistics(W0)
    epochs = np.arange(0, steps + 1, every)
    predicted = leave_one_out_gap(dynamics, v0.numpy(), M0.numpy(), directions.numpy(),
                                  epochs, samples=2000)
    gaps = []
    for seed in range(12):
        x = torch.randn(P, D, generator=torch.Generator().manual_seed(100 + seed),
                        dtype=torch.float64)
        y = (x @ beta) ** 2 / 2
        h0 = x @ W0.T / math.sqrt(D)
        f0 = (h0 + eps / 2 * h0 ** 2).mean(1)
        W, row = W0.clone().requires_grad_(), []
        for step in range(steps + 1):
            h = x @ W.T / math.sqrt(D)
            train = ((h + eps / 2 * h ** 2).mean(1) - f0 - y).pow(2).mean()
            if step % every == 0:
                v, M = W.detach().mean(0) - v0, W.detach().T @ W.detach() / N - M0
                A = eps / (2 * D) * M - torch.outer(beta, beta) / 2
                test = v @ v / D + torch.trace(A) ** 2 + 2 * A.pow(2).sum()
                row.append((test - train).item())
            (grad,) = torch.autograd.grad(train, W)
            with torch.no_grad():
                W -= dynamics.lr * grad
        gaps.append(row)
    gaps = np.array(gaps)
    # subtract each data set's gap at epoch 0 (its own sampling noise, which persists)
    measured = gaps - gaps[:, :1]
    mean, error = measured.mean(0), measured.std(0, ddof=1) / math.sqrt(len(measured))
    peak = np.argmax(predicted.at(P))
    assert predicted.at(P)[peak] > 3 * predicted.standard_error[peak] / P  # a real gap
    tolerance = 3 * np.hypot(error, predicted.standard_error / P) + 1e-4
    assert np.all(np.abs(mean[1:] - predicted.at(P)[1:]) < tolerance[1:]), (mean,
                                                                           predicted.at(P))


def test_committee_theory_command_draws_runs_beside_their_theory(tmp_path, capsys):
    from interp.figures.__main__ import main

    tiny = ["--set", "task.dim=5", "--set", "model.width=16", "--set", "task.n_train=400",
            "--set", "task.n_test=50", "--set", "optim.lr=4", "--set", "schedule.eval_every=20",
            "--epochs", "120", "--runs-dir", str(tmp_path / "runs"), "--out",
            str(tmp_path / "fig")]
    assert main(["committee-theory", "--alphas", "1", "2", "--eps", "0.4", *tiny]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum("test loss halved at epoch" in line and "(theory" in line for line in lines) == 2
    page = (tmp_path / "fig" / "committee-theory-loss.html").read_text()
    # per run: test, train, theory and (D <= 32) the first-order train loss
    assert page.count("theory (P = infinity)") == 2 and page.count("theory train (first order") == 2
    assert (tmp_path / "fig" / "committee-theory-terms.html").exists()


@pytest.mark.parametrize("setting, words", [("optim.momentum=0.5", "optim.momentum is not 0"),
                                             ("optim.warmup_steps=50", "optim.warmup_steps"),
                                             ("optim.grad_filter=ema", "optim.grad_filter"),
                                             ("optim.batch_size=64", "full batch")])
def test_committee_theory_refuses_runs_it_does_not_describe(tmp_path, setting, words):
    from conftest import run_in_process

    result = run_in_process("interp.figures", "committee-theory", "--set", setting,
                            "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "fig"))
    error = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(error) == 1 and words in error[0], result.stderr
    assert not (tmp_path / "runs").exists()


def test_committee_theory_never_trains_inside_a_run(tmp_path):
    from conftest import run_in_process, small_config

    from interp.train.loop import TrainOptions, train

    train(small_config(schedule={"epochs": 2, "eval_every": 1, "checkpoint_every": 1}),
          tmp_path / "run", TrainOptions(quiet=True, device="cpu"))
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    result = run_in_process("interp.figures", "committee-theory", "--runs-dir",
                            str(tmp_path / "run" / "inner"), "--out", str(tmp_path / "fig"))
    assert result.returncode == 2 and "lies inside the run" in result.stderr
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before


def test_theory_checks_its_inputs():
    dynamics = CommitteeDynamics(dim=3, width=8, eps=0.1, lr=1.0)
    eye = np.eye(3)
    with pytest.raises(ValueError, match="k < D"):
        population_flow(dynamics, np.zeros(3), eye, eye, [0.0, 1.0])
    with pytest.raises(ValueError, match="k < D"):
        ReducedState.project(np.zeros(3), eye, eye)
    at_start = population_flow(dynamics, np.zeros(3), eye, eye[:1], [0.0])
    assert at_start.total.tolist() == [0.75]  # E[(z^2 / 2)^2] of the untrained output
