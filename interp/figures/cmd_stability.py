"""``python -m interp.figures stability SWEEP_DIR``: Prieto et al.'s numerical-stability
figure of a sweep (e.g. the shipped ``prieto-stability`` sweep): per training variant (loss,
its dtype, orthogonal gradient) test accuracy, softmax collapse and the gradient-weight
cosine against epoch, the seeds' mean and range; and, per variant, a line of text with its
final test accuracy and collapse and the epoch each seed reached 99% test accuracy.

    python -m interp.sweep prieto-stability --out checkpoints/prieto-stability
    python -m interp.figures stability checkpoints/prieto-stability --out figures/stability.html

Runs whose targets are not classes record no collapse or cosine and are left out.
"""

from __future__ import annotations

from pathlib import Path

from interp.cli import ArgumentParser
from interp.errors import UserError
from interp.figures.export import FORMATS, add_format_option, chosen_formats


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser.from_doc("python -m interp.figures stability", __doc__)
    parser.add_argument("sweep_dir", type=Path, help="a directory of runs (a sweep)")
    parser.add_argument("--out", type=Path, default=Path("figures") / "stability.html",
                        help="the file to write (default: figures/stability.html); with "
                             "--format, the same name with each format's suffix")
    add_format_option(parser)
    args = parser.parse_args(argv)
    from interp.cli import check_output_dir

    if args.out.suffix.lstrip(".") not in FORMATS:
        raise UserError(f"--out {args.out} must name a file ending in "
                        f"{', '.join('.' + f for f in FORMATS)}")
    formats = chosen_formats(args)
    check_output_dir(args.out.parent)

    from interp.analysis.curves import ACCURACY_THRESHOLD, first_epoch, format_epoch
    from interp.figures.export import write_figures
    from interp.figures.stability import stability_curves, variant_label
    from interp.sweep_table import Sweep

    sweep = Sweep.load(args.sweep_dir)
    variants: dict[str, list] = {}
    for run in sweep.runs:
        metrics = run.metrics
        if "softmax_collapse" not in metrics:
            continue
        config = run.config
        name = variant_label(config.objective.loss, config.objective.loss_dtype,
                             config.optim.orthogonal_grad)
        variants.setdefault(name, []).append(metrics)
    if not variants:
        raise UserError(f"no run of {sweep.path} records softmax_collapse (runs with class "
                        "targets trained by this version record it); train the sweep again, "
                        "e.g. python -m interp.sweep prieto-stability")
    for name, frames in variants.items():
        reached = [format_epoch(first_epoch(f, "test_acc", ACCURACY_THRESHOLD)) for f in frames]
        accuracy, collapse = ([f"{f[column].iloc[-1]:.3f}" for f in frames]
                              for column in ("test_acc", "softmax_collapse"))
        print(f"{name}: final test accuracy {', '.join(accuracy)}; softmax collapse "
              f"{', '.join(collapse)}; test accuracy {ACCURACY_THRESHOLD:.0%} at epoch "
              f"{', '.join(reached)} (per seed)")
    figure = stability_curves(variants, f"Numerical stability without weight decay: "
                                        f"{sweep.path.name}")
    print("\n".join(map(str, write_figures({args.out.stem: figure}, args.out.parent, formats))))
    return 0
