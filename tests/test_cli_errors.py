"""Every command's failures are one line ``error: ...`` with exit status 2, no traceback and
no usage block, and leave what is on disk as it was (issue 10, items 4 and 6): argparse
mistakes, unusable devices, bad counts, outputs that cannot be written (checked before any
work), and real file-system errors (a full disk, a read-only file system) on a tmpfs."""

from __future__ import annotations

import errno
import importlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, run_cli, run_in_process, small_config

from interp.cli import ArgumentParser, check_output_dir, os_error_message, run_main
from interp.errors import UserError
from interp.runs import AnalysisStore, Run
from interp.train.loop import TrainOptions, resolve_device, train

LONG_NAME = "x" * 300  # over the 255 bytes a file name may have


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A small complete run (3 checkpoints) that the commands are pointed at."""
    path = tmp_path_factory.mktemp("trained") / "run"
    train(small_config(schedule={"epochs": 20, "checkpoint_every": 10}), path,
          TrainOptions(device="cpu", quiet=True))
    return path


def snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and directory (None) under ``roots``."""
    return {str(p): None if p.is_dir() else p.read_bytes()
            for root in roots for p in sorted(root.rglob("*"))}


def fill(text: str, names: dict[str, str]) -> str:
    """``text`` with each placeholder NAME (RUN, FILE, ...) replaced by ``names[NAME]``."""
    for name, value in names.items():
        text = text.replace(name, value)
    return text


def assert_one_line_error(result: subprocess.CompletedProcess, message: str,
                          warnings: bool = False) -> str:
    """The command failed with exit 2 and one stderr line ``error: ...`` holding
    ``message`` (besides ``warning: ...`` lines, if ``warnings``); returns that line."""
    lines = [line for line in result.stderr.strip().splitlines()
             if not (warnings and line.startswith("warning: "))]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "usage:" not in result.stderr
    assert message.lower() in lines[0].lower(), lines[0]
    return lines[0]


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")

