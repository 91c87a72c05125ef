"""Many runs of one architecture as one pure function of their stacked weights.

``stacked_output_fn(config, template)`` gives f(weights, inputs): the full state dicts of M
runs stacked along a leading run axis (``torch.func.stack_module_state`` or ``torch.stack``)
and each run's own inputs [M, n, ...] -> [M, n, n_outputs], each run's slice exactly what
``output_fn`` gives for a model holding its weights. It is a ``torch.vmap`` of one run's
stateless forward (``run_output_fn``), so it is differentiable in the weights and composes
with ``torch.func.jvp``; a stack of one calls that forward directly (no vmap overhead).

One run's stateless forward is the transformer's exact fast path where it applies
(``stateless_output_fn``) and otherwise ``torch.func.functional_call`` of the template module:
its HookPoints, hookless, are identities, and the LSTM's forward already writes its gate
equations out (``lstm.lstm_layer``: the fused ``nn.LSTM`` kernel has no vmap rule).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from interp.config import ModelConfig

# (weights by state-dict name, inputs) -> outputs: one run's [n, ...] -> [n, n_outputs], or a
# stack's [M, n, ...] -> [M, n, n_outputs] with weights [M, ...]
StatelessOutputFn = Callable[[Mapping[str, Tensor], Tensor], Tensor]
StackedOutputFn = StatelessOutputFn


def stacked_output_fn(config: ModelConfig, template: torch.nn.Module, fast: bool = True,
                      vectorized: bool = True) -> StackedOutputFn:
    """f(weights, inputs) -> [M, n, n_outputs]: ``output_fn(config, model_m, fast)(inputs[m])``
    for each of M runs at once.

    weights: the full state dict (parameters and buffers, ``template.state_dict()`` names),
    each entry stacked over the runs: name -> [M, ...]. inputs: [M, n, ...], each run's own
    rows. ``template`` is a model of the same architecture (``build_model``); only its
    structure is used, its own weights are neither read nor changed.

    ``vectorized``: one ``torch.vmap`` over the runs (a few large kernels: what a GPU and
    small models need); otherwise the runs one after another on views of the stacked
    weights (``unbind``, whose backward is one ``stack``), for a CPU whose caches hold one
    run's activations but not M runs' (see ``interp.train.loop``). Same values either way,
    up to float rounding.
    """
    run = run_output_fn(config, template, fast)
    stacked = torch.vmap(run)

    def f(weights: Mapping[str, Tensor], inputs: Tensor) -> Tensor:
        if inputs.shape[0] == 1:
            return run({name: value.squeeze(0) for name, value in weights.items()},
                       inputs[0]).unsqueeze(0)
        if vectorized:
            return stacked(weights, inputs)
        names = list(weights)
        per_run = zip(*(weights[name].unbind(0) for name in names), strict=True)
        return torch.stack([run(dict(zip(names, values, strict=True)), x)
                            for values, x in zip(per_run, inputs.unbind(0), strict=True)])

    return f


def run_output_fn(config: ModelConfig, template: torch.nn.Module, fast: bool = True
                  ) -> StatelessOutputFn:
    """f(weights, inputs) -> [n, n_outputs]: ``output_fn(config, model, fast)(inputs)`` as a
    pure function of one run's state dict (``template.state_dict()`` names; inputs [n, ...]).
    """
    from interp.models import model_kind, stateless_output_fn  # the package imports this one

    exact = stateless_output_fn(config) if fast else None
    if exact is not None:
        return exact
    paths = _attribute_paths(template)
    last_position = model_kind(config).last_position

    def f(weights: Mapping[str, Tensor], inputs: Tensor) -> Tensor:
        swapped = {path: value for name, value in weights.items() for path in paths[name]}
        outputs = torch.func.functional_call(template, swapped, (inputs,), tie_weights=False)
        return outputs[:, -1] if last_position else outputs

    return f


def _attribute_paths(module: torch.nn.Module) -> dict[str, list[str]]:
    """State-dict name -> the attribute paths ``functional_call`` must swap: one for each
    distinct (submodule, attribute) holding that tensor.

    A TransformerBridge's state-dict names (``blocks.0.attn.q.weight``) are not attribute
    paths, and it reaches one submodule by several paths. ``functional_call`` with
    ``tie_weights`` (its default) swaps such an attribute once per path and restores it
    wrongly, leaving the stand-in in the template afterwards; so each attribute is swapped
    once, through one path, with ``tie_weights`` off.
    """
    holders: dict[int, dict[tuple[int, str], str]] = {}
    for path, tensor in (*module.named_parameters(remove_duplicate=False),
                         *module.named_buffers(remove_duplicate=False)):
        owner, _, attribute = path.rpartition(".")
        holders.setdefault(id(tensor), {}).setdefault(
            (id(module.get_submodule(owner)), attribute), path)
    return {name: list(holders[id(tensor)].values())
            for name, tensor in module.state_dict(keep_vars=True).items()}
