"""``python -m interp.figures NAME ...``: write a figure set (HTML; PNG with kaleido).

HTML is always written; PNG too when kaleido and a Chromium are installed.

Each command lives in its own module as ``main(argv) -> int`` (the sweep figures share one
module, a function each); this file only dispatches.
"""

from __future__ import annotations

import importlib
import sys

from interp.cli import run_main
from interp.errors import UserError

# command name -> (module, or module:function when not main, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "committee-alpha": ("interp.figures.cmd_committee_alpha",
                        "committee machine loss curves for several alpha; loss decomposition"),
    "gromov-norm": ("interp.figures.cmd_gromov_norm",
                    "Gromov network: accuracy and weight norm while it groks"),
    "hu-models": ("interp.figures.cmd_hu_models",
                  "transformer vs MLP vs LSTM accuracy curves (Hu et al.)"),
    "toy-rqi": ("interp.figures.cmd_toy_rqi",
                "toy model: RQI, accuracy and embeddings (Liu et al.)"),
    "progress": ("interp.figures.cmd_progress",
                 "Nanda et al.'s progress-measures figures for one run"),
    "lazy-rich": ("interp.figures.cmd_lazy_rich", "Kumar et al.'s lazy-vs-rich diagnostics"),
    "alpha-sweep": ("interp.figures.cmd_alpha_sweep", "test loss at several output scales alpha"),
    "phase-diagram": ("interp.figures.cmd_sweep:phase_diagram_main",
                      "a sweep's phase diagram over two axes (Liu et al.)"),
    "sweep-curves": ("interp.figures.cmd_sweep:curves_main",
                     "a sweep's landmark against one axis, a line per value of another"),
    "sweep-heatmap": ("interp.figures.cmd_sweep:heatmap_main",
                      "a sweep's landmark over two axes"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.splitlines()[0].replace("``", "") + "\n\ncommands:")
        for name, (_, description) in sorted(COMMANDS.items()):
            print(f"  {name:16s} {description}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        raise UserError(f"unknown figure command {name!r}; choose one of "
                        f"{', '.join(sorted(COMMANDS)) or '(none yet)'}")
    module, _, function = COMMANDS[name][0].partition(":")
    return getattr(importlib.import_module(module), function or "main")(rest)


if __name__ == "__main__":
    sys.exit(run_main(main))
