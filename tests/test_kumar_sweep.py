"""Kumar et al.'s committee-machine sweeps: the task hardness y^T K_0^{-1} y against known
kernels, its column in the sweep table, and ``python -m interp.figures kumar-sweep`` on a
tiny 2 x 2 sweep trained here (output scale alpha x alignment eps, seconds)."""

import math

import pytest
import torch
from conftest import run_in_process

from interp.analysis.lazy_rich import ntk, task_hardness

COMMAND = "interp.figures.cmd_kumar_sweep"
ALPHAS, EPS = [0.5, 2.0], [0.3, 1.0]


def test_task_hardness_of_a_linear_model_is_the_hand_computed_value():
    """f(x) = w.x has the NTK x.x': on x_1 = (2, 0, 0), x_2 = (0, 1, 0), K = diag(4, 1), so
    y = (1, 1) gives y^T K^-1 y = 1/4 + 1, times the mean diagonal 2.5 over mean(y^2) = 1."""
    model = torch.nn.Linear(3, 1, bias=False)
    inputs = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    kernel = ntk(model, inputs)
    assert torch.allclose(kernel, torch.diag(torch.tensor([4.0, 1.0])).double())
    assert task_hardness(kernel, torch.ones(2, 1)) == pytest.approx(1.25 * 2.5)
    # the output scale (alpha^2 K) and the label scale (s y) leave it unchanged
    assert task_hardness(9 * kernel, 0.1 * torch.ones(2)) == pytest.approx(1.25 * 2.5)
    assert math.isnan(task_hardness(kernel, torch.zeros(2)))
    assert math.isnan(task_hardness(kernel * math.nan, torch.ones(2)))


