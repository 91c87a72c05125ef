"""How the trainer's arithmetic runs (never what it computes): torch.compile with CUDA
graphs, the float32 matmul precision, and memory reuse on CPU.

On CUDA, CUDA graphs remove the kernel-launch overhead that dominates the small models'
steps (``mode="reduce-overhead"``); on CPU the same code path compiles without graphs (the
tests exercise it there). Compiling is opt-in (``--compile``) everywhere: on CPU it takes
about a minute and gains a few percent, and the CUDA-graph path has not yet been run on a
GPU, so it is not the default until it has been measured there. Reduced-precision matmuls
(TF32 on CUDA, bfloat16 through oneDNN on CPU) are opt-in only. Both are recorded in the
run's runtime information.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch


def should_compile(option: bool | None, device: torch.device, fast_path: bool) -> bool:
    """Whether to compile: only when asked (``option``), and only the exact fast path
    (``device`` is where it would run)."""
    return bool(option) and fast_path


def compile_outputs(outputs: Callable[..., torch.Tensor], device: torch.device
                    ) -> Callable[..., torch.Tensor]:
    """``outputs`` (a function of tensors, e.g. the stacked forward (weights, inputs) ->
    [M, n, n_outputs]) compiled for ``device``: same values up to float rounding,
    differentiable.

    Each call starts a new CUDA-graph step and returns a copy of the graph's output, so the
    caller may keep outputs across calls (train logits while the test set is evaluated)
    without a later replay overwriting them.
    """
    mode = "reduce-overhead" if device.type == "cuda" else "default"
    compiled = torch.compile(outputs, mode=mode, dynamic=False)

    def call(*args) -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(*args).clone()

    return call


@contextmanager
def training_backend(device: torch.device, precision: str) -> Iterator[None]:
    """Run the block (a training loop) with the float32 matmul precision ``precision``
    (restored afterwards) and, on CPU, with freed memory kept for reuse (``keep_freed_memory``).

    ``precision``: "highest" is plain float32; "high" allows TF32 (CUDA) or bfloat16x3;
    "medium" allows bfloat16 (torch's definitions; oneDNN applies them on CPU).
    """
    if device.type == "cpu":
        keep_freed_memory()
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def keep_freed_memory() -> None:
    """Ask glibc's malloc to keep freed memory in the process instead of returning it to
    the operating system. No-op where the C library is not glibc.

    By default glibc serves blocks above a (dynamic) threshold with fresh ``mmap`` pages and
    trims the heap when its free top grows, so every training step page-faults its large
    activations back in: a sixth of a ``nanda`` epoch on CPU, measured. This is the
    in-process form of the PyTorch CPU performance guide's advice to use a caching
    allocator (jemalloc, tcmalloc). It lasts for the process: its memory then stays at its
    peak.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 1 << 30)
    mallopt(_M_TRIM_THRESHOLD, 1 << 31)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
