"""Lazy versus rich training: how far a network moves from its linearisation at initialisation.

Kumar, Bordelon, Gershman, Pehlevan, "Grokking as the transition from lazy to rich training
dynamics" (ICLR 2024) explain grokking as a network that first fits its training set like a
kernel method with its initial neural tangent kernel (NTK; Jacot et al. 2018), and only later
learns features. The measures here make that visible at any checkpoint (SPEC.md, "Lazy versus
rich"):

- the empirical NTK Gram matrix K_t(x, x') = J_t(x) J_t(x')^T on a fixed probe set, for the
  logit of the correct class and as the trace over outputs;
- centred kernel-task alignment (Cortes et al. 2012; Kumar et al. sec. 4.2) and the kernel
  distance from initialisation (Fort et al. 2020);
- parameter movement |theta_t - theta_0| / |theta_0|, in total and per weight matrix;
- the linearisation f_lin(x; theta) = f(x; theta_0) + J_0(x) (theta - theta_0) by a
  Jacobian-vector product (Lee et al. 2019), its loss and its gap to the network;
- linear CKA between hidden activations at t and at initialisation (Kornblith et al. 2019);
- the top eigenvectors of the Gram matrix and their overlap with the Fourier modes of the key
  frequencies (modular addition, Nanda et al. 2023);
- kernel regression with K_0, the end point of the linearised model under MSE (Lee et al.).

Everything works on any model through a *functional output*: a callable
``f(params, inputs) -> [batch, n_outputs]`` where ``params`` maps state-dict names (e.g.
``blocks.0.mlp.in.weight``) to tensors, as ``interp.train.objective`` builds it with
``torch.func.functional_call``. Pass the trained output (``interp.train.objective.Objective``)
so every measure sees the same centred, alpha-scaled output as training. No function here
knows which model it is looking at.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from interp.errors import UserError

Params = dict[str, torch.Tensor]
FunctionalOutput = Callable[[Params, torch.Tensor], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

KERNEL_KINDS = ("correct_class", "trace")


def trainable_weights(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The model's trainable parameters by state-dict name (frozen ones, buffers left out).

    The state-dict names (``blocks.0.attn.q.weight``) are the ones checkpoints use; for a
    TransformerBridge they differ from ``named_parameters`` names. Returns the live
    parameters (not copies), in state-dict order.
    """
    return {name: value for name, value in model.state_dict(keep_vars=True).items()
            if isinstance(value, torch.nn.Parameter) and value.requires_grad}


def last_position(outputs: torch.Tensor) -> torch.Tensor:
    """[batch, n_outputs]: the last position of sequence outputs [batch, seq, n_outputs] (what
    the loss reads), or outputs that are already [batch, n_outputs] as they are."""
    return outputs[:, -1] if outputs.dim() == 3 else outputs


