"""The analyses ``interp.analyze`` runs over a run's checkpoints, each cached per checkpoint.

Each analyzer module has ``NAME``, ``applies(run) -> bool`` and
``analyze(context) -> AnalyzerResult``. They run in the order below; a later one may read an
earlier one's result from ``context.results`` (lazy_rich takes the key frequencies of
fourier for its NTK-eigenvector overlap).
"""

from interp.analyzers import fourier, lazy_rich, representation
from interp.analyzers.base import AnalyzerResult, Context, Options

ANALYZERS = {module.NAME: module for module in (fourier, representation, lazy_rich)}
DEPENDENCIES = {"lazy_rich": ("fourier",)}

__all__ = ["ANALYZERS", "DEPENDENCIES", "AnalyzerResult", "Context", "Options"]


def selected(only: list[str] | None) -> list[str]:
    """The analyzer names to run for ``--only`` (all when None), dependencies included, in
    running order."""
    if only is None:
        return list(ANALYZERS)
    wanted = set(only) | {dep for name in only for dep in DEPENDENCIES.get(name, ())}
    return [name for name in ANALYZERS if name in wanted]
