"""The lazy-rich and alpha-sweep figure commands."""

import pytest
from conftest import run_cli, small_config

import interp
from interp.runs import Run
from interp.train.loop import TrainOptions, train

QUIET = TrainOptions(device="cpu", quiet=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lazy-rich")
    schedule = {"epochs": 40, "checkpoint_every": 20}
    train(small_config(schedule=schedule), root / "network", QUIET)
    train(small_config(schedule=schedule, objective={"linearized": True}), root / "lazy", QUIET)
    return root


def test_lazy_rich_command_writes_every_figure(runs, tmp_path):
    out = tmp_path / "figures"
    analysed = run_cli("interp.analyze", str(runs / "network"), "--only", "lazy_rich",
                       "--probes", "16", "--kernels", "correct_class", "trace", "--quiet")
    assert analysed.returncode == 0, analysed.stderr
    summary = (runs / "network" / "analysis" / "summary.json").read_bytes()
    result = run_cli("interp.figures", "lazy-rich", str(runs / "network"), "--out", str(out),
                     "--linearized-run", str(runs / "lazy"))
    assert result.returncode == 0, result.stderr
    assert (runs / "network" / "analysis" / "summary.json").read_bytes() == summary  # read
    names = {p.name for p in out.glob("*.html")}
    assert {f"lazy_rich_{n}.html" for n in ("kernel", "movement", "linearisation", "cka")
            } <= names
    page = (out / "lazy_rich_linearisation.html").read_text()
    assert "lazy baseline test" in page and "f_lin(theta_t) test" in page
    assert "linearisation gap (test) passes 0.5 at epoch" in result.stdout
    assert "kernel distance (trace, 16 probes) passes 0.5 at epoch" in result.stdout
    assert b'"kernel_distance_above_half/trace"' in summary


def test_lazy_rich_command_on_a_linearized_run(runs, tmp_path):
    """The lazy baseline itself: its kernel never moves from K_0."""
    out = tmp_path / "figures"
    args = ["interp.figures", "lazy-rich", str(runs / "lazy"), "--out", str(out)]
    missing = run_cli(*args)
    assert missing.returncode == 2 and "no cached lazy_rich analysis" in missing.stderr
    assert f"python -m interp.analyze {runs / 'lazy'} --only lazy_rich" in missing.stderr
    analysed = run_cli("interp.analyze", str(runs / "lazy"), "--probes", "8", "--quiet")
    assert analysed.returncode == 0, analysed.stderr
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert {"lazy_rich_kernel.html", "lazy_rich_linearisation.html"} <= {
        p.name for p in out.glob("*.html")}
    assert "kernel distance (correct_class, 8 probes) passes 0.5 at epoch never" in result.stdout


def test_alpha_sweep_trains_its_sweep_as_one_stack_then_reads_it(tmp_path):
    args = ["interp.figures", "alpha-sweep", "--preset", "tiny", "--epochs", "20",
            "--alphas", "0.5", "2", "--runs-dir", str(tmp_path / "runs"), "--out",
            str(tmp_path / "figures"), "--device", "cpu"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "(2 runs; 2 trained in 1 stack(s)" in first.stdout  # alpha varies in a stack
    page = (tmp_path / "figures" / "alpha-sweep.html").read_text()
    assert "alpha=0.5 test" in page and "alpha=2 train" in page
    sweep = interp.Sweep.load(tmp_path / "runs")  # --runs-dir is a sweep directory
    assert [(a.key, a.values) for a in sweep.axes] == [("objective.alpha", (0.5, 2.0))]
    run = Run.load(tmp_path / "runs" / "objective.alpha=2.0")
    assert run.config.objective.centered and run.config.objective.alpha == 2.0
    assert run.config.schedule.epochs == 20 and run.is_complete
    again = run_cli(*args)
    assert again.returncode == 0 and "all finished: nothing to train" in again.stdout
    assert "alpha=0.5: train acc" in again.stdout
    other = run_cli(*args[:-6], "1", *args[-6:])  # --alphas 0.5 2 1: another sweep
    assert other.returncode == 2 and "holds a different sweep" in other.stderr
    assert "choose another --runs-dir" in other.stderr
    forced = run_cli(*args[:-6], "1", *args[-6:], "--force")
    assert forced.returncode == 0, forced.stderr
    assert "(3 runs; 1 trained in 1 stack(s)" in forced.stdout  # the two others are kept


@pytest.mark.parametrize("args, message", [
    (["lazy-rich", "/no/such/run", "--out", "x"], "no such run directory"),
    (["lazy-rich", "/no/such/run", "--out", "x", "--probes", "1"],
     "unrecognized arguments: --probes 1"),  # computing is interp.analyze's
    (["alpha-sweep", "--out", "x", "--alphas", "-1"], "--alphas must be positive"),
    (["alpha-sweep", "--out", "x", "--preset", "bogus"], "unknown preset 'bogus'"),
    (["alpha-sweep", "--out", "x", "--alphas", "1", "1.0"], "--alphas 1 1 gives an alpha twice"),
    (["alpha-sweep", "--out", "x", "--alphas", "1", "1.0000001"],  # one legend entry, alpha=1
     "--alphas 1 1 gives an alpha twice (alphas are told apart by their first six digits)"),
    (["alpha-sweep", "--out", "x", "--alphas", "1", "2", "--set", "objective.alpha=3"],
     "--set objective.alpha=... conflicts with --alphas"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    runs = tmp_path / "runs"  # were the input taken, alpha-sweep would train here, not in
    extra = ["--runs-dir", str(runs)] if args[0] == "alpha-sweep" else []  # checkpoints/
    result = run_cli("interp.figures", *args, *extra)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
    assert "Traceback" not in result.stderr and not runs.exists()
