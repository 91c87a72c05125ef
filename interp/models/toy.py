"""Liu et al.'s (NeurIPS 2022) toy model of representation learning: a learnable embedding
E_k for each number and a decoder MLP that reads E_a + E_b (the addition is hard-coded, so
only the embeddings' geometry decides whether the model generalises). ``ENTRY`` is its
model kind: its embeddings train with their own learning-rate factor and weight decay."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from interp.config import ToyModel
from interp.models.kind import ModelKind
from interp.models.mlp import MLP
from interp.tasks.base import Task


class ToyAdditionModel(HookedRootModule):
    """tokens [batch, 2] -> decoder(E_a + E_b) [batch, n_outputs].

    ``embed.weight`` [n_numbers, d_emb] is E, drawn uniform(-1/2, 1/2) as in Liu et al.'s
    code; the decoder is a tanh MLP. Hooks: ``hook_embed`` [batch, 2, d_emb], ``hook_sum``
    [batch, d_emb] and the decoder's ``decoder.hidden.{i}.hook_post``.
    """

    def __init__(self, n_numbers: int, d_emb: int, hidden: tuple[int, ...], n_outputs: int,
                 generator: torch.Generator):
        super().__init__()
        self.embed = nn.Embedding(n_numbers, d_emb)
        with torch.no_grad():
            self.embed.weight.copy_(torch.rand(n_numbers, d_emb, generator=generator) - 0.5)
        self.decoder = MLP(d_emb, hidden, n_outputs, "tanh", True, generator)
        self.hook_embed = HookPoint()
        self.hook_sum = HookPoint()
        self.setup()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        pair = self.hook_embed(self.embed(tokens))
        return self.decoder(self.hook_sum(pair.sum(dim=1)))


def _build(config: ToyModel, task: Task, generator: torch.Generator,
           device: str | torch.device) -> ToyAdditionModel:
    return ToyAdditionModel(task.vocab_size, config.d_emb, config.hidden, task.n_outputs,
                            generator).to(device)


def parameter_groups(config: ToyModel, model: ToyAdditionModel) -> list[dict[str, Any]]:
    """The embeddings at ``embedding_lr_factor`` times the learning rate with their own
    weight decay (Liu et al.: 1e-3 against 1e-4, no decay), then the decoder."""
    decoder = [p for p in model.decoder.parameters() if p.requires_grad]
    return [{"params": [model.embed.weight], "lr_factor": config.embedding_lr_factor,
             "weight_decay": config.embedding_weight_decay},
            {"params": decoder, "lr_factor": 1.0}]


ENTRY = ModelKind(ToyModel, _build, parameter_groups=parameter_groups,
                  number_embeddings="embed.weight")
