import pytest

from interp.config import ConfigError, ModularTask, PermutationTask, RunConfig
from interp.errors import UserError
from interp.presets import PRESETS, get_preset


def test_json_round_trip_of_every_preset():
    for name in PRESETS:
        config = get_preset(name)
        again = RunConfig.from_dict(config.to_dict())
        assert again == config
        assert again.to_json() == config.to_json()


def test_nanda_preset_is_exactly_the_papers():
    c = get_preset("nanda")
    assert (c.task.p, c.task.frac, c.task.data_seed, c.task.op) == (113, 0.3, 598, "add")
    assert (c.model.n_layers, c.model.d_model, c.model.n_heads, c.model.d_head) == (1, 128, 4, 32)
    assert (c.model.d_mlp, c.model.act_fn, c.model.normalization) == (512, "relu", None)
    assert c.model.freeze_biases and c.model.seed == 999
    assert (c.optim.name, c.optim.lr, c.optim.weight_decay) == ("adamw", 1e-3, 1.0)
    assert c.optim.betas == (0.9, 0.98) and c.optim.batch_size is None
    assert c.schedule.epochs == 25_000 and c.objective.loss_dtype == "float64"


def test_overrides_parse_json_values_and_switch_kind():
    c = get_preset("nanda").with_overrides(["optim.lr=3e-4", "task.p=97",
                                            "optim.betas=[0.8, 0.9]", "optim.batch_size=null"])
    assert c.optim.lr == 3e-4 and c.task.p == 97 and c.optim.betas == (0.8, 0.9)
    switched = c.with_overrides(["task.kind=permutation", "task.op=aba"])
    assert isinstance(switched.task, PermutationTask) and switched.task.op == "aba"
    assert isinstance(c.task, ModularTask)


@pytest.mark.parametrize("assignment, message", [
    ("task.op=pow", "unknown modular op 'pow'"),
    ("task.p=1", "at least 2"),
    ("task.frac=1.0", "strictly between 0 and 1"),
    ("task.frac=0", "strictly between 0 and 1"),
    ("schedule.epochs=0", "schedule.epochs must be positive"),
    ("schedule.epochs=-5", "schedule.epochs must be positive"),
    ("optim.lrr=1", "unknown config key optim.lrr"),
    ("optim.lr=fast", "optim.lr must be a number"),
    ("model.kind=resnet", "unknown model kind 'resnet'"),
    ("task.encoding=onehot", "needs token inputs"),
    ("model.d_model=-1", "model.d_model must be positive"),
    ("nonsense", "key=value"),
    ("lr=1", "must look like"),
])
def test_bad_values_raise_one_line_config_errors(assignment, message):
    with pytest.raises(UserError, match=message) as info:
        get_preset("nanda").with_overrides([assignment])
    assert "\n" not in str(info.value)


def test_div_needs_prime_p():
    with pytest.raises(ConfigError, match="prime"):
        get_preset("nanda").with_overrides(["task.op=div", "task.p=12"])
    assert get_preset("nanda").with_overrides(["task.op=div", "task.p=13"]).task.p == 13


def test_alpha_needs_the_centred_objective():
    with pytest.raises(ConfigError, match="objective.centered=true"):
        get_preset("nanda").with_overrides(["objective.alpha=10"])
    c = get_preset("nanda").with_overrides(["objective.alpha=10", "objective.centered=true"])
    assert c.objective.alpha == 10 and c.objective.centered
