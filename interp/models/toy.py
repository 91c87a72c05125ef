"""Liu et al.'s (NeurIPS 2022) toy model of representation learning: a learnable embedding
E_k for each number and a decoder MLP that reads E_a + E_b (the addition is hard-coded, so
only the embeddings' geometry decides whether the model generalises)."""

from __future__ import annotations

import torch
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from interp.models.mlp import MLP


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
