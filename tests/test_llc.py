"""The local learning coefficient: the SGLD sampler against known answers and devinterp, its
settings, and the analyzer over a run (divergence, caching, reproducibility)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from conftest import small_config

from interp.analysis.llc import (
    SGLDOverrides,
    SGLDSettings,
    chain_agreement,
    resolve_settings,
    sample_llc,
)
from interp.analyzers.base import Context, Options
from interp.errors import UserError
from interp.runs import AnalysisStore, Run, load_tensors, save_tensors
from interp.train.loop import TrainOptions, train


def _regression(n: int = 1000, d: int = 5, seed: int = 0):
    """Linear regression y = X w + noise, its least-squares w* [1, d] and its stacked loss
    0.5 * mean (x.w - y)^2 (the Gaussian negative log-likelihood up to a constant)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = X @ torch.randn(d, generator=g, dtype=torch.float64) + torch.randn(
        n, generator=g, dtype=torch.float64)
    w_star = torch.linalg.lstsq(X, y[:, None]).solution.T

    def loss(w: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        rows = X.expand(len(w), n, d) if index is None else X[index]
        targets = y.expand(len(w), n) if index is None else y[index]
        return 0.5 * ((rows @ w[:, :, None]).squeeze(-1) - targets).square().mean(1)

    return loss, w_star, n


def test_linear_regression_gives_half_its_dimension_within_its_error_bar():
    loss, w_star, n = _regression(d=5)
    settings = SGLDSettings(step_size=3e-4, nbeta=None, localization=1.0, chains=8,
                            draws=2000, burn_in=200, batch_size=None, seed=1)
    (estimate,) = sample_llc(loss, w_star, n, settings)
    error_bar = estimate.llc_std / math.sqrt(settings.chains)  # chains are independent
    assert error_bar < 0.1  # tight enough to tell d/2 = 2.5 from 2 or 3
    assert abs(estimate.llc - 2.5) < 3 * error_bar, (estimate.llc, error_bar)
    assert estimate.diverged == 0 and not chain_agreement(estimate).disagree
    assert estimate.nbeta == pytest.approx(n / math.log(n))
    assert estimate.loss_trace.shape == (8, 2200) and estimate.loss_trace.dtype == torch.float64


def test_agrees_with_devinterp_on_the_same_model_and_settings():
    """A small ReLU MLP (singular: its LLC is below d/2), full batch, the same step size,
    localization, n beta, chains, burn-in and draws. The chains of each sampler are
    independent draws of the same per-chain estimate, so the two means differ by noise whose
    std is sqrt(s_native^2 / C + s_devinterp^2 / C); they must agree within 4 of those."""
    import warnings

    pytest.importorskip("devinterp")  # the `llc` extra (in `dev`)
    from devinterp.optim.sgld import SGLD
    from devinterp.slt.sampler import estimate_learning_coeff_with_summary
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    n = 200
    X = torch.randn(n, 2, generator=g)
    y = torch.sin(2 * X[:, :1]) + 0.1 * torch.randn(n, 1, generator=g)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    torch.manual_seed(0)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(1000):  # near a minimum, where the LLC means something
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(X), y).backward()
        optimizer.step()
    step_size, localization, nbeta, chains, burn_in, draws = 1e-4, 10.0, 50.0, 8, 200, 400

    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]

    def loss(flat: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        def one(row):
            params = {name: part.view(shape) for name, part, shape
                      in zip(names, row.split(sizes), shapes, strict=True)}
            out = torch.func.functional_call(model, params, (X,))
            return torch.nn.functional.mse_loss(out, y)
        return torch.vmap(one)(flat)

    center = torch.cat([p.detach().flatten() for p in model.parameters()])[None]
    settings = SGLDSettings(step_size=step_size, nbeta=nbeta, localization=localization,
                            chains=chains, draws=draws, burn_in=burn_in, batch_size=None,
                            seed=3)
    (native,) = sample_llc(loss, center, n, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = estimate_learning_coeff_with_summary(
            model, DataLoader(TensorDataset(X, y), batch_size=n, shuffle=True),
            evaluate=lambda m, data: torch.nn.functional.mse_loss(m(data[0]), data[1]),
            sampling_method=SGLD, num_chains=chains, num_draws=draws,
            num_burnin_steps=burn_in, seed=3, verbose=False,
            optimizer_kwargs={"lr": step_size, "localization": localization, "nbeta": nbeta})
    assert native.init_loss == pytest.approx(float(loss(center, None)[0]), rel=1e-6)
    noise = math.sqrt(native.llc_std ** 2 / chains + theirs["llc/std"] ** 2 / chains)
    assert 0 < native.llc < 0.5 * len(center[0])  # singular: below d/2
    assert abs(native.llc - theirs["llc/mean"]) < 4 * noise, (native.llc, theirs["llc/mean"],
                                                               noise)


@pytest.mark.parametrize(("field", "value", "flag"), [
    ("step_size", 0.0, "--llc-step-size"), ("step_size", -1e-3, "--llc-step-size"),
    ("chains", 0, "--llc-chains"), ("draws", -5, "--llc-draws"),
    ("nbeta", 0.0, "--llc-nbeta"), ("localization", -1.0, "--llc-localization"),
    ("batch_size", 0, "--llc-batch-size"), ("burn_in", -1, "--llc-burn-in"),
    ("step_size", math.nan, "--llc-step-size"), ("chains", 2.5, "--llc-chains")])
def test_settings_out_of_range_are_one_line_errors_naming_the_flag(field, value, flag):
    config = small_config()
    with pytest.raises(UserError) as err:
        resolve_settings(config, SGLDOverrides(**{field: value}))
    message = str(err.value)
    assert message.startswith(flag) and "\n" not in message


def test_settings_are_the_kinds_defaults_with_the_overrides():
    config = small_config()
    default = resolve_settings(config)
    assert default.nbeta is None and default.step_size > 0 and default.chains >= 2
    changed = resolve_settings(config, SGLDOverrides(draws=7, burn_in=0, batch_size=None))
    assert changed == replace(default, draws=7, burn_in=0)
    assert resolve_settings(config, SGLDOverrides(seed=5)).seed == 5


def test_a_diverging_chain_is_left_out():
    loss, w_star, n = _regression(d=3)

    def broken(w, index):  # the third row (chain 2) has a NaN loss
        out = loss(w, index)
        return torch.where(torch.arange(len(out)) == 2, torch.nan, out) if len(w) > 1 else out

    settings = SGLDSettings(step_size=3e-4, nbeta=None, localization=1.0, chains=4, draws=50,
                            burn_in=10, batch_size=None)
    (estimate,) = sample_llc(broken, w_star, n, settings)
    assert estimate.diverged == 1 and math.isnan(float(estimate.per_chain[2]))
    assert torch.isnan(estimate.loss_trace[2]).all()
    finite = estimate.per_chain[[0, 1, 3]]
    assert estimate.llc == pytest.approx(float(finite.mean()))


def test_sampling_is_seeded_and_independent_of_stacking():
    loss, w_star, n = _regression(d=3)
    settings = SGLDSettings(step_size=1e-3, nbeta=None, localization=1.0, chains=2, draws=30,
                            burn_in=5, batch_size=100, seed=4)
    (a,) = sample_llc(loss, w_star, n, settings)
    (b,) = sample_llc(loss, w_star, n, settings)
    assert torch.equal(a.loss_trace, b.loss_trace)
    (c,) = sample_llc(loss, w_star, n, replace(settings, seed=5))
    assert not torch.equal(a.loss_trace, c.loss_trace)
    other = w_star + 0.1
    together = sample_llc(loss, torch.cat([w_star, other]), n, settings)
    assert torch.allclose(together[0].loss_trace, a.loss_trace)
    (alone,) = sample_llc(loss, other, n, settings)
    assert torch.allclose(together[1].loss_trace, alone.loss_trace)


FAST = SGLDOverrides(chains=3, draws=20, burn_in=5, batch_size=64)


def _context(run_dir, overrides: SGLDOverrides = FAST) -> Context:
    run = Run.load(run_dir)
    return Context(run, run.task(), AnalysisStore(run_dir / "analysis"),
                   Options(llc=overrides), run.checkpoint_epochs, quiet=True)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("llc") / "run"
    train(small_config(schedule={"epochs": 40, "checkpoint_every": 20}), path,
          TrainOptions(device="cpu", quiet=True))
    return path


def test_the_run_loss_at_a_checkpoint_is_its_recorded_training_loss(short_run):
    from interp.analyzers.llc import RunLoss

    run = Run.load(short_run)
    task = run.task()
    context = _context(short_run)
    loss = RunLoss(run.config, task, context.template(), [run.weights(20)], None, "cpu")
    with torch.no_grad():
        value = float(loss(loss.centers, None)[0])
    recorded = run.metrics.set_index("epoch").loc[20, "train_loss"]
    assert value == pytest.approx(recorded, rel=1e-5)


def test_analyzer_is_cached_per_checkpoint(short_run, tmp_path):
    import shutil

    from interp.analyzers import llc

    run_dir = tmp_path / "run"
    shutil.copytree(short_run, run_dir)
    first = llc.analyze(_context(run_dir))
    assert first.computed == 3 and list(first.measures["epoch"]) == [0, 20, 40]
    assert first.traces[40].shape == (3, 25)
    assert first.summary["llc_final"] == first.final == first.measures["llc"].iloc[-1]
    assert first.peak_epoch == int(first.measures.loc[first.measures["llc"].idxmax(), "epoch"])
    assert first.settings == resolve_settings(Run.load(run_dir).config, FAST)
    again = llc.analyze(_context(run_dir))
    assert again.computed == 0
    assert again.measures.equals(first.measures)
    assert torch.equal(again.traces[20], first.traces[20])
    other = llc.analyze(_context(run_dir, replace(FAST, seed=1)))  # other settings: recomputed
    assert other.computed == 3


def test_a_checkpoint_whose_chains_all_diverge_is_missing_and_the_rest_analysed(
        short_run, tmp_path, capsys):
    import shutil

    from interp.analyzers import llc

    run_dir = tmp_path / "run"
    shutil.copytree(short_run, run_dir)
    path = Run.load(run_dir).checkpoint_file(20)
    weights, metadata = load_tensors(path)
    weights["unembed.weight"] = weights["unembed.weight"] * 1e37  # finite; logits overflow
    save_tensors(path, weights, metadata)
    result = llc.analyze(_context(run_dir))
    err = capsys.readouterr().err
    assert f"warning: LLC at {path}: all 3 SGLD chains diverged" in err
    assert len([line for line in err.splitlines() if str(path) in line]) == 1
    by_epoch = result.measures.set_index("epoch")
    assert math.isnan(by_epoch.loc[20, "llc"]) and by_epoch.loc[20, "diverged"] == 3
    assert all(math.isfinite(by_epoch.loc[e, "llc"]) for e in (0, 40))
    assert result.peak_epoch in (0, 40)


def test_llc_and_sharpness_run_only_on_request_and_their_flags_reach_the_options():
    from interp.analyze import parse_args
    from interp.analyzers import selected
    from interp.cli import analysis_options
    from interp.run_analysis import recorded_settings

    assert "llc" not in selected(None) and "sharpness" not in selected(None)
    assert selected(["llc"]) == ["llc"] and selected(["sharpness", "fourier"]) == [
        "fourier", "sharpness"]
    options = analysis_options(parse_args([
        "RUN", "--llc-chains", "3", "--llc-step-size", "2e-4", "--llc-burn-in", "0",
        "--sharpness-examples", "all", "--sharpness-max-matvecs", "9"]))
    assert options.llc == SGLDOverrides(chains=3, step_size=2e-4, burn_in=0)
    assert (options.sharpness.examples, options.sharpness.max_matvecs) == ("all", 9)
    for flags, named in ((["--llc-chains", "0"], "--llc-chains"),
                         (["--llc-seed", str(2 ** 64)], "--llc-seed"),
                         (["--sharpness-seed", str(2 ** 64)], "--sharpness-seed")):
        with pytest.raises(UserError, match=named):
            analysis_options(parse_args(["RUN", *flags]))
    with pytest.raises(UserError, match="--sharpness-examples: 'abc' is neither"):
        parse_args(["RUN", "--sharpness-examples", "abc"])  # one line, exit 2 (run_main)
    # the settings summary.json records read back as the overrides that reproduce them
    settings = replace(resolve_settings(small_config()), draws=7, seed=3)
    recorded = recorded_settings("llc", settings.as_dict())
    assert resolve_settings(small_config(), recorded) == settings
    assert recorded_settings("llc", {**settings.as_dict(), "chains": 0}) is None
