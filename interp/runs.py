"""The run directory: the only module that knows the on-disk format.

    RUN/
      run.json                       resolved config + versions + created time
      split.safetensors              train/test indices (+ the data of generated data sets)
      metrics.jsonl                  append-only, one JSON object per evaluation
      checkpoints/EPOCH.safetensors  model weights (epoch zero-padded so names sort)
      resume/state.safetensors       latest weights + optimiser + RNG state for --resume
      analysis/                      written by interp.analyze

A sweep directory (``python -m interp.sweep``) holds ``sweep.json`` and one run directory per
run: see "The sweep directory" below.

Tensors are stored with safetensors only: loading never unpickles anything. Every write is
atomic (temp file in the same directory, flush + fsync, rename), so a run killed at any
instant stays loadable; a torn last line of metrics.jsonl is ignored when reading. Metrics
rows are appended without an fsync each and made durable before every resume state.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from interp.config import ConfigError, RunConfig
from interp.errors import UserError, warn
from interp.files import (
    LOCK_FILE,
    DirectoryLock,
    atomic_copy,
    atomic_write_bytes,
    atomic_write_text,
    fsync_path,
    json_text,
    remove_stale_temp_files,
    temp_file_target,
)

FORMAT_VERSION = 1
EPOCH_DIGITS = 7
RUN_FILE = "run.json"
SPLIT_FILE = "split.safetensors"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
RESUME_FILE = Path("resume") / "state.safetensors"
PREVIOUS_RESUME_FILE = Path("resume") / "previous.safetensors"  # the state RESUME_FILE replaced
ANALYSIS_DIR = "analysis"
DATA_PREFIX = "data/"


class RunFileError(UserError):
    """A run directory or one of its files is missing, corrupt or not what it claims."""


# ---------------------------------------------------------------------------------------------
# Reading and writing files


def save_tensors(path: Path, tensors: Mapping[str, torch.Tensor],
                 metadata: Mapping[str, str] | None = None) -> None:
    """Atomically write a safetensors file (tensors moved to CPU, made contiguous)."""
    from safetensors.torch import save

    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, save(cpu, metadata=dict(metadata or {})))


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file: (tensors, metadata). Never unpickles.

    Raises RunFileError naming the file if it is missing, unreadable, truncated or not
    safetensors.
    """
    from safetensors.torch import load

    path = Path(path)
    _check_readable(path)
    data = path.read_bytes()  # not a memory map: a file replaced in place cannot crash us
    try:
        tensors = load(data)
        header_size = int.from_bytes(data[:8], "little")  # valid, since load() accepted it
        metadata = json.loads(data[8:8 + header_size]).get("__metadata__") or {}
    except Exception as err:  # safetensors raises several types for damaged files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RunFileError(f"{path}: not a valid safetensors file ({reason}); it is damaged "
                           "or was not written by interp") from None
    return tensors, metadata


def _check_readable(path: Path) -> None:
    """RunFileError saying why ``path`` cannot be read as a file (missing, a directory,
    permission denied, a device or pipe, larger than the memory free to read it into);
    nothing if it can."""
    from interp.resources import memory_available

    try:
        with open(path, "rb", opener=_nonblocking) as handle:
            status = os.fstat(handle.fileno())
    except FileNotFoundError:
        raise RunFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RunFileError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise RunFileError(f"{path}: permission denied; make it readable (chmod u+r) or run "
                           "as its owner") from None
    except OSError as err:
        raise RunFileError(f"{path}: cannot be read ({err.strerror})") from None
    if not stat.S_ISREG(status.st_mode):
        raise RunFileError(f"{path}: is not a regular file (a device, pipe or socket); it is "
                           "not what interp wrote")
    if status.st_size > memory_available() // 2:
        raise RunFileError(f"{path}: is {status.st_size / 1e9:.1f} GB, more than half the "
                           "memory free to read it; it is not what interp wrote")


def _nonblocking(path: str, flags: int) -> int:
    """open() without waiting on a pipe for a writer that never comes."""
    return os.open(path, flags | os.O_NONBLOCK)


def read_json(path: Path) -> Any:
    """Parse a JSON file; RunFileError if it is missing, unreadable or not valid JSON."""
    path = Path(path)
    _check_readable(path)
    try:
        return json.loads(path.read_bytes().decode())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else err
        raise RunFileError(f"{path}: not valid JSON ({reason})") from None


def read_jsonl(path: Path) -> list[Any]:
    """Parse a JSON-lines file, one value per line. A torn (unparsable) last line, which a
    kill mid-append leaves, is dropped silently; other unparsable lines are skipped with a
    warning naming them."""
    return [value for _, value in _numbered_jsonl(Path(path))]


def _numbered_jsonl(path: Path) -> list[tuple[int, Any]]:
    """(line number, value) for each parsable line of ``path`` (``read_jsonl``)."""
    if not path.exists():
        return []
    _check_readable(path)
    lines = path.read_bytes().split(b"\n")
    values, damaged = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            values.append((number, json.loads(line)))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            if number < len(lines) - 1:  # the last line (with or without its newline): torn
                damaged.append(number)
    if damaged:
        warn(f"{path}: skipped {_lines(damaged)} (not valid JSON)")
    return values


def read_metric_rows(path: Path) -> list[dict[str, Any]]:
    """The evaluation rows of a metrics.jsonl: JSON objects with a non-negative integer
    ``epoch``. Lines that are not (a damaged file) are skipped with a warning."""
    rows, bad = [], []
    for number, row in _numbered_jsonl(Path(path)):
        epoch = row.get("epoch") if isinstance(row, dict) else None
        if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0:
            rows.append(row)
        else:
            bad.append(number)
    if bad:
        warn(f"{path}: skipped {_lines(bad)} (not a JSON object with an integer epoch)")
    return rows


