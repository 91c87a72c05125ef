"""Sweeps: ``python -m interp.sweep SPEC`` trains the runs of a spec (``spec.py``) into one
sweep directory (``interp.runs``: sweep.json and a run directory per run): ``api.py`` plans
and trains it as one call, its stacks on local worker processes (``runner.py``) or as Ray
tasks (``ray_backend.py``)."""
