"""``python -m interp.figures lazy-rich RUN_DIR --out DIR``: Kumar et al.'s lazy-versus-rich
diagnostics over a run's checkpoints (kernel distance and alignment of the empirical NTK,
parameter movement, linearisation gap, network vs linearised loss, representation CKA, NTK
eigenvectors vs key Fourier modes), with the grokking landmarks marked.

    python -m interp.figures lazy-rich checkpoints/tiny --out figures/tiny-lazy-rich
    python -m interp.figures lazy-rich checkpoints/tiny --out figures/tiny-lazy-rich \\
        --linearized-run checkpoints/tiny-linearized --probes 128 --every 2

The measures see the run's own trained output (centred and alpha-scaled when it was).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from interp.errors import UserError

DESCRIPTION = (
    "Kumar et al.'s lazy-versus-rich diagnostics over a run's checkpoints, as HTML figures.")

KINDS = ("correct_class", "trace")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m interp.figures lazy-rich", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("run_dir", type=Path, help="a run directory")
    parser.add_argument("--out", type=Path, required=True, help="directory for the figures")
    parser.add_argument("--linearized-run", type=Path, metavar="DIR",
                        help="a lazy-baseline run (python -m interp.train --linearized) whose "
                             "learning curves are overlaid")
    parser.add_argument("--probes", type=int, default=256,
                        help="probe inputs for the NTK and CKA, drawn from the test split "
                             "(default 256)")
    parser.add_argument("--seed", type=int, default=0, help="probe-set seed (default 0)")
    parser.add_argument("--kernels", nargs="+", choices=KINDS, default=list(KINDS),
                        help="NTK kinds (default: both; trace costs n_outputs times more)")
    parser.add_argument("--hooks", nargs="*",
                        help="hook names for CKA (default: every *mlp.hook_post and "
                             "*hook_resid_post of the model)")
    parser.add_argument("--key-frequencies", default="auto", metavar="K,K,...|auto|none",
                        help="frequencies for the NTK eigenvector overlap (default auto: the "
                             "final checkpoint's, for modular a +/- b tasks)")
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="use every K-th checkpoint (always the first and last)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.probes < 2:
        raise UserError(f"--probes must be at least 2, got {args.probes}")
    if args.every < 1:
        raise UserError(f"--every must be at least 1, got {args.every}")
    return args


def key_frequencies(argument: str, run, task) -> list[int]:
    """The frequencies named on the command line, or the final checkpoint's key frequencies
    (Nanda et al.'s neuron clusters) for a modular a +/- b run that is not linearised."""
    if argument == "none":
        return []
    if argument != "auto":
        try:
            return [int(k) for k in argument.split(",")]
        except ValueError:
            raise UserError(f"--key-frequencies expects K,K,..., auto or none; got "
                            f"{argument!r}") from None
    from interp.analysis import modular

    if (not modular.applies_to(run.config) or run.config.objective.linearized
            or task.info.get("op") not in modular.COMBINATIONS):
        return []
    return modular.analyse_checkpoint(run.model(), task).key_frequencies_neurons


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    import torch

    from interp.analysis.curves import first_epoch, landmarks
    from interp.analysis.lazy_rich import lazy_rich_curve, task_data
    from interp.analyze import select_epochs
    from interp.figures import lazy_rich as figures
    from interp.figures.export import png_export_available, write_figures
    from interp.runs import Run
    from interp.train.loop import classification_loss
    from interp.train.objective import build_objective

    run = Run.load(args.run_dir)
    lazy = Run.load(args.linearized_run) if args.linearized_run else None
    config = run.config
    if config.objective.loss != "cross_entropy":
        raise UserError(f"lazy-rich: objective.loss={config.objective.loss!r} runs are not "
                        "supported yet (cross-entropy only)")
    epochs = run.checkpoint_epochs
    if not epochs or epochs[0] != 0:
        raise UserError(f"{run.path}: needs its epoch-0 checkpoint (the initialisation)")
    task = run.task()
    frequencies = key_frequencies(args.key_frequencies, run, task)
    dtype = getattr(torch, config.objective.loss_dtype)
    data = task_data(task, lambda out, y: classification_loss(out, y, dtype), args.probes,
                     args.seed, frequencies, "sub" if task.info.get("op") == "sub" else "add",
                     args.device)
    initial_model = run.model(0, args.device)
    objective = build_objective(config, initial_model, run.weights(0))
    hooks = args.hooks if args.hooks is not None else sorted(
        name for name in getattr(initial_model, "hook_dict", {})
        if name.endswith(("mlp.hook_post", "hook_resid_post")))
    curve = lazy_rich_curve(objective, run.iter_models(select_epochs(epochs, args.every),
                                                       args.device),
                            data, kinds=args.kernels, hook_names=hooks)

    marks = landmarks(run.metrics).to_dict()
    figs = {"lazy-rich-kernel": figures.kernel_figure(curve, marks),
            "lazy-rich-movement": figures.movement_figure(curve, marks),
            "lazy-rich-linearisation": figures.linearisation_figure(
                curve, marks, lazy.metrics if lazy else None)}
    if hooks:
        figs["lazy-rich-cka"] = figures.cka_figure(curve, marks)
    if frequencies:
        figs["lazy-rich-fourier"] = figures.fourier_overlap_figure(curve, frequencies, marks)
    png = png_export_available()
    written = write_figures(figs, args.out, png=png)
    print(f"wrote {len(written)} files to {args.out}"
          + ("" if png else " (HTML only: PNG export needs kaleido and a Chromium)"))
    gap = first_epoch(curve, "lin_gap_test", 0.5)
    print(f"linearisation gap (test) passes 0.5 at epoch {gap}; " + "; ".join(
        f"kernel distance ({kind}) passes 0.5 at epoch "
        f"{first_epoch(curve, f'kernel_distance/{kind}', 0.5)}" for kind in args.kernels))
    print(f"landmarks: train acc 99% at {marks['train_acc_99']}, test acc 99% at "
          f"{marks['test_acc_99']}, test loss peaks at {marks['test_loss_peak']}")
    return 0
