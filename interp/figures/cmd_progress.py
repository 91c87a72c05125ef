"""``python -m interp.figures progress RUN_DIR --out DIR``: the progress-measures figures of
Nanda et al. (learning curves with phases, restricted/excluded loss, Gini and weight norm,
Fourier structure of W_E, W_L, neurons, logits and attention) for one run.

Uses the cached analysis of ``python -m interp.analyze`` (computing what is missing).
"""

from __future__ import annotations

from pathlib import Path

from interp.cli import ArgumentParser, check_output_dir, check_positive


def main(argv: list[str]) -> int:
    parser = ArgumentParser.from_doc("python -m interp.figures progress", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory")
    parser.add_argument("--out", type=Path, required=True, help="directory for the figures")
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="analyse every K-th checkpoint")
    parser.add_argument("--device", default="cpu", help="torch device for the models")
    args = parser.parse_args(argv)
    check_positive("--every", args.every)

    from interp.analyze import analyse_run
    from interp.analyzers import Options
    from interp.figures.export import png_export_available, write_figures
    from interp.figures.report import progress_figures
    from interp.runs import Run
    from interp.train.loop import resolve_device

    args.device = str(resolve_device(args.device))
    check_output_dir(args.out)
    Run.load(args.run_dir)  # a one-line error for a path that is not a run
    result = analyse_run(args.run_dir, ["fourier"], args.every, Options(device=args.device))
    png = png_export_available()
    written = write_figures(progress_figures(result), args.out, png=png)
    print(f"wrote {len(written)} files to {args.out}"
          + ("" if png else " (HTML only: PNG export needs kaleido and a Chromium)"))
    return 0
