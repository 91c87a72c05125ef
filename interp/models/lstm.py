"""Hu et al.'s LSTM for modular arithmetic: the token sequence [a, b] read one-hot (an
input embedding folded into the LSTM's input weights), hidden size 20, a linear readout of
the last hidden state. Parameters are drawn like PyTorch's defaults,
U(-1/sqrt(hidden), 1/sqrt(hidden)), from a seeded generator."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from interp.models.mlp import default_init_


class LSTMClassifier(HookedRootModule):
    """tokens [batch, seq] -> logits [batch, n_outputs] at the last position.

    Hooks: ``hook_hidden``, the LSTM's output at every position [batch, seq, hidden].
    """

    def __init__(self, vocab_size: int, hidden: int, n_layers: int, n_outputs: int,
                 generator: torch.Generator):
        super().__init__()
        self.vocab_size = vocab_size
        self.lstm = nn.LSTM(vocab_size, hidden, num_layers=n_layers, batch_first=True)
        bound = 1 / math.sqrt(hidden)
        with torch.no_grad():
            for param in self.lstm.parameters():
                param.copy_(torch.rand(param.shape, generator=generator) * 2 * bound - bound)
        self.readout = default_init_(nn.Linear(hidden, n_outputs), generator)
        self.hook_hidden = HookPoint()
        self.setup()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.one_hot(tokens, self.vocab_size).to(self.readout.weight.dtype)
        hidden, _ = self.lstm(x)
        return self.readout(self.hook_hidden(hidden)[:, -1])
