"""The shipped sweep specs (interp/sweep/specs): each loads and resolves to valid configs,
and each holds the design its paper's figure needs."""

import math
from collections import Counter

import pytest

from interp.sweep.spec import load_spec, shipped_specs

PAPER_SPECS = ["liu-toy-phases", "liu-transformer-phases", "liu-transformer-phases-nanda",
               "hu-fraction", "hu-fig5", "kumar-alpha", "kumar-alpha-transformer",
               "kumar-alignment"]


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
