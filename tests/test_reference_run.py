"""The shipped reference run (checkpoints/nanda-p113) reproduces Nanda et al.'s findings."""

from pathlib import Path

import pytest

from interp.analysis.curves import first_epoch, landmarks
from interp.run_analysis import analyse_run
from interp.runs import Run

REFERENCE = Path(__file__).resolve().parents[1] / "checkpoints" / "nanda-p113"


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    return analyse_run(REFERENCE, ["fourier"], out=tmp_path_factory.mktemp("reference"))


def test_reference_run_is_the_nanda_preset_and_small():
    from interp.presets import get_preset

    run = Run.load(REFERENCE)
    assert run.config == get_preset("nanda")
    assert run.is_complete and len(run.checkpoint_epochs) <= 30
    # What git ships: the run's own files. RUN/analysis is what `make demo` (interp.analyze)
    # writes there afterwards, ignored by git, and not part of the shipped run.
    shipped = [p for p in REFERENCE.rglob("*") if p.is_file()
               and p.relative_to(REFERENCE).parts[0] not in ("analysis", ".lock")]
    assert {p.relative_to(REFERENCE).parts[0] for p in shipped} == {
        "run.json", "split.safetensors", "metrics.jsonl", "checkpoints"}
    assert sum(p.stat().st_size for p in shipped) <= 30 * 2**20
    assert len(run.metrics) == 2501


def test_reference_run_groks_like_the_paper():
    marks = landmarks(Run.load(REFERENCE).metrics)
    assert 1000 <= marks.test_loss_peak <= 2000  # SPEC: test loss peaks around 1.5k
    assert marks.train_acc_99 < 500 and 10_000 <= marks.test_acc_99 <= 20_000
    assert marks.final_test_acc == 1.0


def test_key_frequencies_from_embedding_and_neurons_agree(analysis):
    keys = analysis.summary["fourier"]["key_frequencies"]
    assert keys["neurons"] == keys["embedding"]
    assert 3 <= len(keys["neurons"]) <= 6


def test_restricted_and_excluded_loss_at_the_last_checkpoint(analysis):
    final = analysis.summary["fourier"]["final"]
    metrics = analysis.metrics.set_index("epoch")
    test_loss = metrics.loc[final["epoch"], "test_loss"]
    train_loss = metrics.loc[final["epoch"], "train_loss"]
    assert final["restricted_loss"] < 1e-5 and test_loss < 1e-5  # both at the float64 floor
    assert abs(final["restricted_loss"] - test_loss) < 1e-5
    assert final["excluded_loss"] > 1.0 > 1e4 * train_loss  # far above the train loss
    assert final["restricted_acc"] == 1.0 and final["excluded_acc"] < 0.5


def test_restricted_loss_falls_below_one_before_the_test_loss(analysis):
    restricted = first_epoch(analysis.measures("fourier"), "restricted_loss", 1.0, above=False)
    test = first_epoch(analysis.metrics, "test_loss", 1.0, above=False)
    assert restricted is not None and test is not None
    assert restricted + 2000 <= test
    phases = analysis.summary["phases"]
    assert phases["memorisation_end"] < phases["cleanup_start"] < phases["cleanup_end"]
    weights = analysis.measures("fourier").set_index("epoch")["sum_squared_weights"]
    assert weights.loc[phases["cleanup_end"] // 500 * 500] < weights.loc[1400]  # clean-up


def test_report_has_every_section(analysis):
    html = analysis.report_path.read_text()
    for heading in ("Learning curves", "Progress measures", "Neurons", "Logits", "Attention"):
        assert heading in html