# the commands (item 4) and argparse mistakes (item 6); RUN is a trained run, FILE a
# file of the user's, DIR an empty directory, TMP a scratch directory, LONG a name too long
CASES = [
    # argparse mistakes: one line, not the usage block
    (["interp.train", "--preset", "tiny", "--bogus"], "unrecognized arguments: --bogus"),
    (["interp.train", "--preset", "tiny", "--resume", "--force"],
     "argument --force: not allowed with argument --resume"),
    (["interp.analyze"], "the following arguments are required: run_dir"),
    (["interp.analyze", "RUN", "--every", "x"], "argument --every: invalid int value: 'x'"),
    (["interp.analyze", "RUN", "--only", "bogus"], "argument --only: invalid choice: 'bogus'"),
    (["interp.figures", "progress", "RUN"], "the following arguments are required: --out"),
    (["interp.analyze", "RUN", "--every"], "argument --every: expected one argument"),
    (["interp.figures", "alpha-sweep", "--alphas", "x"], "argument --alphas: invalid float"),
    (["interp.bench", "--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
    # counts
    (["interp.analyze", "RUN", "--every", "0"], "--every must be a positive integer, got 0"),
    (["interp.analyze", "RUN", "--every", "-1"], "--every must be a positive integer, got -1"),
    (["interp.analyze", "RUN", "--probes", "0"], "--probes must be at least 2, got 0"),
    (["interp.figures", "progress", "RUN", "--out", "TMP/figs", "--every", "0"],
     "unrecognized arguments: --every 0"),  # figure commands read: interp.analyze computes
    (["interp.figures", "gromov-norm", "--epochs", "0", "--out", "TMP/figs", "--runs-dir",
      "TMP/runs"], "--epochs must be a positive integer, got 0"),
    (["interp.figures", "committee-alpha", "--alphas", "0", "1", "--out", "TMP/figs",
      "--runs-dir", "TMP/runs"], "--alphas must be positive"),
    # devices
    (["interp.analyze", "RUN", "--device", "tpu"],
     "--device 'tpu' is not a device interp can use here"),
    pytest.param(["interp.analyze", "RUN", "--device", "cuda"],
                 "--device cuda: CUDA is not available here", marks=NO_CUDA),
    (["interp.analyze", "RUN", "--device", "meta"],
     "--device 'meta' is not a device interp can use here"),
    (["interp.train", "--preset", "tiny", "--device", "meta", "--out", "TMP/run", "--quiet"],
     "--device 'meta' is not a device interp can use here"),
    (["interp.train", "--preset", "tiny", "--device", "cuda:99", "--out", "TMP/run"],
     "--device cuda:99"),
    (["interp.figures", "gromov-norm", "--device", "meta", "--out", "TMP/figs", "--runs-dir",
      "TMP/runs"], "--device 'meta' is not a device interp can use here"),
    (["interp.bench", "--device", "meta", "--no-reference"], "--device must be cpu or cuda"),
    # outputs that are, or lie below, a file: refused before any work
    (["interp.analyze", "RUN", "--out", "FILE"], "FILE is a file, not a directory"),
    (["interp.analyze", "RUN", "--out", "FILE/sub"],
     "FILE/sub: FILE is a file, not a directory"),
    (["interp.figures", "progress", "RUN", "--out", "FILE"], "FILE is a file, not a directory"),
    (["interp.figures", "progress", "RUN", "--out", "FILE/sub"],
     "FILE/sub: FILE is a file, not a directory"),
    (["interp.figures", "lazy-rich", "RUN", "--out", "FILE"], "FILE is a file, not a directory"),
    (["interp.figures", "alpha-sweep", "--preset", "tiny", "--epochs", "2", "--alphas", "1",
      "--out", "FILE", "--runs-dir", "TMP/runs"], "FILE is a file, not a directory"),
    (["interp.figures", "alpha-sweep", "--preset", "tiny", "--epochs", "2", "--alphas", "1",
      "--out", "TMP/figs", "--runs-dir", "FILE"], "FILE is a file, not a directory"),
    (["interp.figures", "gromov-norm", "--out", "FILE/sub", "--runs-dir", "TMP/runs"],
     "FILE/sub: FILE is a file, not a directory"),
    (["interp.figures", "toy-rqi", "--out", "TMP/figs", "--runs-dir", "FILE/sub"],
     "FILE/sub: FILE is a file, not a directory"),
    (["interp.train", "--preset", "tiny", "--set", "schedule.epochs=2", "--out", "FILE/sub",
      "--quiet"], "FILE is a file, not a directory"),
    (["interp.train", "--preset", "tiny", "--set", "schedule.epochs=2", "--out", "FILE",
      "--quiet"], "FILE is a file, not a directory"),
    # a directory where a file is expected, a name too long for the file system
    (["interp.train", "--config", "DIR", "--out", "TMP/run"], "DIR: is a directory"),
    (["interp.train", "--preset", "tiny", "--sweep-file", "DIR", "--out", "TMP/sweep"],
     "DIR: is a directory"),
    (["interp.train", "--preset", "tiny", "--set", "schedule.epochs=2", "--out", "TMP/LONG",
      "--quiet"], "TMP/LONG: File name too long"),
    (["interp.analyze", "RUN", "--out", "TMP/LONG/sub"], "TMP/LONG/sub: File name too long"),
    (["interp.figures", "progress", "RUN", "--out", "TMP/LONG"], "TMP/LONG: File name too long"),
]


def _case_id(case) -> str:
    args = case.values[0] if hasattr(case, "values") else case[0]
    return " ".join(args).replace("interp.", "")


def _scratch(tmp_path: Path, trained_run: Path) -> dict[str, str]:
    user_file = tmp_path / "mine.txt"
    user_file.write_text("the user's own file\n")
    (tmp_path / "empty").mkdir()
    return {"RUN": str(trained_run), "FILE": str(user_file), "DIR": str(tmp_path / "empty"),
            "TMP": str(tmp_path), "LONG": LONG_NAME}


@pytest.mark.parametrize("args, message", CASES, ids=[_case_id(c) for c in CASES])
def test_command_fails_in_one_line_and_changes_nothing(trained_run, tmp_path, args, message):
    names = _scratch(tmp_path, trained_run)
    before = snapshot(trained_run.parent, tmp_path)
    result = run_in_process(*(fill(arg, names) for arg in args))
    assert_one_line_error(result, fill(message, names))
    assert snapshot(trained_run.parent, tmp_path) == before


@pytest.mark.parametrize("index", [0, 3, 10, 24, 35, 8], ids=lambda i: _case_id(CASES[i]))
def test_python_dash_m_prints_the_same_one_line(trained_run, tmp_path, index):
    """Each command's ``python -m`` entry point goes through run_main (a real process)."""
    args, message = CASES[index]
    names = _scratch(tmp_path, trained_run)
    assert_one_line_error(run_cli(*(fill(arg, names) for arg in args)), fill(message, names))


@pytest.mark.parametrize("args", [
    ["interp.analyze", "RUN"],
    ["interp.figures", "progress", "RUN", "--out", "TMP/figs"],
    ["interp.figures", "lazy-rich", "RUN", "--out", "TMP/figs"],
])
def test_analysis_that_is_a_file_is_refused_before_any_work(trained_run, tmp_path, args):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "analysis").write_text("the user's notes, not a directory\n")
    before = snapshot(tmp_path)
    result = run_in_process(*(fill(arg, {"RUN": str(run), "TMP": str(tmp_path)})
                              for arg in args))
    line = assert_one_line_error(result, f"{run / 'analysis'} is a file, not a directory")
    assert ("--out" if args[0] == "interp.analyze" else "--analysis DIR") in line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("module", [
    "interp.train.__main__", "interp.analyze", "interp.bench",
    *(f"interp.figures.cmd_{name}" for name in (
        "alpha_sweep", "committee_alpha", "gromov_norm", "hu_models", "lazy_rich", "progress",
        "toy_rqi")),
])
def test_help_prints_the_whole_description(module, capsys):
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    first_paragraph = importlib.import_module(module).__doc__.split("\n\n")[0]
    assert " ".join(first_paragraph.replace("``", "").split()) in shown
    assert "usage: python -m interp." in shown


def test_parser_mistake_is_a_user_error_naming_the_option():
    parser = ArgumentParser(prog="p")
    parser.add_argument("--every", type=int)
    with pytest.raises(UserError, match=r"^argument --every: invalid int value: 'x' "
                                         r"\(see --help\)$"):
        parser.parse_args(["--every", "x"])


@pytest.mark.parametrize("err, line", [
    (OSError(errno.ENOSPC, "No space left on device"),
     "No space left on device (free disk space, then rerun the command; a training run "
     "continues with --resume)"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/out/run"),
     "/mnt/out/run: Read-only file system (choose a writable --out)"),
    (PermissionError(errno.EACCES, "Permission denied", "/r/checkpoints/0000010.safetensors"),
     "/r/checkpoints/0000010.safetensors: Permission denied (check its permissions, or choose "
     "another --out)"),
    (OSError(errno.ENAMETOOLONG, "File name too long", "/o/" + "x" * 300),
     f"/o/{'x' * 300}: File name too long (use a shorter name: at most 255 bytes per name)"),
    (OSError(errno.EXDEV, "Invalid cross-device link", "/a/x", None, "/b/x"),
     "/a/x -> /b/x: Invalid cross-device link"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "conf"),
     "conf: Is a directory (a file was expected here: give the path of a file)"),
])
def test_file_system_error_message(err, line):
    assert os_error_message(err) == line


