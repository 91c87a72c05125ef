"""interp: train, checkpoint and analyse the models of the grokking papers.

Importing the package is cheap: heavy modules (torch, transformer_lens) load on first use.
The public entry point for notebooks is ``interp.Run.load(path)``.
"""

__version__ = "0.1.0"

__all__ = ["Run", "__version__"]


def __getattr__(name: str):
    if name == "Run":
        from interp.runs import Run

        return Run
    raise AttributeError(f"module 'interp' has no attribute {name!r}")
