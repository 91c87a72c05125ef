"""``python -m interp.figures alpha-sweep --out DIR``: the Nanda transformer trained at several
output scales alpha (Kumar et al. 2024, sec. 6 and Fig. 5b: large alpha makes grokking later
and more drastic, small alpha removes it); test and train loss against epoch for each.

    python -m interp.figures alpha-sweep --out figures/alpha                  # nanda, GPU
    python -m interp.figures alpha-sweep --preset tiny --alphas 0.5 1 2 4 --out figures/a

Every run trains the centred output alpha * (f - f_0) (objective.centered, alpha = 1
included) with the learning rate divided by alpha (AdamW). Runs live in --runs-dir, one per
alpha; a complete one is read, an interrupted one resumed, a missing one trained.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from interp.errors import UserError

DESCRIPTION = (
    'Train (or read) runs at several output scales alpha and draw their loss curves.')


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m interp.figures alpha-sweep", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--out", type=Path, required=True, help="directory for the figure")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0, 4.0],
                        help="output scales (default: 0.25 0.5 1 2 4)")
    parser.add_argument("--preset", default="nanda", help="base configuration (default nanda)")
    parser.add_argument("--epochs", type=int, help="override schedule.epochs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="further config overrides, as for python -m interp.train")
    parser.add_argument("--runs-dir", type=Path,
                        help="where the runs live (default: checkpoints/alpha-sweep-PRESET)")
    parser.add_argument("--device", help="torch device (default: cuda when available)")
    args = parser.parse_args(argv)
    if any(alpha <= 0 for alpha in args.alphas):
        raise UserError(f"--alphas must be positive, got {args.alphas}")
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be positive, got {args.epochs}")
    return args


def sweep_config(base, alpha: float, epochs: int | None, overrides: list[str]):
    """The base config trained centred at output scale ``alpha``."""
    settings = [*overrides, "objective.centered=true", f"objective.alpha={alpha!r}"]
    if epochs is not None:
        settings.append(f"schedule.epochs={epochs}")
    return base.with_overrides(settings)


def obtain(config, path: Path, device: str | None):
    """The run of ``config`` in ``path``: read if complete, resumed if interrupted, else
    trained (an existing run with another config is an error, never overwritten)."""
    from interp.runs import Run, is_run_dir
    from interp.train.loop import TrainOptions, train

    if is_run_dir(path) and Run.load(path).is_complete:
        run = Run.load(path)
        if run.config.to_dict() != config.to_dict():
            raise UserError(f"{path} holds a different run; choose another --runs-dir")
        return run
    print(f"training {path} ...", flush=True)
    train(config, path, TrainOptions(device=device, resume=is_run_dir(path), quiet=True))
    return Run.load(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from interp.analysis.curves import landmarks
    from interp.figures.export import png_export_available, write_figures
    from interp.figures.lazy_rich import alpha_sweep_figure
    from interp.presets import get_preset

    base = get_preset(args.preset)
    runs_dir = args.runs_dir or Path("checkpoints") / f"alpha-sweep-{args.preset}"
    runs = {alpha: obtain(sweep_config(base, alpha, args.epochs, args.set),
                          runs_dir / f"alpha{alpha:g}", args.device)
            for alpha in args.alphas}
    metrics = {alpha: run.metrics for alpha, run in runs.items()}
    png = png_export_available()
    written = write_figures({"alpha-sweep": alpha_sweep_figure(metrics)}, args.out, png=png)
    print(f"wrote {len(written)} files to {args.out}"
          + ("" if png else " (HTML only: PNG export needs kaleido and a Chromium)"))
    for alpha, frame in sorted(metrics.items()):
        marks = landmarks(frame)
        print(f"alpha={alpha:g}: " + marks.describe().replace("\n", "\n    "))
    return 0
