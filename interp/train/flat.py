"""The trainable weights of a stack of M runs as one flat [M, P] tensor.

The optimiser and the optimiser variants then update the whole stack with a dozen tensor
operations per step, whatever the number of weight tensors (a small model's step is
otherwise dominated by per-tensor overhead); the forward reads each weight as a view of it
(``views``: one ``split``, whose backward writes the flat gradient in one piece).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FlatLayout:
    """Where each trainable weight lives in a row of the flat tensor: ``names`` in optimiser
    order, each with its ``shapes`` (one run's); a row holds them flattened, one after
    another."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]

    @property
    def sizes(self) -> list[int]:
        return [math.prod(shape) for shape in self.shapes]

    @property
    def width(self) -> int:
        """P: the number of trainable numbers of one run."""
        return sum(self.sizes)

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """name -> [M, *shape], views of ``flat`` [M, P] (differentiable)."""
        parts = flat.split(self.sizes, dim=1)
        return {name: part.view(flat.shape[0], *shape)
                for name, part, shape in zip(self.names, parts, self.shapes, strict=True)}

    def pieces(self, row: torch.Tensor) -> list[torch.Tensor]:
        """One run's row [..., P] cut into its weights [..., *shape], in optimiser order."""
        parts = row.split(self.sizes, dim=-1)
        return [part.reshape(*row.shape[:-1], *shape)
                for part, shape in zip(parts, self.shapes, strict=True)]

    def row(self, tensors: Sequence[torch.Tensor], lead: int = 0) -> torch.Tensor:
        """The inverse of ``pieces``: tensors [..., *shape] (``lead`` leading dims) -> [..., P]."""
        return torch.cat([t.reshape(*t.shape[:lead], -1) for t in tensors], dim=-1)

    def stack(self, weights: Sequence[Mapping[str, torch.Tensor]]) -> torch.Tensor:
        """[M, P] from M runs' weights by name."""
        return torch.stack([self.row([w[name] for name in self.names]) for w in weights])
