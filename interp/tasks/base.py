"""The Task: a data set (inputs, targets) with its train/test split and what it means."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from interp.config import TaskSizes


@dataclass(frozen=True)
class Task:
    """A data set and its split.

    ``inputs``: [N, seq] token ids (sequence encodings) or [N, features] floats.
    ``targets``: [N] class ids (classification) or [N, out] floats (regression).
    ``train_idx`` / ``test_idx``: disjoint index tensors into the N examples.
    ``operands``: [N, 2] the pair (a, b) behind each example, for algorithmic tasks.
    ``n_outputs``: number of classes (or regression outputs); ``vocab_size`` for token inputs.
    ``target_type``: ``class`` (int64 labels, accuracy by argmax), ``integer`` (float
    targets holding integers, accuracy by rounding the output) or ``real`` (no accuracy).
    ``stored``: tensors of randomly generated data sets that the run directory must keep
    (None when the data is a deterministic function of the config); ``build_task`` given
    them back rebuilds exactly this task.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    train_idx: torch.Tensor
    test_idx: torch.Tensor
    n_outputs: int
    vocab_size: int | None = None
    operands: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)
    target_type: str = "class"
    stored: dict[str, torch.Tensor] | None = None

    @property
    def train_inputs(self) -> torch.Tensor:
        return self.inputs[self.train_idx]

    @property
    def train_targets(self) -> torch.Tensor:
        return self.targets[self.train_idx]

    @property
    def test_inputs(self) -> torch.Tensor:
        return self.inputs[self.test_idx]

    @property
    def test_targets(self) -> torch.Tensor:
        return self.targets[self.test_idx]

    @property
    def seq_len(self) -> int | None:
        """Context length for token inputs, None for feature inputs."""
        return self.inputs.shape[1] if self.vocab_size is not None else None

    @property
    def sizes(self) -> TaskSizes:
        """What a model config's size estimates read of this task (``TaskSizes``)."""
        from interp.config import TaskSizes

        tokens = self.vocab_size is not None
        return TaskSizes(self.seq_len, self.vocab_size,
                         None if tokens else self.inputs.shape[1], self.n_outputs)

    def with_split(self, train_idx: torch.Tensor, test_idx: torch.Tensor) -> Task:
        """The same data with another split (e.g. the one stored in a run directory)."""
        return dataclasses.replace(self, train_idx=train_idx, test_idx=test_idx)

    def with_label_scale(self, scale: float) -> Task:
        """The task a run with ``objective.label_scale = scale`` trains on: the targets times
        ``scale`` (itself at 1). ``stored`` and ``info`` stay those of the unscaled data, so
        ``build_task(config, stored=...)`` followed by this gives the run's task again.
        Real-valued targets only (ValueError otherwise; the config refuses the others)."""
        if scale == 1:
            return self
        if self.target_type != "real":
            raise ValueError(f"a label scale applies to real-valued targets, not "
                             f"{self.target_type} ones")
        return dataclasses.replace(self, targets=self.targets * scale)


def random_split(n: int, frac: float, data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split range(n) by a seeded random permutation: the first floor(frac * n) are train.

    This is the split of the TransformerLens grokking demo and of the reference loop.
    """
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(data_seed))
    n_train = int(frac * n)
    return perm[:n_train], perm[n_train:]
