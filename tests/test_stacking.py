"""Stacked runs: ``stacked_output_fn`` of M runs' stacked weights gives, for every model kind,
each run's own outputs, gradients and Jacobian-vector products."""

import dataclasses

import pytest
import torch

from interp.config import RunConfig
from interp.models import build_model, output_fn, run_output_fn, stacked_output_fn
from interp.presets import get_preset
from interp.tasks import build_task
from tests.conftest import small_config

N_RUNS, N_ROWS = 3, 7


def _digits() -> RunConfig:
    """Omnigrok's digits MLP (784-200-200-10, init x8) on sklearn's 8x8 digits (no MNIST
    load)."""
    config = get_preset("omnigrok-digits")
    return dataclasses.replace(config, task=dataclasses.replace(config.task, source="sklearn",
                                                                n_train=200))


# name -> (config, fast)
KINDS = {
    "transformer-fast-path": (lambda: small_config(), True),
    "transformer-bridge": (lambda: small_config(), False),
    "transformer-2-layers-layernorm": (lambda: get_preset("power"), True),
    "mlp": (lambda: get_preset("hu-mlp"), True),
    "lstm": (lambda: get_preset("hu-lstm"), True),
    "lstm-2-layers": (lambda: RunConfig.from_dict({
        "task": {"kind": "toy_addition"}, "model": {"kind": "lstm", "n_layers": 2}}), True),
    "gromov": (lambda: get_preset("kumar-gromov"), True),
    "committee": (lambda: get_preset("kumar-committee"), True),
    "toy": (lambda: get_preset("liu-toy"), True),
    "student-teacher-mlp": (lambda: get_preset("kumar-teacher"), True),
    "digits-mlp": (_digits, True),
}


@dataclasses.dataclass
class Stack:
    config: RunConfig
    fast: bool
    models: list[torch.nn.Module]
    weights: dict[str, torch.Tensor]  # name -> [M, ...]
    inputs: torch.Tensor  # [M, n, ...], each run its own rows
    trainable: list[str]  # the names that require grad in every run


def _stack(name: str, n_runs: int = N_RUNS) -> Stack:
    config, fast = KINDS[name][0](), KINDS[name][1]
    task = build_task(config.task, config.model)
    models = [build_model(dataclasses.replace(config.model, seed=seed), task)
              for seed in range(n_runs)]
    states = [model.state_dict() for model in models]
    weights = {key: torch.stack([state[key] for state in states]) for key in states[0]}
    assert n_runs == 1 or not torch.equal(*next(iter(weights.values()))[:2])  # seeds differ
    rows = torch.randperm(len(task.inputs), generator=torch.Generator().manual_seed(0))
    inputs = task.inputs[rows[:n_runs * N_ROWS]].unflatten(0, (n_runs, N_ROWS))
    trainable = [key for key, value in models[0].state_dict(keep_vars=True).items()
                 if isinstance(value, torch.nn.Parameter) and value.requires_grad]
    return Stack(config, fast, models, weights, inputs, trainable)


def _own(stack: Stack, run: int) -> torch.Tensor:
    """What run ``run`` computes alone: ``output_fn`` of its own model on its own rows."""
    return output_fn(stack.config.model, stack.models[run], stack.fast)(stack.inputs[run])


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Equal up to float32 rounding, relative to the tensor's scale (Omnigrok's x8
    initialisation makes outputs and gradients large)."""
    scale = max(expected.abs().max().item(), 1.0)
    torch.testing.assert_close(actual, expected, atol=1e-5 * scale, rtol=1e-4,
                               msg=lambda message: f"{what}: {message}")


@pytest.mark.parametrize("vectorized", [True, False], ids=["vmap", "run-by-run"])
@pytest.mark.parametrize("name", KINDS)
def test_stacked_outputs_and_gradients_equal_each_run_alone(name, vectorized):
    stack = _stack(name)
    weights = {key: value.clone().requires_grad_(key in stack.trainable)
               for key, value in stack.weights.items()}
    f = stacked_output_fn(stack.config.model, stack.models[0], stack.fast, vectorized)
    outputs = f(weights, stack.inputs)
    assert outputs.shape[:2] == (N_RUNS, N_ROWS)
    probe = torch.randn(outputs.shape, generator=torch.Generator().manual_seed(1))
    # a different loss for each run: the stacked gradient of their sum is each run's own
    (outputs * probe).square().sum().backward()
    for run, model in enumerate(stack.models):
        own = _own(stack, run)
        _assert_close(outputs[run], own, "outputs")
        (own * probe[run]).square().sum().backward()
        live = model.state_dict(keep_vars=True)
        for key in stack.trainable:
            _assert_close(weights[key].grad[run], live[key].grad, key)
    # the template is only a structure: its weights are neither read nor changed
    template = stack.models[0].state_dict()
    assert all(torch.equal(template[key], stack.weights[key][0]) for key in template)


@pytest.mark.parametrize("name", ["toy", "transformer-fast-path", "lstm"])
def test_a_stack_of_one_is_the_run_alone(name):
    stack = _stack(name, n_runs=1)
    f = stacked_output_fn(stack.config.model, stack.models[0], stack.fast)
    outputs = f(stack.weights, stack.inputs)
    assert outputs.shape[0] == 1
    torch.testing.assert_close(outputs[0], _own(stack, 0), atol=0, rtol=0)


def _linearised_change(f, initial, params, fixed, inputs):
    """(f(theta_0), J_0 (theta - theta_0)) by one jvp, differentiable in params (theta)."""
    tangent = {key: params[key] - initial[key] for key in initial}
    return torch.func.jvp(lambda p: f({**fixed, **p}, inputs), (initial,), (tangent,))


@pytest.mark.parametrize("name", ["toy", "transformer-fast-path", "lstm", "committee"])
def test_jvp_of_the_stack_is_each_runs_own_and_backpropagates(name):
    """Linearised training: J_0 (theta - theta_0) of every run by one jvp of the stack, and
    the gradient with respect to theta through the tangent."""
    stack = _stack(name)
    initial = {key: stack.weights[key] for key in stack.trainable}
    fixed = {key: value for key, value in stack.weights.items() if key not in initial}
    step = torch.Generator().manual_seed(2)
    params = {key: (value + 0.1 * torch.randn(value.shape, generator=step)).requires_grad_()
              for key, value in initial.items()}
    stacked = stacked_output_fn(stack.config.model, stack.models[0], stack.fast)
    start, change = _linearised_change(stacked, initial, params, fixed, stack.inputs)
    change.square().sum().backward()
    alone = run_output_fn(stack.config.model, stack.models[0], stack.fast)
    for run in range(N_RUNS):
        own_params = {key: value[run].detach().requires_grad_() for key, value in params.items()}
        own_start, own_change = _linearised_change(
            alone, {key: value[run] for key, value in initial.items()}, own_params,
            {key: value[run] for key, value in fixed.items()}, stack.inputs[run])
        _assert_close(start[run], _own(stack, run), "f(theta_0)")
        _assert_close(own_start, _own(stack, run), "f(theta_0) alone")
        _assert_close(change[run], own_change, "J_0 (theta - theta_0)")
        assert own_change.abs().max() > 1e-3  # the tangent moves the outputs
        own_change.square().sum().backward()
        for key in params:
            _assert_close(params[key].grad[run], own_params[key].grad, key)