def test_file_in_the_way_is_named(tmp_path):
    (tmp_path / "f").write_text("x")
    err = NotADirectoryError(errno.ENOTDIR, "Not a directory", str(tmp_path / "f" / "a" / "b"))
    assert os_error_message(err) == (f"{tmp_path}/f/a/b: {tmp_path}/f is a file, not a "
                                     "directory (move that file away, or choose another path)")
    err = FileExistsError(errno.EEXIST, "File exists", str(tmp_path / "f"))  # from mkdir
    assert os_error_message(err) == (f"{tmp_path}/f is a file, not a directory (move that "
                                     "file away, or choose another path)")


def test_run_main_prints_os_errors_in_one_line(capsys):
    def main(argv):
        raise FileExistsError(errno.EEXIST, "File exists", "/x/analysis")

    assert run_main(main, []) == 2
    assert capsys.readouterr().err == ("error: /x/analysis: File exists (move it away, or "
                                       "choose another --out)\n")


def test_check_output_dir(tmp_path):
    (tmp_path / "f").write_text("x")
    check_output_dir(tmp_path)  # exists, writable
    check_output_dir(tmp_path / "new" / "deeper")  # can be made
    with pytest.raises(UserError, match=r"/f is a file, not a directory \(choose another --out"):
        check_output_dir(tmp_path / "f")
    with pytest.raises(UserError, match=r"/f/a/b: .*/f is a file, not a directory \(fix it\)"):
        check_output_dir(tmp_path / "f" / "a" / "b", "fix it")
    assert list(tmp_path.iterdir()) == [tmp_path / "f"]  # it created nothing