def _lines(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:5]))
    more = f" and {len(numbers) - 5} more" if len(numbers) > 5 else ""
    return f"line{'s' if len(numbers) > 1 else ''} {shown}{more}"


# ---------------------------------------------------------------------------------------------
# Layout helpers


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"{epoch:0{EPOCH_DIGITS}d}.safetensors"


def list_checkpoint_epochs(run_dir: Path) -> list[int]:
    """Epochs with a checkpoint file, ascending (temp files from a kill are ignored)."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    try:
        names = os.listdir(directory)
    except PermissionError:
        raise RunFileError(f"{directory}: permission denied; make it readable (chmod u+rx) "
                           "or run as its owner") from None
    return sorted(int(name.removesuffix(".safetensors")) for name in names
                  if _CHECKPOINT_NAME.match(name))


_CHECKPOINT_NAME = re.compile(r"^[0-9]+\.safetensors$")


def is_run_dir(path: Path) -> bool:
    return (Path(path) / RUN_FILE).is_file()


def find_run_dirs(path: Path) -> list[Path]:
    """``path`` itself if it is a run, else the runs directly inside it, sorted."""
    path = Path(path)
    if is_run_dir(path):
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if is_run_dir(p))


def versions() -> dict[str, str]:
    """Versions of the packages that determine a run's numbers."""
    from importlib.metadata import PackageNotFoundError, version

    import interp

    out = {"interp": interp.__version__, "torch": torch.__version__}
    try:
        out["transformer_lens"] = version("transformer-lens")
    except PackageNotFoundError:
        out["transformer_lens"] = "not installed"
    return out


# ---------------------------------------------------------------------------------------------
# What a run owns: the only files --force may remove

# Paths (relative to the run directory, "/"-separated) of everything the trainer and
# interp.analyze write into a run directory; a directory holding anything else is the user's.
# INCOMPLETE_FILE marks a run directory being made or replaced: written first, removed once
# run.json is in place, so that a kill in between leaves a directory the next run may take.
INCOMPLETE_FILE = ".incomplete"
_OWNED_DIRS = re.compile(r"^(checkpoints|resume|analysis|analysis/[a-z_]+)$")
_OWNED_FILES = re.compile(
    r"^(run\.json|split\.safetensors|metrics\.jsonl|\.lock|\.incomplete"
    r"|checkpoints/[0-9]+\.safetensors|resume/(state|previous)\.safetensors"
    r"|analysis/(\.lock|summary\.json|report\.html)"
    r"|analysis/[a-z_]+/[0-9]+\.(json|safetensors))$")
_ANALYSIS_FILES = re.compile(
    r"^(\.lock|summary\.json|report\.html|[a-z_]+/[0-9]+\.(json|safetensors))$")
MAX_LISTED = 5


def _is_owned(relative: str, pattern: re.Pattern) -> bool:
    """Whether ``pattern`` names the file ``relative`` or the one its temporary file (left
    by a kill) was to replace."""
    head, _, name = relative.rpartition("/")
    target = temp_file_target(name)
    if target is not None:
        relative = f"{head}/{target}" if head else target
    return bool(pattern.match(relative))


def _foreign(path: Path, files: re.Pattern, directories: re.Pattern) -> list[str]:
    """What in the directory ``path`` the ``files`` and ``directories`` patterns do not name
    (relative paths, sorted; a directory ends in "/" and is not entered): any symbolic link,
    and any file with other names elsewhere (a hard link)."""
    foreign = []
    for root, dirs, names in os.walk(path):
        base = Path(root).relative_to(path).as_posix()
        prefix = "" if base == "." else f"{base}/"
        for name in list(dirs):
            relative = prefix + name
            if os.path.islink(os.path.join(root, name)) or not directories.match(relative):
                foreign.append(relative + "/")
                dirs.remove(name)  # never descend into what is not the run's
        for name in names:
            relative, full = prefix + name, os.path.join(root, name)
            status = os.lstat(full)
            if (not stat.S_ISREG(status.st_mode) or status.st_nlink > 1
                    or not _is_owned(relative, files)):
                foreign.append(relative)
    return sorted(foreign)


def is_run_record(path: Path) -> bool:
    """Whether ``path`` (a run.json) holds what interp writes there: a JSON object with a
    format number and a config object."""
    try:
        record = read_json(path)
    except RunFileError:
        return False
    return (isinstance(record, dict) and isinstance(record.get("format"), int)
            and isinstance(record.get("config"), dict))


def foreign_entries(path: Path) -> list[str]:
    """What in the run directory ``path`` no run wrote (relative paths, sorted; see
    ``_foreign``). Without a run.json that interp wrote, or the mark of an unfinished run,
    the run files themselves count as foreign too (a user's own ``metrics.jsonl``): only the
    lock file is taken for granted. Empty for a run's own directory."""
    path = Path(path)
    foreign = _foreign(path, _OWNED_FILES, _OWNED_DIRS)
    if is_run_record(path / RUN_FILE) or (path / INCOMPLETE_FILE).is_file():
        return foreign
    return sorted({*foreign, *(e.name + ("/" if e.is_dir() else "") for e in path.iterdir()
                               if e.name != LOCK_FILE)})


def foreign_analysis_entries(root: Path) -> list[str]:
    """What in the analysis directory ``root`` interp.analyze did not write (as
    ``foreign_entries``): a user's summary.json in an --out is never overwritten."""
    return _foreign(Path(root), _ANALYSIS_FILES, re.compile(r"^[a-z_]+$"))


def listed(entries: list[str]) -> str:
    """The first ``MAX_LISTED`` of ``entries``, and how many more, for a one-line message."""
    shown = ", ".join(entries[:MAX_LISTED])
    return shown + (f" and {len(entries) - MAX_LISTED} more" if len(entries) > MAX_LISTED
                    else "")


