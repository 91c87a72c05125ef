"""The shipped sweep specs (interp/sweep/specs): each loads and resolves to valid configs,
and each holds the design its paper's figure needs."""

import math
from collections import Counter

import pytest

from interp.sweep.spec import load_spec, shipped_specs

PAPER_SPECS = ["liu-toy-phases", "liu-transformer-phases", "liu-transformer-phases-nanda",
               "hu-fraction", "hu-fig5", "kumar-alpha", "kumar-alpha-transformer",
               "kumar-alignment", "kumar-laziness-init", "kumar-laziness-labels",
               "kumar-eigenvector", "kumar-data-size", "kumar-interpolation", "kumar-momentum",
               "kumar-decay-alpha"]
# the committee-machine sweeps of Kumar et al.: each the kumar-committee preset at its paper
# length, checkpointed on a log scale
KUMAR_COMMITTEE_SPECS = ["kumar-alpha", "kumar-alignment", "kumar-laziness-init",
                         "kumar-laziness-labels", "kumar-eigenvector", "kumar-data-size",
                         "kumar-interpolation", "kumar-momentum", "kumar-decay-alpha"]


def configs_of(name: str):
    spec = load_spec(name)
    runs = spec.runs()
    return spec, runs, spec.configs(runs)


def test_every_paper_sweep_is_shipped_with_a_description():
    shipped = shipped_specs()
    for name in PAPER_SPECS:
        assert name in shipped
        assert load_spec(name).description


@pytest.mark.parametrize("name", sorted(shipped_specs()))
def test_a_shipped_spec_resolves_to_distinct_valid_runs(name):
    _, runs, configs = configs_of(name)
    assert len({run.name for run in runs}) == len(runs) > 1
    assert len({config.to_json() for config in configs}) == len(configs)


def test_liu_toy_phases_holds_the_representation_lr_and_varies_the_decoder():
    spec, _, configs = configs_of("liu-toy-phases")
    cells = Counter((c.optim.lr, c.optim.weight_decay) for c in configs)
    lrs = sorted({lr for lr, _ in cells})
    decays = sorted({wd for _, wd in cells})
    assert len(lrs) >= 8 and len(decays) >= 8 and set(cells.values()) == {3}  # seeds a cell
    assert lrs[-1] / lrs[0] >= 100 and decays[0] == 0 and decays[-1] == 10
    for config in configs:  # the embedding's lr is the decoder's times its factor
        assert config.optim.lr * config.model.embedding_lr_factor == pytest.approx(1e-3,
                                                                                  rel=1e-3)
    axes = {axis.key: axis for axis in spec.record().axes}
    assert axes["optim.lr"].log and not axes["optim.weight_decay"].log


def test_hu_fig5_trains_1800_steps_at_every_fraction():
    _, _, configs = configs_of("hu-fig5")
    assert len({c.preset for c in configs}) == 8
    assert sorted({c.task.frac for c in configs}) == pytest.approx(
        [0.1 * k for k in range(1, 10)])
    for config in configs:
        per_epoch = config.steps_per_epoch()
        assert config.schedule.steps == 1800
        assert config.schedule.epochs == math.ceil(1800 / per_epoch)


def test_kumar_sweeps_vary_alpha_eps_and_the_decay_choice():
    _, _, committee = configs_of("kumar-alpha")
    assert all(c.objective.centered and c.model.kind == "committee" for c in committee)
    assert sorted(c.objective.alpha for c in committee) == [0.5, 1.0, 2.0, 4.0, 8.0]
    _, _, transformer = configs_of("kumar-alpha-transformer")
    assert Counter(c.objective.alpha_weight_decay for c in transformer) == {"scaled": 5,
                                                                          "fixed": 5}
    assert all(c.optim.weight_decay > 0 for c in transformer)  # else the choice is moot
    _, _, alignment = configs_of("kumar-alignment")
    assert len({c.model.eps for c in alignment}) == 5


def test_hu_fraction_compares_three_architectures_on_one_task():
    _, _, configs = configs_of("hu-fraction")
    kinds = Counter(c.model.kind for c in configs)
    assert kinds == {"transformer": 9, "mlp": 9, "lstm": 9}
    assert {(c.task.p, c.task.data_seed) for c in configs} == {(97, 0)}


@pytest.mark.parametrize("name", KUMAR_COMMITTEE_SPECS)
def test_kumar_committee_sweeps_train_the_preset_for_1e5_epochs(name):
    from interp.presets import get_preset

    _, _, configs = configs_of(name)
    preset = get_preset("kumar-committee")
    for config in configs:
        assert config.model.kind == "committee" and config.model.width == 500
        assert config.task.dim == 100 and config.objective.centered
        assert config.objective.loss == "mse" and config.optim.name == "sgd"
        assert config.schedule.epochs == 100_000 == preset.schedule.epochs
        assert (config.schedule.checkpoint_every, config.schedule.checkpoint_log) == (0, 10)


