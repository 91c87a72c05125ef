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


@pytest.mark.parametrize("assignment, message", [
    ("optim.lr=NaN", "optim.lr must be a finite number within \\+-1e\\+09, got nan"),
    ("optim.lr=Infinity", "optim.lr must be a finite number within \\+-1e\\+09, got inf"),
    ("optim.weight_decay=-Infinity",
     "optim.weight_decay must be a finite number within \\+-1e\\+09, got -inf"),
    ("optim.betas=[0.9, NaN]", "optim.betas must be a finite number within \\+-1e\\+09, got nan"),
    ("model.init_scale=1e999",
     "model.init_scale must be a finite number within \\+-1e\\+09, got inf"),
    ("objective.alpha=NaN",
     "objective.alpha must be a finite number within \\+-1e\\+09, got nan"),
    ("optim.update_noise=Infinity", "optim.update_noise must be a finite number"),
    ("schedule.epochs=1e30", "schedule.epochs must fit a signed 64-bit integer"),
    ("optim.warmup_steps=9223372036854775808", "optim.warmup_steps must fit a signed 64-bit"),
    ("model.d_mlp=-9223372036854775809", "model.d_mlp must fit a signed 64-bit integer"),
    ("model.seed=-1", "model.seed must be a seed in 0..2\\*\\*63-1, got -1"),
    ("task.data_seed=9223372036854775808", "task.data_seed must be a seed in 0..2\\*\\*63-1"),
    ("schedule.seed=-5", "schedule.seed must be a seed in 0..2\\*\\*63-1, got -5"),
    ("optim.lr=0", "optim.lr must be positive"),
    ("optim.weight_decay=-0.1", "optim.weight_decay must be >= 0"),
    ("optim.warmup_steps=-1", "optim.warmup_steps must be >= 0"),
    ("model.init_scale=0", "model.init_scale must be positive"),
    ("task.p=4000000000", "task.p=4000000000 gives 1.6e\\+19 examples, more than an int64"),
    ("optim.lr=1e39", "optim.lr must be a finite number within \\+-1e\\+09, got 1e\\+39"),
    ("optim.update_noise=1e300", "optim.update_noise must be a finite number within"),
    ("objective.alpha=1e-300", "objective.alpha must be at least 1e-09"),
])
def test_numbers_must_be_finite_and_fit_64_bits(assignment, message):
    with pytest.raises(ConfigError, match=message) as info:
        get_preset("tiny").with_overrides([assignment])
    assert "\n" not in str(info.value)


def test_the_largest_seed_is_accepted():
    config = get_preset("tiny").with_overrides(["model.seed=9223372036854775807",
                                                "task.data_seed=0"])
    assert config.model.seed == 2**63 - 1


@pytest.mark.parametrize("overrides, message", [
    (["task.frac=0.0001"], "task.frac=0.0001 leaves no training example: floor\\(frac \\* "
                           "2809 examples\\) = 0; raise task.frac above 1/2809 = 0.000356"),
    (["task.frac=0.9999"], None),  # 2808 training examples of 2809: one test example
    (["task.frac=0.99999999"], None),  # frac < 1 always leaves one test example
    (["task.frac=0.99999999999999999"], "strictly between 0 and 1"),  # parses as 1.0
    (["task.op=div", "task.p=13", "task.frac=0.006"], "floor\\(frac \\* 156 examples\\) = 0"),
    (["task.kind=permutation", "task.n=2", "task.frac=0.2"], "floor\\(frac \\* 4 examples\\)"),
    (["task.kind=toy_addition", "task.p=3", "task.frac=0.1"], "floor\\(frac \\* 6 examples"),
])
def test_frac_must_leave_a_training_and_a_test_example(overrides, message):
    if message is None:
        assert get_preset("tiny").with_overrides(overrides).task.split_sizes() == (2808, 1)
        return
    with pytest.raises(ConfigError, match=message) as info:
        get_preset("tiny").with_overrides(overrides)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("preset, overrides", [
    ("tiny", []), ("tiny", ["task.op=div", "task.p=13", "task.frac=0.37"]),
    ("tiny", ["task.kind=permutation", "task.n=3", "task.frac=0.41"]),
    ("liu-toy", []), ("kumar-committee", []), ("kumar-teacher", []),
    ("omnigrok-digits", ["task.source=sklearn"]),  # 1000 of 1797 images: 999 train (floor)
])
def test_split_sizes_are_those_the_task_builder_makes(preset, overrides):
    from interp.tasks import build_task

    config = get_preset(preset).with_overrides(overrides)
    task = build_task(config.task, config.model)
    assert config.task.n_examples() == len(task.inputs)
    assert config.task.split_sizes() == (len(task.train_idx), len(task.test_idx))
