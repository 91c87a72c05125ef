"""Hu et al.'s LSTM for modular arithmetic: the token sequence [a, b] read one-hot (an
input embedding folded into the LSTM's input weights), hidden size 20, a linear readout of
the last hidden state. Parameters are drawn like PyTorch's defaults,
U(-1/sqrt(hidden), 1/sqrt(hidden)), from a seeded generator. ``ENTRY`` is its model kind."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from interp.config import LSTMModel
from interp.models.kind import ModelKind
from interp.models.mlp import default_init_
from interp.tasks.base import Task


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
        # one-hot rows of the identity: unlike F.one_hot, this works under torch.func.vmap
        x = torch.eye(self.vocab_size, dtype=self.readout.weight.dtype,
                      device=tokens.device)[tokens]
        for layer in range(self.lstm.num_layers):
            x = lstm_layer(x, *(getattr(self.lstm, f"{name}_l{layer}")
                                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        return self.readout(self.hook_hidden(x)[:, -1])


def lstm_layer(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
               b_hh: torch.Tensor) -> torch.Tensor:
    """One ``torch.nn.LSTM`` layer (zero initial state) with its gate equations written out:
    x [batch, seq, in] -> hidden states [batch, seq, hidden]. Same parameters and values as
    the fused kernel, which supports neither torch.func.vmap nor forward-mode AD (both
    needed by the NTK and the linearisation)."""
    hidden = w_hh.shape[1]
    h = x.new_zeros(x.shape[0], hidden)
    c = x.new_zeros(x.shape[0], hidden)
    outputs = []
    for t in range(x.shape[1]):
        gates = F.linear(x[:, t], w_ih, b_ih) + F.linear(h, w_hh, b_hh)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


def _build(config: LSTMModel, task: Task, generator: torch.Generator,
           device: str | torch.device) -> LSTMClassifier:
    return LSTMClassifier(task.vocab_size, config.hidden, config.n_layers, task.n_outputs,
                          generator).to(device)


ENTRY = ModelKind(LSTMModel, _build)