def lock_analysis(root: Path) -> DirectoryLock:
    """Take the lock of an analysis directory (RUN/analysis, or interp.analyze's --out),
    creating it if needed, so that two analyses never write it at once (training may go on
    meanwhile: it writes elsewhere); then remove what killed analyses left half-written.
    UserError if the directory holds anything interp.analyze does not write."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lock = DirectoryLock.acquire(root, "analysed")
    foreign = foreign_analysis_entries(root)
    if foreign:
        lock.release()
        raise UserError(f"{root} holds files interp.analyze does not write "
                        f"({listed(foreign)}); give the analysis a directory of its own "
                        "(--out)")
    subdirectories = [p for p in root.iterdir() if p.is_dir()]
    for directory in (root, *subdirectories):
        prefix = "" if directory == root else f"{directory.name}/"
        remove_stale_temp_files(
            directory, lambda target, prefix=prefix: bool(_ANALYSIS_FILES.match(prefix + target)))
    return lock


# ---------------------------------------------------------------------------------------------
# Writing a run


class RunWriter:
    """Writes one run directory; used by the trainer. It holds the run's lock (an OS file
    lock on RUN/.lock) from ``create`` or ``reopen`` until ``close`` or the process's end, so
    two processes never write one run directory at once."""

    def __init__(self, path: Path, lock: DirectoryLock,
                 analysis_lock: DirectoryLock | None = None):
        self.path = Path(path)
        self.lock = lock
        self._analysis_lock = analysis_lock  # held from reserve() until the old run is gone

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def check_can_create(path: Path, *, force: bool = False) -> None:
        """UserError unless ``create`` may write a run at ``path`` (it writes nothing).

        ``path`` may be absent, empty (it may be a link to an empty directory, or a mount
        point), or hold an unfinished run (``INCOMPLETE_FILE``); with ``force``, also a run.
        Anything a run does not write is refused, named, whatever ``force`` says.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise UserError(f"--out {path} is a file, not a directory; choose another --out")
        if not path.is_dir() or not any(e.name != LOCK_FILE for e in path.iterdir()):
            return
        foreign = foreign_entries(path)
        if foreign and is_run_record(path / RUN_FILE):
            raise UserError(f"--force replaces only what a run wrote, and {path} also holds "
                            f"{listed(foreign)}; move those away or choose another --out")
        if foreign:
            raise UserError(f"{path} is a non-empty directory that is not a run (it holds "
                            f"{listed(foreign)}); choose another --out")
        if is_run_record(path / RUN_FILE) and not (path / INCOMPLETE_FILE).exists() and (
                not force):
            raise UserError(f"{path} already holds a run; pass --resume to continue it or "
                            "--force to replace it")

    @classmethod
    def reserve(cls, path: Path, *, force: bool = False) -> RunWriter:
        """Take the lock of ``path`` (created if absent) for a new run, with the lock of its
        analysis when a run there is to be replaced, after ``check_can_create``: nothing is
        written or removed yet (``create`` does). Reserving every run of a sweep first means
        that none is touched unless all can be."""
        path = Path(path)
        cls.check_can_create(path, force=force)
        path.mkdir(parents=True, exist_ok=True)
        lock = DirectoryLock.acquire(path)
        locks = [lock]
        try:
            cls.check_can_create(path, force=force)  # as it is now that we hold the lock
            if (path / ANALYSIS_DIR).is_dir():
                locks.append(DirectoryLock.acquire(path / ANALYSIS_DIR, "analysed"))
        except BaseException:
            for held in locks:
                held.release()
            raise
        return cls(path, lock, locks[1] if len(locks) > 1 else None)

    @classmethod
    def create(cls, path: Path, config: RunConfig, train_idx: torch.Tensor,
               test_idx: torch.Tensor, *, force: bool = False,
               runtime: Mapping[str, Any] | None = None,
               stored: Mapping[str, torch.Tensor] | None = None,
               reserved: RunWriter | None = None) -> RunWriter:
        """Start a new run directory at ``path``; returns its writer, holding the run's lock.

        ``reserved``: the writer ``reserve`` returned for ``path`` (else it is reserved
        here). The directory is marked unfinished first (``INCOMPLETE_FILE``), a run being
        replaced loses the files it wrote (run.json first), then split.safetensors and
        run.json are written and the mark removed: a kill at any instant leaves a directory
        that the next run given this --out takes over, with or without --force. ``stored``:
        the tensors of a randomly generated data set (``Task.stored``), kept in
        split.safetensors so that ``Run.task()`` returns exactly the trained data.
        """
        writer = reserved if reserved is not None else cls.reserve(path, force=force)
        try:
            if writer._analysis_lock is None and (writer.path / ANALYSIS_DIR).is_dir():
                writer._analysis_lock = DirectoryLock.acquire(writer.path / ANALYSIS_DIR,
                                                              "analysed")  # appeared since
            files = _new_run_files(config, train_idx, test_idx, runtime, stored)
            atomic_write_bytes(writer.path / INCOMPLETE_FILE, b"")
            _remove_run_files(writer.path)
            for name, data in files.items():  # run.json last: then it is a run
                atomic_write_bytes(writer.path / name, data)
            (writer.path / INCOMPLETE_FILE).unlink()
            fsync_path(writer.path)
        except BaseException:
            writer.close()
            raise
        writer._release_analysis()
        return writer

    def _release_analysis(self) -> None:
        if self._analysis_lock is not None:
            self._analysis_lock.release()
            self._analysis_lock = None

    def close(self) -> None:
        """Release the run's locks (the kernel also does when the process ends)."""
        self._release_analysis()
        self.lock.release()

    @classmethod
    def reopen(cls, path: Path, config: RunConfig | None) -> tuple[RunWriter, RunConfig]:
        """Open an existing run to resume it, taking its lock; ``config``, if given, must
        equal the stored one. Its layout is checked before anything is written, and
        temporary files of a killed writer are removed."""
        path = Path(path)
        if not is_run_dir(path):
            raise UserError(f"--resume: {path} holds no run to resume; drop --resume to "
                            "start one")
        lock = DirectoryLock.acquire(path)
        try:
            run = Run.load(path)
            if config is not None and config.to_dict() != run.config.to_dict():
                differing = _differing_keys(config.to_dict(), run.config.to_dict())
                raise UserError(f"{path} holds a different run (config differs in "
                                f"{', '.join(differing)}); drop the config options to resume "
                                "it, or pass --force to replace it")
            _check_layout(path)
            remove_stale_temp_files_of_run(path)
            (path / INCOMPLETE_FILE).unlink(missing_ok=True)  # a kill after run.json's write
        except BaseException:
            lock.release()
            raise
        return cls(path, lock), run.config

    def append_metrics(self, row: Mapping[str, Any]) -> None:
        """Append one evaluation row to metrics.jsonl (standard JSON: NaN as null).

        The row reaches the operating system at once (it survives the process being
        killed); it reaches the disk at the next ``save_resume_state``, which fsyncs the
        metrics first, so a resume state on disk never points past rows that were lost.
        Rows after it are recomputed on resume anyway, so fsyncing each row (milliseconds,
        a sizeable part of an epoch of the small models) buys nothing.
        """
        path = self.path / METRICS_FILE
        try:
            with open(path, "a") as handle:
                handle.write(json_text(dict(row)) + "\n")
        except OSError as err:  # a full disk names no file: name it
            raise OSError(err.errno, err.strerror, str(path)) from None

    def truncate_metrics(self, before_epoch: int) -> None:
        """Keep only rows with epoch < ``before_epoch`` (dropping a torn last line and rows
        that are not evaluation rows)."""
        rows = [r for r in read_metric_rows(self.path / METRICS_FILE) if r["epoch"] < before_epoch]
        atomic_write_text(self.path / METRICS_FILE, "".join(json_text(r) + "\n" for r in rows))

    def save_checkpoint(self, epoch: int, state_dict: Mapping[str, torch.Tensor]) -> None:
        save_tensors(checkpoint_path(self.path, epoch), state_dict,
                     {"epoch": str(epoch), "format": str(FORMAT_VERSION)})

    def save_resume_state(self, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
                          ) -> None:
        """Atomically replace the resume state, after making the metrics so far durable and
        keeping the state it replaces as the previous one (so that a stack killed while its
        runs' states were being written can step the runs already saved back to the others')."""
        fsync_path(self.path / METRICS_FILE)
        if (self.path / RESUME_FILE).is_file():
            atomic_copy(self.path / RESUME_FILE, self.path / PREVIOUS_RESUME_FILE)
        save_tensors(self.path / RESUME_FILE, tensors, {"meta": json_text(dict(meta))})

    def load_resume_state(self, previous: bool = False
                          ) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The latest resume state (the one before it if ``previous``), or None if the run
        never saved one."""
        path = self.path / (PREVIOUS_RESUME_FILE if previous else RESUME_FILE)
        if not path.is_file():
            return None
        tensors, metadata = load_tensors(path)
        try:
            meta = json.loads(metadata["meta"])
        except (KeyError, json.JSONDecodeError):
            meta = None
        if not isinstance(meta, dict):
            raise RunFileError(f"{path}: the resume state is damaged (its metadata is not a "
                               "JSON object); pass --force instead of --resume to start the "
                               "run again")
        return tensors, meta


def _new_run_files(config: RunConfig, train_idx: torch.Tensor, test_idx: torch.Tensor,
                   runtime: Mapping[str, Any] | None,
                   stored: Mapping[str, torch.Tensor] | None) -> dict[str, bytes]:
    """The files a new run starts with, name -> bytes, in writing order (run.json last)."""
    from safetensors.torch import save

    data = {f"{DATA_PREFIX}{k}": v.detach().cpu().contiguous() for k, v in (stored or {}).items()}
    split = save({"train_idx": train_idx.detach().cpu().contiguous(),
                  "test_idx": test_idx.detach().cpu().contiguous(), **data},
                 metadata={"format": str(FORMAT_VERSION)})
    record = {
        "format": FORMAT_VERSION,
        "config": config.to_dict(),
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runtime": dict(runtime or {}),
    }
    return {SPLIT_FILE: split, RUN_FILE: (json_text(record, indent=2) + "\n").encode()}


def _remove_run_files(path: Path) -> None:
    """Remove everything a run wrote in ``path`` (``foreign_entries`` must be empty), run.json
    first so that an interrupted removal never leaves a run that looks whole. The lock file
    stays; the caller holds it, and the analysis's lock if there is an analysis."""
    (path / RUN_FILE).unlink(missing_ok=True)
    fsync_path(path)
    for name in (SPLIT_FILE, METRICS_FILE):
        (path / name).unlink(missing_ok=True)
    for name in (CHECKPOINT_DIR, RESUME_FILE.parent.name, ANALYSIS_DIR):
        if (path / name).is_dir():
            shutil.rmtree(path / name)
    remove_stale_temp_files_of_run(path)
    fsync_path(path)


