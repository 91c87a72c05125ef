"""The run directory: the only module that knows the on-disk format.

    RUN/
      run.json                       resolved config + versions + created time
      split.safetensors              train/test indices (+ the data of generated data sets)
      metrics.jsonl                  append-only, one JSON object per evaluation
      checkpoints/EPOCH.safetensors  model weights (epoch zero-padded so names sort)
      resume/state.safetensors       latest weights + optimiser + RNG state for --resume
      analysis/                      written by interp.analyze

Tensors are stored with safetensors only: loading never unpickles anything. Every write is
atomic (temp file in the same directory, flush + fsync, rename), so a run killed at any
instant stays loadable; a torn last line of metrics.jsonl is ignored when reading. Metrics
rows are appended without an fsync each and made durable before every resume state.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from interp.config import ConfigError, RunConfig
from interp.errors import UserError

FORMAT_VERSION = 1
EPOCH_DIGITS = 7
RUN_FILE = "run.json"
SPLIT_FILE = "split.safetensors"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
RESUME_FILE = Path("resume") / "state.safetensors"
ANALYSIS_DIR = "analysis"
DATA_PREFIX = "data/"


class RunFileError(UserError):
    """A run directory or one of its files is missing, corrupt or not what it claims."""


# ---------------------------------------------------------------------------------------------
# Atomic file primitives


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _fsync(path: Path) -> None:
    """Flush a file's (or a directory's entries') written data to disk; nothing if missing."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_tensors(path: Path, tensors: Mapping[str, torch.Tensor],
                 metadata: Mapping[str, str] | None = None) -> None:
    """Atomically write a safetensors file (tensors moved to CPU, made contiguous)."""
    from safetensors.torch import save

    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, save(cpu, metadata=dict(metadata or {})))


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file: (tensors, metadata). Never unpickles.

    Raises RunFileError naming the file if it is missing, truncated or not safetensors.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as err:  # safetensors raises several types for damaged files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RunFileError(f"{path}: not a valid safetensors file ({reason}); it is damaged "
                           "or was not written by interp") from None
    return tensors, metadata


def read_json(path: Path) -> Any:
    """Parse a JSON file; RunFileError if missing or invalid."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunFileError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFileError(f"{path}: not valid JSON ({err})") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines file, dropping a torn (incomplete or unparsable) last line."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    rows = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            if number >= len(lines) - 2:  # the last line (with or without its newline): torn
                break
            raise RunFileError(f"{path}: line {number + 1} is not valid JSON") from None
    return rows


# ---------------------------------------------------------------------------------------------
# Layout helpers


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"{epoch:0{EPOCH_DIGITS}d}.safetensors"


def list_checkpoint_epochs(run_dir: Path) -> list[int]:
    """Epochs with a checkpoint file, ascending (temp files from a kill are ignored)."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    return sorted(int(p.stem) for p in directory.glob("*.safetensors") if p.stem.isdigit())


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
# Writing a run


