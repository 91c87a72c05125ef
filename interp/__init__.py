"""interp: train, checkpoint and analyse the models of the grokking papers.

Importing the package is cheap: heavy modules (torch, transformer_lens) load on first use.
The public entry points for notebooks:

- ``interp.Run.load(path)``: one run (config, metrics, checkpoints, its model at an epoch);
- ``interp.load_analysis(run)``: what ``python -m interp.analyze`` cached for a run, as
  DataFrames and typed results, read only (``interp.run_analysis``);
- ``interp.analysis``: the measures themselves, for one model (Fourier basis, key
  frequencies, restricted and excluded loss, neuron grids, NTK, RQI...);
- ``interp.Sweep.load(path)``: a directory of runs, read as one table.
"""

__version__ = "0.1.0"

__all__ = ["Run", "Sweep", "analysis", "load_analysis", "__version__"]


def __getattr__(name: str):
    if name == "Run":
        from interp.runs import Run

        return Run
    if name == "Sweep":
        from interp.sweep_table import Sweep

        return Sweep
    if name == "load_analysis":
        from interp.run_analysis import load_analysis

        return load_analysis
    if name == "analysis":
        import importlib

        return importlib.import_module("interp.analysis")
    raise AttributeError(f"module 'interp' has no attribute {name!r}")
