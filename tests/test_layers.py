"""Lower layers never import higher ones (DESIGN.md): config < tasks < models < analysis <
runs < train < analyzers < figures < CLIs. Every module of interp/ is read with ``ast`` and
each import, at top level or inside a function, is checked against the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

PACKAGE = Path(__file__).resolve().parents[1] / "interp"

LAYERS = ("base", "config", "tasks", "models", "analysis", "runs", "train", "analyzers",
          "figures", "cli")

# module (or package prefix) -> layer; the longest matching prefix wins
LAYER_OF = {
    "interp.errors": "base", "interp.files": "base",
    "interp.config": "config", "interp.presets": "config",
    "interp.tasks": "tasks",
    "interp.models": "models",
    "interp.analysis": "analysis",
    "interp": "runs",  # the package's __init__: __version__ and the lazy ``interp.Run``
    "interp.runs": "runs", "interp.resources": "runs",
    "interp.train": "train",
    "interp.analyzers": "analyzers", "interp.sweep_table": "analyzers",
    "interp.figures": "figures",
    "interp.run_analysis": "figures",  # the analysis library: it writes the report
    "interp.cli": "cli", "interp.analyze": "cli", "interp.bench": "cli", "interp.sweep": "cli",
    "interp.llc_calibration": "cli",
    "interp.train.__main__": "cli", "interp.figures.__main__": "cli",
    "interp.figures.run_options": "cli",  # the figure commands' shared options
}
FIGURE_COMMANDS = "interp.figures.cmd_"  # python -m interp.figures NAME: CLIs

# (importer, imported): the deliberate exceptions, each imported inside the one function
# that needs it
EXCEPTIONS = {
    # the student-teacher task's labels are the outputs of a teacher network that is the MLP
    # model itself (same layers, same seeded initialisation)
    ("interp.tasks.teacher", "interp.models.mlp"):
        "the teacher network is the MLP model",
    # the polynomial task's ntk_eigenvector target is defined by the model's initial NTK
    # (Kumar et al. appendix 8.4): its labels cannot be made without building the model
    ("interp.tasks.polynomial", "interp.models"):
        "ntk_eigenvector labels come from the model's NTK",
    # the package's lazy ``interp.Sweep`` (a table over many runs' analyses), imported on
    # first use only, as ``interp.Run`` is
    ("interp", "interp.sweep_table"): "the lazy interp.Sweep",
    ("interp", "interp.run_analysis"): "the lazy interp.load_analysis",
}


def layer(module: str) -> str:
    """The layer of an interp module name."""
    if module.startswith(FIGURE_COMMANDS):
        return "cli"
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYER_OF:
            return LAYER_OF[prefix]
    raise KeyError(f"{module} has no layer: add it to LAYER_OF in tests/test_layers.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[str, int]]:
    """(interp module imported, line) for every import in ``source``, anywhere in it: a
    ``from X import name`` imports X.name where that is a module, else X."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importing module's package
                package = module.split(".")[:len(module.split(".")) - node.level
                                               + is_package]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                path = PACKAGE.parent / Path(*candidate.split("."))
                is_module = path.with_suffix(".py").is_file() or path.is_dir()
                found.append((candidate if is_module else base, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] == "interp"]


def violations(path: Path, source: str | None = None) -> list[str]:
    """'file:line: importer (layer) imports imported (higher layer)' for each import of a
    higher layer in the module at ``path`` (its text, or ``source`` instead)."""
    module = module_name(path)
    own = LAYERS.index(layer(module))
    source = path.read_text() if source is None else source
    return [f"{path.relative_to(PACKAGE.parent)}:{line}: {module} ({layer(module)}) imports "
            f"{name} ({layer(name)})"
            for name, line in imported_modules(source, module, path.name == "__init__.py")
            if LAYERS.index(layer(name)) > own and (module, name) not in EXCEPTIONS]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_no_module_imports_a_module_of_a_higher_layer():
    assert len(MODULES) > 50
    found = [v for path in MODULES for v in violations(path)]
    assert not found, "\n".join(found)


def test_the_exceptions_are_still_needed():
    """Each listed exception is an import that exists (stale ones are removed)."""
    imports = {(module_name(path), name) for path in MODULES
               for name, _ in imported_modules(path.read_text(), module_name(path),
                                               path.name == "__init__.py")}
    assert set(EXCEPTIONS) <= imports


@pytest.mark.parametrize("module, source", [
    ("config.py", "def f():\n    from interp.models import build_model\n"),
    ("config.py", "def f():\n    from interp.train.optim import OPTIMIZERS\n"),
    ("tasks/modular.py", "import interp.train.loop\n"),
    ("models/toy.py", "from interp import runs\n"),
    ("analysis/modular.py", "from ..train import objective\n"),
    ("train/loop.py", "from interp.analyzers.base import warn\n"),
])
def test_an_upward_import_is_caught_wherever_it_is(module, source):
    assert len(violations(PACKAGE / module, source)) == 1


def test_the_name_constants_at_the_bottom_name_what_the_layers_above_implement():
    """config.py holds the names its validation accepts; the modules that implement them
    implement exactly those."""
    from interp.config import ENCODINGS, MODULAR_OPS, OPTIMIZERS, PERMUTATION_OPS, OptimConfig
    from interp.tasks import modular, permutations
    from interp.tasks.encodings import encode_pairs
    from interp.train.optim import build_optimizer

    assert tuple(modular.OPS) == MODULAR_OPS
    assert tuple(permutations.OPS) == PERMUTATION_OPS
    pairs = torch.tensor([0, 1]), torch.tensor([2, 0])
    for encoding in ENCODINGS:
        inputs, vocab = encode_pairs(*pairs, 3, encoding)
        assert (inputs.dtype == torch.float32) == ("features" in ENCODINGS[encoding])
    weight = torch.nn.Parameter(torch.zeros(2))
    for name in OPTIMIZERS:
        build_optimizer(OptimConfig(name=name), [{"params": [weight], "lr_factor": 1.0}])
