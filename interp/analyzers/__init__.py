"""The analyses ``interp.analyze`` runs over a run's checkpoints, each cached per checkpoint.

Each analyzer module has ``NAME``, ``skip_reason(run) -> str | None`` and
``analyze(context) -> AnalyzerResult``. They run in the order below; a later one may read an
earlier one's result from ``context.results`` (lazy_rich takes the key frequencies of
fourier for its NTK-eigenvector overlap).

``ON_REQUEST``: the analyses that sample or iterate per checkpoint (the LLC's SGLD chains,
sharpness's Lanczos iteration) and cost minutes on a CPU where the others cost seconds; they
run when ``--only`` names them, and once cached they are read into every later summary and
report like the others.
"""

from interp.analyzers import fourier, lazy_rich, llc, representation, sharpness
from interp.analyzers.base import AnalyzerResult, Context, Options

ANALYZERS = {module.NAME: module
             for module in (fourier, representation, lazy_rich, llc, sharpness)}
DEPENDENCIES = {"lazy_rich": ("fourier",)}
ON_REQUEST = ("llc", "sharpness")

__all__ = ["ANALYZERS", "DEPENDENCIES", "ON_REQUEST", "AnalyzerResult", "Context", "Options"]


def selected(only: list[str] | None) -> list[str]:
    """The analyzer names to run for ``--only`` (when None, all but ``ON_REQUEST``),
    dependencies included, in running order."""
    if only is None:
        return [name for name in ANALYZERS if name not in ON_REQUEST]
    wanted = set(only) | {dep for name in only for dep in DEPENDENCIES.get(name, ())}
    return [name for name in ANALYZERS if name in wanted]
