import torch

from interp.config import ModularTask, PermutationTask
from interp.tasks import build_task, random_split
from interp.tasks.modular import OPS
from interp.tasks.permutations import permutation_table


def test_modular_op_tables_match_python_arithmetic():
    p = 7
    expected = {
        "add": lambda a, b: (a + b) % p, "sub": lambda a, b: (a - b) % p,
        "mul": lambda a, b: a * b % p, "x2_y2": lambda a, b: (a * a + b * b) % p,
        "x2_xy_y2": lambda a, b: (a * a + a * b + b * b) % p,
        "x2_xy_y2_x": lambda a, b: (a * a + a * b + b * b + a) % p,
        "x3_xy": lambda a, b: (a**3 + a * b) % p,
        "x3_xy2_y": lambda a, b: (a**3 + a * b * b + b) % p,
    }
    assert set(expected) | {"div"} == set(OPS)
    for op, fn in expected.items():
        task = build_task(ModularTask(op=op, p=p, frac=0.5))
        a, b = task.operands.T
        assert len(a) == p * p
        pairs = zip(a.tolist(), b.tolist(), strict=True)
        assert task.targets.tolist() == [fn(x, y) for x, y in pairs]


def test_div_uses_the_modular_inverse_and_skips_zero():
    p = 11
    task = build_task(ModularTask(op="div", p=p, frac=0.5))
    a, b = task.operands.T
    assert len(a) == p * (p - 1) and (b != 0).all()
    # c = a / b  <=>  c * b = a (mod p)
    assert ((task.targets * b) % p == a).all()


def test_split_is_deterministic_disjoint_and_sized_by_frac():
    one = random_split(1000, 0.3, data_seed=5)
    two = random_split(1000, 0.3, data_seed=5)
    other = random_split(1000, 0.3, data_seed=6)
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])
    assert not torch.equal(one[0], other[0])
    assert len(one[0]) == 300 and len(one[1]) == 700
    assert sorted(torch.cat(one).tolist()) == list(range(1000))


def test_nanda_split_matches_the_reference_loop():
    task = build_task(ModularTask(p=113, frac=0.3, data_seed=598))
    perm = torch.randperm(113 * 113, generator=torch.Generator().manual_seed(598))
    assert torch.equal(task.train_idx, perm[:3830])
    assert task.inputs[0].tolist() == [0, 0, 113] and task.inputs[114].tolist() == [1, 1, 113]


def test_encodings():
    nanda = build_task(ModularTask(p=5, encoding="nanda"))
    power = build_task(ModularTask(p=5, encoding="power"))
    onehot = build_task(ModularTask(p=5, encoding="onehot"))
    assert nanda.inputs[7].tolist() == [1, 2, 5] and nanda.vocab_size == 6
    assert power.inputs[7].tolist() == [1, 5, 2, 6] and power.vocab_size == 7
    assert onehot.inputs.shape == (25, 10) and onehot.vocab_size is None
    assert onehot.inputs[7].nonzero().flatten().tolist() == [1, 5 + 2]


def test_permutation_ops_on_s5():
    table = permutation_table(5)
    assert table.shape == (120, 5) and table[0].tolist() == [0, 1, 2, 3, 4]
    index = {tuple(r): k for k, r in enumerate(table.tolist())}
    tasks = {op: build_task(PermutationTask(op=op)) for op in ("compose", "conjugate", "aba")}
    for task in tasks.values():
        assert task.n_outputs == 120 and len(task.inputs) == 14400
    rng = torch.Generator().manual_seed(0)
    for i in torch.randint(0, 14400, (50,), generator=rng).tolist():
        x, y = (table[k].tolist() for k in tasks["compose"].operands[i].tolist())
        xy = [x[y[k]] for k in range(5)]
        x_inv = [x.index(k) for k in range(5)]
        assert tasks["compose"].targets[i] == index[tuple(xy)]
        assert tasks["conjugate"].targets[i] == index[tuple(xy[x_inv[k]] for k in range(5))]
        assert tasks["aba"].targets[i] == index[tuple(xy[x[k]] for k in range(5))]
    # every row of the composition table is a permutation of the group (Latin square)
    compose = tasks["compose"].targets.view(120, 120)
    assert all(len(set(row)) == 120 for row in compose.tolist())