def remove_stale_temp_files_of_run(path: Path, subdirectories: tuple[str, ...] = (
        "", CHECKPOINT_DIR, RESUME_FILE.parent.name)) -> list[Path]:
    """Remove what writers killed mid-write left in the run ``path`` (in its top directory,
    checkpoints/ and resume/ by default): the temporary files of the run's own files only.
    The caller holds the lock of the directories concerned."""
    removed = []
    for sub in subdirectories:
        prefix = f"{sub}/" if sub else ""
        removed += remove_stale_temp_files(
            path / sub, lambda target, prefix=prefix: bool(_OWNED_FILES.match(prefix + target)))
    return removed


def _check_layout(path: Path) -> None:
    """RunFileError unless the run's directories and files are what they should be (a file
    where checkpoints/ belongs, a directory where metrics.jsonl does: a damaged run), so that
    resuming never writes into a run it then cannot continue."""
    expected = {CHECKPOINT_DIR: True, RESUME_FILE.parent.name: True, str(RESUME_FILE): False,
                str(PREVIOUS_RESUME_FILE): False,
                SPLIT_FILE: False, METRICS_FILE: False}
    for name, directory in expected.items():
        target = path / name
        if os.path.lexists(target) and target.is_dir() != directory:
            raise RunFileError(f"{target}: should be a {'directory' if directory else 'file'}; "
                               "the run is damaged: move it away, or pass --force to start "
                               "again")


