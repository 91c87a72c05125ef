"""How the trainer's arithmetic runs (never what it computes): torch.compile with CUDA
graphs, and the float32 matmul precision.

On CUDA, CUDA graphs remove the kernel-launch overhead that dominates the small models'
steps (``mode="reduce-overhead"``); on CPU the same code path compiles without graphs (the
tests exercise it there; it is off by default, since compiling takes about a minute on CPU
and gains a few percent). Reduced-precision matmuls (TF32 on CUDA, bfloat16 through oneDNN
on CPU) are opt-in only and recorded in the run's runtime information.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from interp.models import OutputFn


def compile_outputs(outputs: OutputFn, device: torch.device) -> OutputFn:
    """``outputs`` compiled for ``device``: inputs -> [batch, n_outputs], same values up to
    float rounding, differentiable.

    Each call starts a new CUDA-graph step and returns a copy of the graph's output, so the
    caller may keep outputs across calls (train logits while the test set is evaluated)
    without a later replay overwriting them.
    """
    mode = "reduce-overhead" if device.type == "cuda" else "default"
    compiled = torch.compile(outputs, mode=mode, dynamic=False)

    def call(inputs: torch.Tensor) -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(inputs).clone()

    return call


@contextmanager
def matmul_precision(name: str) -> Iterator[None]:
    """Run the block with ``torch.set_float32_matmul_precision(name)``, then restore it.

    "highest" is plain float32; "high" allows TF32 (CUDA) or bfloat16x3; "medium" allows
    bfloat16 (torch's definitions; oneDNN applies them on CPU).
    """
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(name)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)
