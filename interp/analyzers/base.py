"""What every analyzer shares: loading checkpoints one at a time, and per-checkpoint caching.

An analyzer turns a run's checkpoints into a table of measures (one row per checkpoint),
the final checkpoint's tensors for figures, and a few summary entries. Results are cached
per checkpoint in the run's ``AnalysisStore`` under the analyzer's name, keyed by the
parameters they depend on, so a second ``interp.analyze`` computes only what is new.
Checkpoints still to compute are handed to the analyzer in groups (``cached_points``), so
an analyzer that can evaluate several checkpoints at once (stacked weights) does.

Nothing a run holds stops an analysis: a damaged checkpoint is skipped, one with NaN or
infinite weights (a diverged run) is marked diverged and left out, each with one warning;
a cached entry that is not what its analyzer wrote (its ``Layout``) is recomputed, with one
warning, and overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from interp.errors import warn

if TYPE_CHECKING:
    from interp.analysis.llc import SGLDOverrides
    from interp.analysis.sharpness import SharpnessOverrides

Record = dict[str, Any]
Tensors = dict[str, torch.Tensor]


Field = Callable[[Any], str | None]  # what is wrong with a record's value, or None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)  # NaN included


def number(value: Any) -> str | None:
    """A ``Field``: a JSON number (NaN and infinities included; not a bool)."""
    return None if _is_number(value) else "is not a number"


def numbers(*required: str) -> Field:
    """A ``Field``: a JSON object of numbers holding at least the keys ``required``."""
    def problem(value: Any) -> str | None:
        if not isinstance(value, dict):
            return "is not an object"
        missing = [key for key in required if key not in value]
        if missing:
            return f"lacks {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
        wrong = [key for key, item in value.items() if not _is_number(item)]
        return f"has {wrong[0]!r:.40} that is not a number" if wrong else None

    return problem


def frequencies(p: int) -> Field:
    """A ``Field``: a JSON list of Fourier frequencies of Z_p, each in 1..p // 2."""
    def problem(value: Any) -> str | None:
        if isinstance(value, list) and all(
                isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= p // 2
                for k in value):
            return None
        return f"is not a list of frequencies in 1..{p // 2}"

    return problem


@dataclass(frozen=True)
class Layout:
    """What an analyzer's cached entry at one checkpoint holds: record fields (name ->
    ``Field``) and tensors (name -> shape, None for a size that may vary), floating-point
    unless named in ``integer`` (int64)."""

    fields: Mapping[str, Field]
    tensors: Mapping[str, tuple[int | None, ...]] = field(default_factory=dict)
    integer: frozenset[str] = frozenset()

    def problem(self, record: Record, tensors: Tensors) -> str | None:
        """What in (record, tensors) differs from this layout, in a few words; None if
        nothing does."""
        for name, field_problem in self.fields.items():
            if name not in record:
                return f"has no {name}"
            problem = field_problem(record[name])
            if problem is not None:
                return f"{name} {problem}"
        for name, shape in self.tensors.items():
            tensor = tensors.get(name)
            if tensor is None:
                return f"its tensors have no {name}"
            integer = name in self.integer
            if (tensor.dtype != torch.int64) if integer else not tensor.is_floating_point():
                return (f"tensor {name} has dtype {tensor.dtype}, expected "
                        f"{'int64' if integer else 'floating point'}")
            if tensor.dim() != len(shape) or any(
                    n not in (None, size) for n, size in zip(shape, tensor.shape, strict=True)):
                return (f"tensor {name} has shape {tuple(tensor.shape)}, expected "
                        f"{tuple('any' if n is None else n for n in shape)}")
        return None