@pytest.mark.parametrize("name, message", [
    ("tpu", "'tpu' is not a device interp can use here; use one of: cpu"),
    ("meta", "'meta' is not a device"),
    ("cpu:0", "'cpu:0' is not a device"),
    ("cuda:-1", "'cuda:-1' is not a device"),
    ("cuda:99", "cuda:99"),
])
def test_resolve_device_refuses_what_this_machine_lacks(name, message):
    with pytest.raises(UserError, match=message):
        resolve_device(name)
    assert resolve_device("cpu") == torch.device("cpu")


# ---------------------------------------------------------------------------------------------
# Real file-system errors on a tmpfs in a private mount namespace (the mount dies with it)


def _can_mount_tmpfs() -> str | None:
    """None if ``unshare -rm`` can mount a tmpfs here, else why not."""
    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"cannot mount a tmpfs: {probe.stderr.strip()}"


MOUNT_PROBLEM = _can_mount_tmpfs()
needs_tmpfs = pytest.mark.skipif(MOUNT_PROBLEM is not None, reason=str(MOUNT_PROBLEM))


def in_tmpfs(mount: Path, keep: Path, script: list[list[str]], size_kb: int = 4096,
             read_only: bool = False) -> subprocess.CompletedProcess:
    """Mount a tmpfs of ``size_kb`` at ``mount``, run ``script`` (commands; ``python`` is this
    interpreter) there, copy what the tmpfs holds to ``keep``, and return the status of
    the last command. ``remount-ro``/``grow`` as a command remount it read-only/larger."""
    mount.mkdir(exist_ok=True)
    keep.mkdir(exist_ok=True)
    special = {"remount-ro": f"mount -o remount,ro {mount}",
               "grow": f"mount -o remount,size=65536k {mount}"}
    lines = [special.get(c[0]) or shlex.join([sys.executable if c[0] == "python" else c[0],
                                              *c[1:]]) for c in script]
    options = f"size={size_kb}k" + (",ro" if read_only else "")
    shell = (f"mount -t tmpfs -o {options} tmpfs {mount} || exit 99\n"
             + "\n".join(lines[:-1]) + f"\n{lines[-1]}\nrc=$?\ncp -a {mount}/. {keep}/\nexit $rc")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(["unshare", "-rm", "sh", "-c", shell], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=300)


def assert_run_intact(path: Path) -> Run:
    """The run loads, its metrics parse and every checkpoint there loads; no temp files."""
    run = Run.load(path)
    assert not run.metrics.empty
    for epoch in run.checkpoint_epochs:
        assert run.weights(epoch)
    assert not list(path.rglob("*.tmp")), list(path.rglob("*.tmp"))
    return run


