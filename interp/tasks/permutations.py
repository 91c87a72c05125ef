"""Binary operations on the symmetric group S_n (Power et al. 2022 use S_5, 120 elements)."""

import itertools
from collections.abc import Callable

import torch

from interp.config import PermutationTask
from interp.tasks.base import Task, random_split
from interp.tasks.encodings import encode_pairs


def _compose(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(x . y)(i) = x(y(i)) for permutation tables x, y: [..., n]."""
    return torch.gather(x, -1, y)


def _inverse(x: torch.Tensor) -> torch.Tensor:
    return torch.argsort(x, dim=-1)


# op name (``interp.config.PERMUTATION_OPS``) -> (x, y) -> result, on permutation tables
OPS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "compose": _compose,
    "conjugate": lambda x, y: _compose(_compose(x, y), _inverse(x)),
    "aba": lambda x, y: _compose(_compose(x, y), x),
}


def permutation_table(n: int) -> torch.Tensor:
    """All n! permutations of range(n) in lexicographic order: [n!, n]; row k is element k."""
    return torch.tensor(list(itertools.permutations(range(n))))


def permutation_task(config: PermutationTask) -> Task:
    """Build the S_n data set (all ordered pairs) and its seeded split."""
    table = permutation_table(config.n)
    size = len(table)
    x = torch.arange(size).repeat_interleave(size)
    y = torch.arange(size).repeat(size)
    result = OPS[config.op](table[x], table[y])
    index = {tuple(row): k for k, row in enumerate(table.tolist())}
    labels = torch.tensor([index[tuple(row)] for row in result.tolist()])
    inputs, vocab = encode_pairs(x, y, size, config.encoding)
    train_idx, test_idx = random_split(size * size, config.frac, config.data_seed)
    return Task(inputs, labels, train_idx, test_idx, n_outputs=size, vocab_size=vocab,
                operands=torch.stack([x, y], dim=1), info={"n": config.n, "op": config.op})
