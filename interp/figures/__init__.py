"""Plotly figure builders (one function per figure, each returning a ``go.Figure``) and the
paper-figure commands of ``python -m interp.figures``. Nothing here computes science: the
numbers come from ``interp.analysis`` or from a run's files through ``interp.runs``."""