@dataclass(frozen=True)
class Options:
    """User choices that shape the analyses (``interp.analyze``'s flags)."""

    device: str = "cpu"
    probes: int = 256
    probe_seed: int = 0
    kernels: tuple[str, ...] = ("correct_class",)
    checkpoint_batch: int | None = None  # checkpoints evaluated together; see batch_size
    llc: SGLDOverrides = field(default_factory=lambda: _overrides("llc"))  # --llc-*
    sharpness: SharpnessOverrides = field(  # --sharpness-*
        default_factory=lambda: _overrides("sharpness"))


def _overrides(analysis: str):
    """No change to the defaults of ``analysis`` (``llc`` or ``sharpness``)."""
    if analysis == "llc":
        from interp.analysis.llc import SGLDOverrides

        return SGLDOverrides()
    from interp.analysis.sharpness import SharpnessOverrides

    return SharpnessOverrides()


@dataclass
class Context:
    """One run being analysed: the run, its task, the store, the loader, earlier results.

    ``skipped``: damaged checkpoints, ``diverged``: checkpoints with NaN or infinite
    weights, each epoch -> file, as found so far (both left out of every analysis).
    ``read_only``: take what the cache holds and compute nothing (``interp.load_analysis``,
    and the analyses ``interp.analyze --only`` leaves out); ``quiet``: no progress bars.
    """

    run: Any  # interp.runs.Run
    task: Any  # interp.tasks.Task
    store: Any  # interp.runs.AnalysisStore
    options: Options
    epochs: list[int]
    read_only: bool = False
    quiet: bool = False
    skipped: dict[int, str] = field(default_factory=dict)
    diverged: dict[int, str] = field(default_factory=dict)
    results: dict[str, AnalyzerResult] = field(default_factory=dict)
    _model: torch.nn.Module | None = None
    _warned: set[str] = field(default_factory=set)

    def model(self, epoch: int) -> torch.nn.Module | None:
        """The run's model with the weights of ``epoch`` (one object reloaded in place), or
        None, warned once, if that checkpoint is damaged or diverged."""
        from interp.runs import load_weights_into

        weights = self.weights(epoch)
        if weights is None:
            return None
        model = self.template()
        load_weights_into(model, weights, self.run.checkpoint_file(epoch))
        return model.eval()

    def weights(self, epoch: int) -> Tensors | None:
        """The state dict of ``epoch`` on the analysis device, checked against the run's
        model, or None, warned once, if that checkpoint is damaged (``skipped``) or holds
        NaN or infinite weights (``diverged``)."""
        from interp.runs import RunFileError, check_weights

        if epoch in self.skipped or epoch in self.diverged:
            return None
        path = self.run.checkpoint_file(epoch)
        try:
            weights = self.run.weights(epoch)
            check_weights(self.template().state_dict(), weights, path)
        except RunFileError as err:
            warn(f"skipping checkpoint: {err}")
            self.skipped[epoch] = str(path)
            return None
        non_finite = [name for name, w in weights.items()
                      if w.is_floating_point() and not bool(torch.isfinite(w).all())]
        if non_finite:
            more = f" and {len(non_finite) - 2} more" if len(non_finite) > 2 else ""
            warn(f"skipping diverged checkpoint: {path}: NaN or infinite values in "
                 f"{', '.join(non_finite[:2])}{more}")
            self.diverged[epoch] = str(path)
            return None
        return {name: w.to(self.options.device) for name, w in weights.items()}

    def cached(self, name: str, epoch: int, params: dict[str, Any] | None, layout: Layout
               ) -> tuple[Record, Tensors] | None:
        """Analyzer ``name``'s stored (record, tensors) at ``epoch`` computed with ``params``
        (any when None), or None: none stored, stale, or damaged (warned once per problem;
        the caller recomputes it, and saving overwrites it)."""
        from interp.runs import RunFileError

        try:
            entry = self.store.load(name, epoch, params, layout.problem)
        except RunFileError as err:
            if str(err) not in self._warned:
                self._warned.add(str(err))
                warn(f"recomputing a damaged analysis result: {err}")
            return None
        if entry is None and params is not None and self.store.holds_entry(name, epoch):
            if name not in self._warned:  # once per analysis
                self._warned.add(name)
                what = ("left out (python -m interp.analyze --only " + name + " recomputes "
                        "them)") if self.read_only else "recomputing them"
                warn(f"{self.store.root / name}: cached results computed by another version "
                     f"or with other options; {what}")
        return entry

    def template(self) -> torch.nn.Module:
        """A model of this run (whatever weights it last held), for names and shapes."""
        if self._model is None:
            from interp.models import build_model

            self._model = build_model(self.run.config.model, self.task, self.options.device)
        return self._model

    def batch_size(self, bytes_per_checkpoint: int) -> int:
        """How many checkpoints to evaluate together: ``options.checkpoint_batch`` if set;
        on CUDA as many as fit in half the free memory (one launch sequence for many
        checkpoints); on CPU one, since stacking measured no faster there and takes more
        memory."""
        if self.options.checkpoint_batch is not None:
            return self.options.checkpoint_batch
        device = torch.device(self.options.device)
        if device.type != "cuda":
            return 1
        return max(1, torch.cuda.mem_get_info(device)[0] // 2 // bytes_per_checkpoint)


@dataclass
class AnalyzerResult:
    """What every analyzer gives over a run: a row of measures per analysed checkpoint, its
    section of summary.json, and how many checkpoints it computed now (the rest were read).
    Each analyzer's subclass adds its final results as typed fields."""

    measures: pd.DataFrame
    summary: dict[str, Any]
    computed: int


Compute = Callable[[int, torch.nn.Module], tuple[Record, Tensors]]
ComputeBatch = Callable[[list[int]], dict[int, tuple[Record, Tensors]]]


def per_model(context: Context, compute: Compute) -> ComputeBatch:
    """A batch computation that loads each checkpoint's model in turn and applies
    ``compute(epoch, model)``; damaged and diverged checkpoints are left out."""
    def compute_batch(epochs: list[int]) -> dict[int, tuple[Record, Tensors]]:
        results = {}
        for epoch in epochs:
            model = context.model(epoch)
            if model is not None:
                results[epoch] = compute(epoch, model)
        return results

    return compute_batch


def cached_points(context: Context, name: str, params: dict[str, Any], epochs: list[int],
                  compute: Compute | None = None, *, layout: Callable[[int], Layout],
                  compute_batch: ComputeBatch | None = None, batch_size: int = 1
                  ) -> tuple[list[tuple[int, Record, Tensors]], int]:
    """(epoch, record, tensors) for each of ``epochs``: from the cache when it was computed
    with ``params`` and holds ``layout(epoch)``, else computed (then cached): by
    ``compute(epoch, model)``, or by ``compute_batch(epochs)`` on up to ``batch_size``
    checkpoints at a time, which returns the results by epoch and leaves damaged and
    diverged checkpoints out. Those are left out of the points. Returns the points and how
    many were computed now."""
    from tqdm.auto import tqdm

    if compute_batch is None:
        compute_batch = per_model(context, compute)
    results = {epoch: context.cached(name, epoch, params, layout(epoch)) for epoch in epochs}
    missing = [] if context.read_only else [e for e, cached in results.items() if cached is None]
    computed = 0
    with tqdm(total=len(missing), desc=f"{context.run.name}: {name}", unit="checkpoint",
              disable=True if context.quiet or not missing else None,  # None: on a terminal
              leave=False) as bar:
        for start in range(0, len(missing), batch_size):
            chunk = missing[start:start + batch_size]
            for epoch, (record, tensors) in compute_batch(chunk).items():
                context.store.save(name, epoch, params, record, tensors)
                # as a later call reads it
                results[epoch] = context.cached(name, epoch, params, layout(epoch))
                computed += 1
            bar.update(len(chunk))
    return [(epoch, *cached) for epoch, cached in results.items() if cached is not None], computed
