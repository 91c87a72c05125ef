"""interp: train, checkpoint and analyse the models of the grokking papers.

Importing the package is cheap: heavy modules (torch, transformer_lens) load on first use.
The public entry points for notebooks are ``interp.Run.load(path)`` (one run) and
``interp.Sweep.load(path)`` (a directory of runs, read as one table).
"""

__version__ = "0.1.0"

__all__ = ["Run", "Sweep", "__version__"]


def __getattr__(name: str):
    if name == "Run":
        from interp.runs import Run

        return Run
    if name == "Sweep":
        from interp.sweep_table import Sweep

        return Sweep
    raise AttributeError(f"module 'interp' has no attribute {name!r}")
