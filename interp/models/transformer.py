"""The TransformerLens transformer (Nanda et al.'s one-layer model, Power et al.'s two-layer).

``build_transformer`` boots a ``TransformerBridge`` with native weights, so hook names
(``hook_embed``, ``blocks.0.mlp.hook_post``), weight matrices (``W_E``, ``W_U``) and
``run_with_cache`` work as in every TransformerLens tutorial.

``last_position_logits`` is the exact fast path used for training: for a one-layer model
without LayerNorm, the last-position logits depend on each input token only through
per-(position, token) tables, so keys and values are computed once per table entry instead
of once per example, and queries, MLP and unembedding only at the last position. It reads
the very same parameters (by their state-dict names), so gradients land in the bridge model.

``ENTRY`` is the transformer's model kind (``interp.models.kind``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F

from interp.config import TransformerModel
from interp.models.kind import ModelKind
from interp.models.stacking import StatelessOutputFn
from interp.tasks.base import Task


def build_transformer(config: TransformerModel, task: Task,
                      generator: torch.Generator | None = None,
                      device: str | torch.device = "cpu") -> torch.nn.Module:
    """Boot the TransformerBridge model for ``task`` with seeded init; freeze biases if asked.

    TransformerLens draws the initialisation from its own generator seeded with
    ``config.seed`` (``generator`` is not used)."""
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    cfg = TransformerBridgeConfig(
        n_layers=config.n_layers, d_model=config.d_model, n_heads=config.n_heads,
        d_head=config.d_head, d_mlp=config.d_mlp, act_fn=config.act_fn,
        normalization_type=config.normalization, attention_dir=config.attention,
        d_vocab=task.vocab_size, d_vocab_out=task.n_outputs, n_ctx=task.seq_len,
        device=str(device), seed=config.seed,
    )
    model = TransformerBridge.boot_native(cfg, device=torch.device(device))
    if config.freeze_biases:
        for name, param in model.state_dict(keep_vars=True).items():
            if name.endswith(".bias") and isinstance(param, torch.nn.Parameter):
                param.requires_grad_(False)
    return model


def supports_fast_path(config: TransformerModel) -> bool:
    """Whether ``last_position_logits`` computes this architecture exactly."""
    return config.has_fast_path


def fast_path(config: TransformerModel) -> StatelessOutputFn | None:
    """``last_position_logits`` for this config, or None where it is not exact."""
    if not supports_fast_path(config):
        return None
    return partial(last_position_logits, n_heads=config.n_heads, act_fn=config.act_fn)


def _relu_in_place(x: torch.Tensor) -> torch.Tensor:
    # in place: the pre-activation is a fresh matmul output that nothing else reads, and
    # reusing its buffer saves allocating (and page-faulting) a [batch, d_mlp] tensor
    return F.relu(x, inplace=True)


_ACTIVATIONS = {"relu": _relu_in_place, "gelu": F.gelu}


class LastPosition(NamedTuple):
    """What the one-layer transformer computes at the last position."""

    logits: torch.Tensor  # [batch, d_vocab_out]
    neuron_acts: torch.Tensor  # [batch, d_mlp] the MLP activations (hook_post)
    pattern: torch.Tensor  # [batch, n_ctx, n_heads] attention paid to each position


def last_position_logits(weights: Mapping[str, torch.Tensor], tokens: torch.Tensor, *,
                         n_heads: int, act_fn: str = "relu") -> torch.Tensor:
    """Logits at the last position of a one-layer, LayerNorm-free transformer: the
    ``logits`` of ``last_position_forward``."""
    return last_position_forward(weights, tokens, n_heads=n_heads, act_fn=act_fn).logits


def last_position_forward(weights: Mapping[str, torch.Tensor], tokens: torch.Tensor, *,
                          n_heads: int, act_fn: str = "relu") -> LastPosition:
    """Logits, MLP activations and attention pattern at the last position of a one-layer,
    LayerNorm-free transformer.

    weights: the model's state dict by name (``embed.weight``, ``blocks.0.attn.q.weight``,
    ...), parameters or plain tensors (works under ``torch.func.functional_call``/``vmap``).
    tokens: [batch, n_ctx] int64. The logits equal ``model(tokens)[:, -1]`` up to float
    rounding, the activations and pattern ``blocks.0.mlp.hook_post[:, -1]`` and
    ``blocks.0.attn.hook_pattern[:, :, -1]`` (heads last). The last position attends to
    every position under both causal and bidirectional attention, so both are covered.

    The arithmetic (same math as the TransformerLens forward, regrouped): the residual
    stream entering the block at position i is W_E[t_i] + W_pos[i], so keys and values are
    tables over (position, token) and the last query a table over tokens; only the
    attention output, the MLP and the unembedding are computed per example, at the last
    position. Every per-example row is read from its table with ``F.embedding``, whose
    backward (unlike advanced indexing) is deterministic on CPU, so training is
    bit-reproducible.
    """
    w = weights
    batch, n_ctx = tokens.shape
    # Residual stream of every (position, token) pair: [n_ctx, d_vocab, d_model].
    resid_table = w["embed.weight"][None] + w["pos_embed.weight"][:n_ctx, None]
    d_vocab = resid_table.shape[1]
    keys = F.linear(resid_table, w["blocks.0.attn.k.weight"], w["blocks.0.attn.k.bias"])
    values = F.linear(resid_table, w["blocks.0.attn.v.weight"], w["blocks.0.attn.v.bias"])
    queries = F.linear(resid_table[-1], w["blocks.0.attn.q.weight"], w["blocks.0.attn.q.bias"])
    d_head = queries.shape[-1] // n_heads
    last = tokens[:, -1]
    rows = tokens + d_vocab * torch.arange(n_ctx, device=tokens.device)  # rows of the tables
    scores = _attention_scores(queries, keys.flatten(0, 1), last, rows, n_heads) / math.sqrt(
        d_head)  # [batch, n_ctx, n_heads]
    pattern = scores.softmax(dim=1)
    v = F.embedding(rows, values.flatten(0, 1)).view(batch, n_ctx, n_heads, d_head)
    z = (pattern.unsqueeze(-1) * v).sum(1).view(batch, n_heads * d_head)
    resid = F.embedding(last, resid_table[-1])
    resid = resid + F.linear(z, w["blocks.0.attn.o.weight"], w["blocks.0.attn.o.bias"])
    hidden = _ACTIVATIONS[act_fn](
        F.linear(resid, w["blocks.0.mlp.in.weight"], w["blocks.0.mlp.in.bias"]))
    resid = resid + F.linear(hidden, w["blocks.0.mlp.out.weight"], w["blocks.0.mlp.out.bias"])
    return LastPosition(F.linear(resid, w["unembed.weight"], w.get("unembed.bias")), hidden,
                        pattern)


# A score-table entry is a step of a batched matmul; a per-example score is an elementwise
# multiply and sum over gathered rows, several times slower per multiply-add on CPU and GPU.
_SCORE_TABLE_ADVANTAGE = 4


def _attention_scores(queries: torch.Tensor, keys: torch.Tensor, last: torch.Tensor,
                      rows: torch.Tensor, n_heads: int) -> torch.Tensor:
    """q . k of the last position against every position, per head (unscaled).

    queries: [d_vocab, n_heads * d_head], the query of each last token; keys:
    [n_ctx * d_vocab, n_heads * d_head], the key of each (position, token) row; last:
    [batch] last tokens; rows: [batch, n_ctx] key rows. Returns [batch, n_ctx, n_heads].

    When the batch outnumbers the (last token, key row) pairs, all their dot products are
    one batched matmul (a score table) and each example reads its n_ctx * n_heads entries;
    otherwise the dot products are taken per example.
    """
    d_vocab, n_keys = queries.shape[0], keys.shape[0]
    batch, n_ctx = rows.shape
    q = queries.unflatten(-1, (n_heads, -1))  # [d_vocab, n_heads, d_head]
    k = keys.unflatten(-1, (n_heads, -1))  # [n_keys, n_heads, d_head]
    if d_vocab * n_keys <= _SCORE_TABLE_ADVANTAGE * batch * n_ctx:
        table = torch.einsum("qhe,khe->qkh", q, k).flatten(0, 1)  # [d_vocab * n_keys, heads]
        return F.embedding(rows + n_keys * last[:, None], table)
    q_rows = F.embedding(last, q.flatten(1)).view(batch, 1, n_heads, -1)
    k_rows = F.embedding(rows, keys).view(batch, n_ctx, n_heads, -1)
    return (q_rows * k_rows).sum(-1)


ENTRY = ModelKind(TransformerModel, build_transformer, stateless=fast_path, last_position=True,
                  number_embeddings="embed.weight")
