"""``python -m interp.bench`` runs and prints its JSON lines (smoke tests: nothing about
speed is asserted)."""

import argparse
import json

import pytest
from conftest import run_cli

import interp.bench as bench
from interp.bench import DEFAULT_REFERENCE, Measurement

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


def _records(result) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _by_impl(records: list[dict]) -> dict[tuple[str, int | None], dict]:
    return {(r["impl"], r.get("models")): r for r in records}


def test_bench_smoke(tmp_path):
    reference = tmp_path / "reference.py"
    reference.write_text(FAKE_REFERENCE)
    records = _records(run_cli("interp.bench", "--epochs", "5", "--device", "cpu",
                               "--threads", "1", "--models", "2", "--sequential-sample", "1",
                               "--reference", str(reference)))
    assert [r["impl"] for r in records] == ["reference_tl_loop", "interp", "interp_stacked",
                                           "interp_sequential", "ratio"]
    lines = _by_impl(records)
    assert lines["reference_tl_loop", None]["epochs_per_s"] == 0.5
    assert lines["reference_tl_loop", None]["peak_rss_mb"] > 0
    single, stacked = lines["interp", None], lines["interp_stacked", 2]
    sequential = lines["interp_sequential", 2]
    for line in (single, stacked, sequential):
        assert line["preset"] == "nanda" and line["epochs"] == 5 and line["repeat"] == 0
        assert line["per_epoch_test_eval"] is True and line["device"] == "cpu"
        assert line["seconds"] > 0 and line["peak_rss_mb"] > 0 and line["peak_gpu_mb"] is None
        assert 4.0 < line["test_loss"] < 5.5  # nanda at initialisation: about log(113)
    assert single["epochs_per_s"] > 0 and stacked["model_epochs_per_s"] > 0
    # one of the two runs was trained one at a time, and the line says so
    assert sequential["sampled"] == 1 and sequential["extrapolated"] is True
    assert sequential["model_epochs_per_s"] == pytest.approx(5 / sequential["seconds"],
                                                             rel=0.01)
    # run 0 is the same run stacked and alone
    assert sequential["test_loss"] == pytest.approx(stacked["test_loss"], rel=1e-5)
    ratio = lines["ratio", None]
    assert ratio["interp_over_reference"] == pytest.approx(single["epochs_per_s"] / 0.5,
                                                           rel=0.01)
    assert ratio["stacked_2_over_reference"] == pytest.approx(
        stacked["model_epochs_per_s"] / 0.5, rel=0.01)
    assert ratio["stacked_2_over_sequential"] == pytest.approx(
        stacked["model_epochs_per_s"] / sequential["model_epochs_per_s"], rel=0.01)


def test_bench_liu_toy_smoke():
    """The CI smoke test of issue 11 (the output's shape): a non-transformer preset stacks
    (needs issue 11's trainer, in which every model kind stacks)."""
    records = _records(run_cli("interp.bench", "--preset", "liu-toy", "--models", "1", "4",
                               "--epochs", "20", "--no-reference"))
    assert records[0] == {"impl": "reference_tl_loop", "skipped": "--no-reference"}
    assert [(r["impl"], r.get("models")) for r in records[1:]] == [
        ("interp_stacked", 1), ("interp_sequential", 1), ("interp_stacked", 4),
        ("interp_sequential", 4), ("ratio", None)]
    lines = _by_impl(records)
    for m in (1, 4):
        stacked, sequential = lines["interp_stacked", m], lines["interp_sequential", m]
        for line in (stacked, sequential):
            assert line["preset"] == "liu-toy" and line["epochs"] == 20
            assert line["model_epochs_per_s"] > 0 and line["peak_rss_mb"] > 0
        assert sequential["sampled"] == m and sequential["extrapolated"] is False
        assert sequential["test_loss"] == pytest.approx(stacked["test_loss"], rel=1e-4)
        assert lines["ratio", None][f"stacked_{m}_over_sequential"] > 0
    assert "interp_over_reference" not in lines["ratio", None]


def _args(*argv: str) -> argparse.Namespace:
    return bench.parse_args(["--no-reference", *argv])


def test_each_m_is_timed_stacked_and_one_at_a_time_on_a_sample():
    assert bench.measurements(_args("--models", "1", "16", "64")) == [
        Measurement("single"), Measurement("stacked", 1), Measurement("sequential", 1, 1),
        Measurement("stacked", 16), Measurement("sequential", 16, 4),
        Measurement("stacked", 64), Measurement("sequential", 64, 4)]
    # other presets: the single run only when no stack is asked for; a larger sample
    # than M trains all M; a repeated M is timed once
    assert bench.measurements(_args("--preset", "liu-toy")) == [Measurement("single")]
    assert bench.measurements(_args("--preset", "liu-toy", "--models", "3", "3",
                                    "--sequential-sample", "10")) == [
        Measurement("stacked", 3), Measurement("sequential", 3, 3)]