def changed_keys(configs) -> set[str]:
    """The config keys in which any of ``configs`` differs from the kumar-committee preset,
    the log-scale checkpointing every Kumar sweep sets left out."""
    from interp.presets import get_preset

    preset = get_preset("kumar-committee").flat()
    return {key for config in configs for key, value in config.flat().items()
            if value != preset[key]} - {"schedule.checkpoint_every", "schedule.checkpoint_log"}


def stacks_of(configs) -> int:
    from interp.train.stacks import group_into_stacks

    return len(group_into_stacks(configs))


def test_kumar_laziness_is_reached_three_ways_at_the_alphas_of_kumar_alpha():
    _, _, by_alpha = configs_of("kumar-alpha")
    alphas = sorted(c.objective.alpha for c in by_alpha)
    _, _, by_init = configs_of("kumar-laziness-init")
    # weight scale sigma at eps is alpha = sigma at eps sigma: eps moves as 0.02 / sigma so
    # that only the laziness changes; the lr is not rescaled (the weights' scale does it)
    assert sorted(c.model.init_scale for c in by_init) == alphas
    for config in by_init:
        assert config.model.eps * config.model.init_scale == pytest.approx(0.02)
        assert config.objective.alpha == 1 and config.optim.lr == 500
    assert stacks_of(by_init) == 5  # eps is a stack key
    # label scale s at alpha = 1 is alpha = 1/s
    _, _, by_labels = configs_of("kumar-laziness-labels")
    assert sorted(1 / c.objective.label_scale for c in by_labels) == pytest.approx(alphas)
    assert all(c.objective.alpha == 1 and c.model.eps == 0.02 for c in by_labels)
    assert stacks_of(by_labels) == 1
    assert changed_keys(by_init) == {"model.init_scale", "model.eps"}
    assert changed_keys(by_labels) == {"objective.label_scale"}


def test_kumar_eigenvector_labels_over_k_and_training_size_fit_in_memory():
    _, _, configs = configs_of("kumar-eigenvector")
    assert all(c.task.target == "ntk_eigenvector" for c in configs)
    cells = Counter((c.task.eigen_index, c.task.n_train) for c in configs)
    assert cells == {(k, n): 1 for k in (1, 100, 101, 500) for n in (100, 550, 2000)}
    for config in configs:
        inputs = config.task.n_train + config.task.n_test
        assert config.task.eigen_index <= inputs and config.task.n_test == 1000
        # the labels' Jacobian [P + n_test, N D] in float32
        assert 4 * inputs * config.model.width * config.task.dim <= 0.6e9
    assert stacks_of(configs) == 4  # one stack per k
    assert changed_keys(configs) == {"task.target", "task.eigen_index", "task.n_train"}


def test_kumar_data_size_has_too_little_just_right_and_too_much():
    _, _, configs = configs_of("kumar-data-size")
    sizes = sorted(c.task.n_train for c in configs)
    assert sizes == [100, 550, 5000]
    assert sizes[0] == configs[0].task.dim  # P = D: too little
    assert sizes[-1] >= configs[0].task.dim ** 2 / 2  # the quadratic functions' count
    assert changed_keys(configs) == {"task.n_train"}


def test_kumar_interpolation_momentum_and_decay_vary_only_their_knob():
    _, _, mixes = configs_of("kumar-interpolation")
    assert sorted(c.model.solution_mix for c in mixes) == [0.0, 0.05, 0.1, 0.2, 0.5]
    _, _, momenta = configs_of("kumar-momentum")
    assert sorted(c.optim.momentum for c in momenta) == [0.0, 0.5, 0.9]
    assert all(c.optim.lr == 500 for c in momenta)  # momentum added, lr kept (app. 15a)
    _, _, decays = configs_of("kumar-decay-alpha")
    cells = Counter((c.objective.alpha, c.optim.weight_decay) for c in decays)
    assert cells == {(a, wd): 1 for a in (1.0, 2.0, 4.0) for wd in (0.0, 1e-7, 1e-6, 1e-5)}
    assert all(c.objective.alpha_weight_decay == "scaled" for c in decays)
    for configs, knobs in ((mixes, {"model.solution_mix"}), (momenta, {"optim.momentum"}),
                           (decays, {"objective.alpha", "optim.weight_decay"})):
        assert changed_keys(configs) == knobs
        assert stacks_of(configs) == 1
