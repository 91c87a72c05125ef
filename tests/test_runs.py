import json
import pickle

import pytest
import torch
from conftest import small_config

from interp.runs import (
    Run,
    RunFileError,
    RunWriter,
    atomic_write_text,
    checkpoint_path,
    load_tensors,
    read_jsonl,
    save_tensors,
)
from interp.train.loop import TrainOptions, train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "small"
    train(small_config(), path, TrainOptions(device="cpu", quiet=True))
    return path


class _CreatesFileWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_run_directory_layout_and_public_api(trained_run):
    run = Run.load(trained_run)
    assert (trained_run / "run.json").is_file() and (trained_run / "split.safetensors").is_file()
    assert run.checkpoint_epochs == [0, 20, 40, 60]
    assert (trained_run / "checkpoints" / "0000020.safetensors").is_file()
    record = json.loads((trained_run / "run.json").read_text())
    assert set(record["versions"]) == {"interp", "torch", "transformer_lens"}
    assert record["config"] == small_config().to_dict() and run.config == small_config()
    metrics = run.metrics
    assert metrics["epoch"].tolist() == list(range(0, 61, 5))
    assert {"train_loss", "test_loss", "train_acc", "test_acc", "weight_norm"} <= set(metrics)
    assert run.is_complete


def test_run_task_and_model_reproduce_the_training_data_and_metrics(trained_run):
    run = Run.load(trained_run)
    task = run.task()
    train_idx, test_idx = run.split()
    assert torch.equal(task.train_idx, train_idx) and len(train_idx) == int(0.5 * 23 * 23)
    model = run.model(60)
    with torch.no_grad():
        logits = model(task.test_inputs)[:, -1]
    loss = torch.nn.functional.cross_entropy(logits.double(), task.test_targets).item()
    assert loss == pytest.approx(run.metrics["test_loss"].iloc[-1], rel=1e-4)
    assert not torch.equal(run.model(0).W_E, model.W_E)


def test_torn_last_metrics_line_is_ignored_and_a_damaged_one_skipped(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 0}\n{"epoch": 1}\n{"epo')
    assert read_jsonl(path) == [{"epoch": 0}, {"epoch": 1}]
    assert capsys.readouterr().err == ""  # a kill's torn last line is expected: no warning
    path.write_text('{"epoch": 0}\nGARBAGE\n{"epoch": 2}\n')
    assert read_jsonl(path) == [{"epoch": 0}, {"epoch": 2}]
    assert f"warning: {path}: skipped line 2 (not valid JSON)" in capsys.readouterr().err


def test_truncated_and_corrupt_checkpoints_are_refused_by_name(trained_run, tmp_path):
    good = checkpoint_path(trained_run, 20).read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good[: len(good) // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    for path in (truncated, garbage):
        with pytest.raises(RunFileError, match=str(path.name)) as info:
            load_tensors(path)
        assert "\n" not in str(info.value)


def test_a_planted_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"embed.weight": _CreatesFileWhenUnpickled(marker)})
    torch_style = tmp_path / "torch_save.safetensors"
    torch.save({"w": _CreatesFileWhenUnpickled(marker)}, torch_style)
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(payload)
    for path in (plain, torch_style):
        with pytest.raises(RunFileError, match="not a valid safetensors file"):
            load_tensors(path)
    assert not marker.exists()


def test_planted_pickle_in_a_run_is_refused_without_side_effects(trained_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    marker = tmp_path / "pwned"
    checkpoint_path(run_dir, 40).write_bytes(pickle.dumps(_CreatesFileWhenUnpickled(marker)))
    run = Run.load(run_dir)
    with pytest.raises(RunFileError, match="0000040.safetensors"):
        run.model(40)
    assert not marker.exists()
    assert run.model(20) is not None  # the other checkpoints still load


def test_checkpoint_that_does_not_match_the_model_is_refused(trained_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    save_tensors(checkpoint_path(run_dir, 40), {"embed.weight": torch.zeros(3, 3)})
    with pytest.raises(RunFileError, match="does not match the model"):
        Run.load(run_dir).model(40)


def test_atomic_write_leaves_no_temp_files_and_replaces_whole(tmp_path):
    target = tmp_path / "file.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_atomic_copy_keeps_the_old_content_and_leaves_no_temp_files(tmp_path):
    from interp.files import atomic_copy

    source, target = tmp_path / "state", tmp_path / "previous"
    atomic_write_text(source, "one")
    atomic_copy(source, target)
    atomic_copy(source, target)  # already a link to source: renaming it over would do nothing
    atomic_write_text(source, "two")
    assert (source.read_text(), target.read_text()) == ("two", "one")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["previous", "state"]


def test_loading_a_non_run_directory_says_so(tmp_path):
    with pytest.raises(RunFileError, match="not a run directory"):
        Run.load(tmp_path)
    with pytest.raises(RunFileError, match="no such run directory"):
        Run.load(tmp_path / "missing")
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(RunFileError, match="not valid JSON"):
        Run.load(tmp_path)


def test_existing_run_is_not_overwritten_without_force(trained_run):
    from interp.errors import UserError

    before = (trained_run / "run.json").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        RunWriter.create(trained_run, small_config(), torch.arange(3), torch.arange(3))
    assert (trained_run / "run.json").read_bytes() == before
