"""The exact fast path equals the TransformerBridge forward: logits, loss and every gradient,
at initialisation and at a trained checkpoint, through both ways of computing the attention
scores (score table for large batches, per example for small ones)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, small_config

from interp.config import ModularTask, TransformerModel
from interp.models import build_model, output_fn
from interp.models.transformer import _SCORE_TABLE_ADVANTAGE, last_position_forward
from interp.runs import Run
from interp.tasks import build_task
from interp.train.loop import TrainOptions, train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A small model trained until it fits its training set (train accuracy 1)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    train(small_config(schedule={"epochs": 300, "checkpoint_every": 300}), out,
          TrainOptions(device="cpu", quiet=True))
    run = Run.load(out)
    assert run.metrics["train_acc"].iloc[-1] == 1.0
    return run


def _uses_score_table(model_config, task, batch):
    d_vocab, n_ctx = task.vocab_size, task.seq_len
    return d_vocab * n_ctx * d_vocab <= _SCORE_TABLE_ADVANTAGE * batch * n_ctx


def _logits_loss_grads(config, model, tokens, labels, fast):
    model.zero_grad()
    logits = output_fn(config, model, fast=fast)(tokens)
    loss = F.cross_entropy(logits.double(), labels)
    loss.backward()
    grads = {n: p.grad.double() for n, p in model.named_parameters() if p.grad is not None}
    return logits.detach().double(), loss.detach(), grads


def _assert_fast_equals_bridge(config, model, tokens, labels):
    """In float64 the two are the same arithmetic up to rounding (1e-9 here); in float32
    the fast path's error (against float64) is within a small multiple of the bridge's."""
    exact = copy.deepcopy(model).double()
    fast64 = _logits_loss_grads(config, exact, tokens, labels, fast=True)
    bridge64 = _logits_loss_grads(config, exact, tokens, labels, fast=False)
    torch.testing.assert_close(fast64[0], bridge64[0], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fast64[1], bridge64[1], rtol=1e-9, atol=0)
    assert fast64[2].keys() == bridge64[2].keys() and len(fast64[2]) == 9  # every weight
    for name, grad in fast64[2].items():
        scale = bridge64[2][name].abs().max()
        assert scale > 0, name
        torch.testing.assert_close(grad, bridge64[2][name], rtol=1e-9, atol=1e-9 * scale,
                                   msg=name)
    fast32 = _logits_loss_grads(config, model, tokens, labels, fast=True)
    bridge32 = _logits_loss_grads(config, model, tokens, labels, fast=False)
    torch.testing.assert_close(fast32[0], bridge32[0], rtol=1e-5,
                               atol=1e-6 * bridge32[0].abs().max())
    torch.testing.assert_close(fast32[1], bridge32[1], rtol=1e-5, atol=0)
    for name, truth in bridge64[2].items():
        fast_error = (fast32[2][name] - truth).abs().max()
        bridge_error = (bridge32[2][name] - truth).abs().max()
        assert fast_error <= 3 * bridge_error + 1e-5 * truth.abs().max(), name


@pytest.mark.parametrize("batch", [None, 64], ids=["score-table", "per-example"])
def test_fast_path_equals_bridge_at_nanda_initialisation(batch):
    task = build_task(ModularTask(p=113, frac=0.3))
    config = TransformerModel()
    model = build_model(config, task)
    tokens, labels = task.train_inputs[:batch], task.train_targets[:batch]
    assert _uses_score_table(config, task, len(tokens)) == (batch is None)
    _assert_fast_equals_bridge(config, model, tokens, labels)


@pytest.mark.parametrize("batch", [None, 16], ids=["score-table", "per-example"])
def test_fast_path_equals_bridge_at_a_trained_checkpoint(trained_run, batch):
    config = trained_run.config.model
    model = trained_run.model()
    task = trained_run.task()
    tokens, labels = task.train_inputs[:batch], task.train_targets[:batch]
    assert _uses_score_table(config, task, len(tokens)) == (batch is None)
    _assert_fast_equals_bridge(config, model, tokens, labels)


@pytest.mark.skipif(not (REPO / "checkpoints" / "nanda-p113").is_dir(),
                    reason="the shipped nanda-p113 run is not here")
def test_fast_path_equals_bridge_at_the_grokked_nanda_checkpoint():
    run = Run.load(REPO / "checkpoints" / "nanda-p113")
    task = run.task()
    _assert_fast_equals_bridge(run.config.model, run.model(), task.train_inputs,
                               task.train_targets)


def test_fast_path_activations_and_pattern_equal_the_hooks(trained_run):
    """What the analysis reads from the fast path is what the TransformerLens hooks give."""
    config, model, task = trained_run.config.model, trained_run.model(), trained_run.task()
    post, pattern = "blocks.0.mlp.hook_post", "blocks.0.attn.hook_pattern"
    with torch.no_grad():
        fast = last_position_forward(model.state_dict(), task.inputs, n_heads=config.n_heads,
                                     act_fn=config.act_fn)
        logits, cache = model.run_with_cache(task.inputs, names_filter=[post, pattern])
    assert fast.neuron_acts.abs().max() > 0.1
    torch.testing.assert_close(fast.logits, logits[:, -1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.neuron_acts, cache[post][:, -1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.pattern, cache[pattern][:, :, -1].transpose(1, 2),
                               rtol=1e-5, atol=1e-6)


def test_fast_path_handles_bidirectional_attention_and_varied_last_tokens():
    """Not only the '=' token last: with random tokens each example has its own query."""
    task = build_task(ModularTask(p=23, frac=0.5))
    config = TransformerModel(d_model=32, n_heads=2, d_head=16, d_mlp=64,
                              attention="bidirectional", seed=5)
    model = build_model(config, task)
    generator = torch.Generator().manual_seed(0)
    for batch in (1000, 8):  # score table, per example
        tokens = torch.randint(0, task.vocab_size, (batch, 3), generator=generator)
        labels = torch.randint(0, task.n_outputs, (batch,), generator=generator)
        _assert_fast_equals_bridge(config, model, tokens, labels)


def test_training_on_the_fast_path_and_the_bridge_ends_at_the_same_weights(tmp_path):
    config = small_config(schedule={"epochs": 40, "checkpoint_every": 40})
    for fast in (True, False):
        train(config, tmp_path / str(fast), TrainOptions(device="cpu", quiet=True, fast=fast))
    a, b = Run.load(tmp_path / "True"), Run.load(tmp_path / "False")
    moved = 0.0
    for name, value in a.weights(40).items():
        torch.testing.assert_close(value, b.weights(40)[name], rtol=1e-4, atol=1e-5, msg=name)
        moved = max(moved, (value - a.weights(0)[name]).abs().max().item())
    assert moved > 0.05  # the weights did move: the comparison is not of initialisations
    np.testing.assert_allclose(a.metrics["test_loss"], b.metrics["test_loss"], rtol=1e-4)


@pytest.mark.slow
def test_compiled_training_equals_eager_training(tmp_path):
    """The torch.compile path (CUDA graphs on CUDA) exercised on CPU, single and ensemble."""
    from interp.train.ensemble import train_ensemble

    configs = [small_config(model={"seed": s}, schedule={"epochs": 10, "checkpoint_every": 10})
               for s in (3, 4)]
    runs = {}
    for compile_ in (False, True):
        options = TrainOptions(device="cpu", quiet=True, compile=compile_)
        runs[compile_] = [train(configs[0], tmp_path / f"single-{compile_}", options),
                          *train_ensemble(configs, [tmp_path / f"ensemble-{compile_}-{i}"
                                                    for i in range(2)], options)]
    for eager_path, compiled_path in zip(runs[False], runs[True], strict=True):
        eager, compiled = Run.load(eager_path), Run.load(compiled_path)
        for key, value in eager.weights(10).items():
            torch.testing.assert_close(compiled.weights(10)[key], value, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(compiled.metrics["test_loss"], eager.metrics["test_loss"],
                                   rtol=1e-5)


def test_compile_is_opt_in_and_only_for_the_fast_path(tmp_path):
    from interp.train.backend import should_compile

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not should_compile(None, cuda, fast_path=True)
    assert not should_compile(None, cpu, fast_path=True)
    assert should_compile(True, cuda, fast_path=True) and should_compile(True, cpu, True)
    assert not should_compile(True, cpu, fast_path=False)
    assert not should_compile(False, cuda, True)
    run = Run.load(train(small_config(schedule={"epochs": 2}), tmp_path / "run",
                         TrainOptions(device="cpu", quiet=True)))
    assert run.record["runtime"] == {"device": "cpu", "compile": False,
                                     "matmul_precision": "highest"}
