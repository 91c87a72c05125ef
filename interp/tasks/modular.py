"""Modular arithmetic in Z_p: the ops of Power et al. 2022 (openai/grok) and Nanda et al."""

from collections.abc import Callable

import torch

from interp.config import ModularTask
from interp.tasks.base import Task, random_split
from interp.tasks.encodings import encode_pairs

Op = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def _div(a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    inverse = torch.tensor([pow(int(k), -1, p) if k else 0 for k in range(p)])
    return a * inverse[b] % p


# op name (``interp.config.MODULAR_OPS``) -> (a, b, p) -> label
OPS: dict[str, Op] = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "mul": lambda a, b, p: a * b % p,
    "div": _div,
    "x2_y2": lambda a, b, p: (a**2 + b**2) % p,
    "x2_xy_y2": lambda a, b, p: (a**2 + a * b + b**2) % p,
    "x2_xy_y2_x": lambda a, b, p: (a**2 + a * b + b**2 + a) % p,
    "x3_xy": lambda a, b, p: (a**3 + a * b) % p,
    "x3_xy2_y": lambda a, b, p: (a**3 + a * b**2 + b) % p,
}


def all_pairs(p: int, op: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every valid (a, b), a-major order (a = 0,0,..,1,1,..); ``div`` drops b = 0."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    if op == "div":
        keep = b != 0
        a, b = a[keep], b[keep]
    return a, b


def modular_task(config: ModularTask) -> Task:
    """Build the modular-arithmetic data set and its seeded split."""
    a, b = all_pairs(config.p, config.op)
    labels = OPS[config.op](a, b, config.p)
    inputs, vocab = encode_pairs(a, b, config.p, config.encoding)
    train_idx, test_idx = random_split(len(a), config.frac, config.data_seed)
    return Task(inputs, labels, train_idx, test_idx, n_outputs=config.p, vocab_size=vocab,
                operands=torch.stack([a, b], dim=1), info={"p": config.p, "op": config.op})
