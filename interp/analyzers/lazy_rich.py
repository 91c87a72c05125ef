"""Lazy-versus-rich diagnostics over a run (Kumar et al. 2024), cached per checkpoint.

Works on every model: the measures see the run's own trained output (centred and
alpha-scaled when it was) through ``interp.train.objective``. The epoch-0 entry also stores
K_0 and the activations at initialisation, which every later checkpoint is compared with.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from interp.analyzers.base import AnalyzerResult, Context, Layout, cached_points, numbers
from interp.errors import warn

NAME = "lazy_rich"
VERSION = 1
HIDDEN_HOOKS = ("hook_post", "hook_resid_post", "hook_hidden", "hook_sum")


def applies(run) -> bool:
    return True


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


def analyze(context: Context) -> AnalyzerResult:
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
        return AnalyzerResult()
    fourier = context.results.get("fourier")
    key = list(fourier.final.get("key_frequencies", [])) if fourier else []
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
    measures = pd.DataFrame([{"epoch": e, **record["measures"]} for e, record, _ in points])
    summary: dict[str, Any] = {
        "probes": options.probes, "kernels": kinds, "key_frequencies": key,
        **({"kernel_regression": points[0][1]["kernel_regression"]}
           if points and "kernel_regression" in points[0][1] else {}),
        "linearisation_gap_above_half": first_epoch(measures, "lin_gap_test", 0.5),
        **{f"kernel_distance_above_half/{kind}":
           first_epoch(measures, f"kernel_distance/{kind}", 0.5) for kind in kinds},
        "final": measures.iloc[-1].to_dict() if not measures.empty else {},
    }
    return AnalyzerResult(measures, summary=summary, computed=computed)
