import math

import pytest
import torch

from interp.config import ModularTask, TransformerModel
from interp.models import build_model, output_fn
from interp.tasks import build_task


@pytest.fixture(scope="module")
def nanda_model():
    task = build_task(ModularTask(p=113, frac=0.3))
    return build_model(TransformerModel(), task), task


def hand_logits(model, tokens):
    """The one-layer transformer computed from TransformerLens's named weight matrices."""
    x = model.W_E[tokens] + model.W_pos[: tokens.shape[1]]  # [b, pos, d]
    W_Q, W_K, W_V, W_O = model.W_Q[0], model.W_K[0], model.W_V[0], model.W_O[0]
    q = torch.einsum("bpd,hde->bhpe", x, W_Q)
    k = torch.einsum("bpd,hde->bhpe", x, W_K)
    v = torch.einsum("bpd,hde->bhpe", x, W_V)
    scores = q @ k.transpose(-1, -2) / math.sqrt(W_Q.shape[-1])
    causal = torch.triu(torch.ones(3, 3, dtype=torch.bool), diagonal=1)
    pattern = scores.masked_fill(causal, float("-inf")).softmax(-1)
    z = pattern @ v  # [b, h, pos, e]
    x = x + torch.einsum("bhpe,hed->bpd", z, W_O)
    x = x + torch.relu(x @ model.W_in[0]) @ model.W_out[0]
    return x @ model.W_U


def test_logits_equal_a_hand_computation_from_the_weight_matrices(nanda_model):
    model, task = nanda_model
    tokens = task.inputs[torch.tensor([0, 1, 500, 7000, 12768])]
    with torch.no_grad():
        expected = hand_logits(model, tokens)
        actual = model(tokens)
    assert actual.shape == (5, 3, 113)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_nanda_model_shapes_and_frozen_zero_biases(nanda_model):
    model, _ = nanda_model
    assert model.W_E.shape == (114, 128) and model.W_U.shape == (128, 113)
    assert model.W_in.shape == (1, 128, 512)
    trainable = {n for n, p in model.state_dict(keep_vars=True).items()
                 if isinstance(p, torch.nn.Parameter) and p.requires_grad}
    assert trainable == {"embed.weight", "pos_embed.weight", "blocks.0.attn.q.weight",
                         "blocks.0.attn.k.weight", "blocks.0.attn.v.weight",
                         "blocks.0.attn.o.weight", "blocks.0.mlp.in.weight",
                         "blocks.0.mlp.out.weight", "unembed.weight"}
    for name, value in model.state_dict().items():
        if name.endswith("bias"):
            assert not value.any(), name
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 226_048


def test_run_with_cache_exposes_the_standard_hooks(nanda_model):
    model, task = nanda_model
    logits, cache = model.run_with_cache(task.inputs[:4])
    assert cache["hook_embed"].shape == (4, 3, 128)
    assert cache["blocks.0.attn.hook_pattern"].shape == (4, 4, 3, 3)
    assert cache["blocks.0.mlp.hook_post"].shape == (4, 3, 512)
    assert logits.shape == (4, 3, 113)


def test_initialisation_is_seeded(nanda_model):
    model, task = nanda_model
    again = build_model(TransformerModel(), task)
    other = build_model(TransformerModel(seed=1), task)
    assert torch.equal(model.W_E, again.W_E)
    assert not torch.equal(model.W_E, other.W_E)


def test_power_transformer_builds_with_layernorm_and_four_tokens():
    task = build_task(ModularTask(op="div", p=97, encoding="power", frac=0.5))
    model = build_model(TransformerModel(n_layers=2, normalization="LN", freeze_biases=False),
                        task)
    logits = model(task.inputs[:3])
    assert logits.shape == (3, 4, 97)
    assert model.W_E.shape[0] == 99
    assert any("ln" in name for name, _ in model.named_parameters())


def test_fast_path_equals_bridge_forward_logits_and_gradients(nanda_model):
    _, task = nanda_model
    config = TransformerModel()
    model = build_model(config, task)
    # a perturbed, non-zero-bias model: the fast path must not rely on init or zero biases
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=torch.Generator().manual_seed(1)))
    tokens, labels = task.train_inputs[:256], task.train_targets[:256]
    grads = {}
    for fast in (True, False):
        model.zero_grad()
        logits = output_fn(config, model, fast=fast)(tokens)
        torch.nn.functional.cross_entropy(logits.double(), labels).backward()
        grads[fast] = (logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                         if p.grad is not None})
    torch.testing.assert_close(grads[True][0], grads[False][0], rtol=1e-5, atol=1e-5)
    assert grads[True][1].keys() == grads[False][1].keys()
    for name in grads[True][1]:
        torch.testing.assert_close(grads[True][1][name], grads[False][1][name],
                                   rtol=1e-4, atol=1e-6, msg=name)