def _differing_keys(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += _differing_keys(va, vb, f"{prefix}{key}.")
        elif va != vb:
            keys.append(f"{prefix}{key}")
    return keys


# ---------------------------------------------------------------------------------------------
# Reading a run


class Run:
    """A run directory, read-only: config, metrics, checkpoints, task and models.

    >>> run = Run.load("checkpoints/nanda-p113")
    >>> run.metrics.plot(x="epoch", y=["train_loss", "test_loss"], logy=True)
    >>> model = run.model(run.checkpoint_epochs[-1])   # a TransformerLens model
    """

    def __init__(self, path: Path, record: dict[str, Any], config: RunConfig):
        self.path = Path(path)
        self.record = record
        self.config = config

    @classmethod
    def load(cls, path: str | os.PathLike) -> Run:
        """Open a run directory; RunFileError if it is not one or its run.json is damaged."""
        path = Path(path)
        if not path.is_dir():
            raise RunFileError(f"{path}: no such run directory")
        if not is_run_dir(path):
            raise RunFileError(f"{path}: not a run directory (no {RUN_FILE})")
        record = read_json(path / RUN_FILE)
        if not isinstance(record, dict) or "config" not in record:
            raise RunFileError(f"{path / RUN_FILE}: has no config")
        try:
            config = RunConfig.from_dict(record["config"])
        except ConfigError as err:
            raise RunFileError(f"{path / RUN_FILE}: invalid config ({err})") from None
        return cls(path, record, config)

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}, preset={self.config.preset!r}, "
                f"checkpoints={len(self.checkpoint_epochs)})")

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def metrics(self):
        """Every evaluation as a pandas DataFrame (one row per evaluated epoch); values
        written as null (NaN or infinite, e.g. the losses of a diverged run) read as NaN."""
        import pandas as pd

        try:
            rows = read_metric_rows(self.path / METRICS_FILE)
        except RunFileError as err:
            warn(f"{err}; the run's metrics are left out")
            rows = []
        frame = pd.DataFrame(rows)
        for column in frame.columns:  # null (a NaN or infinite value) back to NaN
            numbers = pd.to_numeric(frame[column], errors="coerce")
            if numbers.notna().sum() == frame[column].notna().sum():
                frame[column] = numbers
        if not frame.empty:
            frame = frame.drop_duplicates("epoch", keep="last").sort_values("epoch")
            frame = frame.reset_index(drop=True)
        return frame

    @property
    def checkpoint_epochs(self) -> list[int]:
        return list_checkpoint_epochs(self.path)

    @property
    def is_complete(self) -> bool:
        """Whether the final epoch's checkpoint exists."""
        epochs = self.checkpoint_epochs
        return bool(epochs) and epochs[-1] >= self.config.schedule.epochs

    def checkpoint_file(self, epoch: int) -> Path:
        return checkpoint_path(self.path, epoch)

    def weights(self, epoch: int) -> dict[str, torch.Tensor]:
        """The state dict saved at ``epoch``; RunFileError if it is missing or corrupt."""
        if epoch not in self.checkpoint_epochs:
            raise RunFileError(f"{self.path}: no checkpoint at epoch {epoch}; available: "
                               f"{_summarise(self.checkpoint_epochs)}")
        tensors, _ = load_tensors(self.checkpoint_file(epoch))
        return tensors

    def split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(train indices, test indices): 1-D integer tensors (range and overlap are checked
        against the task by ``task()``)."""
        tensors = self._split_tensors()
        for name in ("train_idx", "test_idx"):
            index = tensors[name]
            if index.dim() != 1 or index.dtype not in (torch.int64, torch.int32):
                raise RunFileError(f"{self.path / SPLIT_FILE}: {name} must be a 1-D integer "
                                   f"tensor, it is {index.dtype} of shape {tuple(index.shape)}; "
                                   "the file is damaged")
        return tensors["train_idx"].long(), tensors["test_idx"].long()

    def stored_data(self) -> dict[str, torch.Tensor] | None:
        """The generated data set kept with the split (None for deterministic tasks)."""
        tensors = self._split_tensors()
        data = {k.removeprefix(DATA_PREFIX): v for k, v in tensors.items()
                if k.startswith(DATA_PREFIX)}
        return data or None

    def _split_tensors(self) -> dict[str, torch.Tensor]:
        tensors, _ = load_tensors(self.path / SPLIT_FILE)
        if not {"train_idx", "test_idx"} <= set(tensors):
            raise RunFileError(f"{self.path / SPLIT_FILE}: expected train_idx and test_idx")
        return tensors

    def landmarks(self):
        """The grokking landmarks of this run's metrics (``interp.analysis.curves``), read
        with the thresholds of its loss and the accuracy rule of its targets."""
        from interp.analysis.curves import landmarks

        return landmarks(self.metrics, self.config.objective.loss, self.task().target_type)

    def task(self):
        """The exact data and train/test split this run was trained on (its targets scaled by
        ``objective.label_scale``: every loss recomputed from it is the run's own)."""
        from interp.resources import check_task_fits
        from interp.tasks import build_task

        check_task_fits(self.config, str(self.path / RUN_FILE))
        task = build_task(self.config.task, self.config.model, stored=self.stored_data())
        train_idx, test_idx = self.split()
        _check_split(train_idx, test_idx, len(task.inputs), self.path / SPLIT_FILE)
        if len(train_idx) != len(task.train_idx):
            raise RunFileError(f"{self.path / SPLIT_FILE}: {len(train_idx)} training examples, "
                               f"where the run's config makes {len(task.train_idx)}; the file "
                               "is damaged or belongs to another run")
        return task.with_split(train_idx, test_idx).with_label_scale(
            self.config.objective.label_scale)

    def model(self, epoch: int | None = None, device: str | torch.device = "cpu",
              into: torch.nn.Module | None = None):
        """The model with the weights of ``epoch`` (default: the latest checkpoint).

        ``into``: a model of this run to load the weights into instead of building one.
        """
        from interp.models import build_model

        epochs = self.checkpoint_epochs
        if not epochs:
            raise RunFileError(f"{self.path}: has no checkpoints yet")
        epoch = epochs[-1] if epoch is None else epoch
        weights = self.weights(epoch)
        model = into if into is not None else build_model(self.config.model, self.task(),
                                                          device)
        load_weights_into(model, weights, source=self.checkpoint_file(epoch))
        model.eval()
        return model

    def iter_models(self, epochs: list[int] | None = None, device: str | torch.device = "cpu"
                    ) -> Iterator[tuple[int, torch.nn.Module]]:
        """(epoch, model) for each checkpoint, reusing one model object (one in memory)."""
        model = None
        for epoch in self.checkpoint_epochs if epochs is None else epochs:
            model = self.model(epoch, device, into=model)
            yield epoch, model


def _check_split(train_idx: torch.Tensor, test_idx: torch.Tensor, n: int, source: Path
                 ) -> None:
    """RunFileError naming ``source`` unless the indices split range(n) into a non-empty
    training set and a test set: each index once, none out of range."""
    both = torch.cat([train_idx, test_idx])
    problem = None
    if len(train_idx) == 0:
        problem = "the training set is empty"
    elif len(both) and (both.min() < 0 or both.max() >= n):
        problem = f"indices lie outside 0..{n - 1}"
    elif len(both) != n or len(torch.unique(both)) != n:
        problem = (f"the indices do not cover the task's {n} examples once each "
                   f"({len(both)} indices, {len(torch.unique(both))} distinct)")
    if problem:
        raise RunFileError(f"{source}: {problem}; the file is damaged")


class AnalysisStore:
    """Per-checkpoint analysis results and reports under ``RUN/analysis`` (or ``root``).

        analysis/NAME/EPOCH.json         scalars + the parameters they were computed with
        analysis/NAME/EPOCH.safetensors  tensors
        analysis/summary.json, analysis/report.html

    An entry is complete when its JSON exists (written after the tensors); entries whose
    recorded parameters differ from the current ones are stale and recomputed. A damaged
    entry makes ``load`` raise RunFileError; ``interp.analyzers`` warn and recompute it.
    """

    def __init__(self, root: Path):
        self.root = Path(root)

    def holds(self, name: str) -> bool:
        """Whether analysis ``name`` has cached anything here."""
        return (self.root / name).is_dir()

    def holds_entry(self, name: str, epoch: int) -> bool:
        """Whether analysis ``name`` has an entry (of any parameters) at ``epoch`` here."""
        return self._paths(name, epoch)[0].is_file()

    def _paths(self, name: str, epoch: int) -> tuple[Path, Path]:
        stem = self.root / name / f"{epoch:0{EPOCH_DIGITS}d}"
        return stem.with_suffix(".json"), stem.with_suffix(".safetensors")

    def load(self, name: str, epoch: int, params: Mapping[str, Any] | None,
             check: Callable[[dict[str, Any], dict[str, torch.Tensor]], str | None] | None = None
             ) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
        """The cached (record, tensors) for ``epoch`` if complete and computed with ``params``
        (any parameters when ``params`` is None); None if there is none or it is stale.

        RunFileError naming the file if the entry is there but damaged: its JSON unreadable
        or not this epoch's entry, its tensors missing, unreadable or another epoch's, or
        ``check(record, tensors)`` returns what is wrong with them (None: nothing).
        """
        json_path, tensor_path = self._paths(name, epoch)
        if not json_path.exists():
            return None
        record = read_json(json_path)
        problem = _entry_problem(record, epoch)
        if problem is not None:
            raise RunFileError(f"{json_path}: {problem}")
        if params is not None and record["params"] != json.loads(json.dumps(params)):
            return None
        tensors, metadata = load_tensors(tensor_path)
        if metadata.get("epoch") != str(epoch):
            raise RunFileError(f"{tensor_path}: holds the tensors of epoch "
                               f"{metadata.get('epoch')}, not of epoch {epoch}")
        problem = check(record, tensors) if check is not None else None
        if problem is not None:
            raise RunFileError(f"{json_path}: {problem}")
        return record, tensors

    def save(self, name: str, epoch: int, params: Mapping[str, Any],
             record: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
        json_path, tensor_path = self._paths(name, epoch)
        save_tensors(tensor_path, tensors, {"epoch": str(epoch)})
        full = {"epoch": epoch, "params": dict(params), **dict(record)}
        atomic_write_text(json_path, json.dumps(full, indent=1) + "\n")

    def write_json(self, filename: str, data: Any) -> Path:
        """Write ``data`` as standard JSON (NaN and infinities as null) to ROOT/filename."""
        path = self.root / filename
        atomic_write_text(path, json_text(data, indent=2) + "\n")
        return path

    def write_text(self, filename: str, text: str) -> Path:
        path = self.root / filename
        atomic_write_text(path, text)
        return path


def _entry_problem(record: Any, epoch: int) -> str | None:
    """What keeps ``record`` (a parsed analysis JSON) from being the entry of ``epoch``."""
    if not isinstance(record, dict):
        return "is not a JSON object (an analysis entry)"
    if record.get("epoch") != epoch:
        return f"is the entry of epoch {record.get('epoch')!r:.40}, not of epoch {epoch}"
    if not isinstance(record.get("params"), dict):
        return "has no params object (the parameters it was computed with)"
    return None


def load_weights_into(model: torch.nn.Module, weights: Mapping[str, torch.Tensor],
                      source: Path) -> None:
    """Copy ``weights`` into ``model``; RunFileError naming ``source`` on any mismatch."""
    check_weights(model.state_dict(), weights, source)
    with torch.no_grad():
        for key, param in model.state_dict(keep_vars=True).items():
            param.copy_(weights[key])


def check_weights(expected: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor],
                  source: Path) -> None:
    """RunFileError naming ``source`` unless ``weights`` has exactly ``expected``'s names,
    shapes and dtypes, and is not all zeros (no trained or initialised model is: such a
    file is damaged). Non-finite values pass: a diverged run is not a damaged file."""
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise RunFileError(f"{source}: does not match the model (missing {missing[:3]}, "
                           f"unexpected {extra[:3]})")
    for key, value in weights.items():
        if value.shape != expected[key].shape:
            raise RunFileError(f"{source}: {key} has shape {tuple(value.shape)}, the model "
                               f"expects {tuple(expected[key].shape)}")
        if value.dtype != expected[key].dtype:
            raise RunFileError(f"{source}: {key} has dtype {value.dtype}, the model expects "
                               f"{expected[key].dtype}; the file is damaged")
    if weights and not any(value.any() for value in weights.values()
                           if value.is_floating_point()):
        raise RunFileError(f"{source}: every weight is zero; the file is damaged")


def _summarise(epochs: list[int]) -> str:
    if len(epochs) <= 6:
        return ", ".join(map(str, epochs)) or "none"
    return f"{epochs[0]}, {epochs[1]}, ..., {epochs[-1]} ({len(epochs)} in all)"


# ---------------------------------------------------------------------------------------------
# The sweep directory (python -m interp.sweep)
#
#     SWEEP/
#       sweep.json    the spec and its resolved runs (SweepRecord), written before any run
#       .lock         held by the sweep process that writes SWEEP
#       RUN_NAME/     each run of the sweep: a normal run directory
#
# sweep.json (standard JSON):
#     {"format": 2,
#      "spec": {...},            the spec as given: its TOML parsed, as a JSON object
#      "source": "...",          the spec file's text
#      "axes": [{"key": "optim.lr", "log": true, "zip": false}, ...],    in the spec's order
#      "runs": [{"name": "optim.lr=0.0001_model.seed=0",                  in training order
#                "overrides": ["optim.lr=0.0001", "model.seed=0"],
#                "axes": {"optim.lr": 0.0001, "model.seed": 0}}, ...]}
#
# An axis's key is a config key (``section.name``) or ``preset``; "log": it is drawn on a log
# scale (given log-spaced, or as a list of positive values that ``is_log_spaced``, unless the
# spec said otherwise); "zip": it moves together with the spec's other zip axes: the zip
# axes are one axis of the sweep, named by the first of them, the others its companions
# (``SweepRecord.companions``). A run's config is its base (the spec's preset or config
# file, or the preset its "preset" axis names), then the spec's [set] overrides, then the
# run's "overrides"; its run.json holds the result. Format 1 marked "log" only the axes given
# log-spaced: read now, its axes whose values span LOG_SPAN or more are log too.

SWEEP_FILE = "sweep.json"
SWEEP_FORMAT = 2
LOG_SPAN = 100.0  # an axis of positive values spanning this ratio or more is drawn on a log scale
GEOMETRIC_TOLERANCE = 1.05  # successive ratios this close make a geometric progression


def is_log_spaced(values: Sequence[Any]) -> bool:
    """Whether ``values`` are all positive numbers spanning ``LOG_SPAN`` (two decades) or
    more, or at least three in a geometric progression (0.25, 0.5, 1, 2, 4): an axis of them
    is drawn on a log scale."""
    if not values or not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0
                             for v in values):
        return False
    ordered = sorted(set(values))
    ratios = [b / a for a, b in itertools.pairwise(ordered)]
    geometric = len(ratios) >= 2 and max(ratios) <= min(ratios) * GEOMETRIC_TOLERANCE
    return max(values) / min(values) >= LOG_SPAN or geometric


