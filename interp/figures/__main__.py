"""``python -m interp.figures NAME ...``: write a figure set, as HTML pages or as PNG, SVG
or PDF images.

HTML is written by default; --format png,svg,pdf (repeatable) writes images instead or as
well, which needs kaleido and a Chrome or Chromium (see the README). Each command's --help
says what it draws.

Each command lives in its own module as ``main(argv) -> int`` (the sweep figures share one
module, a function each); this file only dispatches.
"""

from __future__ import annotations

import importlib
import sys
import textwrap

from interp.cli import run_main
from interp.errors import UserError

# command name -> (module, or module:function when not main, what it draws: whole sentences)
COMMANDS: dict[str, tuple[str, str]] = {
    "committee-alpha": ("interp.figures.cmd_committee_alpha",
                        "Kumar et al.'s committee machine trained at several output scales "
                        "alpha: its loss curves, and the exact test-loss decomposition."),
    "committee-theory": ("interp.figures.cmd_committee_theory",
                         "Kumar et al.'s committee machine at several alpha and eps beside its "
                         "theory: the online limit (exact equations for v and M) and the "
                         "train loss to first order in 1/P."),
    "kumar-sweep": ("interp.figures.cmd_kumar_sweep",
                    "A sweep of committee-machine (MSE) runs as Kumar et al. draw theirs: "
                    "log-log loss curves coloured by one axis, a panel per value of another; "
                    "final test loss and grokking delay against the axis; the loss "
                    "decomposition of a few runs; the delay against the task hardness "
                    "y^T K_0^-1 y."),
    "gromov-norm": ("interp.figures.cmd_gromov_norm",
                    "The Gromov quadratic network's accuracy and weight norm while it groks "
                    "(Kumar et al. Fig. 2a)."),
    "hu-models": ("interp.figures.cmd_hu_models",
                  "Accuracy curves of the transformer, the MLP and the LSTM on a + b mod 97, "
                  "side by side (Hu et al.)."),
    "toy-rqi": ("interp.figures.cmd_toy_rqi",
                "Liu et al.'s toy model: the representation quality index and accuracy over "
                "training, and the final embeddings."),
    "progress": ("interp.figures.cmd_progress",
                 "Nanda et al.'s progress-measures figures of one run: learning curves with "
                 "phases, restricted and excluded loss, and the Fourier structure."),
    "neurons": ("interp.figures.cmd_neurons",
                "Single MLP neurons of a modular-addition transformer over the (a, b) grid: "
                "each key frequency's top neurons with their fitted Fourier terms."),
    "embedding-circles": ("interp.figures.cmd_embedding_circles",
                          "The number embeddings projected on each key frequency's cos and "
                          "sin directions, with a slider stepping through the checkpoints."),
    "lazy-rich": ("interp.figures.cmd_lazy_rich",
                  "Kumar et al.'s lazy-versus-rich diagnostics of one run: NTK distance and "
                  "alignment, parameter movement, linearisation gap and CKA."),
    "alpha-sweep": ("interp.figures.cmd_alpha_sweep",
                    "Test and train loss of the transformer trained at several output scales "
                    "alpha (Kumar et al. Fig. 5b)."),
    "stability": ("interp.figures.cmd_stability",
                  "Prieto et al.'s numerical-stability figure of a sweep: test accuracy, "
                  "softmax collapse and the gradient-weight cosine per loss/dtype/orthogonal-"
                  "gradient variant, the seeds' mean and range."),
    "phase-diagram": ("interp.figures.cmd_sweep:phase_diagram_main",
                      "A sweep's phase diagram (Liu et al.): the majority phase of the runs at "
                      "each point of two axes."),
    "sweep-curves": ("interp.figures.cmd_sweep:curves_main",
                     "A landmark of a sweep's runs against one axis, one line per value of "
                     "another."),
    "sweep-heatmap": ("interp.figures.cmd_sweep:heatmap_main",
                      "A landmark of a sweep's runs over two axes, as a heatmap."),
}


def usage(width: int = 100) -> str:
    """``--help``: the first two paragraphs above, then the commands with their whole
    descriptions, wrapped to ``width`` columns."""
    intro = [" ".join(paragraph.replace("``", "").split())
             for paragraph in __doc__.split("\n\n")[:2]]
    column = max(map(len, COMMANDS)) + 4
    commands = [textwrap.fill(description, width, initial_indent=f"  {name:{column - 2}s}",
                              subsequent_indent=" " * column)
                for name, (_, description) in sorted(COMMANDS.items())]
    return "\n\n".join(textwrap.fill(p, width) for p in intro) + "\n\ncommands:\n" + "\n".join(
        commands)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        raise UserError(f"unknown figure command {name!r}; choose one of "
                        f"{', '.join(sorted(COMMANDS)) or '(none yet)'}")
    module, _, function = COMMANDS[name][0].partition(":")
    return getattr(importlib.import_module(module), function or "main")(rest)


if __name__ == "__main__":
    sys.exit(run_main(main))