class _LastPositionOutput(torch.nn.Module):
    """A model's last-position outputs as a module's forward, for ``functional_call``."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return last_position(self.model(inputs))


def state_dict_functional(wrapper: torch.nn.Module, model: torch.nn.Module
                          ) -> FunctionalOutput:
    """f(params, inputs) = wrapper(inputs) with ``model``'s trainable weights replaced by
    ``params`` (state-dict names, as ``trainable_weights``; a subset is fine, the rest keep
    the model's values), through ``torch.func.functional_call``, so it composes with
    ``torch.func`` transforms. ``wrapper`` holds ``model`` as its attribute ``model``."""
    by_identity = {id(param): f"model.{name}" for name, param in model.named_parameters()}
    rename = {name: by_identity[id(param)] for name, param in trainable_weights(model).items()}

    def f(params: Params, inputs: torch.Tensor) -> torch.Tensor:
        swapped = {rename[name]: value for name, value in params.items()}
        return torch.func.functional_call(wrapper, swapped, (inputs,))

    return f


def model_output(model: torch.nn.Module) -> FunctionalOutput:
    """f(params, inputs) -> [batch, n_outputs]: ``model``'s last-position outputs with its
    trainable weights replaced by ``params`` (``state_dict_functional``). The plain network:
    a run trained with a centred or scaled output (``objective.alpha``) differentiates
    ``interp.train.objective.build_objective``'s output instead."""
    return state_dict_functional(_LastPositionOutput(model), model)


def detached(params: Params) -> Params:
    """A copy of ``params`` that shares no autograd history with the model."""
    return {name: value.detach().clone() for name, value in params.items()}


def probe_indices(pool: torch.Tensor, n_probes: int, seed: int = 0) -> torch.Tensor:
    """A fixed, seeded probe set: ``n_probes`` distinct entries of ``pool`` (all of it when it
    is smaller), in the order of a seeded random permutation. pool: [N] int -> [n] int."""
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    return pool[order[:n_probes]]


# ---------------------------------------------------------------------------------------------
# The empirical NTK


def ntk_gram(f: FunctionalOutput, params: Params, inputs: torch.Tensor,
             targets: torch.Tensor | None = None, kinds: Sequence[str] = KERNEL_KINDS,
             chunk_size: int = 64) -> dict[str, torch.Tensor]:
    """Empirical NTK Gram matrices K(x, x') = J(x) J(x')^T on ``inputs`` (Jacot et al. 2018).

    f: functional output; params: theta (state-dict names -> tensors), the Jacobian is taken
    with respect to all of them; inputs: [n, ...] probe inputs; targets: [n] class ids
    (needed for ``correct_class``). Returns {kind: [n, n] float64}:

    - ``correct_class``: J is the gradient of the logit of each probe's own class,
      K(x, x') = d f_{y(x)}(x)/d theta . d f_{y(x')}(x')/d theta;
    - ``trace``: the trace over outputs, K(x, x') = sum_o J_o(x) . J_o(x').

    For a single output both are the plain NTK. The correct-class kernel depends on the
    labels: the gradient of logit y through the unembedding is non-zero only in row y, so
    that block adds [y(x) = y(x')] h(x).h(x') and its alignment with the labels is high from
    initialisation on; the trace kernel is label-free. Per-example gradients come from
    ``vmap(grad)`` over chunks of ``chunk_size`` probes; one output's Jacobian J_o [n, P] is
    held at a time and K accumulates J_o J_o^T, so memory is 4 n P bytes for J plus
    4 chunk_size P for a chunk's gradients, independent of the number of outputs. For the
    Nanda model (P = 226,048 trainable weights) on 512 probes that is 463 MB + 58 MB: the
    call's peak resident memory stays under 1 GB above the model's own footprint (about
    0.6 GB measured on CPU; checked in tests/test_lazy_rich.py). Time: the trace kernel
    costs n_outputs times the correct-class one (n_outputs gradient passes and n^2 P
    multiply-adds each).
    """
    unknown = set(kinds) - set(KERNEL_KINDS)
    if unknown:
        raise ValueError(f"unknown kernel kind(s) {sorted(unknown)}; choose from {KERNEL_KINDS}")
    params = detached(params)
    with torch.no_grad():
        n_outputs = f(params, inputs[:1]).shape[-1]
    n = len(inputs)
    kernels = {}
    if "correct_class" in kinds:
        if targets is None:
            raise ValueError("the correct_class kernel needs the probes' targets")
        rows = _output_gradients(f, params, inputs, targets, n_outputs, chunk_size)
        kernels["correct_class"] = _gram(rows)
    if "trace" in kinds:
        gram = torch.zeros(n, n, dtype=torch.float64, device=inputs.device)
        for output in range(n_outputs):
            which = torch.full((n,), output, dtype=torch.long, device=inputs.device)
            gram += _gram(_output_gradients(f, params, inputs, which, n_outputs, chunk_size))
        kernels["trace"] = gram
    return kernels


def ntk(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None,
        kind: str = "trace", chunk_size: int = 64) -> torch.Tensor:
    """Empirical NTK Gram matrix of ``model`` at its current weights: [n, n] float64.

    inputs: [n, ...] the model's inputs (e.g. ``task.test_inputs[:256]``); the Jacobian is
    that of the last-position outputs [n, n_outputs] (``model_output``) with respect to the
    trainable weights. kind: ``trace`` (sum over outputs, label-free) or ``correct_class``
    (the logit of each input's own class; needs ``targets``, [n] class ids). ``ntk_gram``
    says what each costs; Jacot et al. 2018, Kumar et al. 2024.
    """
    if kind not in KERNEL_KINDS:
        raise UserError(f"unknown kernel kind {kind!r}; choose one of {', '.join(KERNEL_KINDS)}")
    if inputs.dim() == 0 or len(inputs) == 0:
        raise UserError(f"ntk got no inputs (shape {list(inputs.shape)}); pass [n, ...] with "
                        "n >= 1, e.g. task.test_inputs[:256]")
    if kind == "correct_class" and (targets is None or targets.shape != inputs.shape[:1]
                                    or targets.is_floating_point()):
        got = "none" if targets is None else f"{targets.dtype} {list(targets.shape)}"
        raise UserError(f"the correct_class kernel needs targets as [n] = [{len(inputs)}] class "
                        f"ids, one per input; got {got}")
    return ntk_gram(model_output(model), trainable_weights(model), inputs, targets, (kind,),
                    chunk_size)[kind]


def _output_gradients(f: FunctionalOutput, params: Params, inputs: torch.Tensor,
                      outputs: torch.Tensor, n_outputs: int, chunk_size: int) -> torch.Tensor:
    """[n, P]: row i is the gradient of output ``outputs[i]`` at ``inputs[i]`` w.r.t. all
    parameters, flattened in ``params`` order."""
    def selected_output(p: Params, x: torch.Tensor, selector: torch.Tensor) -> torch.Tensor:
        return (f(p, x.unsqueeze(0))[0] * selector).sum()

    per_example = torch.func.vmap(torch.func.grad(selected_output), in_dims=(None, 0, 0))
    dtype = next(iter(params.values())).dtype
    rows = torch.empty(len(inputs), sum(v.numel() for v in params.values()), dtype=dtype,
                       device=inputs.device)
    for start in range(0, len(inputs), chunk_size):
        chunk = slice(start, start + chunk_size)
        grads = per_example(params, inputs[chunk], F.one_hot(outputs[chunk], n_outputs).to(dtype))
        torch.cat([g.flatten(1) for g in grads.values()], dim=1, out=rows[chunk])
        del grads
    return rows


def _gram(rows: torch.Tensor) -> torch.Tensor:
    return (rows @ rows.T).double()


def label_matrix(targets: torch.Tensor, n_outputs: int | None = None) -> torch.Tensor:
    """Targets as a float64 matrix Y [n, k]: one-hot for class ids [n] (int), the targets
    themselves for regression ([n] becomes [n, 1])."""
    if not targets.is_floating_point():
        return F.one_hot(targets, n_outputs or int(targets.max()) + 1).double()
    return (targets if targets.dim() == 2 else targets.unsqueeze(1)).double()


def _centre(matrix: torch.Tensor) -> torch.Tensor:
    """H M H with H = I - 11^T / n: subtract row and column means, add back the total mean."""
    return (matrix - matrix.mean(0, keepdim=True) - matrix.mean(1, keepdim=True)
            + matrix.mean())


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """<a, b>_F / (|a|_F |b|_F)."""
    return float((a * b).sum() / (a.norm() * b.norm()))


def kernel_alignment(kernel: torch.Tensor, labels: torch.Tensor) -> float:
    """Centred kernel-task alignment <HKH, HYY^TH>_F / (|HKH|_F |HYY^TH|_F) (Cortes et al.
    2012; Kumar et al. 2024 sec. 4.2). kernel: [n, n]; labels: Y [n, k] (``label_matrix``).
    1 when K is proportional to Y Y^T (after centring), near 0 for a kernel unrelated to Y."""
    labels = labels.to(kernel)
    return _cosine(_centre(kernel), _centre(labels @ labels.T))


def kernel_distance(initial: torch.Tensor, current: torch.Tensor) -> float:
    """1 - <K_0, K_t>_F / (|K_0|_F |K_t|_F) (Fort et al. 2020): 0 while the kernel only
    rescales, up to 1 when it has turned orthogonal. Both [n, n] on the same probes."""
    return 1.0 - _cosine(initial, current.to(initial))


@dataclass(frozen=True)
class Eigenvectors:
    """The top eigenpairs of a symmetric Gram matrix: ``values`` [k] descending, ``vectors``
    [n, k] unit columns."""

    values: torch.Tensor
    vectors: torch.Tensor


def top_eigenvectors(kernel: torch.Tensor, k: int) -> Eigenvectors:
    """The ``k`` largest eigenpairs of a symmetric [n, n] Gram matrix (torch.linalg.eigh);
    all NaN when the matrix holds NaN or infinite entries (a diverged model)."""
    kernel = kernel.double()
    if not bool(torch.isfinite(kernel).all()):
        k = min(k, len(kernel))
        return Eigenvectors(kernel.new_full((k,), math.nan),
                            kernel.new_full((len(kernel), k), math.nan))
    values, vectors = torch.linalg.eigh(kernel)
    order = values.argsort(descending=True)[:k]
    return Eigenvectors(values[order], vectors[:, order])


def fourier_modes(values: torch.Tensor, p: int, frequencies: Sequence[int]) -> torch.Tensor:
    """cos(w_k v) and sin(w_k v), w_k = 2 pi k / p, for each frequency k: [n, 2 len(freqs)]
    (columns cos k_1, sin k_1, cos k_2, ...; rows of ``fourier.fourier_basis`` read at v mod
    p). values: [n] ints, e.g. (a + b) for modular addition, whose logits Nanda et al. 2023
    show are built from these modes."""
    from interp.analysis.fourier import fourier_basis

    rows = [row for k in frequencies for row in (2 * k - 1, 2 * k)]
    return fourier_basis(p, torch.float64)[rows][:, values.long() % p].T


def fourier_overlap(vectors: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    """Fraction of each unit vector's squared norm in the span of ``modes``.

    vectors: [n, k] (e.g. ``top_eigenvectors(K, k).vectors``); modes: [n, m] (e.g.
    ``fourier_modes``; orthonormalised here, since sampled modes are not exactly orthogonal).
    Returns [k] in [0, 1]: 1 when the eigenvector lies in span{cos, sin(w_k (a + b))}.
    """
    basis, _ = torch.linalg.qr(modes.to(vectors))
    return (basis.T @ vectors).pow(2).sum(0) / vectors.pow(2).sum(0)


# ---------------------------------------------------------------------------------------------
# Movement and linearisation


@dataclass(frozen=True)
class ParameterMovement:
    """|theta_t - theta_0| / |theta_0|: ``total`` over all trainable weights, and
    ``per_weight`` for each weight matrix by state-dict name."""

    total: float
    per_weight: dict[str, float]


def parameter_movement(initial: Params, current: Params) -> ParameterMovement:
    """Relative distance travelled from initialisation, in total and per weight matrix.
    initial, current: state-dict name -> tensor, the names of ``initial`` are compared.
    NaN weights give NaN; a zero start gives NaN (unmoved) or infinity (moved). Names are
    taken in sorted order, so the total does not depend on the dicts' order."""
    names = sorted(initial)
    moved = {name: (current[name].double() - initial[name].double()).norm() for name in names}
    start = {name: initial[name].double().norm() for name in names}
    total = torch.stack(list(moved.values())).norm() / torch.stack(list(start.values())).norm()
    return ParameterMovement(
        total=float(total), per_weight={name: float(moved[name] / start[name])
                                        for name in names})


def linearised_outputs(f: FunctionalOutput, initial: Params, params: Params,
                       inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(x; theta_0), J_0(x) (theta - theta_0)) by one forward-mode Jacobian-vector product.

    f: functional output; initial: theta_0; params: theta (same names; may require grad, and
    gradients flow back to it through the tangent); inputs: [batch, ...].
    Returns two [batch, n_outputs] tensors; their sum is the linearised model f_lin(x; theta)
    of Lee et al. 2019 (Kumar et al. 2024, eq. 1). The first does not depend on theta.
    """
    tangent = {name: params[name] - initial[name] for name in initial}
    return torch.func.jvp(lambda p: f(p, inputs), (initial,), (tangent,))


@dataclass(frozen=True)
class Linearisation:
    """The network and its linearisation at theta_0 on one data set: their losses, and the
    relative gap |f - f_lin|_F / |f - f_0|_F (0 while training is lazy; of order 1 once the
    network has left its tangent space)."""

    loss: float
    linearised_loss: float
    gap: float


@torch.no_grad()
def linearisation(f: FunctionalOutput, initial: Params, params: Params, inputs: torch.Tensor,
                  targets: torch.Tensor, loss: LossFn) -> Linearisation:
    """Compare f(theta) with f_lin(theta) = f(theta_0) + J_0 (theta - theta_0) on a data set.

    inputs: [n, ...]; targets: what ``loss(outputs [n, n_outputs], targets)`` takes.
    Follows Kumar et al. 2024 (figs. 1, 12): the network's loss beside the linearised one.
    """
    start, change = linearised_outputs(f, initial, params, inputs)
    outputs = f(params, inputs)
    moved = (outputs - start).norm()
    gap = float((outputs - start - change).norm() / moved) if moved != 0 else 0.0  # NaN stays
    return Linearisation(loss=float(loss(outputs, targets)),
                         linearised_loss=float(loss(start + change, targets)), gap=gap)


def kernel_regression(train_kernel: torch.Tensor, test_train_kernel: torch.Tensor,
                      train_targets: torch.Tensor, train_initial: torch.Tensor | None = None,
                      test_initial: torch.Tensor | None = None, ridge: float = 0.0
                      ) -> torch.Tensor:
    """Kernel regression predictions f_0(x) + K(x, X) (K(X, X) + ridge I)^+ (Y - f_0(X)).

    With the NTK at initialisation and ridge 0 this is where the linearised model trained on
    MSE by gradient descent from theta_0 ends up (Lee et al. 2019, eq. 9; Kumar et al. 2024
    sec. 4.1): the lazy limit. train_kernel: [n, n]; test_train_kernel: [m, n];
    train_targets: [n] or [n, k] floats; train_initial / test_initial: f(theta_0) on the
    train / test inputs, same trailing shape as the targets (zero when omitted, as for the
    centred output). A singular K gets the minimum-norm solution (pseudo-inverse), which is
    what gradient descent from theta_0 converges to. Returns [m] or [m, k] float64, all NaN
    when K(X, X) holds NaN or infinite entries.
    """
    targets = train_targets.double()
    residual = targets - (0 if train_initial is None else train_initial.double())
    column = residual.dim() == 1
    system = train_kernel.double() + ridge * torch.eye(len(train_kernel), dtype=torch.float64,
                                                       device=train_kernel.device)
    inverse = (torch.linalg.pinv(system, hermitian=True) if bool(torch.isfinite(system).all())
               else torch.full_like(system, math.nan))
    weights = inverse @ (residual.unsqueeze(1) if column else residual)
    predictions = test_train_kernel.double() @ weights
    predictions = predictions.squeeze(1) if column else predictions
    return predictions + (0 if test_initial is None else test_initial.double())


HARDNESS_JITTERS = (0.0, 1e-12, 1e-10, 1e-8, 1e-6)  # tried in turn, times the mean diagonal


def task_hardness(kernel: torch.Tensor, targets: torch.Tensor) -> float:
    """How hard a regression task is for a kernel: y^T K^{-1} y, with K scaled to a mean
    diagonal of 1 and y to a mean square of 1, that is

        y^T K^{-1} y * mean(diag K) / mean(y^2).

    kernel: K [n, n] symmetric positive semi-definite (e.g. ``ntk`` on the training inputs at
    theta_0); targets: y [n] or [n, 1], what the kernel has to fit (the targets minus the
    initial outputs; the targets themselves for a centred output). Unnormalised, y^T K^{-1} y
    is the squared RKHS norm of the kernel interpolant, and, for an NTK, the smallest squared
    distance |theta - theta_0|^2 the linearised model moves to fit y; gradient descent fits an
    eigenvector of eigenvalue lambda in a time ~ 1/lambda, so it also weighs y's parts by how
    slowly the lazy model learns them (Kumar et al. 2024: the harder the task for the
    initial NTK, the longer the delay). The two normalisations make it a property of the
    task's shape against the kernel's: unchanged by the output scale alpha (the centred
    output's NTK is alpha^2 K_0) and by a label scale, and, for a target the kernel can
    represent, near the same value at any n (y^T y and the kernel's eigenvalues both grow
    with n). For y an eigenvector of K with eigenvalue lambda it is trace(K) / lambda, the
    sum of the eigenvalues over lambda: at least 1 (1 for a kernel of rank one), smallest
    for the top eigenvector, largest for the bottom one; for a population eigenfunction of
    eigenvalue mu it tends to sum(mu) / mu as n grows.

    Solved in float64 by a Cholesky factorisation; when K is singular (or not numerically
    positive definite) a jitter of ``HARDNESS_JITTERS`` times the mean diagonal is added to
    it, the smallest that factorises. NaN when K holds NaN or infinite entries, when y is all
    zero, or when no jitter factorises it.
    """
    kernel = kernel.double()
    residual = targets.double().reshape(-1)
    if residual.numel() != len(kernel) or kernel.shape != (len(kernel), len(kernel)):
        raise ValueError(f"task_hardness needs a square kernel [n, n] and n targets; got "
                         f"{list(kernel.shape)} and {list(targets.shape)}")
    scale = kernel.diagonal().mean()
    power = residual.square().mean()
    if not bool(torch.isfinite(kernel).all()) or not scale > 0 or not power > 0:
        return math.nan
    normalised = kernel / scale
    identity = torch.eye(len(kernel), dtype=torch.float64, device=kernel.device)
    for jitter in HARDNESS_JITTERS:
        factor, info = torch.linalg.cholesky_ex(normalised + jitter * identity)
        if int(info) == 0:
            solution = torch.cholesky_solve(residual.unsqueeze(1), factor).squeeze(1)
            return float(residual @ solution / power)
    return math.nan


# ---------------------------------------------------------------------------------------------
# Representations


def hidden_activations(model: torch.nn.Module, inputs: torch.Tensor, hook_names: Iterable[str],
                       position: int | None = -1) -> dict[str, torch.Tensor]:
    """Activations at TransformerLens hook points, one [n, features] matrix per hook.

    model: any model with ``run_with_cache`` (TransformerBridge, HookedRootModule); inputs:
    [n, ...]. Sequence activations [n, seq, ...] keep position ``position`` (default the
    last one, which the output reads; None keeps all positions), then everything after the
    batch dimension is flattened.
    """
    names = list(hook_names)
    with torch.no_grad():
        _, cache = model.run_with_cache(inputs, names_filter=names)
    out = {}
    for name in names:
        acts = cache[name]
        if position is not None and acts.dim() > 2:
            acts = acts[:, position]
        out[name] = acts.reshape(len(inputs), -1)
    return out


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019, eq. 5) of two representations
    of the same n examples: |Y^T X|_F^2 / (|X^T X|_F |Y^T Y|_F) after centring each feature.
    x: [n, d1], y: [n, d2]. 1 for representations equal up to rotation and scale."""
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    return float((y.T @ x).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm()))


# ---------------------------------------------------------------------------------------------
# All of it over a run's checkpoints


@dataclass(frozen=True)
class LazyRichData:
    """What the lazy-versus-rich measures are evaluated on.

    probe_inputs / probe_targets: the fixed probe set of the NTK Gram matrices, the alignment
    and the CKA; train / test inputs and targets: the losses and the linearisation gap;
    loss: ``loss(outputs, targets) -> scalar`` as in training; n_outputs: for one-hot labels;
    fourier: optional (values [n_probes], p, key frequencies) for the eigenvector overlap.
    """

    probe_inputs: torch.Tensor
    probe_targets: torch.Tensor
    train_inputs: torch.Tensor
    train_targets: torch.Tensor
    test_inputs: torch.Tensor
    test_targets: torch.Tensor
    loss: LossFn
    n_outputs: int | None = None
    fourier: tuple[torch.Tensor, int, tuple[int, ...]] | None = None


def task_data(task, loss: LossFn, n_probes: int = 256, seed: int = 0,
              key_frequencies: Sequence[int] = (), combine: str = "add",
              device: str | torch.device = "cpu") -> LazyRichData:
    """The ``LazyRichData`` of a task (``interp.tasks.base.Task``): ``n_probes`` seeded probes
    from the test split (Kumar et al. take the kernel alignment on test data), the train and
    test sets, and, with key frequencies, the probes' a + b (or a - b, ``combine="sub"``)
    for the Fourier overlap (modular tasks; ``task.operands`` [N, 2])."""
    probes = probe_indices(task.test_idx, n_probes, seed)
    fourier = None
    if key_frequencies:
        a, b = task.operands[probes].unbind(1)
        fourier = (a + b if combine == "add" else a - b, task.n_outputs, tuple(key_frequencies))
    return LazyRichData(
        task.inputs[probes].to(device), task.targets[probes].to(device),
        task.train_inputs.to(device), task.train_targets.to(device),
        task.test_inputs.to(device), task.test_targets.to(device), loss,
        task.n_outputs, fourier)


@dataclass(frozen=True)
class Reference:
    """What every checkpoint is compared with: theta_0, the NTK Gram matrices K_0 on the
    probes (by kind) and the hidden activations at initialisation (by hook name)."""

    params: Params
    kernels: dict[str, torch.Tensor]
    activations: dict[str, torch.Tensor]


def reference_state(f: FunctionalOutput, model: torch.nn.Module, data: LazyRichData,
                    kinds: Sequence[str] = KERNEL_KINDS, hook_names: Sequence[str] = (),
                    chunk_size: int = 64) -> Reference:
    """The ``Reference`` of ``model`` at its current weights, which must be theta_0."""
    params = detached(trainable_weights(model))
    kernels = ntk_gram(f, params, data.probe_inputs, data.probe_targets, kinds, chunk_size)
    acts = hidden_activations(model, data.probe_inputs, hook_names) if hook_names else {}
    return Reference(params, kernels, acts)


def checkpoint_measures(f: FunctionalOutput, model: torch.nn.Module, reference: Reference,
                        data: LazyRichData, kinds: Sequence[str] = KERNEL_KINDS,
                        hook_names: Sequence[str] = (), n_eigenvectors: int = 4,
                        chunk_size: int = 64) -> dict[str, float]:
    """Every lazy-versus-rich measure of ``model`` (at its current weights theta_t) against
    ``reference`` (theta_0), as one row.

    Keys: ``movement`` and ``movement/NAME`` per weight matrix; ``kernel_distance/KIND``
    and ``alignment/KIND`` per kernel kind; ``train_loss``, ``test_loss`` (network),
    ``lin_train_loss``, ``lin_test_loss`` (f_lin) and ``lin_gap_train``, ``lin_gap_test``;
    ``cka/HOOK`` per hook name; with ``data.fourier``, ``fourier_overlap/KIND/i`` for the
    top ``n_eigenvectors`` eigenvectors of K_t. Follows Kumar et al. 2024 (SPEC.md).
    """
    labels = label_matrix(data.probe_targets, data.n_outputs)
    params = detached(trainable_weights(model))
    kernels = ntk_gram(f, params, data.probe_inputs, data.probe_targets, kinds, chunk_size)
    movement = parameter_movement(reference.params, params)
    row = {"movement": movement.total,
           **{f"movement/{k}": v for k, v in movement.per_weight.items()}}
    for kind, kernel in kernels.items():
        row[f"kernel_distance/{kind}"] = kernel_distance(reference.kernels[kind], kernel)
        row[f"alignment/{kind}"] = kernel_alignment(kernel, labels)
        if data.fourier is not None:
            values, p, frequencies = data.fourier
            vectors = top_eigenvectors(kernel, n_eigenvectors).vectors
            overlap = fourier_overlap(vectors, fourier_modes(values, p, frequencies))
            row.update({f"fourier_overlap/{kind}/{i}": float(v) for i, v in enumerate(overlap)})
    for split, inputs, targets in (("train", data.train_inputs, data.train_targets),
                                   ("test", data.test_inputs, data.test_targets)):
        lin = linearisation(f, reference.params, params, inputs, targets, data.loss)
        row.update({f"{split}_loss": lin.loss, f"lin_{split}_loss": lin.linearised_loss,
                    f"lin_gap_{split}": lin.gap})
    if hook_names:
        acts = hidden_activations(model, data.probe_inputs, hook_names)
        row.update({f"cka/{name}": linear_cka(reference.activations[name], value)
                    for name, value in acts.items()})
    return row


def lazy_rich_curve(f: FunctionalOutput, checkpoints: Iterable[tuple[int, torch.nn.Module]],
                    data: LazyRichData, kinds: Sequence[str] = KERNEL_KINDS,
                    hook_names: Sequence[str] = (), n_eigenvectors: int = 4,
                    chunk_size: int = 64):
    """Every lazy-versus-rich measure at every checkpoint, as a pandas DataFrame.

    f: the trained output as a functional (``interp.train.objective.Objective``);
    checkpoints: (epoch, model) pairs in epoch order, the first at epoch 0 (theta_0), e.g.
    ``Run.iter_models()``; models may be one object reloaded in place. One row per
    checkpoint: ``epoch`` and the columns of ``checkpoint_measures``.
    """
    import pandas as pd

    rows, reference = [], None
    for epoch, model in checkpoints:
        if reference is None:
            if epoch != 0:
                raise ValueError(f"the first checkpoint must be epoch 0, got {epoch}")
            reference = reference_state(f, model, data, kinds, hook_names, chunk_size)
        rows.append({"epoch": epoch, **checkpoint_measures(
            f, model, reference, data, kinds, hook_names, n_eigenvectors, chunk_size)})
    return pd.DataFrame(rows)
