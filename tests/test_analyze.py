import json
import shutil

import pytest
from conftest import run_cli, small_config

from interp.run_analysis import analyse_run, select_epochs
from interp.runs import checkpoint_path
from interp.train.loop import TrainOptions, train


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("analyze") / "run"
    config = small_config(schedule={"epochs": 300, "checkpoint_every": 50, "eval_every": 10})
    train(config, path, TrainOptions(device="cpu", quiet=True))
    return path


@pytest.fixture
def run_copy(small_run, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(small_run, path)
    return path


def test_select_epochs_keeps_the_last():
    assert select_epochs([0, 1, 2, 3, 4], 2) == [0, 2, 4]
    assert select_epochs([0, 1, 2, 3], 2) == [0, 2, 3]


def test_analyze_writes_summary_and_report_and_caches(run_copy):
    first = analyse_run(run_copy, ["fourier"])
    assert first.computed == 7 and len(first.measures("fourier")) == 7
    analysis = run_copy / "analysis"
    summary = json.loads((analysis / "summary.json").read_text())
    assert summary["checkpoints_analysed"] == {"fourier": 7}
    assert summary["landmarks"]["train_acc_99"] is not None
    assert {"memorisation_end", "cleanup_start", "cleanup_end"} == set(summary["phases"])
    html = (analysis / "report.html").read_text()
    assert html.count("<script") >= 1 and "plotly" in html.lower()
    assert "Progress measures" in html and "Attention" in html
    cached = {p: p.stat().st_mtime_ns for p in (analysis / "fourier").iterdir()}
    second = analyse_run(run_copy, ["fourier"])
    assert second.computed == 0
    assert {p: p.stat().st_mtime_ns for p in (analysis / "fourier").iterdir()} == cached
    assert second.measures("fourier").equals(first.measures("fourier"))


def test_analyze_computes_only_new_checkpoints(run_copy):
    held_back = [checkpoint_path(run_copy, e) for e in (100, 200)]
    saved = {p: p.read_bytes() for p in held_back}
    for p in held_back:
        p.unlink()  # as if training had not written them yet
    assert analyse_run(run_copy, ["fourier"]).computed == 5
    for p, data in saved.items():
        p.write_bytes(data)
    again = analyse_run(run_copy, ["fourier"])
    assert again.computed == 2 and len(again.measures("fourier")) == 7


def test_checkpoints_analysed_stacked_match_the_hooked_models(run_copy, monkeypatch):
    """Checkpoints evaluated three at a time (stacked weights through the exact fast path)
    store what each TransformerLens model gives through its hooks."""
    import torch

    from interp.analysis import modular
    from interp.analyzers import Options
    from interp.runs import AnalysisStore, Run

    batches = []
    stacked = modular.stacked_grid_activations
    monkeypatch.setattr(modular, "stacked_grid_activations",
                        lambda states, *args: batches.append(len(states)) or stacked(states,
                                                                                      *args))
    result = analyse_run(run_copy, ["fourier"], options=Options(checkpoint_batch=3))
    assert result.computed == 7 and sum(batches) == 7 and max(batches) == 3
    run, store = Run.load(run_copy), AnalysisStore(run_copy / "analysis")
    task = run.task()
    for epoch in run.checkpoint_epochs:
        record, tensors = store.load("fourier", epoch, None)
        hooked = modular.analyse_checkpoint(run.model(epoch), task,
                                            record["params"]["key_frequencies"])
        assert record["scalars"] == pytest.approx(hooked.scalars, rel=1e-4, abs=1e-6)
        assert record["excluded_loss_per_frequency"] == pytest.approx(
            {str(k): v for k, v in hooked.excluded_loss_per_frequency.items()}, rel=1e-4)
        for name, value in hooked.tensors().items():
            torch.testing.assert_close(tensors[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_two_layer_transformer_is_analysed_through_its_hooks(tmp_path):
    """No fast path covers two layers with LayerNorm: each checkpoint's model is run."""
    from interp.analysis.modular import analyse_checkpoint
    from interp.runs import AnalysisStore, Run

    config = small_config(model={"n_layers": 2, "normalization": "LN"},
                          schedule={"epochs": 20, "checkpoint_every": 10})
    train(config, tmp_path / "run", TrainOptions(device="cpu", quiet=True))
    result = analyse_run(tmp_path / "run", ["fourier"])
    assert result.computed == 3 and len(result.measures("fourier")) == 3
    run = Run.load(tmp_path / "run")
    record, _ = AnalysisStore(tmp_path / "run" / "analysis").load("fourier", 10, None)
    direct = analyse_checkpoint(run.model(10), run.task(), record["params"]["key_frequencies"])
    assert record["scalars"] == pytest.approx(direct.scalars, rel=1e-9)


def test_corrupt_checkpoint_is_skipped_with_a_warning(run_copy):
    bad = checkpoint_path(run_copy, 150)
    bad.write_bytes(b"\x80\x04 definitely not safetensors")
    result = run_cli("interp.analyze", str(run_copy), "--probes", "8", "--checkpoint-batch", "3")
    assert result.returncode == 0, result.stderr
    assert "warning: skipping checkpoint" in result.stderr and bad.name in result.stderr
    assert result.stderr.count("warning:") == 1  # warned once, though every analysis ran
    summary = json.loads((run_copy / "analysis" / "summary.json").read_text())
    assert summary["checkpoints_analysed"] == {"fourier": 6, "representation": 6,
                                               "lazy_rich": 6}
    assert summary["skipped_checkpoints"] == [str(bad)]


def test_directory_of_runs_gets_a_sweep_table_and_report(run_copy, tmp_path):
    shutil.copytree(run_copy, tmp_path / "run-b")
    result = run_cli("interp.analyze", str(tmp_path), "--every", "3", "--only", "fourier")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "analysis" / "sweep.csv").read_text().count("\n") == 3  # head + 2
    assert (tmp_path / "analysis" / "sweep-report.html").is_file()
    assert (tmp_path / "run" / "analysis" / "report.html").is_file()
    assert (tmp_path / "run-b" / "analysis" / "report.html").is_file()


@pytest.mark.parametrize("args, message", [
    (["/no/such/run"], "does not exist"),
    (["RUN", "--every", "0"], "--every must be a positive integer"),
    (["RUN", "--checkpoint-batch", "0"], "--checkpoint-batch must be a positive integer"),
])
def test_analyze_bad_input(run_copy, args, message):
    args = [str(run_copy) if a == "RUN" else a for a in args]
    result = run_cli("interp.analyze", *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_figures_progress_command_writes_html(run_copy, tmp_path):
    out = tmp_path / "figs"
    analyse_run(run_copy, ["fourier"], quiet=True)  # the figure command only reads
    result = run_cli("interp.figures", "progress", str(run_copy), "--out", str(out))
    assert result.returncode == 0, result.stderr
    names = {p.name for p in out.iterdir()}
    assert {"loss_accuracy.html", "embedding_fourier.html", "neuron_clusters.html"} <= names
    bad = run_cli("interp.figures", "progress", str(tmp_path / "nope"), "--out", str(out))
    assert bad.returncode == 2 and "no such run directory" in bad.stderr


def test_lazy_rich_on_an_mse_run_adds_the_kernel_regression_lazy_limit(tmp_path):
    from interp.analyzers import Options
    from interp.config import RunConfig

    config = RunConfig.from_dict({
        "task": {"kind": "polynomial", "dim": 8, "n_train": 40, "n_test": 60},
        "model": {"kind": "committee", "width": 30, "eps": 0.5},
        "optim": {"name": "sgd", "lr": 5.0, "weight_decay": 0.0},
        "schedule": {"epochs": 40, "eval_every": 10, "checkpoint_every": 20},
        "objective": {"loss": "mse", "centered": True}})
    train(config, tmp_path / "run", TrainOptions(device="cpu", quiet=True))
    result = analyse_run(tmp_path / "run", ["lazy_rich"], options=Options(probes=16))
    lazy = result.summary["lazy_rich"]
    assert lazy["kernels"] == ["trace"]  # regression: the plain NTK
    assert lazy["kernel_regression"]["train_loss"] < 1e-10  # K_0 regression interpolates
    assert 0 < lazy["kernel_regression"]["test_loss"] < 10
    assert abs(result.measures("lazy_rich")["kernel_distance/trace"].iloc[0]) < 1e-12
    assert "kernel regression with K_0" in result.report_path.read_text()