def test_a_singular_kernel_is_jittered_to_the_minimum_norm_interpolant():
    """Six inputs of a linear model in R^3: K = X X^T has rank 3. For y = X beta, y^T K^+ y
    is |w|^2 of the minimum-norm w with X w = y (|pinv(X) y|^2)."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    targets = inputs @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    kernel = inputs @ inputs.T
    assert int(torch.linalg.cholesky_ex(kernel)[1]) != 0  # not positive definite
    minimum_norm = (torch.linalg.pinv(inputs) @ targets).square().sum()
    expected = minimum_norm * kernel.diagonal().mean() / targets.square().mean()
    assert task_hardness(kernel, targets) == pytest.approx(float(expected), rel=1e-6)


def test_the_top_ntk_eigenvector_is_an_easy_task_and_the_bottom_one_a_hard_one():
    """Labels y = sqrt(n) v_k, v_k the k-th eigenvector of a committee machine's NTK on n
    inputs: the hardness is trace(K) / lambda_k, near 1 at the top, large at the bottom."""
    from interp.config import CommitteeModel, PolynomialTask
    from interp.models import build_model
    from interp.tasks import build_task

    config = CommitteeModel(width=16, eps=0.5)
    task = build_task(PolynomialTask(dim=8, n_train=30, n_test=1), config)
    kernel = ntk(build_model(config, task, "cpu"), task.train_inputs)
    values, vectors = torch.linalg.eigh(kernel)
    trace = float(kernel.trace())
    top = task_hardness(kernel, math.sqrt(30) * vectors[:, -1])
    bottom = task_hardness(kernel, math.sqrt(30) * vectors[:, 0])
    assert top == pytest.approx(trace / float(values[-1]), rel=1e-6)
    assert bottom == pytest.approx(trace / float(values[0]), rel=1e-4)
    assert 1 < top < 10 < 100 * top < bottom


def test_weight_scale_at_eps_over_scale_trains_as_output_scale(tmp_path):
    """kumar-laziness-init's premise: the committee machine with weights sigma u and eps /
    sigma, at lr eta, follows the weights u of alpha = sigma at eps (lr eta / alpha^2) to
    rounding; label scale 1/sigma does too, at 1/sigma^2 times the loss."""
    from interp.config import RunConfig
    from interp.runs import Run
    from interp.train.loop import TrainOptions, train

    metrics = {}
    for name, model, objective in (("alpha", {"eps": 0.5}, {"alpha": 2.0}),
                                   ("init", {"eps": 0.25, "init_scale": 2.0}, {}),
                                   ("labels", {"eps": 0.5}, {"label_scale": 0.5})):
        config = RunConfig.from_dict({
            "task": {"kind": "polynomial", "dim": 8, "n_train": 40, "n_test": 100},
            "model": {"kind": "committee", "width": 16, **model},
            "optim": {"name": "sgd", "lr": 2.0, "weight_decay": 0},
            "objective": {"loss": "mse", "centered": True, **objective},
            "schedule": {"epochs": 100, "eval_every": 20, "checkpoint_every": 0}})
        train(config, tmp_path / name, TrainOptions(device="cpu", quiet=True))
        metrics[name] = Run.load(tmp_path / name).metrics
    losses = ["train_loss", "test_loss"]
    assert metrics["alpha"]["train_loss"].iloc[-1] < 0.5 * metrics["alpha"]["train_loss"][0]
    for name, factor in (("init", 1.0), ("labels", 0.25)):
        assert torch.allclose(torch.tensor(metrics[name][losses].to_numpy()),
                              factor * torch.tensor(metrics["alpha"][losses].to_numpy()),
                              rtol=1e-4)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """objective.alpha x model.eps on a D = 8, N = 16 committee machine, P = 40, 300 epochs:
    the delay grows with alpha and shrinks with eps (Kumar et al. Fig. 3)."""
    from interp.config import RunConfig
    from interp.sweep.api import SweepOptions, run_sweep
    from interp.sweep.spec import spec_from_data

    root = tmp_path_factory.mktemp("kumar")
    config = RunConfig.from_dict({
        "task": {"kind": "polynomial", "dim": 8, "n_train": 40, "n_test": 200},
        "model": {"kind": "committee", "width": 16, "eps": 0.5},
        "optim": {"name": "sgd", "lr": 2.0, "weight_decay": 0},
        "objective": {"loss": "mse", "centered": True},
        "schedule": {"epochs": 300, "eval_every": 20, "checkpoint_every": 0}})
    (root / "base.json").write_text(config.to_json())
    spec = spec_from_data({"config": str(root / "base.json"),
                           "grid": {"objective.alpha": ALPHAS, "model.eps": EPS}}, "tiny")
    run_sweep(spec, root / "tiny-kumar", SweepOptions(device="cpu", quiet=True))
    return root / "tiny-kumar"


def test_the_sweep_table_holds_each_runs_task_hardness(sweep_dir):
    import interp
    from interp.sweep_table import task_hardness_of

    sweep = interp.Sweep.load(sweep_dir)
    table = sweep.table().set_index("run")
    for run in sweep.runs:
        task = run.task()
        expected = task_hardness(ntk(run.model(0).double(), task.train_inputs.double()),
                                 task.train_targets)  # the table's kernel is float64
        assert table.loc[run.name, "task_hardness"] == pytest.approx(expected)
    by_eps = table.groupby("model.eps")["task_hardness"]
    assert (by_eps.max() / by_eps.min()).max() == pytest.approx(1)  # alpha leaves it
    assert by_eps.mean()[EPS[0]] > 2 * by_eps.mean()[EPS[1]]  # less alignment, harder
    # the delay follows: longer at the larger alpha and at the smaller eps
    delay = table.set_index(["objective.alpha", "model.eps"])["loss_half_gap"]
    assert delay[(ALPHAS[1], EPS[0])] > delay[(ALPHAS[0], EPS[0])] > delay[(ALPHAS[0], EPS[1])]
    assert task_hardness_of(sweep.runs[0]) == table.loc[sweep.runs[0].name, "task_hardness"]


def test_a_run_not_centred_fits_its_targets_less_its_initial_outputs(tmp_path):
    from interp.config import RunConfig
    from interp.runs import Run
    from interp.sweep_table import task_hardness_of
    from interp.train.loop import TrainOptions, train

    config = RunConfig.from_dict({
        "task": {"kind": "polynomial", "dim": 8, "n_train": 40, "n_test": 20},
        "model": {"kind": "committee", "width": 16, "eps": 0.5},
        "optim": {"name": "sgd", "lr": 2.0, "weight_decay": 0},
        "objective": {"loss": "mse", "label_scale": 3.0},
        "schedule": {"epochs": 2, "eval_every": 1, "checkpoint_every": 0}})
    train(config, tmp_path / "run", TrainOptions(device="cpu", quiet=True))
    run = Run.load(tmp_path / "run")
    task, model = run.task(), run.model(0).double()
    inputs = task.train_inputs.double()
    with torch.no_grad():
        residual = task.train_targets.double() - model(inputs)
    kernel = ntk(model, inputs)
    assert task_hardness_of(run) == pytest.approx(task_hardness(kernel, residual))
    assert task_hardness_of(run) != pytest.approx(task_hardness(kernel, task.train_targets))


def test_kumar_sweep_draws_every_run_in_each_figure(sweep_dir, tmp_path):
    import interp
    from interp.figures.cmd_kumar_sweep import sweep_figures

    out = tmp_path / "figures"
    result = run_in_process(COMMAND, str(sweep_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    parts = ["loss-curves", "final-test-loss", "delay", "decomposition", "hardness"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"tiny-kumar-{part}.html" for part in parts] + ["plotly.min.js"])
    assert all(f"tiny-kumar-{part}.html" in result.stdout for part in parts)
    assert result.stdout.count("task hardness") == 4  # a line per run

    sweep = interp.Sweep.load(sweep_dir)
    x, by = sweep.axes  # objective.alpha, then model.eps: the colours and the panels
    figures = sweep_figures(sweep, sweep.table(), x, by)
    curves = figures["tiny-kumar-loss-curves"].data
    assert len(curves) == 2 * 4  # train and test of every run
    assert {trace.line.dash for trace in curves} == {"solid", "dash"}
    assert sorted(trace.xaxis for trace in curves) == ["x"] * 4 + ["x2"] * 4  # a panel per eps
    assert len({trace.line.color for trace in curves}) == 2  # a colour per alpha
    for name in ("tiny-kumar-final-test-loss", "tiny-kumar-delay"):
        lines = figures[name].data  # one line per eps, a point per alpha
        assert len(lines) == 2 and all(len(line.x) == 2 for line in lines)
    decomposition = figures["tiny-kumar-decomposition"].data
    assert len(decomposition) == 2 * 5  # the first and last alpha: test loss and four parts
    hardness = figures["tiny-kumar-hardness"].data
    assert len(hardness) == 2 and sum(len(trace.x) for trace in hardness) == 4


def test_kumar_sweep_refuses_what_it_cannot_draw_in_one_line(sweep_dir, tmp_path):
    run_dir = next(p for p in sweep_dir.iterdir() if p.is_dir())
    for args, message in (
            ([str(tmp_path / "nowhere")], "no such sweep directory"),
            ([str(run_dir)], "is a run, not a sweep"),
            ([str(sweep_dir), "--x", "optim.lr"], "--x 'optim.lr' is not an axis"),
            ([str(sweep_dir), "--x", "model.eps", "--by", "model.eps"], "the same axis"),
            ([str(sweep_dir), "--where", "model.eps=0.7"], "its values: 0.3, 1.0"),
            ([str(sweep_dir), "--out", str(run_dir / "figures")], "lies inside the run")):
        out = [] if "--out" in args else ["--out", str(tmp_path / "out")]
        result = run_in_process(COMMAND, *args, *out)
        assert result.returncode == 2, args
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists() and not (run_dir / "figures").exists()