def test_the_reference_is_skipped_for_other_presets_and_says_why():
    assert bench.reference_script(bench.parse_args(["--preset", "tiny"])) == (
        None, "the reference loop trains nanda only, not tiny")
    assert bench.reference_script(_args()) == (None, "--no-reference")


def test_bench_runs_differ_in_seeds_on_the_bench_schedule():
    configs = bench.bench_configs(_args("--preset", "liu-toy", "--epochs", "20"), 3)
    assert [(c.model.seed, c.schedule.seed) for c in configs] == [(0, 0), (1, 1), (2, 2)]
    schedule = configs[0].schedule  # the preset's 10 000 epochs cut to warm-up + timed
    assert (schedule.epochs, schedule.eval_every, schedule.checkpoint_every,
            schedule.checkpoint_log) == (25, 1, 100, 0)
    assert configs[2].with_overrides(["model.seed=0", "schedule.seed=0"]) == configs[0]
    no_test = bench.bench_configs(_args("--epochs", "7", "--no-test"), 1)[0]
    assert no_test.schedule.eval_every == no_test.schedule.epochs == 12


def test_ratio_lines_per_round_and_of_the_best_runs(tmp_path, monkeypatch, capsys):
    reference = tmp_path / "reference.py"
    reference.write_text(FAKE_REFERENCE)
    # (single epochs/s, stacked model-epochs/s, sequential model-epochs/s) per round
    speeds = iter([(8.0, 40.0, 10.0), (10.0, 30.0, 20.0)])
    current: dict[str, float] = {}

    def fake_measure(measurement, args, device):
        if measurement.kind == "single":
            current.update(zip(("single", "stacked", "sequential"), next(speeds),
                               strict=True))
            return {"impl": "interp", "epochs_per_s": current["single"]}
        return {"impl": measurement.impl, "models": measurement.models,
                "model_epochs_per_s": current[measurement.kind]}

    monkeypatch.setattr(bench, "measure_in_fresh_process", fake_measure)
    monkeypatch.setattr(bench, "run_reference", lambda script, args, device: {
        "impl": "reference_tl_loop", "epochs_per_s": 2.0})
    assert bench.main(["--device", "cpu", "--models", "4", "--repeat", "2",
                       "--reference", str(reference)]) == 0
    ratios = [r for r in map(json.loads, capsys.readouterr().out.splitlines())
              if r["impl"] == "ratio"]
    assert [r["repeat"] for r in ratios] == [0, 1, "best"]
    assert ratios[0] == {"impl": "ratio", "preset": "nanda", "repeat": 0,
                         "stacked_4_over_sequential": 4.0, "interp_over_reference": 4.0,
                         "stacked_4_over_reference": 20.0}
    assert ratios[1]["stacked_4_over_sequential"] == 1.5
    # the best of each measurement: stacked 40 (round 0) over sequential 20 (round 1)
    assert ratios[2]["stacked_4_over_sequential"] == 2.0
    assert ratios[2]["interp_over_reference"] == 5.0


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_REFERENCE.is_file(), reason="no reference loop beside the repo")
def test_bench_against_the_real_reference_loop():
    lines = _by_impl(_records(run_cli("interp.bench", "--epochs", "5", "--device", "cpu",
                                      timeout=900)))
    assert lines["reference_tl_loop", None]["epochs_per_s"] > 0
    # the same work: same data, split and initialisation, so after the same 10 steps the
    # two test losses agree to float rounding
    assert lines["interp", None]["test_loss"] == pytest.approx(
        lines["reference_tl_loop", None]["test_loss"], rel=1e-5)
    assert lines["ratio", None]["interp_over_reference"] > 0


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0", "--no-reference"], "--epochs must be at least 1"),
    (["--epochs", "1", "--reference", "/no/such/script.py"], "no such file"),
    (["--device", "tpu", "--no-reference"], "--device must be cpu or cuda"),
    (["--preset", "nope"], "unknown preset 'nope'; choose one of nanda, power, tiny"),
    (["--models", "4", "0"], "--models must be at least 1, got 0"),
    (["--models", "4", "--sequential-sample", "0"], "--sequential-sample must be at least 1"),
    (["--preset", "liu-toy", "--reference", "ref.py"], "the reference loop trains nanda only"),
])
def test_bench_bad_input_is_one_line(args, message):
    result = run_cli("interp.bench", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
