"""``python -m interp.bench`` runs and prints its JSON lines (a smoke test: nothing about
speed is asserted)."""

import json

import pytest
from conftest import run_cli

from interp.bench import DEFAULT_REFERENCE

# Stands in for reference_tl_loop.py: same arguments, same kind of JSON line.
FAKE_REFERENCE = """
import argparse, json
ap = argparse.ArgumentParser()
ap.add_argument("--epochs", type=int); ap.add_argument("--device"); ap.add_argument("--threads")
ap.add_argument("--no-test", action="store_true")
args = ap.parse_args()
print(json.dumps({"impl": "reference_tl_loop", "device": args.device, "epochs": args.epochs,
                  "per_epoch_test_eval": not args.no_test, "seconds": 10.0,
                  "epochs_per_s": args.epochs / 10.0}))
"""


def _lines(result):
    assert result.returncode == 0, result.stderr
    return {line["impl"]: line for line in map(json.loads, result.stdout.splitlines())}


def test_bench_smoke(tmp_path):
    reference = tmp_path / "reference.py"
    reference.write_text(FAKE_REFERENCE)
    lines = _lines(run_cli("interp.bench", "--epochs", "5", "--device", "cpu", "--threads",
                           "1", "--models", "2", "--reference", str(reference)))
    assert lines["reference_tl_loop"]["epochs_per_s"] == 0.5
    assert lines["reference_tl_loop"]["peak_rss_mb"] > 0
    single, ensemble = lines["interp"], lines["interp_ensemble"]
    for line in (single, ensemble):
        assert line["epochs"] == 5 and line["per_epoch_test_eval"] is True
        assert line["seconds"] > 0 and line["peak_rss_mb"] > 0 and line["peak_gpu_mb"] is None
        assert 4.0 < line["test_loss"] < 5.5  # nanda at initialisation: about log(113)
    assert single["epochs_per_s"] > 0 and ensemble["models"] == 2
    assert ensemble["model_epochs_per_s"] > 0
    ratio = lines["ratio"]
    assert ratio["interp_over_reference"] == pytest.approx(single["epochs_per_s"] / 0.5,
                                                           rel=0.01)
    assert "ensemble_2_over_reference" in ratio


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_REFERENCE.is_file(), reason="no reference loop beside the repo")
def test_bench_against_the_real_reference_loop():
    lines = _lines(run_cli("interp.bench", "--epochs", "5", "--device", "cpu",
                           timeout=900))
    assert lines["reference_tl_loop"]["epochs_per_s"] > 0
    # the same work: same data, split and initialisation, so after the same 10 steps the
    # two test losses agree to float rounding
    assert lines["interp"]["test_loss"] == pytest.approx(
        lines["reference_tl_loop"]["test_loss"], rel=1e-5)
    assert lines["ratio"]["interp_over_reference"] > 0


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0", "--no-reference"], "--epochs must be at least 1"),
    (["--epochs", "1", "--reference", "/no/such/script.py"], "no such file"),
    (["--device", "tpu", "--no-reference"], "--device must be cpu or cuda"),
])
def test_bench_bad_input_is_one_line(args, message):
    result = run_cli("interp.bench", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