@dataclass(frozen=True)
class SweepAxis:
    """One axis of a sweep: the key it sets, whether it is log-spaced, whether it is zipped."""

    key: str
    log: bool = False
    zip: bool = False


@dataclass(frozen=True)
class SweepEntry:
    """One run of a sweep: its directory name, its overrides, its value on each axis."""

    name: str
    overrides: tuple[str, ...]
    axes: Mapping[str, Any]


@dataclass(frozen=True)
class SweepRecord:
    """What sweep.json holds (the schema above)."""

    spec: dict[str, Any]
    source: str
    axes: tuple[SweepAxis, ...]
    runs: tuple[SweepEntry, ...]

    @property
    def companions(self) -> dict[str, tuple[str, ...]]:
        """The zip axes as one axis: its first key -> the other zip keys (its companions,
        which move with it); empty when the sweep has no zip axes."""
        zipped = [axis.key for axis in self.axes if axis.zip]
        return {zipped[0]: tuple(zipped[1:])} if zipped else {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of sweep.json (tuples as lists)."""
        return json.loads(json_text({
            "format": SWEEP_FORMAT, "spec": self.spec, "source": self.source,
            "axes": [{"key": a.key, "log": a.log, "zip": a.zip} for a in self.axes],
            "runs": [{"name": r.name, "overrides": list(r.overrides), "axes": dict(r.axes)}
                     for r in self.runs]}))

    @classmethod
    def from_dict(cls, data: Any, source: Path) -> SweepRecord:
        """The record of a parsed sweep.json; RunFileError naming ``source`` unless it has
        the schema above."""
        problem = _sweep_problem(data)
        if problem is not None:
            raise RunFileError(f"{source}: {problem}; it is damaged or was not written by "
                               "python -m interp.sweep")
        runs = tuple(SweepEntry(r["name"], tuple(r["overrides"]), r["axes"])
                     for r in data["runs"])
        axes = tuple(SweepAxis(a["key"], a["log"] or (data["format"] < 2 and is_log_spaced(
            [r.axes[a["key"]] for r in runs])), a.get("zip", False)) for a in data["axes"])
        return cls(data["spec"], data["source"], axes, runs)


def _sweep_problem(data: Any) -> str | None:
    """What keeps ``data`` from being a sweep.json's object (None: nothing)."""
    if not isinstance(data, dict) or not isinstance(data.get("format"), int):
        return "is not a JSON object with a format number"
    if not isinstance(data.get("spec"), dict) or not isinstance(data.get("source"), str):
        return 'has no "spec" object or no "source" text'
    axes = data.get("axes")
    if not isinstance(axes, list) or not all(
            isinstance(a, dict) and isinstance(a.get("key"), str)
            and isinstance(a.get("log"), bool) and isinstance(a.get("zip", False), bool)
            for a in axes):
        return '"axes" is not a list of {"key": ..., "log": true|false, "zip": true|false}'
    keys = {a["key"] for a in axes}
    runs = data.get("runs")
    if not isinstance(runs, list) or not all(
            isinstance(r, dict) and isinstance(r.get("name"), str)
            and r["name"].strip(".") and "/" not in r["name"] and "\0" not in r["name"]
            and isinstance(r.get("overrides"), list)
            and all(isinstance(o, str) for o in r["overrides"])
            and isinstance(r.get("axes"), dict) and keys <= set(r["axes"]) for r in runs):
        return ('"runs" is not a list of {"name": ..., "overrides": [...], "axes": {...}} '
                "giving every axis")
    return None


def is_sweep_dir(path: Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def read_sweep(path: Path) -> SweepRecord:
    """The sweep.json of the sweep directory ``path``; RunFileError if it is missing or
    damaged."""
    file = Path(path) / SWEEP_FILE
    return SweepRecord.from_dict(read_json(file), file)


def sweep_differences(stored: SweepRecord, new: SweepRecord) -> list[str]:
    """Where ``new`` differs from ``stored``: the spec's keys (``grid.optim.lr``), else
    ``runs`` when the same spec resolves to other runs or axes; empty when they are one
    sweep (an axis drawn on another scale, e.g. read from format 1, is the same sweep)."""
    new = SweepRecord.from_dict(new.to_dict(), Path(SWEEP_FILE))  # as JSON stores it
    differing = _differing_keys(stored.spec, new.spec)
    if differing:
        return differing
    same_runs = [(r.name, r.overrides) for r in stored.runs] == [
        (r.name, r.overrides) for r in new.runs]
    same_axes = [(a.key, a.zip) for a in stored.axes] == [(a.key, a.zip) for a in new.axes]
    return [] if same_runs and same_axes else ["runs"]


def check_sweep_dir(path: Path, record: SweepRecord, *, force: bool = False,
                    option: str = "--out") -> SweepRecord | None:
    """The sweep ``path`` holds (None when it is absent or empty); UserError, writing
    nothing, if ``path`` is a run or a file, holds anything but a sweep, or holds a sweep
    other than ``record`` (allowed with ``force``: the new spec then replaces it).
    ``option``: the command's option that names ``path``, in messages."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} is a file, not a directory; choose another {option}")
    if is_run_dir(path):
        raise UserError(f"{option} {path} holds a single run; give the sweep a directory of "
                        "its own")
    if not path.is_dir():
        return None
    if not is_sweep_dir(path):
        entries = sorted(e.name for e in path.iterdir() if e.name != LOCK_FILE
                         and temp_file_target(e.name) != SWEEP_FILE)
        if entries:
            raise UserError(f"{path} is a non-empty directory that holds no sweep (no "
                            f"{SWEEP_FILE}; it holds {listed(entries)}); choose another "
                            f"{option}")
        return None
    stored = read_sweep(path)
    differing = sweep_differences(stored, record)
    if differing and not force:
        raise UserError(f"{path} holds a different sweep (its spec differs in "
                        f"{', '.join(differing[:MAX_LISTED])}); pass --force to replace it "
                        "with this one (runs of equal config are kept), or choose another "
                        f"{option}")
    return stored


def open_sweep_dir(path: Path, record: SweepRecord, *, force: bool = False,
                   option: str = "--out") -> tuple[DirectoryLock, SweepRecord | None]:
    """Lock the sweep directory ``path`` (made if absent) for ``record`` and write its
    sweep.json unless it already holds this sweep; returns the lock and the sweep it held
    before (None if none). Refuses as ``check_sweep_dir`` does, and when another process
    holds the lock."""
    path = Path(path)
    check_sweep_dir(path, record, force=force, option=option)
    path.mkdir(parents=True, exist_ok=True)
    lock = DirectoryLock.acquire(path)
    try:
        stored = check_sweep_dir(path, record, force=force, option=option)  # now that it is ours
        remove_stale_temp_files(path, lambda target: target == SWEEP_FILE)
        if stored is None or stored.to_dict() != record.to_dict():
            atomic_write_text(path / SWEEP_FILE, json_text(record.to_dict(), indent=1) + "\n")
    except BaseException:
        lock.release()
        raise
    return lock, stored
