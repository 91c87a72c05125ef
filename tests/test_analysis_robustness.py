"""Damaged analysis caches and diverged runs never stop ``interp.analyze`` (issue 10, item 4).

A cache entry that parses but is not what its analyzer wrote is recomputed, with one warning
naming it, and overwritten; checkpoints with NaN or infinite weights are left out with one
warning each and listed as diverged; the pure analysis functions give NaN or None where a
diverged run leaves a measure undefined, instead of raising.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli, small_config

from interp.analyzers import Options
from interp.config import RunConfig
from interp.errors import UserError
from interp.run_analysis import analyse_run
from interp.runs import Run, checkpoint_path, load_tensors, save_tensors
from interp.train.loop import TrainOptions, train

OPTIONS = Options(probes=32)
ANALYZERS = ("fourier", "representation", "lazy_rich")
NAN = math.nan


def _train(config: RunConfig, path):
    train(config, path, TrainOptions(device="cpu", quiet=True))
    return path


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A p = 23 transformer run (checkpoints 0, 20, 40, 60) that every analyzer has cached."""
    path = _train(small_config(), tmp_path_factory.mktemp("robust") / "run")
    return path, analyse_run(path, options=OPTIONS)


@pytest.fixture
def run_copy(analysed, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(analysed[0], path)
    return path


def _warnings(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]


def _diverge(path, epoch: int, value: float = NAN, only: str | None = None) -> None:
    """Write ``value`` into the checkpoint of ``epoch`` (every tensor, or only ``only``)."""
    weights = Run.load(path).weights(epoch)
    for name in weights if only is None else [only]:
        weights[name] = torch.full_like(weights[name], value)
    save_tensors(checkpoint_path(path, epoch), weights, {"epoch": str(epoch), "format": "1"})


def _null_metrics_from(path, epoch: int) -> None:
    """Make metrics.jsonl read as a diverged run's from ``epoch`` on: null losses and
    accuracies (NaN, as training writes them)."""
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        if row["epoch"] >= epoch:
            row.update({name: None for name in row if name.endswith(("_loss", "_acc"))})
    (path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def _files_outside_analysis(path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()
            and p.relative_to(path).parts[0] != "analysis"}


# ---------------------------------------------------------------------------------------------
# The pure functions take NaN


def test_curves_and_phases_skip_nan_losses():
    from interp.analysis.curves import first_epoch, landmarks
    from interp.analysis.phases import learning_phase
    from interp.analysis.progress import find_phases

    clean = pd.DataFrame({"epoch": [0, 10, 20, 30, 40], "step": [0, 10, 20, 30, 40],
                          "train_loss": [3.0, 0.001, 0.001, 0.001, 0.001],
                          "test_loss": [3.0, 9.0, 1.0, 0.01, 0.001],
                          "train_acc": [0.1, 1.0, 1.0, 1.0, 1.0],
                          "test_acc": [0.1, 0.1, 0.5, 1.0, 1.0]})
    diverged = pd.concat([clean, pd.DataFrame({
        "epoch": [50, 60], "step": [50, 60], "train_loss": [None, None],
        "test_loss": [None, NAN], "train_acc": [NAN, NAN], "test_acc": [NAN, NAN]})],
        ignore_index=True)
    assert find_phases(diverged) == find_phases(clean)
    assert find_phases(clean).to_dict() == {"memorisation_end": 10, "cleanup_start": 20,
                                            "cleanup_end": 40}
    marks = landmarks(diverged)
    assert (marks.test_loss_peak, marks.test_acc_99, marks.final_epoch) == (10, 30, 60)
    # halved from the first evaluation's 3.0: train at 10, test (after its rise to 9) at 20
    assert (marks.train_loss_half, marks.test_loss_half, marks.loss_half_gap) == (10, 20, 10)
    assert math.isnan(marks.final_test_acc)
    assert first_epoch(diverged, "test_loss", 0.5, above=False) == 30
    assert learning_phase(clean, max_gap=15).name == "grokking"
    assert (learning_phase(diverged).name, learning_phase(diverged).gap) == ("diverged", 20)

    # nothing finite at all: no peak, no phases, no crossings; a column of nulls is all NaN
    empty = pd.DataFrame({"epoch": [0, 10], "step": [0, 10], "train_loss": [None, None],
                          "test_loss": [None, None], "train_acc": [NAN, NAN],
                          "test_acc": [NAN, NAN]})
    assert landmarks(empty).test_loss_peak is None and landmarks(empty).test_loss_half is None
    assert find_phases(empty).to_dict() == {"memorisation_end": None, "cleanup_start": None,
                                            "cleanup_end": None}
    assert first_epoch(empty, "test_loss", 10.0, above=False) is None
    assert learning_phase(empty).name == "diverged"


def test_linear_algebra_returns_nan_for_non_finite_input():
    from interp.analysis import lazy_rich as lr
    from interp.analysis.representation import embedding_projection

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(12, 5, generator=generator, dtype=torch.float64)
    kernel = x @ x.T
    broken = kernel.clone()
    broken[3, 4] = NAN
    labels = lr.label_matrix(torch.arange(12) % 3, 3)
    assert math.isnan(lr.kernel_alignment(broken, labels))
    assert math.isnan(lr.kernel_distance(kernel, broken))
    assert lr.kernel_alignment(kernel, labels) == pytest.approx(
        lr.kernel_alignment(kernel.clone(), labels))  # finite input: a number
    for bad in (broken, kernel * math.inf):
        top = lr.top_eigenvectors(bad, 4)
        assert top.values.shape == (4,) and top.vectors.shape == (12, 4)
        assert top.values.isnan().all() and top.vectors.isnan().all()
        overlap = lr.fourier_overlap(top.vectors, lr.fourier_modes(torch.arange(12), 13, [1]))
        assert overlap.shape == (4,) and overlap.isnan().all()
        predictions = lr.kernel_regression(bad, bad[:3], torch.ones(12))
        assert predictions.shape == (3,) and predictions.isnan().all()
    assert math.isnan(lr.linear_cka(x, torch.full_like(x, NAN)))
    # the overlap with no key frequency at all is zero, not an error
    top = lr.top_eigenvectors(kernel, 3)
    assert lr.fourier_overlap(top.vectors, lr.fourier_modes(torch.arange(12), 13, [])
                              ).tolist() == [0.0, 0.0, 0.0]
    zero = {"w": torch.zeros(3, 3)}
    movement = lr.parameter_movement(zero, {"w": torch.ones(3, 3)})
    assert math.isinf(movement.total) and math.isinf(movement.per_weight["w"])
    assert math.isnan(lr.parameter_movement(zero, zero).total)
    projection = embedding_projection(torch.full((6, 4), NAN))
    assert projection.coordinates.shape == (6, 2) and projection.coordinates.isnan().all()
    assert projection.explained_variance_ratio.isnan().all()


def test_fourier_measures_of_nan_or_constant_outputs():
    from interp.analysis import fourier
    from interp.analysis.progress import gini

    p = 7
    assert math.isnan(gini(torch.tensor([1.0, NAN, 2.0])))
    assert math.isnan(gini(torch.tensor([1.0, math.inf])))
    assert gini(torch.tensor([0.0, 0.0, 3.0])) == pytest.approx(2 / 3)
    assert fourier.key_frequencies_from_norms(torch.full((p // 2,), NAN)) == []
    assert fourier.key_frequencies_from_norms(torch.zeros(p // 2)) == []
    clusters = fourier.cluster_neurons(torch.full((p // 2, 5), NAN))
    assert clusters.frequencies == [] and clusters.explained_fraction == 0.0
    for logits in (torch.ones(p, p, p), torch.full((p, p, p), NAN)):
        projection = fourier.logit_projection(logits, p, [1, 2])
        assert math.isnan(projection.explained) and math.isnan(projection.residual_norm)
    # a finite cube keeps its real numbers
    a, b, c = torch.meshgrid(torch.arange(p), torch.arange(p), torch.arange(p), indexing="ij")
    cosine = torch.cos(2 * math.pi * 2 * (a + b - c) / p).double()
    assert fourier.logit_projection(cosine, p, [2]).explained == pytest.approx(1.0)


def test_progress_measures_without_key_frequencies():
    """No key frequency: the restricted logits are the mean ones and the excluded logits the
    real ones (it raised IndexError: index ... is out of bounds for dimension 0 with size 1)."""
    import torch.nn.functional as F

    from interp.analysis.progress import progress_measures

    p, n = 13, 20
    generator = torch.Generator().manual_seed(1)
    acts = torch.randn(p * p, n, generator=generator)
    W_L = torch.randn(n, p, generator=generator)
    logits = torch.randn(p * p, p, generator=generator, dtype=torch.float64)
    labels = torch.randint(p, (p * p,), generator=generator)
    order = torch.randperm(p * p, generator=generator)
    train_idx, test_idx = order[:80], order[80:]
    measures = progress_measures(acts, logits, W_L, labels, train_idx, test_idx, p, [])
    mean = logits.mean(0, keepdim=True).expand(p * p, p)
    assert measures.restricted_loss == pytest.approx(
        F.cross_entropy(mean[test_idx], labels[test_idx]).item())
    assert measures.excluded_loss == pytest.approx(
        F.cross_entropy(logits[train_idx], labels[train_idx]).item())
    assert measures.excluded_loss_per_frequency == {}
    nan_measures = progress_measures(acts * NAN, logits, W_L, labels, train_idx, test_idx, p,
                                     [1, 3])
    assert math.isnan(nan_measures.restricted_loss) and math.isnan(nan_measures.excluded_loss)


# ---------------------------------------------------------------------------------------------
# Diverged runs


@pytest.fixture(scope="module")
def sgd_diverged(tmp_path_factory):
    """A run that really diverges: SGD at lr 2 takes the test loss to 4e10 by epoch 5 and to
    NaN (NaN weights) by epoch 10; only the epoch-0 checkpoint is finite."""
    config = small_config(optim={"name": "sgd", "lr": 2.0})
    return _train(config, tmp_path_factory.mktemp("diverged") / "run")


def test_a_run_that_diverged_is_analysed_where_finite(sgd_diverged, tmp_path, capsys):
    path = tmp_path / "run"
    shutil.copytree(sgd_diverged, path)
    run = Run.load(path)
    assert run.metrics["test_loss"].iloc[1] > 1e9 and run.metrics["test_loss"].iloc[2:].isna().all()
    before = _files_outside_analysis(path)
    result = analyse_run(path, options=OPTIONS)
    lines = _warnings(capsys)
    diverged = [str(checkpoint_path(path, epoch)) for epoch in (20, 40, 60)]
    assert len(lines) == 3 and all("diverged" in line for line in lines)
    assert sorted(next(d for d in diverged if d in line) for line in lines) == diverged
    for name in ANALYZERS:
        assert result.measures(name)["epoch"].tolist() == [0], name
    summary = json.loads((path / "analysis" / "summary.json").read_text())
    assert summary["diverged_checkpoints"] == diverged
    assert summary["skipped_checkpoints"] == []
    assert summary["landmarks"]["test_loss_peak"] == 5  # the largest finite test loss
    assert summary["phases"]["memorisation_end"] == 5
    assert summary["learning_phase"]["name"] == "diverged"
    assert summary["fourier"]["final"]["epoch"] == 0
    assert (path / "analysis" / "report.html").stat().st_size > 10_000
    assert _files_outside_analysis(path) == before


def test_the_cli_analyses_a_diverged_run(sgd_diverged, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(sgd_diverged, path)
    done = run_cli("interp.analyze", str(path), "--probes", "16")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3 and all("diverged checkpoint" in line for line in warnings)
    assert "checkpoints analysed: fourier 1, representation 1, lazy_rich 1" in done.stdout


def test_nan_and_inf_checkpoints_are_marked_on_every_analysis(run_copy, analysed, capsys):
    """NaN in one tensor of epoch 40, inf everywhere at 60, null losses in the metrics from
    epoch 40: the finite checkpoints give the numbers they gave before; a second analysis
    computes nothing and marks the same checkpoints."""
    shutil.rmtree(run_copy / "analysis")
    _diverge(run_copy, 40, only="embed.weight")
    _diverge(run_copy, 60, math.inf)
    _null_metrics_from(run_copy, 40)
    capsys.readouterr()
    diverged = [str(checkpoint_path(run_copy, e)) for e in (40, 60)]
    for attempt in range(2):
        result = analyse_run(run_copy, options=OPTIONS)
        lines = _warnings(capsys)
        assert len(lines) == 2 and "embed.weight" in lines[0] + lines[1]
        text = (run_copy / "analysis" / "summary.json").read_text()
        summary = json.loads(text, parse_constant=pytest.fail)  # standard JSON: no NaN
        assert summary["diverged_checkpoints"] == diverged
        if attempt:
            assert result.computed == 0
        for name in ANALYZERS:
            pristine = analysed[1].measures(name)
            pd.testing.assert_frame_equal(result.measures(name), pristine[pristine.epoch <= 20])
    assert summary["landmarks"]["final_epoch"] == 60
    assert summary["landmarks"]["final_test_acc"] is None and math.isnan(
        result.summary["landmarks"]["final_test_acc"])


OTHER_MODELS = {
    "mlp": ({"task": {"kind": "modular", "p": 11, "encoding": "onehot", "frac": 0.5},
             "model": {"kind": "mlp", "hidden": [32, 32]},
             "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 0}}, ["lazy_rich"]),
    "toy": ({"task": {"kind": "toy_addition"}, "model": {"kind": "toy"},
             "optim": {"lr": 1e-3, "weight_decay": 0.0}}, ["representation", "lazy_rich"]),
}


@pytest.mark.parametrize("kind", OTHER_MODELS)
def test_diverged_checkpoints_of_other_models(tmp_path, kind, capsys):
    sections, analyzers = OTHER_MODELS[kind]
    config = RunConfig.from_dict({**sections, "schedule": {"epochs": 40, "eval_every": 10,
                                                           "checkpoint_every": 20}})
    path = _train(config, tmp_path / kind)
    _diverge(path, 40)
    _null_metrics_from(path, 40)
    capsys.readouterr()
    result = analyse_run(path, options=Options(probes=8))
    lines = _warnings(capsys)
    assert len(lines) == 1 and str(checkpoint_path(path, 40)) in lines[0]
    assert sorted(result.results) == sorted(analyzers)
    for name in analyzers:
        measures = result.measures(name)
        assert measures["epoch"].tolist() == [0, 20]
        assert np.isfinite(measures.drop(columns="epoch").to_numpy(dtype=float)).all(), name
    assert result.summary["diverged_checkpoints"] == [str(checkpoint_path(path, 40))]


# ---------------------------------------------------------------------------------------------
# Damaged cache entries


# analyzer -> (epoch whose record is damaged, epoch whose tensors are, a record field it
# reads, a tensor it reads); the fourier record at 60 is the final checkpoint's, whose own
# key frequencies are read first
TARGETS = {"fourier": (60, 20, "scalars", "neuron_frequency"),
           "representation": (40, 20, "rqi", "embeddings"),
           "lazy_rich": (40, 0, "measures", "kernel/correct_class")}


def _entry(run, name: str, epoch: int):
    stem = run / "analysis" / name / f"{epoch:07d}"
    return stem.with_suffix(".json"), stem.with_suffix(".safetensors")


def _edit_record(edit):
    def damage(json_path, field, other):
        record = json.loads(json_path.read_text())
        edit(record, field)
        json_path.write_text(json.dumps(record))
    return damage


def _edit_tensors(edit):
    def damage(tensor_path, name, other):
        tensors, metadata = load_tensors(tensor_path)
        edit(tensors, name)
        save_tensors(tensor_path, tensors, metadata)
    return damage


def _retype(tensors, name):
    tensor = tensors[name]
    tensors[name] = tensor.float() if tensor.dtype == torch.int64 else tensor.long()


RECORD_DAMAGE = {
    "not UTF-8": lambda path, field, other: path.write_bytes(b'{"epoch": "\xff\xfe\x00"}'),
    "a JSON list": lambda path, field, other: path.write_text(json.dumps([path.read_text()])),
    "a JSON number": lambda path, field, other: path.write_text("12513"),
    "missing key": _edit_record(lambda record, field: record.pop(field)),
    "wrong type": _edit_record(lambda record, field: record.update({field: "seven"})),
    "no params": _edit_record(lambda record, field: record.pop("params")),
    "another epoch's record": lambda path, field, other: path.write_bytes(
        other.with_suffix(".json").read_bytes()),
}
TENSOR_DAMAGE = {
    "another epoch's tensors": lambda path, name, other: path.write_bytes(
        other.with_suffix(".safetensors").read_bytes()),
    "wrong shape": _edit_tensors(lambda tensors, name: tensors.update(
        {name: tensors[name][..., :-1]})),
    "wrong dtype": _edit_tensors(_retype),
    "missing tensor": _edit_tensors(lambda tensors, name: tensors.pop(name)),
    "not safetensors": lambda path, name, other: path.write_bytes(b"\x08\x00\x00\x00garbage"),
}


@pytest.mark.parametrize("damage", [*RECORD_DAMAGE, *TENSOR_DAMAGE])
@pytest.mark.parametrize("name", ANALYZERS)
def test_a_damaged_cache_entry_is_recomputed_with_one_warning(run_copy, analysed, capsys,
                                                               name, damage):
    record_epoch, tensor_epoch, field, tensor = TARGETS[name]
    epoch = record_epoch if damage in RECORD_DAMAGE else tensor_epoch
    json_path, tensor_path = _entry(run_copy, name, epoch)
    other = _entry(run_copy, name, 20 if epoch != 20 else 40)[0]
    pristine = json.loads(json_path.read_text()), {  # copies: the damage rewrites the file
        key: value.clone() for key, value in load_tensors(tensor_path)[0].items()}
    if damage in RECORD_DAMAGE:
        RECORD_DAMAGE[damage](json_path, field, other)
    else:
        TENSOR_DAMAGE[damage](tensor_path, tensor, other)
    capsys.readouterr()
    result = analyse_run(run_copy, [name], options=OPTIONS)
    lines = _warnings(capsys)
    assert len(lines) == 1 and str(json_path.with_suffix("")) in lines[0], lines
    assert "\n" not in lines[0]
    assert result.computed == 1
    pd.testing.assert_frame_equal(result.measures(name), analysed[1].measures(name))
    # the fresh result replaced the damaged one
    assert json.loads(json_path.read_text()) == pristine[0]
    tensors = load_tensors(tensor_path)[0]
    assert tensors.keys() == pristine[1].keys()
    assert all(torch.equal(tensors[k], pristine[1][k]) for k in tensors)
    assert analyse_run(run_copy, [name], options=OPTIONS).computed == 0
    assert _warnings(capsys) == []


def _random_json(rng: random.Random, record):
    """A random JSON value: a shape the analyzers never wrote, or the real record with keys
    dropped, values of the wrong type, or another epoch."""
    junk = [None, True, -1, 2**70, 1e308, "", "x" * 50, [], [1, "a"], {}, {"epoch": 0}]
    choice = rng.randrange(7)
    if choice == 0:
        return rng.choice(junk)
    if choice == 1:
        return [rng.choice(junk) for _ in range(rng.randrange(5))]
    if choice == 2:
        return {key: value for key, value in record.items() if rng.random() < 0.5}
    if choice == 3:
        return {key: rng.choice(junk) if rng.random() < 0.3 else value
                for key, value in record.items()}
    if choice == 4:
        return {**record, "epoch": record["epoch"] + rng.randrange(1, 100)}
    if choice == 5:
        nested = rng.choice([key for key, value in record.items() if isinstance(value, dict)])
        inner = dict(record[nested])
        if inner:
            inner[rng.choice(sorted(inner))] = rng.choice(junk)
        return {**record, nested: inner}
    return [[[[[]]]]]


def _random_tensors(rng: random.Random, path):
    """Random bytes, an empty file, or a safetensors file of the right epoch whose tensors
    have random names, shapes and dtypes, or the real ones with one changed."""
    tensors, metadata = load_tensors(path)
    choice = rng.randrange(4)
    if choice == 0:
        path.write_bytes(rng.randbytes(rng.randrange(200)))
    elif choice == 1:
        path.write_bytes(b"")
    elif choice == 2:
        shape = [rng.randrange(4) for _ in range(rng.randrange(4))]
        dtype = rng.choice([torch.float32, torch.float64, torch.int64, torch.bool, torch.uint8])
        save_tensors(path, {rng.choice([*tensors, "x"]): torch.zeros(shape, dtype=dtype)},
                     metadata)
    elif tensors:
        name = rng.choice(sorted(tensors))
        tensors[name] = torch.zeros([rng.randrange(1, 5)] * rng.randrange(1, 4),
                                    dtype=rng.choice([torch.float32, torch.int64]))
        save_tensors(path, tensors, metadata)


def test_random_damage_to_cache_files_is_recomputed_or_refused_in_one_line(run_copy, analysed,
                                                                          capsys):
    """Seeded random cases: random bytes and random JSON shapes in several cache files at
    once; the analysis works (with the pristine numbers) or ends in one UserError line, and
    never writes outside RUN/analysis."""
    rng = random.Random(10)
    files = sorted(p for p in (run_copy / "analysis").rglob("*")
                   if p.is_file() and not p.name.startswith("."))  # no lock file
    assert len(files) == 2 + 2 * 3 * 4  # summary, report, 3 analyzers x 4 checkpoints x 2
    outside = _files_outside_analysis(run_copy)
    pristine = {p: p.read_bytes() for p in files}
    warned = 0
    for case in range(8):
        for path, data in pristine.items():
            path.write_bytes(data)
        for path in rng.sample(files, 4):
            if path.suffix == ".safetensors":
                _random_tensors(rng, path)
            elif rng.random() < 0.3:
                path.write_bytes(rng.randbytes(rng.randrange(1, 300)))
            else:
                record = json.loads(pristine[path]) if path.suffix == ".json" else {"a": {}}
                path.write_text(json.dumps(_random_json(rng, record)))
        try:
            result = analyse_run(run_copy, options=OPTIONS)
        except UserError as err:
            assert "\n" not in str(err), case
        else:
            for name in ANALYZERS:
                pd.testing.assert_frame_equal(result.measures(name),
                                              analysed[1].measures(name))
        lines = capsys.readouterr().err.splitlines()
        assert all(line.startswith("warning: ") for line in lines)
        warned += len(lines)
        assert _files_outside_analysis(run_copy) == outside
    assert warned >= 16  # most damage is seen (a params object replaced is merely stale)


def test_the_cli_recomputes_a_damaged_entry(run_copy):
    json_path, _ = _entry(run_copy, "representation", 20)
    json_path.write_bytes(b"\xff\xfe not json")
    done = run_cli("interp.analyze", str(run_copy), "--only", "representation", "--probes", "32")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("warning:") == 1 and str(json_path) in done.stderr
    assert json.loads(json_path.read_text())["epoch"] == 20


def test_relative_loss_landmark_starts_from_the_first_finite_loss():
    """An MSE run's grokking delay in loss: each loss halved from its first finite value,
    whatever its scale; a first value of 0 or a loss that never halves gives None."""
    from interp.analysis.curves import fraction_epoch

    frame = pd.DataFrame({"epoch": [0, 100, 200, 300, 400],
                          "train_loss": [NAN, 40.0, 19.0, 1.0, 0.5],
                          "test_loss": [50.0, 80.0, 30.0, 24.0, 26.0]})
    assert fraction_epoch(frame, "train_loss", 0.5) == 200  # from 40 (the NaN is skipped)
    assert fraction_epoch(frame, "test_loss", 0.5) == 300  # 24 <= 25, after the rise to 80
    assert fraction_epoch(frame, "test_loss", 0.1) is None
    zero = frame.assign(train_loss=[0.0, 0.0, 0.0, 0.0, 0.0])
    assert fraction_epoch(zero, "train_loss", 0.5) is None
