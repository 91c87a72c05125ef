"""Liu et al.'s (NeurIPS 2022) toy addition task: numbers 0..p-1, unordered pairs a <= b
(their code treats a + b and b + a as one sample: p(p+1)/2 examples), label a + b."""

from __future__ import annotations

import torch

from interp.config import ToyAdditionTask
from interp.tasks.base import Task, random_split


def toy_pairs(p: int) -> torch.Tensor:
    """All unordered pairs (a, b), a <= b, a-major: [p(p+1)/2, 2] int64."""
    return torch.triu_indices(p, p).T.contiguous()


def toy_addition_task(config: ToyAdditionTask) -> Task:
    """Tokens [a, b] (vocabulary p); targets a + b as classes 0..2p-2, or as a float
    [N, 1] scalar whose accuracy is that of the output rounded to the nearest integer."""
    pairs = toy_pairs(config.p)
    sums = pairs.sum(dim=1)
    train_idx, test_idx = random_split(len(pairs), config.frac, config.data_seed)
    if config.output == "scalar":
        targets, n_outputs, target_type = sums[:, None].float(), 1, "integer"
    else:
        targets, n_outputs, target_type = sums, 2 * config.p - 1, "class"
    return Task(pairs, targets, train_idx, test_idx, n_outputs=n_outputs,
                vocab_size=config.p, operands=pairs, info={"p": config.p, "op": "add"},
                target_type=target_type)
