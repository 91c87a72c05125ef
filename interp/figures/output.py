"""Writing figures and obtaining the runs they draw: shared plumbing of figure commands."""

from __future__ import annotations

from pathlib import Path

from interp.config import RunConfig
from interp.errors import UserError


def write_figure(figure, out_dir: Path, name: str) -> list[Path]:
    """Write ``figure`` as OUT_DIR/NAME.html, and .png when kaleido can export it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{name}.html"]
    figure.write_html(written[0], include_plotlyjs="cdn")
    try:
        figure.write_image(out_dir / f"{name}.png")
        written.append(out_dir / f"{name}.png")
    except (ImportError, ValueError, RuntimeError):
        pass  # PNG export needs kaleido and a Chromium; HTML always works
    return written


def obtain_run(config: RunConfig, runs_dir: Path, name: str, device: str | None = None):
    """The finished run RUNS_DIR/NAME: trained from ``config`` if absent, resumed if it was
    interrupted, read as is if complete; a run there with another config is an error."""
    from interp.runs import Run, is_run_dir
    from interp.train.loop import TrainOptions, train

    path = Path(runs_dir) / name
    if is_run_dir(path):
        run = Run.load(path)
        if run.config.to_dict() != config.to_dict():
            raise UserError(f"{path} holds a run with another config; remove it or pass "
                            "another --runs-dir")
        if run.is_complete:
            return run
    train(config, path, TrainOptions(device=device, quiet=True, resume=is_run_dir(path)))
    return Run.load(path)
