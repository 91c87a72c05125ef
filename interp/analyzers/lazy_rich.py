"""Lazy-versus-rich diagnostics over a run (Kumar et al. 2024), cached per checkpoint.

Works on every model: the measures see the run's own trained output (centred and
alpha-scaled when it was) through ``interp.train.objective``. The epoch-0 entry also stores
K_0 and the activations at initialisation, which every later checkpoint is compared with.

The kernel distance, alignment, CKA and eigenvector overlap are read on a seeded probe set
from the test split, and depend on its size, not only through noise: on ``tiny`` the
correct-class kernel distance at epoch 61 is 0.54 on 256 probes and 0.33-0.42 on four
different sets of 64 (which stay below 0.5 up to epoch 250), because the Gram matrix's
diagonal (per-example gradient norms, which move little) holds 37% of |K_0|_F^2
with 64 probes and 15% with 256, while the off-diagonal distance agrees (0.65 and 0.67).
So the summary states the probe count (``probes_used``) beside its landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from interp.analyzers.base import AnalyzerResult, Context, Layout, cached_points, numbers
from interp.errors import warn

NAME = "lazy_rich"
VERSION = 1
HIDDEN_HOOKS = ("hook_post", "hook_resid_post", "hook_hidden", "hook_sum")


def skip_reason(run) -> str | None:
    """None: the diagnostics apply to every run."""
    return None


def _check_jacobian_fits(n_probes: int, weights: dict, requested: int) -> None:
    """UserError unless the NTK's Jacobian (one output's [probes, weights], float32) fits in
    half the free memory (``interp.analysis.lazy_rich.ntk_gram``)."""
    from interp.errors import UserError
    from interp.resources import memory_available

    n_weights = sum(weight.numel() for weight in weights.values())
    need, available = 4 * n_probes * n_weights, memory_available()
    if need > available // 2:
        raise UserError(f"--probes {requested}: the NTK's Jacobian on {n_probes} probes of "
                        f"this model's {n_weights} weights needs about {need / 1e9:.1f} GB, more "
                        f"than half the {available / 1e9:.1f} GB available; lower --probes")


def hidden_hook_names(model) -> list[str]:
    """Hook points that carry hidden representations (MLP outputs, residual stream)."""
    return sorted(name for name in getattr(model, "hook_dict", {})
                  if name.endswith(HIDDEN_HOOKS))


def entry_layout(epoch: int, kinds: list[str], hooks: list[str], n_probes: int,
                 lazy_limit: bool) -> Layout:
    """What ``analyze`` caches at ``epoch``: the measures; at epoch 0 also K_0 per kernel
    kind and the activations per hook on the ``n_probes`` probes (and, in the lazy limit,
    the kernel-regression losses)."""
    measures = numbers("movement", "train_loss", "test_loss", "lin_train_loss",
                       "lin_test_loss", "lin_gap_train", "lin_gap_test",
                       *(f"{measure}/{kind}" for kind in kinds
                         for measure in ("kernel_distance", "alignment")),
                       *(f"cka/{hook}" for hook in hooks))
    if epoch != 0:
        return Layout({"measures": measures})
    regression = {"kernel_regression": numbers("train_loss", "test_loss")} if lazy_limit else {}
    return Layout({"measures": measures, **regression},
                  {**{f"kernel/{kind}": (n_probes, n_probes) for kind in kinds},
                   **{f"acts/{hook}": (n_probes, None) for hook in hooks}})


def kernel_regression_losses(objective, reference, data) -> dict[str, float]:
    """The lazy limit of an MSE run with one output (Lee et al. 2019; Kumar et al. sec. 4.1):
    kernel regression with K_0 (the NTK at theta_0) on the whole training set, its loss on
    the training set and on the probes (test inputs)."""
    import torch

    from interp.analysis.lazy_rich import kernel_regression, ntk_gram

    n = len(data.train_inputs)
    inputs = torch.cat([data.train_inputs, data.probe_inputs])
    kernel = ntk_gram(objective, reference.params, inputs, None, ["trace"])["trace"]
    with torch.no_grad():
        initial = objective(reference.params, inputs).squeeze(-1)
    predictions = kernel_regression(kernel[:n, :n], kernel[n:, :n], data.train_targets.squeeze(-1),
                                    initial[:n], initial[n:])
    train_fit = kernel_regression(kernel[:n, :n], kernel[:n, :n],
                                  data.train_targets.squeeze(-1), initial[:n], initial[:n])
    shape = data.probe_targets.shape
    return {"train_loss": float(data.loss(train_fit.view(data.train_targets.shape),
                                          data.train_targets)),
            "test_loss": float(data.loss(predictions.view(shape), data.probe_targets))}


@dataclass(kw_only=True)
class LazyRichResult(AnalyzerResult):
    """Kumar et al.'s diagnostics over a run: ``measures`` holds a row per checkpoint
    (movement, losses and their linearisation gaps, kernel distance and alignment per kernel
    kind, CKA per hook, NTK-eigenvector overlap per key frequency); the landmarks read from
    them, and the probe count they depend on."""

    probes: int  # probe inputs used (the test split may hold fewer than asked for)
    kernels: list[str]
    key_frequencies: list[int]
    linearisation_gap_above_half: int | None
    kernel_distance_above_half: dict[str, int | None]  # per kernel kind
    kernel_regression: dict[str, float] | None  # the lazy limit's losses (MSE, one output)


def analyze(context: Context) -> LazyRichResult | None:
    """Kernel distance and alignment, parameter movement, linearisation gap, CKA and NTK
    eigenvector overlap with the key Fourier modes, at every selected checkpoint."""
    from interp.analysis.curves import first_epoch
    from interp.analysis.lazy_rich import (
        Reference,
        checkpoint_measures,
        reference_state,
        task_data,
        trainable_weights,
    )
    from interp.analysis.modular import COMBINATIONS
    from interp.train.losses import build_loss
    from interp.train.objective import build_objective

    run, task, options = context.run, context.task, context.options
    if 0 not in context.epochs or context.model(0) is None:
        warn(f"{run.path}: lazy-rich analysis needs the epoch-0 checkpoint; skipped")
        return None
    fourier = context.results.get("fourier")
    key = list(fourier.key_frequencies) if fourier else []
    model = context.model(0)
    objective = build_objective(run.config, model, run.weights(0))
    hooks = hidden_hook_names(model)
    # regression targets have no "correct class": the trace kernel is the plain NTK there
    kinds = ["trace"] if task.target_type == "real" else list(options.kernels)
    lazy_limit = run.config.objective.loss == "mse" and task.n_outputs == 1
    data = task_data(task, build_loss(run.config.objective.loss, run.config.objective.loss_dtype),
                     options.probes, options.probe_seed, key,
                     COMBINATIONS.get(task.info.get("op"), "add"), options.device)
    _check_jacobian_fits(len(data.probe_inputs), trainable_weights(model), options.probes)
    params = {"probes": options.probes, "probe_seed": options.probe_seed, "kernels": kinds,
              "hooks": hooks, "key_frequencies": key, "version": VERSION}
    reference: Reference | None = None

    def layout(epoch: int) -> Layout:
        return entry_layout(epoch, kinds, hooks, len(data.probe_inputs), lazy_limit)

    def compute(epoch: int, model) -> tuple[dict[str, Any], dict]:
        nonlocal reference
        tensors = {}
        record: dict[str, Any] = {}
        if epoch == 0:
            reference = reference_state(objective, model, data, kinds, hooks)
            tensors = {**{f"kernel/{k}": v for k, v in reference.kernels.items()},
                       **{f"acts/{k}": v for k, v in reference.activations.items()}}
            if lazy_limit:
                record["kernel_regression"] = kernel_regression_losses(objective, reference,
                                                                       data)
        if reference is None:
            _, stored = context.cached(NAME, 0, params, layout(0))  # checked just before
            names = trainable_weights(model)  # the same names at every epoch
            reference = Reference(
                {n: w.to(options.device) for n, w in run.weights(0).items() if n in names},
                {k[len("kernel/"):]: v for k, v in stored.items() if k.startswith("kernel/")},
                {k[len("acts/"):]: v for k, v in stored.items() if k.startswith("acts/")})
        row = checkpoint_measures(objective, model, reference, data, kinds, hooks)
        return {"measures": row, **record}, tensors

    epochs = [0, *[e for e in context.epochs if e != 0]]
    points, computed = cached_points(context, NAME, params, epochs, compute, layout=layout)
    if not points:
        return None
    measures = pd.DataFrame([{"epoch": e, **record["measures"]} for e, record, _ in points])
    # the kernel, alignment, CKA and overlap measures (and their landmarks) depend on the
    # probe count: ``probes`` is the option, ``probes_used`` the count (the test split may
    # hold fewer)
    summary: dict[str, Any] = {
        "probes": options.probes, "probes_used": len(data.probe_inputs),
        "probe_seed": options.probe_seed, "kernels": kinds, "key_frequencies": key,
        **({"kernel_regression": points[0][1]["kernel_regression"]}
           if points and "kernel_regression" in points[0][1] else {}),
        "linearisation_gap_above_half": first_epoch(measures, "lin_gap_test", 0.5),
        **{f"kernel_distance_above_half/{kind}":
           first_epoch(measures, f"kernel_distance/{kind}", 0.5) for kind in kinds},
        "final": measures.iloc[-1].to_dict(),
    }
    return LazyRichResult(
        measures=measures, summary=summary, computed=computed, probes=len(data.probe_inputs),
        kernels=kinds, key_frequencies=key,
        linearisation_gap_above_half=summary["linearisation_gap_above_half"],
        kernel_distance_above_half={kind: summary[f"kernel_distance_above_half/{kind}"]
                                    for kind in kinds},
        kernel_regression=summary.get("kernel_regression"))