@needs_tmpfs
def test_disk_full_while_training_is_one_line_and_resumable(tmp_path, config_file):
    mount, keep = tmp_path / "mnt", tmp_path / "keep"
    config = config_file(small_config(schedule={"epochs": 100, "checkpoint_every": 5}))
    train_ = ["python", "-m", "interp.train", "--config", str(config), "--out",
              str(mount / "run"), "--quiet", "--skip-resource-check"]  # fill the disk
    result = in_tmpfs(mount, keep, [train_], size_kb=384)  # 21 checkpoints need ~900k
    assert_one_line_error(result, "No space left on device", warnings=True)
    assert "--resume" in result.stderr
    run = assert_run_intact(keep / "run")
    assert 0 < len(run.checkpoint_epochs) < 21  # it filled the disk part way
    # the advice works: with space again, --resume finishes the run
    resumed = in_tmpfs(mount, keep, [["cp", "-a", f"{keep}/run", str(mount)], ["grow"],
                                     [*train_[:3], "--out", str(mount / "run"), "--resume",
                                      "--quiet"]], size_kb=384)
    assert resumed.returncode == 0, resumed.stderr
    assert assert_run_intact(keep / "run").is_complete


@needs_tmpfs
def test_disk_full_while_analysing_is_one_line_and_leaves_the_run_intact(trained_run, tmp_path):
    mount, keep = tmp_path / "mnt", tmp_path / "keep"
    size_kb = sum(p.stat().st_size for p in trained_run.rglob("*") if p.is_file()) // 1024
    result = in_tmpfs(mount, keep, [["cp", "-a", str(trained_run), str(mount)],
                                    ["python", "-m", "interp.analyze", str(mount / "run")]],
                      size_kb=size_kb + 512)
    assert_one_line_error(result, "No space left on device")
    run = assert_run_intact(keep / "run")
    before = snapshot(trained_run)
    assert {Path(p).relative_to(trained_run): data for p, data in before.items()} == {
        Path(p).relative_to(keep / "run"): data for p, data in snapshot(keep / "run").items()
        if "analysis" not in Path(p).relative_to(keep / "run").parts}
    store = AnalysisStore(keep / "run" / "analysis")
    cached = sorted(p for p in (keep / "run" / "analysis").rglob("*.json"))
    assert cached, "the disk should fill part way through the analysis"
    for entry in cached:  # what was cached before the disk filled is whole
        assert store.load(entry.parent.name, int(entry.stem), None) is not None
    assert run.checkpoint_epochs == [0, 10, 20]


@needs_tmpfs
def test_read_only_out_for_training(tmp_path):
    mount, keep = tmp_path / "mnt", tmp_path / "keep"
    result = in_tmpfs(mount, keep, [["python", "-m", "interp.train", "--preset", "tiny",
                                     "--set", "schedule.epochs=2", "--out",
                                     str(mount / "run"), "--quiet"]], read_only=True)
    line = assert_one_line_error(result, str(mount))
    assert "read-only" in line.lower() and "--out" in line
    assert not list(keep.iterdir())


@needs_tmpfs
@pytest.mark.parametrize("command, message", [
    (["interp.analyze", "MNT/run"],
     "MNT/run/analysis: MNT/run is on a read-only file system (write the analysis elsewhere "
     "with interp.analyze --out DIR)"),
    (["interp.analyze", "RUN", "--out", "MNT/analysis"],
     "MNT/analysis: MNT is on a read-only file system (choose another --out)"),
    (["interp.figures", "progress", "RUN", "--out", "MNT/figs"],
     "MNT/figs: MNT is on a read-only file system (choose another --out)"),
    (["interp.figures", "alpha-sweep", "--preset", "tiny", "--epochs", "2", "--alphas", "1",
      "--out", "MNT/figs", "--runs-dir", "TMP/runs"],
     "MNT/figs: MNT is on a read-only file system (choose another --out)"),
])
def test_read_only_outputs_are_refused_before_any_work(trained_run, tmp_path, command,
                                                       message):
    mount, keep = tmp_path / "mnt", tmp_path / "keep"
    names = {"MNT": str(mount), "RUN": str(trained_run), "TMP": str(tmp_path / "scratch")}
    before = snapshot(trained_run)
    result = in_tmpfs(mount, keep, [["cp", "-a", str(trained_run), str(mount)], ["remount-ro"],
                                    ["python", "-m", *(fill(arg, names) for arg in command)]])
    assert_one_line_error(result, fill(message, names))
    assert snapshot(trained_run) == before
    assert not (keep / "run" / "analysis").exists() and not (tmp_path / "scratch").exists()
