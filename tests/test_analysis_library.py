"""The analysis as a library (interp.run_analysis): reading is pure, computing one analysis
keeps the others' sections, figure commands only read, the CLI's counts are honest, and its
options are checked in one place."""

import json
import shutil

import pytest
from conftest import files_in, run_cli, small_config

import interp
from interp.errors import UserError
from interp.run_analysis import analyse_run, load_analysis
from interp.train.loop import TrainOptions, train


@pytest.fixture(scope="module")
def analysed_run(tmp_path_factory):
    """A small modular-addition run with every analysis cached (lazy_rich on 32 probes)."""
    from interp.analyzers import Options

    path = tmp_path_factory.mktemp("library") / "run"
    config = small_config(schedule={"epochs": 300, "checkpoint_every": 100, "eval_every": 10})
    train(config, path, TrainOptions(device="cpu", quiet=True))
    analyse_run(path, options=Options(probes=32), quiet=True)
    return path


@pytest.fixture
def run_copy(analysed_run, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(analysed_run, path)
    return path


def _contents(path):
    return {name: (path / name).read_bytes() for name in files_in(path)}


def test_loading_the_analysis_reads_what_is_cached_and_writes_nothing(run_copy):
    before = _contents(run_copy)
    result = interp.load_analysis(run_copy)
    assert _contents(run_copy) == before
    assert result.computed == 0
    assert result.analysed == {"fourier": 4, "representation": 4, "lazy_rich": 4}
    fourier = result.fourier
    assert list(fourier.measures["epoch"]) == fourier.epochs == [0, 100, 200, 300]
    assert fourier.embed_frequency_norms.shape == (4, 11)  # p = 23: frequencies 1..11
    assert fourier.final.neuron_frequency.shape == (64,)  # d_mlp
    assert fourier.final_epoch == 300
    saved = json.loads((run_copy / "analysis" / "summary.json").read_text())
    assert saved["fourier"]["key_frequencies"]["used"] == fourier.key_frequencies
    assert result.lazy_rich.summary["probes"] == 32  # the options it was computed with
    assert result.landmarks.final_epoch == 300


def test_a_run_never_analysed_loads_empty_and_stays_untouched(tmp_path):
    path = tmp_path / "run"
    train(small_config(schedule={"epochs": 20, "checkpoint_every": 10}), path,
          TrainOptions(device="cpu", quiet=True))
    before = _contents(path)
    result = load_analysis(path)
    assert (result.fourier, result.representation, result.lazy_rich) == (None, None, None)
    assert _contents(path) == before and not (path / "analysis").exists()
    assert result.landmarks.final_epoch == 20  # from the metrics, which need no analysis


def test_computing_one_analysis_keeps_the_others_sections(run_copy):
    summary_file = run_copy / "analysis" / "summary.json"
    full = json.loads(summary_file.read_text())
    result = analyse_run(run_copy, ["representation"], quiet=True)
    assert result.computed == 0
    merged = json.loads(summary_file.read_text())
    assert {"fourier", "representation", "lazy_rich"} <= set(merged)
    assert merged["fourier"] == full["fourier"] and merged["lazy_rich"] == full["lazy_rich"]
    assert merged["checkpoints_analysed"] == full["checkpoints_analysed"]
    html = (run_copy / "analysis" / "report.html").read_text()
    assert "Progress measures" in html and "Lazy versus rich" in html


def test_every_selects_what_is_computed_and_the_rest_stays_cached(run_copy):
    shutil.rmtree(run_copy / "analysis" / "fourier")
    result = analyse_run(run_copy, ["fourier"], every=3, quiet=True)
    assert result.fourier.epochs == [0, 300]
    assert result.computed == 2  # the last checkpoint's key frequencies, then epoch 0
    assert result.analysed["lazy_rich"] == 4  # read, with the probes it was computed with


def test_the_progress_figures_read_the_cache_and_write_only_their_folder(run_copy, tmp_path):
    before = _contents(run_copy)
    out = tmp_path / "figures"
    result = run_cli("interp.figures", "progress", str(run_copy), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert _contents(run_copy) == before
    from interp.figures.report import nanda_figures, progress_figures

    analysis = load_analysis(run_copy)
    drawn = {*progress_figures(analysis), *nanda_figures(analysis)}
    assert {"loss_accuracy", "gini_weight_norm", "embedding_fourier", "attention"} <= drawn
    assert {p.name for p in out.iterdir()} == {f"{name}.html" for name in drawn} | {
        "plotly.min.js"}


def test_the_progress_figures_without_a_cached_analysis_say_how_to_make_one(tmp_path):
    path = tmp_path / "run"
    train(small_config(schedule={"epochs": 20, "checkpoint_every": 10}), path,
          TrainOptions(device="cpu", quiet=True))
    result = run_cli("interp.figures", "progress", str(path), "--out", str(tmp_path / "f"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"python -m interp.analyze {path} --only fourier" in result.stderr
    assert not (path / "analysis").exists() and not (tmp_path / "f").exists()


def test_the_cli_says_how_many_checkpoints_it_computed_and_read(run_copy):
    shutil.rmtree(run_copy / "analysis" / "representation")
    result = run_cli("interp.analyze", str(run_copy), "--only", "representation", "--quiet")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert "representation 4" in first and "fourier 4" in first
    assert "(4 computed now, 8 read from the cache)" in first
    again = run_cli("interp.analyze", str(run_copy), "--only", "representation", "--quiet")
    assert "(0 computed now, 12 read from the cache)" in again.stdout.splitlines()[0]


@pytest.mark.parametrize("args, message", [
    (["--every", "0"], "--every must be a positive integer, got 0"),
    (["--every", "-2"], "--every must be a positive integer, got -2"),
    (["--probes", "1"], "--probes must be at least 2, got 1"),
    (["--checkpoint-batch", "0"], "--checkpoint-batch must be a positive integer, got 0"),
    (["--only", "llama"], "invalid choice: 'llama'"),
    (["--kernels", "diagonal"], "invalid choice: 'diagonal'"),
])
def test_analysis_options_out_of_range_are_one_line_errors(run_copy, args, message):
    before = _contents(run_copy)
    result = run_cli("interp.analyze", str(run_copy), *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert _contents(run_copy) == before


def test_the_analysis_options_are_checked_in_one_place():
    import argparse

    from interp.cli import add_analysis_arguments, analysis_options

    parser = argparse.ArgumentParser()
    add_analysis_arguments(parser)
    options = analysis_options(parser.parse_args(["--probes", "64", "--kernels", "trace",
                                                  "trace", "correct_class"]))
    assert (options.probes, options.kernels, options.device) == (64, ("trace",
                                                                     "correct_class"), "cpu")
    with pytest.raises(UserError, match="--every"):
        analysis_options(parser.parse_args(["--every", "0"]))


def test_results_of_another_version_are_recomputed_with_one_warning(run_copy, capsys):
    entries = sorted((run_copy / "analysis" / "representation").glob("*.json"))
    for entry in entries:
        record = json.loads(entry.read_text())
        record["params"]["version"] = 0  # as an older interp wrote it
        entry.write_text(json.dumps(record))
    assert load_analysis(run_copy).representation is None  # reading never recomputes
    assert "left out (python -m interp.analyze --only representation" in capsys.readouterr().err
    result = analyse_run(run_copy, ["representation"], quiet=True)
    err = capsys.readouterr().err
    assert err.count("computed by another version or with other options; recomputing") == 1
    assert result.representation.computed == len(entries) == 4
    assert json.loads(entries[0].read_text())["params"]["version"] != 0
