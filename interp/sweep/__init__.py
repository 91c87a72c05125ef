"""Sweeps: ``python -m interp.sweep SPEC`` trains the runs of a spec (``spec.py``) into one
sweep directory (``interp.runs``: sweep.json and a run directory per run), their stacks on
local worker processes (``runner.py``)."""