class RunWriter:
    """Writes one run directory; used by the trainer."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, path: Path, config: RunConfig, train_idx: torch.Tensor,
               test_idx: torch.Tensor, *, force: bool = False,
               runtime: Mapping[str, Any] | None = None,
               stored: Mapping[str, torch.Tensor] | None = None) -> RunWriter:
        """Start a new run directory. Refuses to touch an existing run unless ``force``.

        ``stored``: the tensors of a randomly generated data set (``Task.stored``), kept in
        split.safetensors so that ``Run.task()`` returns exactly the trained data.
        """
        path = Path(path)
        cls.check_can_create(path, force=force)
        if force and path.is_dir():
            for name in (RUN_FILE, SPLIT_FILE, METRICS_FILE):
                (path / name).unlink(missing_ok=True)
            for name in (CHECKPOINT_DIR, "resume", ANALYSIS_DIR):
                shutil.rmtree(path / name, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        writer = cls(path)
        data = {f"{DATA_PREFIX}{k}": v for k, v in (stored or {}).items()}
        save_tensors(path / SPLIT_FILE, {"train_idx": train_idx, "test_idx": test_idx, **data},
                     {"format": str(FORMAT_VERSION)})
        record = {
            "format": FORMAT_VERSION,
            "config": config.to_dict(),
            "versions": versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "runtime": dict(runtime or {}),
        }
        atomic_write_text(path / RUN_FILE, json.dumps(record, indent=2) + "\n")
        return writer

    @staticmethod
    def check_can_create(path: Path, *, force: bool = False) -> None:
        """UserError unless ``create`` may write a run at ``path`` (it writes nothing)."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise UserError(f"--out {path} is a file, not a directory")
        if is_run_dir(path) and not force:
            raise UserError(f"{path} already holds a run; pass --resume to continue it or "
                            "--force to replace it")
        if path.is_dir() and not is_run_dir(path) and any(path.iterdir()) and not force:
            raise UserError(f"{path} is a non-empty directory that is not a run; choose "
                            "another --out or pass --force")

    @classmethod
    def reopen(cls, path: Path, config: RunConfig | None) -> tuple[RunWriter, RunConfig]:
        """Open an existing run to resume it; ``config``, if given, must equal the stored one."""
        run = Run.load(path)
        if config is not None and config.to_dict() != run.config.to_dict():
            differing = _differing_keys(config.to_dict(), run.config.to_dict())
            raise UserError(f"{path} holds a different run (config differs in "
                            f"{', '.join(differing)}); drop the config options to resume it, "
                            "or pass --force to replace it")
        return cls(path), run.config

    def append_metrics(self, row: Mapping[str, Any]) -> None:
        """Append one evaluation row to metrics.jsonl.

        The row reaches the operating system at once (it survives the process being
        killed); it reaches the disk at the next ``save_resume_state``, which fsyncs the
        metrics first, so a resume state on disk never points past rows that were lost.
        Rows after it are recomputed on resume anyway, so fsyncing each row (milliseconds,
        a sizeable part of an epoch of the small models) buys nothing.
        """
        with open(self.path / METRICS_FILE, "a") as handle:
            handle.write(json.dumps(dict(row)) + "\n")

    def truncate_metrics(self, before_epoch: int) -> None:
        """Keep only rows with epoch < ``before_epoch`` (dropping a torn last line too)."""
        rows = [r for r in read_jsonl(self.path / METRICS_FILE) if r["epoch"] < before_epoch]
        atomic_write_text(self.path / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in rows))

    def save_checkpoint(self, epoch: int, state_dict: Mapping[str, torch.Tensor]) -> None:
        save_tensors(checkpoint_path(self.path, epoch), state_dict,
                     {"epoch": str(epoch), "format": str(FORMAT_VERSION)})

    def save_resume_state(self, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
                          ) -> None:
        """Atomically replace the resume state, after making the metrics so far durable."""
        _fsync(self.path / METRICS_FILE)
        save_tensors(self.path / RESUME_FILE, tensors, {"meta": json.dumps(dict(meta))})

    def load_resume_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The latest resume state, or None if the run never saved one."""
        if not (self.path / RESUME_FILE).is_file():
            return None
        tensors, metadata = load_tensors(self.path / RESUME_FILE)
        try:
            meta = json.loads(metadata["meta"])
        except (KeyError, json.JSONDecodeError):
            raise RunFileError(f"{self.path / RESUME_FILE}: resume state has no valid "
                               "metadata") from None
        return tensors, meta


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
        """Every evaluation as a pandas DataFrame (one row per evaluated epoch)."""
        import pandas as pd

        rows = read_jsonl(self.path / METRICS_FILE)
        frame = pd.DataFrame(rows)
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
        tensors = self._split_tensors()
        return tensors["train_idx"], tensors["test_idx"]

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

    def task(self):
        """The exact data and train/test split this run was trained on."""
        from interp.tasks import build_task

        task = build_task(self.config.task, self.config.model, stored=self.stored_data())
        train_idx, test_idx = self.split()
        if len(train_idx) + len(test_idx) != len(task.inputs):
            raise RunFileError(f"{self.path / SPLIT_FILE}: split covers "
                               f"{len(train_idx) + len(test_idx)} examples, the task has "
                               f"{len(task.inputs)}")
        return task.with_split(train_idx, test_idx)

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


class AnalysisStore:
    """Per-checkpoint analysis results and reports under ``RUN/analysis`` (or ``root``).

        analysis/NAME/EPOCH.json         scalars + the parameters they were computed with
        analysis/NAME/EPOCH.safetensors  tensors
        analysis/summary.json, analysis/report.html

    An entry is complete when its JSON exists (written after the tensors); entries whose
    recorded parameters differ from the current ones are stale and recomputed.
    """

    def __init__(self, root: Path):
        self.root = Path(root)

    def _paths(self, name: str, epoch: int) -> tuple[Path, Path]:
        stem = self.root / name / f"{epoch:0{EPOCH_DIGITS}d}"
        return stem.with_suffix(".json"), stem.with_suffix(".safetensors")

    def load(self, name: str, epoch: int, params: Mapping[str, Any] | None
             ) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
        """The cached (record, tensors) for ``epoch`` if complete and computed with ``params``
        (any parameters when ``params`` is None)."""
        json_path, tensor_path = self._paths(name, epoch)
        try:
            record = json.loads(json_path.read_text())
            if params is not None and record.get("params") != json.loads(json.dumps(params)):
                return None
            tensors, _ = load_tensors(tensor_path)
        except (FileNotFoundError, json.JSONDecodeError, RunFileError):
            return None
        return record, tensors

    def save(self, name: str, epoch: int, params: Mapping[str, Any],
             record: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
        json_path, tensor_path = self._paths(name, epoch)
        save_tensors(tensor_path, tensors, {"epoch": str(epoch)})
        full = {"epoch": epoch, "params": dict(params), **dict(record)}
        atomic_write_text(json_path, json.dumps(full, indent=1) + "\n")

    def write_json(self, filename: str, data: Any) -> Path:
        path = self.root / filename
        atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")
        return path

    def write_text(self, filename: str, text: str) -> Path:
        path = self.root / filename
        atomic_write_text(path, text)
        return path


def _json_default(value: Any) -> Any:
    if torch.is_tensor(value):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_weights_into(model: torch.nn.Module, weights: Mapping[str, torch.Tensor],
                      source: Path) -> None:
    """Copy ``weights`` into ``model``; RunFileError naming ``source`` on any mismatch."""
    check_weights(model.state_dict(), weights, source)
    with torch.no_grad():
        for key, param in model.state_dict(keep_vars=True).items():
            param.copy_(weights[key])


def check_weights(expected: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor],
                  source: Path) -> None:
    """RunFileError naming ``source`` unless ``weights`` has exactly ``expected``'s names
    and shapes."""
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise RunFileError(f"{source}: does not match the model (missing {missing[:3]}, "
                           f"unexpected {extra[:3]})")
    for key, value in weights.items():
        if value.shape != expected[key].shape:
            raise RunFileError(f"{source}: {key} has shape {tuple(value.shape)}, the model "
                               f"expects {tuple(expected[key].shape)}")


def _summarise(epochs: list[int]) -> str:
    if len(epochs) <= 6:
        return ", ".join(map(str, epochs)) or "none"
    return f"{epochs[0]}, {epochs[1]}, ..., {epochs[-1]} ({len(epochs)} in all)"
